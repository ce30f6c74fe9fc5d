"""Inverse models trained on forward simulations: priors, simulation, networks, training.

``load_pretrained("s2")`` / ``load_pretrained("s1")`` give the shipped networks.
"""

from xr_physcube.inverse.nets import BVNet, InverseModel, check_inputs
from xr_physcube.inverse.train import load_pretrained, train_pretrained

__all__ = ["BVNet", "InverseModel", "check_inputs", "load_pretrained", "train_pretrained"]
