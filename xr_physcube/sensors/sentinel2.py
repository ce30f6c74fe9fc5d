"""Sentinel-2 MSI: band names, wavelengths, spectral responses and L2A scaling.

This module is the one place that owns these facts; everything else imports them.

Spectral response functions (SRF) are ESA's (COPE-GSEG-EOPG-TN-15-0007 v3.0) for
Sentinel-2A and 2B, shipped in ``sensors/data`` (see ``SOURCES.md`` there).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import torch
from torch import nn

from xr_physcube._data import read_table
from xr_physcube.exceptions import DimensionError, InvalidArgumentError

WAVELENGTHS_NM = np.arange(400, 2501)
"""Spectral grid of the optical models: 400–2500 nm at 1 nm (2101 samples)."""


@dataclass(frozen=True)
class S2Band:
    """One MSI band: name, central wavelength (nm, S2A) and native resolution (m)."""

    name: str
    central_wavelength_nm: float
    resolution_m: int


ALL_BANDS: tuple[S2Band, ...] = (
    S2Band("B1", 442.7, 60),
    S2Band("B2", 492.4, 10),
    S2Band("B3", 559.8, 10),
    S2Band("B4", 664.6, 10),
    S2Band("B5", 704.1, 20),
    S2Band("B6", 740.5, 20),
    S2Band("B7", 782.8, 20),
    S2Band("B8", 832.8, 10),
    S2Band("B8A", 864.7, 20),
    S2Band("B9", 945.1, 60),
    S2Band("B10", 1373.5, 60),
    S2Band("B11", 1613.7, 20),
    S2Band("B12", 2202.4, 20),
)
ALL_BAND_NAMES: tuple[str, ...] = tuple(b.name for b in ALL_BANDS)
BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
"""The 10 land bands used by the biophysical models (B2–B8A, B11, B12)."""
BAND_INFO: dict[str, S2Band] = {b.name: b for b in ALL_BANDS}

SATELLITES: tuple[str, ...] = ("S2A", "S2B", "S2C")
"""Satellites whose SRFs are shipped (sources in data/SOURCES.md)."""

# L2A surface reflectance encoding (ESA, Sentinel-2 Products Specification Document).
QUANTIFICATION_VALUE = 10000.0
"""L2A BOA_QUANTIFICATION_VALUE: reflectance = (DN + offset) / 10000."""
BOA_ADD_OFFSET_PB0400 = -1000.0
"""BOA_ADD_OFFSET of processing baseline >= 04.00 (products since 25 Jan 2022)."""
NODATA_DN = 0
"""L2A digital number meaning "no data"."""

# Scene classification (SCL) classes of L2A and those masked as invalid by default.
SCL_CLASSES: dict[int, str] = {
    0: "no_data",
    1: "saturated_or_defective",
    2: "dark_area_pixels",
    3: "cloud_shadows",
    4: "vegetation",
    5: "not_vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud_medium_probability",
    9: "cloud_high_probability",
    10: "thin_cirrus",
    11: "snow",
}
SCL_INVALID: tuple[int, ...] = (0, 1, 3, 8, 9, 10)
"""SCL classes masked by default: no data, defective, cloud shadow, clouds, cirrus."""


def boa_offset(processing_baseline: str | float | None) -> float:
    """BOA_ADD_OFFSET for an L2A processing baseline ("04.00", 4.0, ...).

    Baselines before 04.00 have no offset. ``None`` (unknown) assumes the
    current encoding (>= 04.00), which is what all reprocessed archives use.
    """
    if processing_baseline is None:
        return BOA_ADD_OFFSET_PB0400
    try:
        baseline = float(processing_baseline)
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"processing baseline must look like '04.00'; got {processing_baseline!r}"
        ) from None
    return BOA_ADD_OFFSET_PB0400 if baseline >= 4.0 else 0.0


def dn_to_reflectance(dn: np.ndarray, processing_baseline: str | float | None = None):
    """L2A digital numbers to surface reflectance (unitless); DN 0 (no data) becomes NaN."""
    dn = np.asarray(dn)
    refl = (dn.astype(np.float32) + boa_offset(processing_baseline)) / QUANTIFICATION_VALUE
    return np.where(dn == NODATA_DN, np.float32(np.nan), refl)


def reflectance_to_dn(refl: np.ndarray, processing_baseline: str | float | None = None):
    """Surface reflectance to L2A digital numbers (uint16), the inverse of the above."""
    dn = np.round(np.asarray(refl) * QUANTIFICATION_VALUE - boa_offset(processing_baseline))
    return np.clip(dn, 1, 65535).astype(np.uint16)


def check_bands(bands: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    unknown = [b for b in bands if b not in BAND_INFO]
    if unknown:
        raise InvalidArgumentError(
            f"unknown Sentinel-2 band(s) {unknown}; valid: {list(ALL_BAND_NAMES)}"
        )
    return tuple(bands)


def _check_satellite(satellite: str) -> str:
    sat = satellite.upper().replace("SENTINEL-", "S").replace("SENTINEL", "S")
    if sat not in SATELLITES:
        raise InvalidArgumentError(f"unknown satellite {satellite!r}; valid: {list(SATELLITES)}")
    return sat


def _srf_table(satellite: str) -> np.ndarray:
    table = read_table("xr_physcube.sensors", f"{satellite.lower()}_msi_srf.csv")
    return np.column_stack([table[b] for b in ALL_BAND_NAMES])


def spectral_response(
    satellite: str = "S2A", bands: tuple[str, ...] | list[str] = BANDS
) -> np.ndarray:
    """Relative spectral response on :data:`WAVELENGTHS_NM`, shape (2101, n_bands)."""
    sat = _check_satellite(satellite)
    idx = [ALL_BAND_NAMES.index(b) for b in check_bands(bands)]
    return _srf_table(sat)[:, idx].copy()


def srf_weights(
    satellite: str = "S2A",
    bands: tuple[str, ...] | list[str] = BANDS,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    spectral_step: int = 1,
) -> torch.Tensor:
    """SRFs normalised to unit sum per band, shape (n_wavelengths, n_bands), for ``spectra @ W``.

    ``spectral_step`` > 1 keeps every ``spectral_step``-th nm (400, 400 + step, ...).
    """
    srf = spectral_response(satellite, bands)[::spectral_step]
    return torch.as_tensor(srf / srf.sum(axis=0, keepdims=True), dtype=dtype, device=device)


BAND_MODE_STEP: Mapping[str, int] = MappingProxyType(
    {
        **{"B2": 5, "B3": 4, "B4": 4, "B5": 3, "B6": 3, "B7": 3},
        **{"B8": 10, "B8A": 10, "B11": 12, "B12": 15},
        **{"B1": 3, "B9": 3, "B10": 3},  # the atmospheric bands: error not measured
    }
)
"""Step (nm) per band of the band mode used where bands suffice (the VAE decoders): 120
wavelengths instead of 2101, <= 1e-3 reflectance from the full convolution. Steps per
band because the error of a step depends on how curved the spectrum is under the band:
3 nm where the red edge bends (B5–B7), 10–15 nm on the smooth NIR plateau and SWIR
(B8, B8A, B11, B12). Max error over the 10 land bands and 10,000 draws uniform over
every PROSAIL parameter's full range: 5.36e-4 (B5), as a uniform 3 nm grid (277
wavelengths) gives; uniform 5 nm gave 1.6e-3 (``benchmarks/bench_prosail.py`` prints
it)."""


def band_support_grid(
    satellite: str = "S2A",
    bands: tuple[str, ...] | list[str] = BANDS,
    step: int | Mapping[str, int] = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """The wavelengths a band convolution needs, and their weights.

    Only where some band's SRF is non-zero (745 of the 2101 nm for the 10 land bands),
    every ``step`` nm (an int, or a step per band name: a mapping that names every band)
    from each band's first non-zero nm (and its last); each support
    nm's SRF weight is shared by the two kept wavelengths around it in proportion to
    linear interpolation, so the weights of a band still sum to 1 and a spectrum that
    is piecewise linear between kept wavelengths is convolved exactly.

    Returns:
        (index, weights): indices into :data:`WAVELENGTHS_NM` (n,), int64; weights
        (n, n_bands) for ``spectra[..., index] @ weights``.
    """
    full = srf_weights(satellite, bands, torch.float64, None, 1).numpy()
    steps = band_steps(step, bands)
    kept: set[int] = set()
    for b in range(full.shape[1]):
        nz = np.flatnonzero(full[:, b] > 0)
        kept.update(range(int(nz[0]), int(nz[-1]) + 1, steps[b]))
        kept.add(int(nz[-1]))
    index = np.array(sorted(kept), dtype=np.int64)
    support = np.flatnonzero(full.sum(axis=1) > 0)
    # each support nm's weight shared by its two neighbours on the kept grid, linearly
    pos = np.clip(np.searchsorted(index, support, side="right"), 1, len(index) - 1)
    lo, hi = index[pos - 1], index[pos]
    frac = np.clip((support - lo) / np.maximum(hi - lo, 1), 0.0, 1.0)[:, None]
    weights = np.zeros((len(index), full.shape[1]))
    np.add.at(weights, pos - 1, full[support] * (1.0 - frac))
    np.add.at(weights, pos, full[support] * frac)
    used = weights.sum(axis=1) > 0
    return index[used], weights[used]


def band_steps(step: int | Mapping[str, int], bands: Sequence[str]) -> list[int]:
    """The band-mode step (nm, a whole number >= 1) of each of ``bands``, from one step
    for all or a mapping of band name to step (which must name every band)."""
    if isinstance(step, Mapping):
        missing = [b for b in bands if b not in step]
        if missing:
            raise InvalidArgumentError(f"band_step names no step for band(s) {missing}")
        steps = [step[b] for b in bands]
    else:
        steps = [step] * len(bands)
    for s in steps:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1:
            raise InvalidArgumentError(f"band_step must be whole numbers >= 1 (nm); got {step}")
    return [int(s) for s in steps]


class Sentinel2Bands(nn.Module):
    """Convolve spectra (..., 2101) on 400–2500 nm with the MSI SRFs to (..., n_bands).

    Args:
        satellite: "S2A", "S2B" or "S2C".
        bands: band names, default the 10 land bands :data:`BANDS`; use
            :data:`ALL_BAND_NAMES` for all 13.
        spectral_step: input spectra sampled every ``spectral_step`` nm from 400 nm
            (1 = the full 2101-sample grid).
        band_step: instead, the band mode: input spectra only on the wavelengths the
            SRFs weight, every ``band_step`` nm (one step, or a step per band;
            :func:`band_support_grid`;
            :attr:`wavelength_index` lists them, and :class:`~xr_physcube.models.
            prosail.Prosail` computes only those). Error against the full convolution:
            ``python benchmarks/bench_prosail.py`` prints it (<= 1e-3 reflectance for
            :data:`BAND_MODE_STEP`).
    """

    def __init__(
        self,
        satellite: str = "S2A",
        bands: tuple[str, ...] | list[str] = BANDS,
        spectral_step: int = 1,
        band_step: int | Mapping[str, int] | None = None,
    ):
        super().__init__()
        self.satellite = _check_satellite(satellite)
        self.bands = check_bands(bands)
        self.spectral_step = int(spectral_step)
        if band_step is not None:
            steps = band_steps(band_step, self.bands)
            if self.spectral_step != 1:
                raise InvalidArgumentError(
                    f"band_step needs spectral_step 1; got spectral_step={spectral_step}"
                )
            uniform = not isinstance(band_step, Mapping)
            band_step = steps[0] if uniform else dict(zip(self.bands, steps, strict=True))
            index, table = band_support_grid(self.satellite, self.bands, band_step)
            weights = torch.as_tensor(table)
            self.register_buffer("wavelength_index", torch.as_tensor(index), persistent=False)
        else:
            weights = srf_weights(self.satellite, self.bands, torch.float64, None, spectral_step)
            self.wavelength_index = None
        self.band_step: int | dict[str, int] | None = band_step
        self.register_buffer("weights", weights, persistent=False)  # a table, not state

    def forward(self, spectra: torch.Tensor) -> torch.Tensor:
        n = self.weights.shape[0]
        if spectra.shape[-1] != n:
            grid = (
                f"400–2500 nm every {self.spectral_step} nm"
                if self.band_step is None
                else f"the band-mode grid, wavelength_index, every {self.band_step} nm"
            )
            raise DimensionError(
                f"spectra must have {n} samples ({grid}) in the last dimension; got shape "
                f"{tuple(spectra.shape)}"
            )
        weights = self.weights.to(dtype=spectra.dtype, device=spectra.device)
        n_bands = weights.shape[-1]
        pad = -n_bands % 16
        if pad and spectra.dtype == torch.float32 and spectra.device.type == "cpu":
            # 16 output columns instead of 10: 2.4-4x faster float32 GEMM on CPU (measured
            # for 120-2101 wavelengths; no gain in float64), zero columns cut off again
            padded = torch.nn.functional.pad(weights, (0, pad))
            return (spectra @ padded)[..., :n_bands].contiguous()
        return spectra @ weights

    def extra_repr(self) -> str:
        return (
            f"satellite={self.satellite!r}, bands={list(self.bands)}, "
            f"spectral_step={self.spectral_step}, band_step={self.band_step}"
        )
