"""Typed physical parameters: one :class:`ParameterSpec` per quantity.

Every model module declares the specs of its own inputs (name, units, physical
bounds, default) exactly once; validation, priors, CF attributes and the
xarray accessors all read them from there.

A model's inputs are a :class:`TensorParameters` dataclass whose fields carry
their spec, e.g. :class:`xr_physcube.models.prospect.LeafParameters`.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import torch

from xr_physcube.exceptions import DimensionError, InvalidArgumentError, OutOfRangeError
from xr_physcube.validation import check_real
from xr_physcube.validation import positive_int as positive_int  # re-exported

TensorLike = torch.Tensor | np.ndarray | float | int
"""A scalar or array; converted to a tensor and broadcast against the others."""


@dataclass(frozen=True)
class ParameterSpec:
    """Name, units and physical bounds of one model input.

    Attributes:
        name: canonical identifier used as keyword argument and variable name.
        long_name: human-readable description (CF ``long_name``).
        units: CF/UDUNITS-style units ("1" for dimensionless).
        lower, upper: closed physical bounds used for validation.
        default: typical value, used when the caller does not give one.
    """

    name: str
    long_name: str
    units: str
    lower: float
    upper: float
    default: float

    def __post_init__(self) -> None:
        if not self.lower <= self.default <= self.upper:
            raise InvalidArgumentError(
                f"default of {self.name} outside [{self.lower}, {self.upper}]"
            )

    @property
    def range_text(self) -> str:
        units = "" if self.units == "1" else f" {self.units}"
        return f"[{self.lower:g}, {self.upper:g}]{units}"

    def attrs(self) -> dict[str, Any]:
        """CF-convention attributes for an xarray variable of this quantity."""
        return {
            "long_name": self.long_name,
            "units": self.units,
            "valid_min": self.lower,
            "valid_max": self.upper,
        }

    def check(self, value: TensorLike, context: str = "") -> None:
        """Raise :class:`~xr_physcube.exceptions.OutOfRangeError` if ``value`` has NaN or
        lies outside the bounds.

        One pass over the data (``aminmax``: NaN propagates into min and max and fails
        both comparisons); the detailed message is worked out only on failure. An empty
        array has nothing to check. Text, objects and complex values raise
        :class:`~xr_physcube.exceptions.InputDtypeError`.
        """
        check_real(self.name, value, context)
        data = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(value)
        if data.numel() == 0:
            return
        lo, hi = torch.aminmax(data) if data.ndim else (data, data)
        lo_f, hi_f = float(lo), float(hi)
        if lo_f >= self.lower and hi_f <= self.upper:
            return
        where = f"{context}: " if context else ""
        if data.is_floating_point() and bool(torch.isnan(data).any()):
            raise OutOfRangeError(
                f"{where}parameter '{self.name}' ({self.long_name}) contains NaN; "
                f"valid range is {self.range_text}"
            )
        raise OutOfRangeError(
            f"{where}parameter '{self.name}' ({self.long_name}) must lie in "
            f"{self.range_text}; got values in [{lo_f:g}, {hi_f:g}]"
        )


class ParameterSet(Mapping[str, ParameterSpec]):
    """An ordered, read-only collection of :class:`ParameterSpec` keyed by name."""

    def __init__(self, specs: Iterable[ParameterSpec]):
        self._specs = {s.name: s for s in specs}

    def __getitem__(self, name: str) -> ParameterSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown parameter '{name}'; known: {list(self._specs)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def __or__(self, other: ParameterSet) -> ParameterSet:
        return ParameterSet([*self.values(), *other.values()])

    def __repr__(self) -> str:
        return f"ParameterSet({list(self._specs)})"

    def subset(self, names: Iterable[str]) -> ParameterSet:
        return ParameterSet(self[n] for n in names)

    def defaults(self) -> dict[str, float]:
        return {n: s.default for n, s in self._specs.items()}

    def bounds(self, dtype: torch.dtype | None = None, device: Any = None):
        """(lower, upper) as 1-D tensors in this set's order."""
        lo = torch.tensor([s.lower for s in self.values()], dtype=dtype, device=device)
        hi = torch.tensor([s.upper for s in self.values()], dtype=dtype, device=device)
        return lo, hi

    def validate(self, values: Mapping[str, TensorLike], context: str = "") -> None:
        """Check each given value that this set knows; raise ``ValueError`` on NaN/out of range."""
        for name, value in values.items():
            if name in self._specs:
                self._specs[name].check(value, context)


def infer_dtype_device(values: Iterable[Any]) -> tuple[torch.dtype, torch.device]:
    """The floating dtype and device a computation on ``values`` should use.

    The first floating ``torch.Tensor`` sets both. Without one, the first floating NumPy
    array (of any dimension, e.g. float64) sets the dtype, on CPU. Otherwise (Python
    floats, ints, lists, NumPy scalars) PyTorch's default dtype on CPU.
    """
    values = list(values)
    for v in values:
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            return v.dtype, v.device
    for v in values:
        if isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.floating):
            return torch.from_numpy(np.empty(0, dtype=v.dtype)).dtype, torch.device("cpu")
    return torch.get_default_dtype(), torch.device("cpu")


def as_tensors(
    values: Mapping[str, TensorLike],
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> dict[str, torch.Tensor]:
    """Convert to tensors of one floating dtype/device and broadcast to a common shape.

    dtype and device default to :func:`infer_dtype_device` of the values, so a model
    runs where its inputs live, in their precision. Text, objects and complex values
    raise :class:`~xr_physcube.exceptions.InputDtypeError`.
    """
    for name, value in values.items():
        check_real(name, value)
    if dtype is None or device is None:
        found_dtype, found_device = infer_dtype_device(values.values())
        dtype = found_dtype if dtype is None else dtype
        device = found_device if device is None else device
    tensors = {k: torch.as_tensor(v, dtype=dtype, device=device) for k, v in values.items()}
    try:
        shape = torch.broadcast_shapes(*(t.shape for t in tensors.values()))
    except RuntimeError as err:
        shapes = {k: tuple(t.shape) for k, t in tensors.items()}
        raise DimensionError(f"parameter shapes do not broadcast: {shapes}") from err
    return {k: t.expand(shape) for k, t in tensors.items()}


def spec_field(spec: ParameterSpec) -> Any:
    """A dataclass field whose default is the spec's default and which carries the spec."""
    return dataclasses.field(default=spec.default, metadata={"spec": spec})


def fields_doc(specs: Iterable[ParameterSpec], title: str = "Fields") -> str:
    """A docstring section listing each spec: name, long name, units, bounds, default."""
    lines = [f"{title}:"]
    for s in specs:
        units = "dimensionless" if s.units == "1" else s.units
        lines.append(
            f"    {s.name}: {s.long_name} — units {units}, range [{s.lower:g}, {s.upper:g}], "
            f"default {s.default:g}."
        )
    return "\n".join(lines)


def _declared_specs(cls: type) -> list[ParameterSpec]:
    """Specs of ``cls``'s :func:`spec_field` fields in dataclass order, read while the class
    is being created (before ``@dataclass``): inherited dataclass fields first, then the
    ``Field`` objects of its own body in annotation order."""
    specs: dict[str, ParameterSpec] = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get("__dataclass_fields__", {}).values():
            if "spec" in f.metadata:
                specs[f.name] = f.metadata["spec"]
    for name in cls.__dict__.get("__annotations__", {}):
        value = cls.__dict__.get(name)
        if isinstance(value, dataclasses.Field) and "spec" in value.metadata:
            specs[name] = value.metadata["spec"]
    return list(specs.values())


class TensorParameters:
    """Base for dataclasses of model inputs declared with :func:`spec_field`.

    Fields may be floats, NumPy arrays or tensors of any broadcastable batch shape.
    """

    specs: ClassVar[ParameterSet]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # dataclass fields are only known after the decorator ran; resolve lazily.
        cls._specs_cache = None
        specs = _declared_specs(cls)
        if specs:
            # help(cls) lists every field's facts, read from its ParameterSpec.
            intro = inspect.cleandoc(cls.__dict__.get("__doc__") or "")
            cls.__doc__ = f"{intro}\n\n{fields_doc(specs)}".lstrip()

    @classmethod
    def parameter_set(cls) -> ParameterSet:
        if cls.__dict__.get("_specs_cache") is None:
            cls._specs_cache = ParameterSet(
                f.metadata["spec"] for f in dataclasses.fields(cls) if "spec" in f.metadata
            )
        return cls._specs_cache

    def as_dict(self) -> dict[str, TensorLike]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def validate(self, context: str = "") -> Self:
        self.parameter_set().validate(self.as_dict(), context or type(self).__name__)
        return self

    def tensors(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> dict[str, torch.Tensor]:
        return as_tensors(self.as_dict(), dtype=dtype, device=device)

    def to_tensor(self, dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
        """Stack the fields along a new last dimension, in declaration order."""
        return torch.stack(list(self.tensors(dtype, device).values()), dim=-1)

    @classmethod
    def from_tensor(cls, stacked: torch.Tensor) -> Self:
        """Inverse of :meth:`to_tensor`: split the last dimension into fields."""
        names = [f.name for f in dataclasses.fields(cls)]
        if stacked.shape[-1] != len(names):
            raise DimensionError(
                f"{cls.__name__} needs a last dimension of {len(names)} ({names}); "
                f"got shape {tuple(stacked.shape)}"
            )
        return cls(**dict(zip(names, stacked.unbind(-1), strict=True)))


def deg2rad(x: torch.Tensor) -> torch.Tensor:
    return x * (math.pi / 180.0)
