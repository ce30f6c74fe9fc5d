"""Typed parameter specs and sets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from xr_physcube.parameters import ParameterSpec, TensorParameters, as_tensors, spec_field

A = ParameterSpec("a", "thing a", "m", 0.0, 2.0, 1.0)
B = ParameterSpec("b", "thing b", "1", -1.0, 1.0, 0.0)


@dataclass
class Pair(TensorParameters):
    a: torch.Tensor | float = spec_field(A)
    b: torch.Tensor | float = spec_field(B)


def test_spec_rejects_default_outside_bounds():
    with pytest.raises(ValueError, match="default"):
        ParameterSpec("x", "x", "1", 0.0, 1.0, 2.0)


def test_check_message_names_context_parameter_and_range():
    with pytest.raises(ValueError) as err:
        A.check(torch.tensor([0.5, 3.0]), "MODEL")
    msg = str(err.value)
    assert msg.startswith("MODEL: parameter 'a' (thing a)") and "[0, 2] m" in msg and "3" in msg
    with pytest.raises(ValueError, match="NaN"):
        A.check(np.array([np.nan]))


def test_parameter_set_roundtrip_and_cf_attrs():
    ps = Pair.parameter_set()
    assert list(ps) == ["a", "b"] and ps.defaults() == {"a": 1.0, "b": 0.0}
    lo, hi = ps.bounds(torch.float64)
    assert lo.tolist() == [0.0, -1.0] and hi.tolist() == [2.0, 1.0]
    assert A.attrs()["units"] == "m" and A.attrs()["valid_max"] == 2.0
    p = Pair(a=torch.tensor([0.5, 1.5]), b=0.25)
    stacked = p.to_tensor(torch.float64)
    assert stacked.shape == (2, 2)
    back = Pair.from_tensor(stacked)
    assert torch.equal(back.a, torch.tensor([0.5, 1.5], dtype=torch.float64))
    with pytest.raises(ValueError, match="last dimension of 2"):
        Pair.from_tensor(torch.zeros(3, 5))
    with pytest.raises(KeyError, match="c"):
        ps["c"]


def test_as_tensors_follows_first_tensor_dtype():
    t = as_tensors({"a": 1.0, "b": torch.zeros(3, dtype=torch.float64)})
    assert t["a"].dtype == torch.float64 and t["a"].shape == (3,)
    assert Pair(a=5.0).parameter_set()["a"].range_text == "[0, 2] m"
    with pytest.raises(ValueError, match="'a'"):
        Pair(a=5.0).validate()


def test_as_tensors_follows_numpy_float_dtype_when_there_is_no_tensor():
    t = as_tensors({"a": 1.0, "b": np.zeros(3, dtype=np.float64)})
    assert t["a"].dtype == torch.float64 and t["b"].dtype == torch.float64
    # Python floats, lists and integer arrays keep the default dtype.
    t = as_tensors({"a": 1.0, "b": [0.0, 1.0], "c": np.arange(2)})
    assert all(v.dtype == torch.get_default_dtype() for v in t.values())
    # A floating tensor still takes precedence over a NumPy array given before it.
    t = as_tensors({"a": np.zeros(2), "b": torch.zeros(2, dtype=torch.float32)})
    assert t["a"].dtype == torch.float32


@dataclass
class Triple(Pair):
    """Pair plus c."""

    c: torch.Tensor | float = spec_field(ParameterSpec("c", "thing c", "K", 5.0, 9.0, 6.0))


def test_docstring_lists_every_field_from_its_spec():
    doc = Pair.__doc__
    assert "a: thing a — units m, range [0, 2], default 1." in doc
    assert "b: thing b — units dimensionless, range [-1, 1], default 0." in doc
    # Inherited fields first, in dataclass order; the class's own text is kept.
    doc = Triple.__doc__
    assert doc.startswith("Pair plus c.")
    names = [ln.split(":")[0].strip() for ln in doc.splitlines() if " — units " in ln]
    assert names == ["a", "b", "c"] == [f.name for f in dataclasses.fields(Triple)]
    assert "c: thing c — units K, range [5, 9], default 6." in doc
