"""Inverse models trained on forward simulations: priors, simulation, networks, training."""

from xr_physcube.inverse.nets import BVNet, InverseModel, check_inputs
from xr_physcube.inverse.train import load_pretrained, train_pretrained

__all__ = ["BVNet", "InverseModel", "check_inputs", "load_pretrained", "train_pretrained"]
