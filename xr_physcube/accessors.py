"""xarray accessors: ``ds.physics`` (forward models, retrievals, SAFY crop growth)
and ``ds.vae``.

Glue only: each method gathers the variables a model needs from the Dataset,
broadcasts them lazily to the cube's dims and chunks, and maps a NumPy block
function over the chunks with :func:`xarray.apply_ufunc` (``dask="parallelized"``).
Nothing is computed before ``.compute()``/``.to_zarr()``; NaN (masked) pixels pass
through as NaN. The physics lives in :mod:`xr_physcube.models` and
:mod:`xr_physcube.inverse`.

Angles (degrees) are read from variables or coordinates named ``tts`` (sun zenith),
``tto`` (view zenith) and ``psi`` (relative azimuth) for Sentinel-2, ``theta``
(incidence) for Sentinel-1; per date (dim ``time``) or per pixel.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
import xarray as xr

from xr_physcube.models.prosail import PROSAIL_PARAMETERS, Prosail, ProsailParameters
from xr_physcube.models.safy import OUTPUT_ATTRS as SAFY_OUTPUT_ATTRS
from xr_physcube.models.safy import (
    RADIATION,
    SAFY_PARAMETERS,
    TEMPERATURE,
    SafyParameters,
    safy,
)
from xr_physcube.parameters import fields_doc
from xr_physcube.sensors.checks import check_observations
from xr_physcube.sensors.sentinel1 import POLARISATIONS
from xr_physcube.sensors.sentinel2 import BAND_INFO, BANDS, Sentinel2Bands

ANGLE_HINT = (
    "add them as per-date coordinates, e.g. ds.assign_coords(tts=('time', sun_zenith), "
    "tto=('time', view_zenith), psi=('time', relative_azimuth)) (degrees); "
    "xr_physcube.io.stac.load_s2 fills them from the STAC item metadata"
)
DEFAULT_BATCH = 65_536
"""Pixels per model call inside a chunk (bounds the temporary memory of a block)."""
SAFY_BATCH = 8192
"""Pixels per SAFY call inside a chunk (about 50 bytes per pixel and day of float32)."""


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/"auto" -> CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# ----------------------------------------------------------------------------------------
# Generic blockwise machinery
# ----------------------------------------------------------------------------------------


def _require(
    ds: xr.Dataset, names: Sequence[str], what: str, hint: Callable[[list[str]], str] | None = None
) -> None:
    """Raise a clear error if variables are missing or not numeric."""
    missing = [n for n in names if n not in ds.variables]
    if missing:
        extra = hint(missing) if hint else ""
        raise ValueError(f"{what} needs variable(s) {missing} missing from the Dataset{extra}")
    for name in names:
        if not np.issubdtype(ds[name].dtype, np.number):
            raise TypeError(f"variable {name!r} has non-numeric dtype {ds[name].dtype}")


def _side_coords(src: xr.Dataset, dims: tuple[str, ...]) -> dict[str, xr.DataArray]:
    """Non-index coordinates of ``src`` (e.g. per-date angles) that fit ``dims``."""
    return {
        k: v for k, v in src.coords.items() if k not in src.indexes and set(v.dims) <= set(dims)
    }


def _gather(ds: xr.Dataset, names: Sequence[str]) -> list[xr.DataArray]:
    """Variables/coords ``names`` broadcast lazily to the dims and chunks of the cube.

    The cube's dims and chunks are those of the data variable with most dims among
    ``names``; per-date coordinates (angles) are broadcast to it without ever being
    materialised at full size.
    """
    candidates = [ds[n] for n in names if n in ds.data_vars]
    if not candidates:
        raise ValueError(f"none of {list(names)} is a data variable of the Dataset")
    # without non-index coordinates, whose chunks may differ from the variable's
    ref = max(candidates, key=lambda da: da.ndim).reset_coords(drop=True)
    out = []
    for name in names:
        da = ds[name].reset_coords(drop=True)
        extra_dims = set(da.dims) - set(ref.dims)
        if extra_dims:
            raise ValueError(
                f"variable {name!r} has dims {da.dims}, not all in those of {ref.name!r} {ref.dims}"
            )
        if ref.chunks is not None:
            da = da.chunk() if da.chunks is None else da  # lazy broadcast
            da = da.broadcast_like(ref).transpose(*ref.dims).chunk(ref.chunksizes)
        else:
            da = da.broadcast_like(ref).transpose(*ref.dims)
        out.append(da.drop_vars([c for c in da.coords if c not in ref.dims]))
    return out


def _blockwise(
    func: Callable[[np.ndarray], tuple[np.ndarray, ...]],
    inputs: list[xr.DataArray],
    n_out: int,
    core: str,
    n_outputs: int,
) -> tuple[xr.DataArray, ...]:
    """Apply ``func`` ((..., n_in) float32 -> tuple of (..., n_out)) chunk by chunk."""

    def block(*arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        x = np.stack([np.asarray(a, dtype=np.float32) for a in arrays], axis=-1)
        out = func(x)
        return out if n_outputs > 1 else out[0]

    result = xr.apply_ufunc(
        block,
        *inputs,
        output_core_dims=[[core]] * n_outputs,
        dask="parallelized",
        output_dtypes=[np.float32] * n_outputs,
        dask_gufunc_kwargs={"output_sizes": {core: n_out}},
        keep_attrs="drop",  # outputs describe other quantities than the inputs
    )
    return result if isinstance(result, tuple) else (result,)


def _valid_rows(x: np.ndarray) -> np.ndarray:
    return np.isfinite(x).all(axis=-1)


# ----------------------------------------------------------------------------------------
# Block functions (picklable: they run on dask workers)
# ----------------------------------------------------------------------------------------


class _ProsailBlock:
    """(..., n_params) -> (..., n_bands) reflectance with PROSAIL + S2 SRFs."""

    def __init__(self, names, version, lidf_type, satellite, device, validate, batch):
        self.names = list(names)
        self.model = Prosail(version, lidf_type, sensor=Sentinel2Bands(satellite), validate=False)
        self.device, self.validate, self.batch = device, validate, batch

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray]:
        flat = x.reshape(-1, x.shape[-1])
        out = np.full((flat.shape[0], len(self.model.sensor.bands)), np.nan, np.float32)
        valid = np.flatnonzero(_valid_rows(flat))
        device = resolve_device(self.device)
        model = self.model.to(device)
        for i in range(0, valid.size, self.batch):
            rows = valid[i : i + self.batch]
            t = torch.as_tensor(flat[rows], device=device)
            params = ProsailParameters(**dict(zip(self.names, t.unbind(-1), strict=True)))
            with torch.no_grad():
                refl = model.run(params, self.validate).reflectance
            out[rows] = refl.cpu().numpy()
        return (out.reshape(*x.shape[:-1], -1),)


class _RetrieveBlock:
    """(..., n_inputs) -> mean, std (..., n_outputs) with an inverse network; inputs in
    wrong units (digital numbers, dB, radians) raise (:func:`check_observations`)."""

    def __init__(self, model: torch.nn.Module, device, batch):
        self.model, self.device, self.batch = model, device, batch

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        check_observations(x, self.model.input_names)
        flat = x.reshape(-1, x.shape[-1])
        n_out = len(self.model.output_names)
        mean = np.full((flat.shape[0], n_out), np.nan, np.float32)
        std = np.full_like(mean, np.nan)
        valid = np.flatnonzero(_valid_rows(flat))
        device = resolve_device(self.device)
        model = self.model.to(device)
        for i in range(0, valid.size, self.batch):
            rows = valid[i : i + self.batch]
            m, s = model.predict(torch.as_tensor(flat[rows], device=device))
            mean[rows], std[rows] = m.cpu().numpy(), s.cpu().numpy()
        shape = (*x.shape[:-1], n_out)
        return mean.reshape(shape), std.reshape(shape)


# ----------------------------------------------------------------------------------------
# The .physics accessor
# ----------------------------------------------------------------------------------------


def _angle_hint(missing: list[str]) -> str:
    angles = [m for m in missing if m in ("tts", "tto", "psi")]
    return f"; no sun/view angles {angles}: {ANGLE_HINT}" if angles else ""


def _descriptor_hint(missing: list[str]) -> str:
    return "; the vegetation descriptor is 'lai' or 'ndvi'" if "lai" in missing else ""


def _band_hint(missing: list[str]) -> str:
    bands = [m for m in missing if m in BAND_INFO]
    if "ndvi" in missing:
        return "; 'ndvi' is derived from bands B4 and B8 when both are present" + _angle_hint(
            missing
        )
    if not bands:
        return _angle_hint(missing)
    return (
        f"; missing Sentinel-2 band(s) {bands} (expected surface reflectance variables "
        f"named {list(BANDS)})" + _angle_hint(missing)
    )


@xr.register_dataset_accessor("physics")
class PhysicsAccessor:
    """Forward models and retrievals on a Dataset, blockwise and lazy.

    Examples:
        >>> cube = xr_physcube.io.demo.load_demo()
        >>> lai = cube.physics.retrieve(["lai"]).lai  # lazy (time, y, x)
        >>> sim = params.physics.simulate()  # PROSAIL -> S2 bands
    """

    def __init__(self, ds: xr.Dataset):
        self._ds = ds

    # ---- forward -----------------------------------------------------------------------
    def simulate(
        self,
        sensor: str = "S2",
        *,
        version: str = "D",
        lidf_type: str = "campbell",
        satellite: str = "S2A",
        device: str | torch.device | None = None,
        validate: bool = True,
        batch_size: int = 65_536,
        soil_model: str = "oh",
        dielectric: str = "hallikainen",
    ) -> xr.Dataset:
        """Run a forward model on a cube of physical parameters.

        ``sensor="S2"``: PROSAIL variables named like
        :data:`~xr_physcube.models.prosail.PROSAIL_PARAMETERS` (``lai``, ``cab``, ...,
        angles ``tts``/``tto``/``psi``); absent leaf/canopy variables take their
        defaults, absent angles raise. Returns the 10 Sentinel-2 land bands
        (reflectance). ``sensor="S1"``: Water Cloud Model
        (:func:`~xr_physcube.models.sar.water_cloud_backscatter`) from ``mv`` (m³/m³),
        ``hrms`` (cm), incidence ``theta`` (degrees) and the vegetation descriptor
        ``lai`` (or ``ndvi`` when there is no ``lai``), with ``sand``/``clay``
        fractions when present (used by ``soil_model="dubois"`` through the
        ``dielectric`` model); returns ``VV``, ``VH`` (linear sigma0).
        Out-of-range parameters raise ``ValueError`` (when the chunk is computed);
        NaN pixels give NaN.
        """
        sensor = sensor.upper()
        if sensor == "S1":
            return self._simulate_s1(device, validate, soil_model, dielectric)
        if sensor != "S2":
            raise ValueError(f"sensor must be 'S2' or 'S1'; got {sensor!r}")
        ds = self._ds
        names = [n for n in PROSAIL_PARAMETERS if n in ds.variables]
        if not any(n in ds.data_vars for n in names):
            raise ValueError(
                f"simulate(sensor='S2') needs PROSAIL parameter variables among "
                f"{list(PROSAIL_PARAMETERS)}; found none in {list(ds.data_vars)}"
            )
        _require(ds, [*names, "tts", "tto", "psi"], "simulate(sensor='S2')", _angle_hint)
        defaults = {n: s.default for n, s in PROSAIL_PARAMETERS.items() if n not in names}
        if lidf_type == "campbell":
            defaults.pop("lidfa", None), defaults.pop("lidfb", None)
        inputs = _gather(ds, names)
        block = _DefaultsBlock(
            _ProsailBlock(
                [*names, *defaults], version, lidf_type, satellite, device, validate, batch_size
            ),
            list(defaults.values()),
        )
        (refl,) = _blockwise(block, inputs, len(BANDS), "band", 1)
        out = xr.Dataset(
            {
                b: refl.isel(band=i).assign_attrs(
                    long_name=f"simulated Sentinel-2 {b} surface reflectance",
                    units="1",
                    central_wavelength_nm=BAND_INFO[b].central_wavelength_nm,
                )
                for i, b in enumerate(BANDS)
            }
        )
        return out.assign_attrs(source=f"PROSAIL-{version} ({lidf_type} LIDF), {satellite} SRF")

    def _simulate_s1(self, device, validate, soil_model: str, dielectric: str) -> xr.Dataset:
        from xr_physcube.models.dielectric import check_dielectric_model
        from xr_physcube.models.sar import check_soil_model

        soil_model, dielectric = check_soil_model(soil_model), check_dielectric_model(dielectric)
        ds = self._ds
        descriptor = "ndvi" if "lai" not in ds.variables and "ndvi" in ds.variables else "lai"
        texture = [n for n in ("sand", "clay") if n in ds.variables]
        names = ["mv", "hrms", "theta", descriptor, *texture]
        _require(ds, names, "simulate(sensor='S1')", _descriptor_hint)
        inputs = _gather(ds, names)
        block = _SarBlock(names, device, validate, soil_model=soil_model, dielectric=dielectric)
        (sigma,) = _blockwise(block, inputs, 2, "polarisation", 1)
        source = f"Water Cloud Model ({descriptor}) over {soil_model} (xr_physcube.models.sar)"
        attrs = {"units": "1", "source": source}
        return xr.Dataset(
            {
                p: sigma.isel(polarisation=i).assign_attrs(
                    long_name=f"simulated Sentinel-1 {p} backscatter coefficient", **attrs
                )
                for i, p in enumerate(POLARISATIONS)
            }
        )

    # ---- inverse -----------------------------------------------------------------------
    def retrieve(
        self,
        variables: Sequence[str] | None = None,
        model: str | torch.nn.Module = "pretrained-s2",
        *,
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH,
        std: bool = True,
    ) -> xr.Dataset:
        """Retrieve biophysical variables with an inverse network, per pixel.

        Inputs, read from the Dataset (variables or coordinates, per pixel or per date):

        - ``"pretrained-s2"``: bands ``B2``…``B12`` as surface reflectance (0–1, L2A
          scaling applied), angles ``tts``, ``tto``, ``psi`` in degrees;
        - ``"pretrained-s1"``: ``VV``, ``VH`` as linear sigma0 (not dB), incidence
          ``theta`` in degrees, and ``ndvi`` (or bands ``B4`` and ``B8`` to derive it).

        Pixels with any NaN input (clouds, no acquisition) give NaN. Inputs in wrong
        units (digital numbers, dB, radians, angles out of range) raise ``ValueError``
        when the chunk is computed.

        Args:
            variables: a name or names among the network's outputs (default all), e.g.
                ``lai``, ``cab``, ``cw``, ``cm``, ``fcover``, ``fapar``, ``ccc``, ``cwc``
                for ``"pretrained-s2"``; ``mv`` for ``"pretrained-s1"``.
            model: a shipped network name or an ``InverseModel`` instance.
            device: "cpu", "cuda" or None (CUDA when available).
            std: also return the predicted standard deviation as ``<name>_std``.

        Returns:
            Dataset with one variable per retrieved quantity (and ``_std``), CF attrs,
            same dims and chunks as the input bands; lazy on dask input.
        """
        net = _load_model(model)
        if isinstance(variables, str):
            variables = [variables]
        wanted = list(net.output_names) if variables is None else list(variables)
        unknown = [v for v in wanted if v not in net.output_names]
        if unknown:
            raise ValueError(
                f"model {model!r} cannot retrieve {unknown}; it predicts "
                f"{list(net.output_names)}{_other_model_hint(getattr(net, 'name', ''), unknown)}"
            )
        ds = self._ds
        if "ndvi" in net.input_names and "ndvi" not in ds.variables and {"B4", "B8"} <= set(ds):
            ds = ds.assign(ndvi=self.ndvi())  # derived input, computed lazily
        _require(ds, list(net.input_names), f"retrieve(model={model!r})", _band_hint)
        inputs = _gather(ds, list(net.input_names))
        mean, sd = _blockwise(
            _RetrieveBlock(net, device, batch_size), inputs, len(net.output_names), "output", 2
        )
        out = {}
        for name in wanted:
            i = net.output_names.index(name)
            attrs = dict(net.output_attrs.get(name, {}))
            out[name] = mean.isel(output=i).assign_attrs(attrs)
            if std:
                out[f"{name}_std"] = sd.isel(output=i).assign_attrs(std_attrs(attrs))
        return xr.Dataset(out, attrs={"retrieval_model": str(model)})

    def lai(self, **kwargs: Any) -> xr.DataArray:
        """Leaf area index (m²/m²) from the shipped S2 network."""
        return self.retrieve(["lai"], std=False, **kwargs)["lai"]

    def fcover(self, **kwargs: Any) -> xr.DataArray:
        """Fraction of vegetation cover (nadir), from the shipped S2 network."""
        return self.retrieve(["fcover"], std=False, **kwargs)["fcover"]

    def fapar(self, **kwargs: Any) -> xr.DataArray:
        """Fraction of absorbed PAR, from the shipped S2 network."""
        return self.retrieve(["fapar"], std=False, **kwargs)["fapar"]

    def ccc(self, **kwargs: Any) -> xr.DataArray:
        """Canopy chlorophyll content LAI·Cab (µg/cm² of ground), from the S2 network."""
        return self.retrieve(["ccc"], std=False, **kwargs)["ccc"]

    def cwc(self, **kwargs: Any) -> xr.DataArray:
        """Canopy water content LAI·Cw (cm of ground), from the S2 network."""
        return self.retrieve(["cwc"], std=False, **kwargs)["cwc"]

    def ndvi(self) -> xr.DataArray:
        """NDVI from B8 and B4 (lazy, elementwise)."""
        missing = [b for b in ("B4", "B8") if b not in self._ds]
        if missing:
            raise ValueError(f"ndvi needs Sentinel-2 band(s) {missing}")
        nir, red = self._ds["B8"], self._ds["B4"]
        return (
            ((nir - red) / (nir + red))
            .rename("ndvi")
            .assign_attrs(long_name="normalised difference vegetation index (B8, B4)", units="1")
        )

    # ---- crop growth -------------------------------------------------------------------
    def grow(
        self,
        temperature: str = "temperature",
        radiation: str = "radiation",
        *,
        emergence: str | np.datetime64 | pd.Timestamp | xr.DataArray | None = None,
        emergence_width: float = 0.5,
        device: str | torch.device | None = None,
        validate: bool = True,
        batch_size: int = SAFY_BATCH,
        **params: float,
    ) -> xr.Dataset:
        """Run the SAFY crop model (:func:`~xr_physcube.models.safy.safy`) on every pixel.

        The Dataset holds daily forcing on a regular daily datetime64 ``time`` axis:
        variables ``temperature`` (daily mean air temperature, °C) and ``radiation``
        (daily global radiation, MJ m⁻² day⁻¹), per pixel (time, y, x) or one series
        (time,) for the whole cube. Any SAFY parameter (listed below) found in the
        Dataset as a variable or coordinate without a time dimension, e.g. ``d0`` or
        ``elue`` per pixel (y, x) or as a scalar, is used per pixel; others come from
        the keywords ``**params`` (scalars; a name given both ways raises) or take their
        maize defaults. ``yield`` is returned when ``hi`` (harvest index) is given.

        Blockwise over space with the whole time axis in one chunk (``time`` is
        rechunked to one chunk, spatial chunks are kept); lazy on dask input. A pixel
        with any NaN forcing day or NaN parameter gives NaN on every day (neighbours are
        unaffected). Out-of-range forcings or per-pixel parameters raise ``ValueError``
        when the chunk is computed; scalar parameters and dates are checked at once.

        Args:
            temperature: name of the temperature variable (°C).
            radiation: name of the global radiation variable (MJ m⁻² day⁻¹).
            emergence: plant emergence as a date (``"2024-05-06"``, ``np.datetime64``,
                ``pd.Timestamp``), or a per-pixel datetime64 variable (its name or a
                DataArray; NaT gives a NaN pixel). Converted to SAFY's ``d0`` (0-based
                index of that calendar day in the series; times of day are ignored);
                a date outside the series raises ``ValueError``. Exclusive with ``d0``.
            emergence_width: width (days) of SAFY's smooth emergence step; > 0.
            device: "cpu", "cuda" or None (CUDA when available).
            validate: check forcings and parameters against their ranges.
            batch_size: pixels per model call inside a chunk (bounds memory: about
                50 bytes per pixel and day).
            **params: scalar SAFY parameters, e.g. ``elue=2.8, hi=0.5``.

        Returns:
            Dataset with ``glai`` (green leaf area index, m² m⁻²), ``biomass`` (dry
            aboveground mass, g m⁻²) and, with ``hi``, ``yield`` (HI × biomass, g m⁻²),
            on the forcing's dims in its order (e.g. time, y, x) and spatial chunks,
            with its non-index coordinates.

        Raises:
            ValueError: no regular daily ``time`` axis, a missing forcing variable, a
                parameter variable with a time dimension, an emergence date outside the
                series, ``emergence`` together with ``d0``, an out-of-range scalar.
            TypeError: an unknown keyword parameter.
        """
        ds = self._ds
        if emergence_width <= 0:
            raise ValueError(f"emergence_width must be > 0 days; got {emergence_width}")
        unknown = [k for k in params if k not in SAFY_PARAMETERS]
        if unknown:
            raise TypeError(
                f"grow() got unknown SAFY parameter(s) {unknown}; known: {list(SAFY_PARAMETERS)}"
            )
        times = _daily_times(ds)
        _require(ds, [temperature, radiation], "grow()", _forcing_hint)
        forcing = [ds[n].reset_coords(drop=True) for n in (temperature, radiation)]
        for name, da in zip((temperature, radiation), forcing, strict=True):
            if "time" not in da.dims:
                raise ValueError(f"grow(): forcing variable {name!r} has no 'time' dimension")
        ref = max(forcing, key=lambda da: da.ndim)
        per_pixel = {
            n: ds[n].reset_coords(drop=True)
            for n in SAFY_PARAMETERS
            if n in ds.variables and n not in ds.dims
        }
        both = sorted(set(per_pixel) & set(params))
        if both:
            raise ValueError(
                f"grow(): parameter(s) {both} given both as Dataset variables and keywords; "
                "drop one (e.g. ds.drop_vars(...))"
            )
        if emergence is not None:
            if "d0" in per_pixel or "d0" in params:
                raise ValueError("grow(): give the emergence either as emergence= or as d0")
            d0 = _emergence_index(ds, emergence, times)
            if isinstance(d0, xr.DataArray):
                per_pixel["d0"] = d0
            else:
                params["d0"] = d0
        for name, da in per_pixel.items():
            if np.issubdtype(da.dtype, np.datetime64):
                raise ValueError(
                    f"grow(): variable {name!r} holds dates; pass it as emergence={name!r}"
                )
            if not np.issubdtype(da.dtype, np.number):
                raise TypeError(f"variable {name!r} has non-numeric dtype {da.dtype}")
            if "time" in da.dims:
                raise ValueError(
                    f"grow(): parameter variable {name!r} has dims {da.dims}; SAFY parameters "
                    "are constant in time (per pixel or scalar)"
                )
            if da.chunks is None:  # cheap: check now (NaN marks a masked pixel)
                values = np.asarray(da.values, dtype=float)
                if name == "d0":
                    _check_index(values, times)
                finite = values[np.isfinite(values)]
                if finite.size:
                    SAFY_PARAMETERS[name].check(finite, "grow()")
        for name, value in params.items():
            SAFY_PARAMETERS[name].check(value, "grow()")
        if "d0" in params:
            _check_index(np.asarray([params["d0"]], dtype=float), times)

        inputs = [*forcing, *per_pixel.values()]
        if any(da.chunks is not None for da in inputs):
            chunks = dict(ref.chunksizes) if ref.chunks is not None else {}
            chunks["time"] = -1
            inputs = [da.chunk({d: c for d, c in chunks.items() if d in da.dims}) for da in inputs]
        outputs = ["glai", "biomass"] + (["yield_"] if "hi" in params or "hi" in per_pixel else [])
        block = _SafyBlock(
            list(per_pixel),
            {k: float(v) for k, v in params.items()},
            outputs,
            emergence_width,
            device,
            validate,
            batch_size,
            times if "d0" in per_pixel and emergence is not None else None,
        )
        result = xr.apply_ufunc(
            block,
            *inputs,
            input_core_dims=[["time"], ["time"], *([[]] * len(per_pixel))],
            output_core_dims=[["time"]] * len(outputs),
            dask="parallelized",
            output_dtypes=[np.float32] * len(outputs),
            keep_attrs="drop",
        )
        result = result if isinstance(result, tuple) else (result,)
        dims = list(ref.dims)
        for da in per_pixel.values():
            dims += [d for d in da.dims if d not in dims]
        data = {
            name.rstrip("_"): da.transpose(*dims).assign_attrs(SAFY_OUTPUT_ATTRS[name])
            for name, da in zip(outputs, result, strict=True)
        }
        out = xr.Dataset(data, attrs={"source": "SAFY (xr_physcube.models.safy.safy)"})
        return out.assign_coords(_side_coords(ds, tuple(dims)))

    grow.__doc__ = (grow.__doc__ or "") + textwrap.indent(
        "\n"
        + fields_doc([TEMPERATURE, RADIATION], "Forcing variables")
        + "\n\n"
        + fields_doc(SAFY_PARAMETERS.values(), "SAFY parameters (variables or keywords)")
        + "\n",
        " " * 8,
    )


class _DefaultsBlock:
    """Append constant default parameters to each row before calling ``inner``."""

    def __init__(self, inner: Callable, defaults: list[float]):
        self.inner, self.defaults = inner, np.asarray(defaults, np.float32)

    def __call__(self, x: np.ndarray):
        if self.defaults.size:
            const = np.broadcast_to(self.defaults, (*x.shape[:-1], self.defaults.size))
            x = np.concatenate([x, const], axis=-1)
        return self.inner(x)


class _SarBlock:
    """(..., [mv, hrms, theta, lai | ndvi, (sand, clay)]) -> (..., [VV, VH]) linear sigma0."""

    def __init__(self, names, device, validate, **options: str):
        self.names, self.device, self.validate, self.options = names, device, validate, options

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray]:
        from xr_physcube.models.sar import water_cloud_backscatter

        flat = x.reshape(-1, x.shape[-1])
        out = np.full((flat.shape[0], 2), np.nan, np.float32)
        valid = np.flatnonzero(_valid_rows(flat))
        t = torch.as_tensor(flat[valid], device=resolve_device(self.device))
        kwargs = dict(zip(self.names, t.unbind(-1), strict=True))
        with torch.no_grad():
            res = water_cloud_backscatter(**kwargs, **self.options, validate=self.validate)
        out[valid, 0], out[valid, 1] = res.vv.cpu().numpy(), res.vh.cpu().numpy()
        return (out.reshape(*x.shape[:-1], 2),)


def _forcing_hint(missing: list[str]) -> str:
    return (
        "; name the forcing variables with grow(temperature=..., radiation=...) "
        "(daily mean air temperature in degC, global radiation in MJ m-2 day-1)"
    )


def _daily_times(ds: xr.Dataset) -> np.ndarray:
    """The ``time`` coordinate as datetime64, checked to be daily and regular."""
    if "time" not in ds.dims:
        raise ValueError(f"grow() needs a daily 'time' dimension; the Dataset has {tuple(ds.dims)}")
    index = ds.indexes.get("time")
    if index is None or not np.issubdtype(index.dtype, np.datetime64):
        raise ValueError(
            "grow() needs datetime64 values on the 'time' dimension (one per day), e.g. "
            "ds.assign_coords(time=pd.date_range('2024-01-01', periods=ds.sizes['time']))"
        )
    times = np.asarray(index.values)
    if times.size < 2:
        raise ValueError(f"grow() needs at least 2 days of forcing; got {times.size}")
    steps = np.diff(times)
    bad = np.flatnonzero(steps != np.timedelta64(1, "D"))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            "grow() needs daily forcing on a regular time axis (steps of exactly 1 day, "
            f"increasing); found a step of {steps[i] / np.timedelta64(1, 'h'):g} h between "
            f"{times[i]} and {times[i + 1]} ({bad.size} irregular step(s)); resample, e.g. "
            "ds.resample(time='1D').mean(), and fill gaps"
        )
    return times


def _check_index(d0: np.ndarray, times: np.ndarray) -> None:
    """Raise if an emergence index (days, NaN ignored) falls outside the series."""
    finite = d0[np.isfinite(d0)]
    if finite.size and (finite.min() < 0 or finite.max() > times.size - 1):
        raise ValueError(
            f"grow(): emergence outside the forcing series {times[0]} .. {times[-1]} "
            f"(d0 must lie in [0, {times.size - 1}]; got values in "
            f"[{finite.min():g}, {finite.max():g}])"
        )


def _emergence_index(ds: xr.Dataset, emergence: Any, times: np.ndarray) -> float | xr.DataArray:
    """SAFY's ``d0`` (days since the first forcing day) for an emergence date or a
    per-pixel datetime64 variable (checked now unless it is dask-backed)."""
    first = np.datetime64(pd.Timestamp(times[0]).floor("D"))
    day = np.timedelta64(1, "D")
    if isinstance(emergence, str) and emergence in ds.variables:
        emergence = ds[emergence]
    if isinstance(emergence, xr.DataArray):
        if not np.issubdtype(emergence.dtype, np.datetime64):
            raise ValueError(
                f"grow(): emergence variable {emergence.name!r} must hold datetime64 dates; "
                f"got dtype {emergence.dtype} (give a 0-based day index as 'd0' instead)"
            )
        d0 = ((emergence.dt.floor("D") - first) / day).reset_coords(drop=True).rename("d0")
        if d0.chunks is None:
            _check_index(np.asarray(d0.values, dtype=float), times)
        return d0
    try:
        when = pd.Timestamp(emergence)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"grow(): emergence={emergence!r} is neither a variable of the Dataset nor a date"
        ) from err
    if pd.isna(when):
        raise ValueError("grow(): emergence is NaT")
    d0 = float((np.datetime64(when.floor("D")) - first) / day)
    _check_index(np.asarray([d0]), times)
    return d0


class _SafyBlock:
    """temperature, radiation (..., n_days) and per-pixel parameters (...) ->
    SAFY outputs (..., n_days); NaN pixels -> NaN."""

    def __init__(self, names, constants, outputs, width, device, validate, batch, times):
        self.names, self.constants, self.outputs = list(names), dict(constants), list(outputs)
        self.width, self.device, self.validate, self.batch = width, device, validate, batch
        self.times = times  # the forcing days, when d0 comes from emergence dates

    def __call__(self, temp: np.ndarray, rad: np.ndarray, *params: np.ndarray):
        n_days = temp.shape[-1]
        shape = np.broadcast_shapes(temp.shape[:-1], rad.shape[:-1], *(p.shape for p in params))
        t = np.broadcast_to(temp, (*shape, n_days)).reshape(-1, n_days).astype(np.float32)
        r = np.broadcast_to(rad, (*shape, n_days)).reshape(-1, n_days).astype(np.float32)
        p = [np.broadcast_to(v, shape).reshape(-1).astype(np.float32) for v in params]
        valid = _valid_rows(t) & _valid_rows(r)
        for v in p:
            valid &= np.isfinite(v)
        rows_ok = np.flatnonzero(valid)
        if self.times is not None:  # dask-backed dates: not checked before compute
            _check_index(p[self.names.index("d0")][rows_ok], self.times)
        out = [np.full((t.shape[0], n_days), np.nan, np.float32) for _ in self.outputs]
        device = resolve_device(self.device)
        for i in range(0, rows_ok.size, self.batch):
            rows = rows_ok[i : i + self.batch]
            given = {
                n: torch.as_tensor(v[rows], device=device)
                for n, v in zip(self.names, p, strict=True)
            }
            with torch.no_grad():
                res = safy(
                    torch.as_tensor(t[rows], device=device),
                    torch.as_tensor(r[rows], device=device),
                    SafyParameters(**self.constants, **given),
                    emergence_width=self.width,
                    validate=self.validate,
                )
            for o, name in zip(out, self.outputs, strict=True):
                o[rows] = getattr(res, name).cpu().numpy()
        return tuple(o.reshape(*shape, n_days) for o in out)


def std_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """CF attrs of the standard deviation of a quantity with ``attrs``: same units, no
    valid range (that of the mean does not bound its spread)."""
    out = {k: v for k, v in attrs.items() if k not in ("valid_min", "valid_max", "valid_range")}
    long_name = attrs.get("long_name", "")
    return {**out, "long_name": f"standard deviation of {long_name}".strip()}


def _other_model_hint(current: str, unknown: list[str]) -> str:
    """Hint naming another shipped network that predicts ``unknown`` (or "")."""
    from xr_physcube.inverse.train import NETWORKS

    names = [
        f"pretrained-{name}"
        for name, spec in NETWORKS.items()
        if f"pretrained-{name}" != current and set(unknown) <= set(spec.outputs)
    ]
    return f"; use model={names[0]!r}" if names else ""


def _load_model(model: str | torch.nn.Module) -> torch.nn.Module:
    if isinstance(model, torch.nn.Module):
        return model
    from xr_physcube.inverse import load_pretrained

    return load_pretrained(model)


# The .vae accessor reuses the helpers above, so it is registered last.
from xr_physcube.vae import accessor as _vae_accessor  # noqa: E402, F401
