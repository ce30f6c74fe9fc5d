"""Exceptions of xr_physcube.

Every error the package raises about its caller's input is a :class:`PhyscubeError`.
Each subclass also subclasses the builtin it replaces (``ValueError``, ``LookupError``),
so code written as ``except ValueError`` keeps working, while callers that want to tell
"your cube lacks ``tts``" from "out of range" from a bug can catch the precise class.
The command line reports a :class:`PhyscubeError` in one line and lets anything else
raise with its traceback (a bug is not a user error).

Modelled on rioxarray's ``exceptions.py`` (``RioXarrayError`` and its subclasses) and
xclim's ``core/_exceptions.py`` (``ValidationError(ValueError)``).
"""

from __future__ import annotations


class PhyscubeError(Exception):
    """Base class of the errors xr_physcube raises about its input."""


class InvalidArgumentError(PhyscubeError, ValueError):
    """An argument has a value the function cannot use (an unknown model name, a
    non-positive batch size, exclusive options given together)."""


class InputDtypeError(InvalidArgumentError, TypeError):
    """An input holds values no model can compute with: text, objects, complex numbers.
    Also a ``TypeError``, what NumPy and torch raise for such inputs."""


class MissingVariableError(PhyscubeError, ValueError):
    """The Dataset lacks a variable or coordinate a method needs (bands, angles, forcing)."""


class DimensionError(PhyscubeError, ValueError):
    """An array or variable has dimensions or a shape that do not fit (a temporal model
    on a cube without ``time``, a parameter that varies in time, an empty array)."""


class InputUnitsError(PhyscubeError, ValueError):
    """Observations look like the wrong units: digital numbers instead of reflectance,
    dB instead of linear sigma0, radians instead of degrees."""


class OutOfRangeError(PhyscubeError, ValueError):
    """A parameter is NaN or outside its physical bounds (its ``ParameterSpec``)."""


class TimeAxisError(PhyscubeError, ValueError):
    """The ``time`` axis is missing, not datetime64, irregular or too short, or a date
    falls outside it."""


class CheckpointError(PhyscubeError, ValueError):
    """A file is not a checkpoint of the expected kind, or does not fit the model."""


class IncompleteStoreError(PhyscubeError, ValueError):
    """A Zarr store was left incomplete by an interrupted job (its unwritten chunks would
    read as NaN); resume the job to finish it."""


class MissingExtraError(PhyscubeError, ImportError):
    """An optional dependency is not installed; the message names the extra to install
    (``pip install 'xr_physcube[stac]'``)."""


class MetadataError(PhyscubeError, ValueError):
    """Product metadata (a STAC item, a tile's angle XML) is missing or unreadable."""


class StacSearchError(PhyscubeError, LookupError):
    """A STAC search found nothing usable (no items, no assets for the bands asked)."""


class ReadFailureWarning(UserWarning):
    """An asset could not be read after retries; its block is NaN (batch jobs go on)."""


__all__ = [
    "CheckpointError",
    "DimensionError",
    "IncompleteStoreError",
    "InputDtypeError",
    "InputUnitsError",
    "InvalidArgumentError",
    "MetadataError",
    "MissingExtraError",
    "MissingVariableError",
    "OutOfRangeError",
    "PhyscubeError",
    "ReadFailureWarning",
    "StacSearchError",
    "TimeAxisError",
]
