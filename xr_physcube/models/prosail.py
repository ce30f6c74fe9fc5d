"""PROSAIL: PROSPECT leaf optics inside the 4SAIL canopy model, batched and differentiable.

Jacquemoud et al. (2009), *PROSPECT+SAIL models: a review of use for vegetation
characterization*, RSE 113:S56–S66. Leaf model: :mod:`xr_physcube.models.prospect`;
canopy model: :mod:`xr_physcube.models.sail`; optional band convolution with a
sensor module such as :class:`xr_physcube.sensors.sentinel2.Sentinel2Bands`.

Parameters may have any broadcastable batch shape; outputs have that shape plus a
spectral dimension (2101 wavelengths, or the sensor's bands). dtype and device follow
the inputs (float32 or float64, CPU or CUDA); gradients flow to every parameter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from xr_physcube._data import read_table
from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.models import prospect as _prospect
from xr_physcube.models import sail as _sail
from xr_physcube.models._special import transmission_table
from xr_physcube.models.prospect import (
    LeafParameters,
    Prospect,
    ProspectVersion,
    layer_transmission,
    plate_optics,
)
from xr_physcube.models.sail import (
    AngularFactors,
    CanopyParameters,
    LidfType,
    SailReflectance,
    ViewGeometry,
    angular_factors,
    check_verhoef_lidf,
    leaf_angle_distribution,
    sail_spectral,
)
from xr_physcube.parameters import TensorParameters, as_tensors, spec_field
from xr_physcube.sensors.sentinel2 import SATELLITES, Sentinel2Bands
from xr_physcube.validation import check_arrays, positive_int

DEFAULT_CHUNK = 1024
"""Spectra computed at once; keeps the working set in the CPU cache (faster than one pass)."""


@dataclass
class ProsailParameters(TensorParameters):
    """All PROSAIL inputs (leaf, canopy, soil, geometry, sky fraction) in one typed set.

    Field specs (units, bounds, defaults) are those declared in
    :mod:`~xr_physcube.models.prospect` and :mod:`~xr_physcube.models.sail`.
    """

    N: torch.Tensor | float = spec_field(_prospect.N)
    cab: torch.Tensor | float = spec_field(_prospect.CAB)
    car: torch.Tensor | float = spec_field(_prospect.CAR)
    anth: torch.Tensor | float = spec_field(_prospect.ANTH)
    cbrown: torch.Tensor | float = spec_field(_prospect.CBROWN)
    cw: torch.Tensor | float = spec_field(_prospect.CW)
    cm: torch.Tensor | float = spec_field(_prospect.CM)
    lai: torch.Tensor | float = spec_field(_sail.LAI)
    ala: torch.Tensor | float = spec_field(_sail.ALA)
    lidfa: torch.Tensor | float = spec_field(_sail.LIDFA)
    lidfb: torch.Tensor | float = spec_field(_sail.LIDFB)
    hspot: torch.Tensor | float = spec_field(_sail.HSPOT)
    psoil: torch.Tensor | float = spec_field(_sail.PSOIL)
    rsoil: torch.Tensor | float = spec_field(_sail.RSOIL)
    tts: torch.Tensor | float = spec_field(_sail.TTS)
    tto: torch.Tensor | float = spec_field(_sail.TTO)
    psi: torch.Tensor | float = spec_field(_sail.PSI)
    skyl: torch.Tensor | float = spec_field(_sail.SKYL)

    def leaf(self) -> LeafParameters:
        return LeafParameters(**{k: getattr(self, k) for k in LeafParameters.parameter_set()})

    def canopy(self) -> CanopyParameters:
        return CanopyParameters(**{k: getattr(self, k) for k in CanopyParameters.parameter_set()})

    def geometry(self) -> ViewGeometry:
        return ViewGeometry(**{k: getattr(self, k) for k in ViewGeometry.parameter_set()})


PROSAIL_PARAMETERS = ProsailParameters.parameter_set()


class Prosail(nn.Module):
    """PROSAIL as an ``nn.Module``.

    Args:
        version: PROSPECT version, "D" (default) or "5".
        lidf_type: "campbell" (uses ``ala``) or "verhoef" (uses ``lidfa``, ``lidfb``).
        sensor: optional band model mapping spectra (..., 2101) to bands, e.g.
            ``Sentinel2Bands()`` (any callable ``nn.Module``), or a Sentinel-2 satellite
            name "S2A", "S2B" or "S2C" (case-insensitive) meaning
            ``Sentinel2Bands(name, spectral_step=spectral_step)``; then every output
            term is band-convolved.
        validate: raise ``ValueError`` on NaN or out-of-range parameters.
        chunk_size: spectra computed per pass over the flattened batch.
        spectral_step: compute every ``spectral_step``-th wavelength only (1 nm = full
            resolution). A speed/accuracy trade-off for training loops that only need
            bands: the ``sensor`` must then be built with the same ``spectral_step``.
            Better for bands: a sensor in band mode (``Sentinel2Bands(band_step=k)``):
            only the wavelengths its SRFs weight are
            computed (745 of 2101 at k = 1, exact; fewer and <= 1e-3 off for
            :data:`~xr_physcube.sensors.sentinel2.BAND_MODE_STEP`).
        compile: run the spectral core through ``torch.compile`` (one fused kernel
            instead of ~200 elementwise passes: several times faster on CPU and GPU,
            after a one-off compilation of ~15–60 s per dtype/device/chunk shape; needs
            a C++ compiler on CPU). Results equal the eager path to rounding. For long
            batch runs on CPU also call :func:`xr_physcube.performance.keep_freed_memory`
            (~2x more: no page faults on each chunk's temporaries).

    ``forward(params: ProsailParameters) -> SailReflectance``.
    """

    def __init__(
        self,
        version: ProspectVersion = "D",
        lidf_type: LidfType = "campbell",
        sensor: nn.Module | str | None = None,
        validate: bool = True,
        chunk_size: int = DEFAULT_CHUNK,
        spectral_step: int = 1,
        compile: bool = False,
    ):
        super().__init__()
        spectral_step = positive_int(spectral_step, "spectral_step")
        chunk_size = positive_int(chunk_size, "chunk_size")
        sensor = _sensor_module(sensor, spectral_step)
        if (
            isinstance(sensor, Sentinel2Bands)
            and sensor.band_step is None
            and sensor.spectral_step == spectral_step == 1
        ):  # the same convolution on the SRFs' support only: 745 of 2101 nm, exact
            sensor = Sentinel2Bands(sensor.satellite, sensor.bands, band_step=1)
        if sensor is not None and getattr(sensor, "spectral_step", 1) != spectral_step:
            raise InvalidArgumentError(
                f"sensor {sensor!r} samples every {getattr(sensor, 'spectral_step', 1)} nm but "
                f"spectral_step={spectral_step}; build both with the same step"
            )
        self.spectral_step = spectral_step
        if lidf_type not in ("campbell", "verhoef"):
            raise InvalidArgumentError(
                f"lidf_type must be 'campbell' or 'verhoef'; got {lidf_type!r}"
            )
        self.leaf_model = Prospect(version)
        self.lidf_type = lidf_type
        self.sensor = sensor
        self.validate = validate
        self.chunk_size = chunk_size
        self.compile = compile
        soil = read_table("xr_physcube.models", "soil_reflectance.csv")
        dry_wet = torch.tensor(np.stack([soil["dry"], soil["wet"]]), dtype=torch.float64)
        index = getattr(sensor, "wavelength_index", None)  # band mode: the SRFs' support
        if index is None:
            index = torch.arange(0, dry_wet.shape[-1], spectral_step)
        self.register_buffer("wavelength_index", index.clone(), persistent=False)
        self.register_buffer("soil_spectra", dry_wet[:, index].clone(), persistent=False)

    @property
    def version(self) -> str:
        return self.leaf_model.version

    def extra_repr(self) -> str:
        return (
            f"lidf_type={self.lidf_type!r}, validate={self.validate}, "
            f"spectral_step={self.spectral_step}, compile={self.compile}"
        )

    def forward(self, params: ProsailParameters) -> SailReflectance:
        """Canopy reflectance factors for a batch of PROSAIL inputs.

        Args:
            params: :class:`ProsailParameters`; fields are floats, NumPy arrays or
                tensors of any broadcastable batch shape (units and valid ranges: see
                ``help(ProsailParameters)``; angles in degrees, contents per leaf area).
                Out-of-range or NaN values raise ``ValueError`` unless the module was
                built with ``validate=False``.

        Returns:
            :class:`~xr_physcube.models.sail.SailReflectance` of five tensors, each of
            shape (*batch, n): ``rsot`` (bi-directional), ``rdot`` (hemispherical-
            directional), ``rsdt`` (directional-hemispherical), ``rddt`` (bi-hemispherical)
            and ``reflectance`` = (1 − skyl)·rsot + skyl·rdot (what a sensor sees), all
            dimensionless reflectance factors (typically 0–1). n is 2101
            wavelengths (400–2500 nm every ``spectral_step`` nm) or the sensor's bands.
            dtype and device follow the inputs (first floating tensor, else first
            floating NumPy array, else PyTorch's default dtype on CPU).
        """
        return self.run(params, self.validate)

    def run(self, params: ProsailParameters, validate: bool) -> SailReflectance:
        """Like ``forward`` with an explicit validation switch (thread-safe)."""
        values = params.as_dict()
        if validate:
            check_arrays(values, f"PROSAIL-{self.version}")
            PROSAIL_PARAMETERS.validate(values, f"PROSAIL-{self.version}")
            if self.lidf_type == "verhoef":
                check_verhoef_lidf(values["lidfa"], values["lidfb"])
        t = as_tensors(values)
        shape = t["lai"].shape
        flat = {k: v.reshape(-1) for k, v in t.items()}
        # Angular terms are per sample, in float64: computed once for the whole batch in
        # eager mode; compiled, per chunk inside their own kernel (~20 ms per 10,000 sets
        # eager: 40 % of the compiled band mode's time otherwise).
        factors = None if self.compile else _angular_terms(self.lidf_type, flat)
        n = flat["lai"].numel()
        out = self._output_buffer(flat, n)
        parts = []
        for i in range(0, max(n, 1), self.chunk_size):
            chunk = slice(i, i + self.chunk_size)
            part = self._spectral(
                {k: v[chunk] for k, v in flat.items()},
                None if factors is None else AngularFactors(*(f[chunk] for f in factors)),
                None if out is None else tuple(term[chunk] for term in out),
            )
            parts.append(part)
        if out is None:
            joined = [torch.cat(terms, dim=0) for terms in zip(*parts, strict=True)]
        else:
            joined = list(out)
        return SailReflectance(*(x.reshape(*shape, x.shape[-1]) for x in joined))

    def _output_buffer(
        self, inputs: dict[str, torch.Tensor], n: int
    ) -> tuple[torch.Tensor, ...] | None:
        """Five (n, n_wavelengths) outputs each chunk writes its full spectra into (no
        per-chunk outputs to concatenate: ~1.5x faster compiled, ~1.2x eager on CPU;
        separate tensors, so keeping one term does not keep the other four alive), or None
        where that path does not apply (band outputs, or autograd recording)."""
        like = inputs["lai"]
        needs_grad = torch.is_grad_enabled() and any(
            p.requires_grad for p in (*inputs.values(), *self.parameters())
        )
        if self.sensor is not None or needs_grad or n == 0:
            return None
        width = self.soil_spectra.shape[-1]
        return tuple(torch.empty(n, width, dtype=like.dtype, device=like.device) for _ in range(5))

    def _spectral(
        self,
        t: dict[str, torch.Tensor],
        factors: AngularFactors | None,
        out: tuple[torch.Tensor, ...] | None = None,
    ) -> SailReflectance | None:
        """Spectra of one chunk; written into ``out`` (five (chunk, n_wavelengths)) if given.
        ``factors``: the chunk's angular terms, or None to compute them (compiled path)."""
        dtype, device = t["lai"].dtype, t["lai"].device
        index = self.wavelength_index.to(self.leaf_model.interface.device)
        kspec = self.leaf_model.specific_absorption[:, index].to(dtype=dtype, device=device)
        interface = self.leaf_model.interface[:, index].to(dtype=dtype, device=device)
        soil = self.soil_spectra.to(dtype=dtype, device=device)
        contents = torch.stack([t[c] for c in self.leaf_model.constituents], dim=-1)
        scalars = torch.stack([t["N"], t["psoil"], t["rsoil"], t["lai"], t["skyl"]], dim=-1)
        if self.compile:
            angles = torch.stack([t[k] for k in _ANGULAR_INPUTS], dim=-1)
            n = scalars.shape[0]
            pad = self.chunk_size - n  # fixed shapes: one compilation per dtype/device
            if pad > 0:
                contents, scalars, angles = (
                    torch.cat([x, x[-1:].expand(pad, *x.shape[1:])])
                    for x in (contents, scalars, angles)
                )
            stacked = _compiled(f"angular_{self.lidf_type}")(angles).to(dtype)
            transmission_table(dtype, device)  # filled eagerly; read as a constant when compiled
            inputs = (contents, scalars, stacked, kspec, interface, soil)
            if out is not None:
                width = out[0].shape[-1]
                target = out if pad == 0 else out[0].new_empty(5, self.chunk_size, width).unbind(0)
                _compiled_spectral_core(*inputs, out=target)
                if pad > 0:
                    for term, padded in zip(out, target, strict=True):
                        term.copy_(padded[:n])
                return None
            result = SailReflectance(*(x[:n] for x in _compiled_spectral_core(*inputs)))
        else:
            stacked = torch.stack([f.to(dtype) for f in factors], dim=-1)
            result = _spectral_core(contents, scalars, stacked, kspec, interface, soil, out)
            if out is not None:
                return None
        if self.sensor is not None:
            result = SailReflectance(*(self.sensor(x) for x in result))
        return result


def _sensor_module(sensor: nn.Module | str | None, spectral_step: int) -> nn.Module | None:
    """``sensor`` as given if callable; a Sentinel-2 satellite name as its band model."""
    if sensor is None or callable(sensor):
        return sensor
    if isinstance(sensor, str):
        try:
            return Sentinel2Bands(sensor, spectral_step=spectral_step)
        except ValueError as err:
            raise InvalidArgumentError(
                f"sensor={sensor!r}: a sensor name must be a Sentinel-2 satellite, one of "
                f"{list(SATELLITES)} (case-insensitive)"
            ) from err
    raise TypeError(
        "sensor must be None, a callable band model mapping spectra (..., n_wavelengths) to "
        f"bands (e.g. Sentinel2Bands()), or a Sentinel-2 satellite name {list(SATELLITES)}; "
        f"got {type(sensor).__name__}"
    )


def _spectral_core(
    contents: torch.Tensor,
    scalars: torch.Tensor,
    factors: torch.Tensor,
    kspec: torch.Tensor,
    interface: torch.Tensor,
    soil_spectra: torch.Tensor,
    out: tuple[torch.Tensor, ...] | None = None,
) -> SailReflectance:
    """PROSPECT + spectral 4SAIL on a flat batch: pure tensor code, no data-dependent
    Python branches when compiling, so ``torch.compile(fullgraph=True)`` fuses each stage
    into one kernel.

    contents (n, n_absorbers); scalars (n, 5) = N, psoil, rsoil, lai, skyl; factors
    (n, 9) = :class:`AngularFactors` stacked; spectral tables (…, n_wavelengths); ``out``:
    optional five (n, n_wavelengths) tensors written into (eager, no autograd).
    """
    leaf = _leaf_core(scalars, contents, kspec, interface)
    return _canopy_core(*leaf, scalars, factors, soil_spectra, out=out)


def _leaf_core(scalars, contents, kspec, interface) -> tuple[torch.Tensor, torch.Tensor]:
    tau = layer_transmission(scalars[:, 0], contents, kspec)
    optics = plate_optics(tau, scalars[:, 0], interface)
    return optics.reflectance, optics.transmittance


def _canopy_core(leaf_r, leaf_t, scalars, factors, soil_spectra, out=None) -> SailReflectance:
    _, psoil, rsoil, lai, skyl = scalars.unbind(-1)
    # rsoil (psoil dry + (1 - psoil) wet)
    soil = rsoil.unsqueeze(-1) * torch.lerp(soil_spectra[1], soil_spectra[0], psoil.unsqueeze(-1))
    factors = AngularFactors(*factors.unbind(-1))
    return sail_spectral(leaf_r, leaf_t, soil, lai, factors, skyl, out=out)


def _canopy_core_into(out: tuple[torch.Tensor, ...], *inputs: torch.Tensor) -> None:
    """:func:`_canopy_core` writing its five terms into preallocated (n, n_wavelengths)
    tensors: compiled, the stores fuse into the kernel (no output copies)."""
    for target, term in zip(out, _canopy_core(*inputs), strict=True):
        target.copy_(term)


def _compiled_spectral_core(contents, scalars, factors, kspec, interface, soil_spectra, out=None):
    """Compiled :func:`_spectral_core`, as two kernels (leaf, canopy): ~25 % faster on CPU
    than one fused kernel, which keeps ~18 more full-size intermediates alive."""
    leaf = _compiled("leaf")(scalars, contents, kspec, interface)
    if out is None:
        return _compiled("canopy")(*leaf, scalars, factors, soil_spectra)
    _compiled("canopy_into")(tuple(out), *leaf, scalars, factors, soil_spectra)
    return None


_ANGULAR_INPUTS = ("ala", "lidfa", "lidfb", "lai", "hspot", "tts", "tto", "psi")


def _angular_terms(lidf_type: LidfType, t: dict[str, torch.Tensor]) -> AngularFactors:
    """The spectrally flat 4SAIL terms of flat inputs, in float64."""
    lidf = leaf_angle_distribution(lidf_type, t["ala"], t["lidfa"], t["lidfb"])
    return angular_factors(lidf, *(t[k].double() for k in ("lai", "hspot", "tts", "tto", "psi")))


def _angular_core(lidf_type: LidfType, angles: torch.Tensor) -> torch.Tensor:
    """:func:`_angular_terms` of stacked (n, 8) ``_ANGULAR_INPUTS``, as (n, 9) float64."""
    terms = _angular_terms(lidf_type, dict(zip(_ANGULAR_INPUTS, angles.unbind(-1), strict=True)))
    return torch.stack(terms, dim=-1)


_STAGES = {
    "leaf": _leaf_core,
    "canopy": _canopy_core,
    "canopy_into": _canopy_core_into,
    "angular_campbell": functools.partial(_angular_core, "campbell"),
    "angular_verhoef": functools.partial(_angular_core, "verhoef"),
}


@functools.cache
def _compiled(stage: str):
    return torch.compile(_STAGES[stage], dynamic=False, fullgraph=True)


_MODELS: dict[tuple[str, str], Prosail] = {}


def prosail(
    params: ProsailParameters | None = None,
    *,
    version: ProspectVersion = "D",
    lidf_type: LidfType = "campbell",
    validate: bool = True,
    **kwargs: torch.Tensor | float,
) -> SailReflectance:
    """Run PROSAIL on full spectra (400–2500 nm at 1 nm).

    Args:
        params: a :class:`ProsailParameters`, or its fields as keyword arguments
            (missing ones take their defaults). Main ranges: ``N`` 1–3.5, ``cab``
            0–120 µg/cm², ``car`` 0–40 µg/cm², ``anth`` 0–40 µg/cm², ``cbrown`` 0–2,
            ``cw`` 0–0.1 cm, ``cm`` 0–0.05 g/cm², ``lai`` 0–10 m²/m², ``ala`` 0–90°,
            ``lidfa``/``lidfb`` with |a|+|b| <= 1, ``hspot`` 0–1, ``psoil`` 0–1,
            ``rsoil`` 0–1.5, ``tts``/``tto`` 0–80°, ``psi`` 0–360°, ``skyl`` 0–1.
        version: PROSPECT "D" or "5".
        lidf_type: "campbell" or "verhoef".
        validate: raise ``ValueError`` on NaN or out-of-range inputs.

    Returns:
        :class:`~xr_physcube.models.sail.SailReflectance` (rsot, rdot, rsdt, rddt,
        reflectance), each of shape (..., 2101).
    """
    if params is None:
        params = ProsailParameters(**kwargs)
    elif kwargs:
        raise TypeError("give either a ProsailParameters or keyword arguments, not both")
    key = (str(version).upper(), lidf_type)
    if key not in _MODELS:
        _MODELS[key] = Prosail(version, lidf_type)
    return _MODELS[key].run(params, validate)
