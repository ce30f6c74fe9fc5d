"""PROSPECT-D and PROSPECT-5 leaf optical properties model, in PyTorch.

The leaf is a pile of N absorbing plates (plate model of Allen et al. 1969,
generalised to a non-integer number of layers with Stokes' 1862 equations;
Jacquemoud & Baret 1990, RSE 34:75–91). Absorption is the sum of specific
absorption coefficients times constituent contents:

* PROSPECT-5: Féret et al. (2008), RSE 112:3030–3043 (Cab, Car, Cbrown, Cw, Cm).
* PROSPECT-D: Féret et al. (2017), RSE 193:204–215 (adds anthocyanins, Anth).

Outputs are directional-hemispherical leaf reflectance and transmittance on
400–2500 nm at 1 nm (:data:`xr_physcube.sensors.sentinel2.WAVELENGTHS_NM`), for
inputs of any broadcastable batch shape; dtype and device follow the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from xr_physcube._data import read_table
from xr_physcube.exceptions import InvalidArgumentError
from xr_physcube.models._scratch import Scratch, may_shortcut
from xr_physcube.models._special import isotropic_interface_transmissivity, leaf_layer_transmission
from xr_physcube.parameters import ParameterSpec, TensorParameters, as_tensors, spec_field
from xr_physcube.validation import check_arrays

ProspectVersion = Literal["D", "5"]

N = ParameterSpec("N", "leaf structure parameter (number of elementary layers)", "1", 1.0, 3.5, 1.5)
CAB = ParameterSpec("cab", "leaf chlorophyll a+b content", "ug cm-2", 0.0, 120.0, 40.0)
CAR = ParameterSpec("car", "leaf carotenoid content", "ug cm-2", 0.0, 40.0, 8.0)
ANTH = ParameterSpec("anth", "leaf anthocyanin content", "ug cm-2", 0.0, 40.0, 0.0)
CBROWN = ParameterSpec("cbrown", "leaf brown pigment content", "1", 0.0, 2.0, 0.0)
CW = ParameterSpec("cw", "leaf equivalent water thickness", "cm", 0.0, 0.1, 0.01)
CM = ParameterSpec("cm", "leaf dry matter content per area", "g cm-2", 0.0, 0.05, 0.009)

ALPHA_DEG = 40.0
"""Half-angle (degrees) of the incidence cone on the leaf surface (Féret et al. 2008)."""


@dataclass
class LeafParameters(TensorParameters):
    """PROSPECT inputs (any broadcastable shapes). Defaults: a typical green leaf."""

    N: torch.Tensor | float = spec_field(N)
    cab: torch.Tensor | float = spec_field(CAB)
    car: torch.Tensor | float = spec_field(CAR)
    anth: torch.Tensor | float = spec_field(ANTH)
    cbrown: torch.Tensor | float = spec_field(CBROWN)
    cw: torch.Tensor | float = spec_field(CW)
    cm: torch.Tensor | float = spec_field(CM)


LEAF_PARAMETERS = LeafParameters.parameter_set()

_ABSORBERS: dict[str, tuple[str, ...]] = {
    # (constituent, coefficient column) pairs, in LeafParameters order.
    "D": ("cab:kcab", "car:kcar", "anth:kanth", "cbrown:kbrown", "cw:kw", "cm:km"),
    "5": ("cab:kcab", "car:kcar", "cbrown:kbrown", "cw:kw", "cm:km"),
}
_DATA_FILE = {"D": "prospect_d.csv", "5": "prospect_5.csv"}


class LeafOptics(NamedTuple):
    """Leaf reflectance and transmittance, shape (..., 2101), unitless in [0, 1]."""

    reflectance: torch.Tensor
    transmittance: torch.Tensor


def _check_version(version: str) -> ProspectVersion:
    v = str(version).upper()
    if v not in _DATA_FILE:
        raise InvalidArgumentError(f"PROSPECT version must be 'D' or '5'; got {version!r}")
    return v  # type: ignore[return-value]


class Prospect(nn.Module):
    """PROSPECT-D or PROSPECT-5 as an ``nn.Module`` holding its spectral data as buffers.

    Args:
        version: "D" (with anthocyanins, default) or "5".
        validate: check inputs against :data:`LEAF_PARAMETERS` bounds (raise
            ``ValueError`` on NaN or out-of-range values). Fitting code may opt out.

    ``forward(params)`` takes a :class:`LeafParameters` and returns :class:`LeafOptics`.
    Buffers are float64; they are cast to the inputs' dtype and device on use, so
    ``.to(device)`` is optional.
    """

    def __init__(self, version: ProspectVersion = "D", validate: bool = True):
        super().__init__()
        self.version = _check_version(version)
        self.validate = validate
        table = read_table("xr_physcube.models", _DATA_FILE[self.version])
        constituents, columns = zip(*(p.split(":") for p in _ABSORBERS[self.version]), strict=True)
        self.constituents: tuple[str, ...] = constituents
        specific = torch.tensor(np.stack([table[c] for c in columns]), dtype=torch.float64)
        nr = torch.tensor(table["nr"], dtype=torch.float64)
        t_alpha = isotropic_interface_transmissivity(ALPHA_DEG, nr)
        t12 = isotropic_interface_transmissivity(90.0, nr)
        t21 = t12 / (nr * nr)
        # Interface terms (Allen et al. 1969): rows t_alpha, r_alpha, t12, r12, t21, r21.
        interface = torch.stack([t_alpha, 1 - t_alpha, t12, 1 - t12, t21, 1 - t21])
        self.register_buffer("specific_absorption", specific, persistent=False)  # (n_abs, 2101)
        self.register_buffer("interface", interface, persistent=False)  # (6, 2101)

    def extra_repr(self) -> str:
        return f"version={self.version!r}, validate={self.validate}"

    def forward(self, params: LeafParameters) -> LeafOptics:
        """Leaf reflectance and transmittance for a batch of leaves.

        Args:
            params: :class:`LeafParameters` (``N`` layers; ``cab``, ``car``, ``anth`` in
                µg/cm²; ``cbrown`` arbitrary units; ``cw`` cm; ``cm`` g/cm²; ranges in
                ``help(LeafParameters)``), floats, arrays or tensors of broadcastable
                shapes. ``ValueError`` on NaN / out-of-range values unless the module was
                built with ``validate=False``.

        Returns:
            :class:`LeafOptics` (reflectance, transmittance), each (*batch, 2101) on
            400–2500 nm, dimensionless in [0, 1]; dtype/device follow the inputs.
        """
        return self.run(params, self.validate)

    def run(self, params: LeafParameters, validate: bool) -> LeafOptics:
        """Like ``forward`` with an explicit validation switch (thread-safe)."""
        values = params.as_dict()
        if self.version == "5" and _any_nonzero(values["anth"]):
            raise InvalidArgumentError(
                "PROSPECT-5 has no anthocyanins: set anth=0 or use version='D'"
            )
        if validate:
            check_arrays(values, f"PROSPECT-{self.version}")
            LEAF_PARAMETERS.validate(values, f"PROSPECT-{self.version}")
        t = as_tensors(values)
        contents = torch.stack([t[c] for c in self.constituents], dim=-1)
        return leaf_optics(t["N"], contents, self.specific_absorption, self.interface)


def _any_nonzero(value) -> bool:
    return bool(torch.as_tensor(value).detach().ne(0).any())


def leaf_optics(
    n_layers: torch.Tensor,
    contents: torch.Tensor,
    specific_absorption: torch.Tensor,
    interface: torch.Tensor,
) -> LeafOptics:
    """Plate model core: contents (..., n_absorbers) -> reflectance, transmittance (..., 2101)."""
    tau = layer_transmission(n_layers, contents, specific_absorption)
    return plate_optics(tau, n_layers, interface)


def layer_transmission(
    n_layers: torch.Tensor, contents: torch.Tensor, specific_absorption: torch.Tensor
) -> torch.Tensor:
    """Transmission tau(k) of one elementary layer (..., 2101), absorption k = sum of
    contents x specific absorption coefficients / N (Jacquemoud & Baret 1990)."""
    kspec = specific_absorption.to(dtype=contents.dtype, device=contents.device)
    n = n_layers.unsqueeze(-1)
    if torch.compiler.is_compiling():  # a sum the kernel fuses (a K = 7 GEMM is slow)
        k = ((contents / n).unsqueeze(-1) * kspec).sum(-2)
    else:
        k = (contents / n) @ kspec
    return leaf_layer_transmission(k)


def plate_optics(tau: torch.Tensor, n_layers: torch.Tensor, interface: torch.Tensor) -> LeafOptics:
    """Reflectance and transmittance of N plates (Stokes' equations) given the elementary
    layer's transmission ``tau`` (..., n_wavelengths) and the interface table (6, ...)."""
    dtype = tau.dtype
    t_alpha, r_alpha, t12, r12, t21, r21 = interface.to(dtype=dtype, device=tau.device)
    o = Scratch(tau, n_layers, interface)
    n = n_layers.unsqueeze(-1)
    # Written with as few passes over (..., n_wavelengths) as possible (fused
    # multiply-adds, shared reciprocals, temporaries reused through ``o``): the eager
    # path is bound by memory traffic.
    one = tau.new_ones(())

    # One elementary layer: top face (incidence within ALPHA_DEG) and inner faces.
    r21_tau = r21 * tau
    tau_inv = o.mul(o.reciprocal(torch.addcmul(one, r21_tau, r21_tau, value=-1.0)), tau)
    ta = (t_alpha * t21) * tau_inv
    t = o.mul(tau_inv, t12 * t21)
    ra = torch.addcmul(r_alpha, r21_tau, ta)
    r = torch.addcmul(r12, r21_tau, t)

    # N - 1 further layers with Stokes' equations, written with b^-(N-1) so that
    # strongly absorbing leaves (b -> inf) neither overflow nor lose precision.
    # With p = r^2, q = t^2, s = 1 + p - q: the discriminant
    # (1+r+t)(1+r-t)(1-r+t)(1-r-t) = s^2 - 4p, a = (s + d) / 2r, 1/b = 2t / (2 - s + d).
    eps = 4.0 * torch.finfo(dtype).eps
    r_t = r + t
    exact = not may_shortcut(r_t) or bool(r_t.amax() >= 1 - eps)
    lossless = r_t >= 1.0 - eps if exact else None  # eager: usually no lossless wavelength
    r_s = torch.where(lossless, 0.5, r) if exact else r
    t_s = torch.where(lossless, 0.25, t) if exact else t
    p = r_s * r_s
    s = o.add(p - t_s * t_s, 1.0)
    d = o.sqrt(o.sub(s * s, p, alpha=4.0))
    a = o.mul(o.div(s + d, r_s), 0.5)
    inv_b = o.div(t_s + t_s, o.add(o.sub(d, s), 2.0))
    # b^-(N-1) as exp((N-1) ln b^-1): ~20 % faster than pow in the compiled kernel; the
    # clamp keeps N = 1 with b^-1 = 0 (an opaque layer) at 1 instead of exp(-inf * 0)
    tiny = torch.finfo(dtype).tiny
    inv_b_n1 = o.exp(o.mul(o.log(o.clamp_min(inv_b, tiny)), n - 1))
    inv_b_n2 = inv_b_n1 * inv_b_n1
    a2 = a * a
    inv_den = o.reciprocal(a2 - inv_b_n2)
    rsub = o.mul(o.mul(a, 1.0 - inv_b_n2), inv_den)
    tsub = o.mul(o.mul(inv_b_n1, o.sub(a2, 1.0)), inv_den)
    if exact:  # no absorption (r + t = 1): Tsub = t / (t + (1 - t)(N - 1))
        tsub_lossless = t / torch.addcmul(t, 1.0 - t, n - 1)
        tsub = torch.where(lossless, tsub_lossless, tsub)
        rsub = torch.where(lossless, 1 - tsub_lossless, rsub)

    # Top layer combined with the N - 1 others.
    ta_inv = o.mul(o.reciprocal(torch.addcmul(one, rsub, r, value=-1.0)), ta)
    reflectance = o.addcmul(ra, ta_inv, o.mul(rsub, t))
    return LeafOptics(reflectance, o.mul(ta_inv, tsub))


_MODELS: dict[ProspectVersion, Prospect] = {}


def prospect(
    params: LeafParameters | None = None,
    *,
    version: ProspectVersion = "D",
    validate: bool = True,
    **kwargs: torch.Tensor | float,
) -> LeafOptics:
    """Run PROSPECT-D (default) or PROSPECT-5.

    Args:
        params: a :class:`LeafParameters`; or give the fields as keyword arguments
            (``N`` 1–3.5, ``cab`` 0–120 µg/cm², ``car`` 0–40 µg/cm², ``anth`` 0–40
            µg/cm² (D only), ``cbrown`` 0–2, ``cw`` 0–0.1 cm, ``cm`` 0–0.05 g/cm²);
            missing fields take their defaults.
        version: "D" or "5".
        validate: raise ``ValueError`` on NaN or out-of-range inputs.

    Returns:
        :class:`LeafOptics` with reflectance and transmittance (..., 2101).
    """
    if params is None:
        params = LeafParameters(**kwargs)
    elif kwargs:
        raise TypeError("give either a LeafParameters or keyword arguments, not both")
    version = _check_version(version)
    if version not in _MODELS:
        _MODELS[version] = Prospect(version)
    return _MODELS[version].run(params, validate)
