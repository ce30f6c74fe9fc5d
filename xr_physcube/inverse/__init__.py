"""Inverse models trained on forward simulations.

Same file shape as :mod:`xr_physcube.vae`: :mod:`~xr_physcube.inverse.nets` (the
networks), :mod:`~xr_physcube.inverse.simulate` (training data, with
:mod:`~xr_physcube.inverse.priors`), :mod:`~xr_physcube.inverse.train` (loss and fit
loop), :mod:`~xr_physcube.inverse.pretrained` (the shipped networks: registry, weights,
loading, rebuild). ``load_pretrained("s2")``, ``load_pretrained("s1")`` (NDVI) and
``load_pretrained("s1_lai")`` (LAI) give the shipped networks.
"""

from xr_physcube.inverse.nets import BVNet, InverseModel, check_inputs
from xr_physcube.inverse.pretrained import NETWORKS, load_pretrained, train_pretrained

__all__ = [
    "NETWORKS",
    "BVNet",
    "InverseModel",
    "check_inputs",
    "load_pretrained",
    "train_pretrained",
]
