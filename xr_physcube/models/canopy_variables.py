"""Canopy biophysical variables derived from 4SAIL: FCOVER and FAPAR.

Definitions follow the Sentinel-2 Toolbox Level-2 ATBD (Weiss & Baret 2016):
FCOVER is the fraction of ground covered by green vegetation seen from nadir,
1 - P_gap(0°) = 1 - exp(-k_o(0°) · LAI); FAPAR is the instantaneous black-sky
fraction of absorbed photosynthetically active radiation at the sun zenith angle,
the 4SAIL canopy absorptance averaged over 400–700 nm (flat irradiance spectrum).
"""

from __future__ import annotations

import torch

from xr_physcube.models.prospect import Prospect, leaf_optics
from xr_physcube.models.sail import (
    LidfType,
    angular_factors,
    canopy_absorptance,
    leaf_angle_distribution,
)
from xr_physcube.parameters import as_tensors
from xr_physcube.validation import check_arrays

PAR_SLICE = slice(0, 301)
"""400–700 nm on the 1 nm model grid."""


def fcover(
    lai: torch.Tensor,
    ala: torch.Tensor | float = 57.0,
    lidfa: torch.Tensor | float = -0.35,
    lidfb: torch.Tensor | float = -0.15,
    lidf_type: LidfType = "campbell",
) -> torch.Tensor:
    """Green cover fraction (0–1) seen from nadir for LAI (m²/m²) and the leaf angles."""
    check_arrays({"lai": lai, "ala": ala, "lidfa": lidfa, "lidfb": lidfb}, "fcover")
    t = as_tensors({"lai": lai, "ala": ala, "lidfa": lidfa, "lidfb": lidfb})
    lidf = leaf_angle_distribution(lidf_type, t["ala"], t["lidfa"], t["lidfb"])
    zeros = torch.zeros_like(t["lai"], dtype=torch.float64)
    f = angular_factors(lidf, t["lai"].double(), zeros + 0.01, zeros, zeros, zeros)
    return (1.0 - f.too).to(t["lai"].dtype)


def fapar(params, leaf_model: Prospect | None = None, lidf_type: LidfType = "campbell"):
    """Instantaneous black-sky FAPAR (0–1) at the sun zenith ``params.tts``.

    Args:
        params: a :class:`~xr_physcube.models.prosail.ProsailParameters` (leaf, canopy,
            soil and ``tts``; view angles are irrelevant).
        leaf_model: PROSPECT module to use (default PROSPECT-D).
    """
    from xr_physcube.models.sail import soil_reflectance

    leaf_model = leaf_model or Prospect("D")
    check_arrays(params.as_dict(), "fapar")
    t = as_tensors(params.as_dict())
    lidf = leaf_angle_distribution(lidf_type, t["ala"], t["lidfa"], t["lidfb"])
    zeros = torch.zeros_like(t["lai"], dtype=torch.float64)
    factors = angular_factors(
        lidf, t["lai"].double(), t["hspot"].double(), t["tts"].double(), zeros, zeros
    )
    contents = torch.stack([t[c] for c in leaf_model.constituents], dim=-1)
    dtype = t["lai"].dtype
    optics = leaf_optics(
        t["N"],
        contents,
        leaf_model.specific_absorption[:, PAR_SLICE].to(dtype),
        leaf_model.interface[:, PAR_SLICE].to(dtype),
    )
    soil = soil_reflectance(t["psoil"], t["rsoil"])[..., PAR_SLICE]
    absorbed = canopy_absorptance(optics.reflectance, optics.transmittance, soil, t["lai"], factors)
    return absorbed.mean(-1)
