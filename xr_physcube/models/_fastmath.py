"""A bit-indexed interpolation table for float32 special functions in compiled code.

Under ``torch.compile`` on CPU, a table lookup indexed by ``log(x)`` pays for the
vectorised logarithm (~2 ns per value), more than the interpolation itself. Here the cell
index of a float32 is read from its bit pattern (exponent and leading mantissa bits), which
the compiler vectorises as integer operations. Used only for float32 inputs inside compiled
graphs; float64 and eager code keep the exact functions.

Autograd: values come from integer bit manipulation, which has no gradient, so the table
adds a "straight-through" term ``(x - x.detach()) * derivative`` that is zero in value and
carries the interpolant's first derivative.
"""

from __future__ import annotations

import numpy as np
import torch

_MANTISSA_BITS = 23
_EXPONENT_BIAS = 127


def _straight_through(value: torch.Tensor, x: torch.Tensor, derivative) -> torch.Tensor:
    if not (torch.is_grad_enabled() and x.requires_grad):
        return value
    xd = x.detach()
    return value + (x - xd) * derivative(xd)


class BitTable:
    """Cubic interpolation table of a smooth function on [2^lo, 2^hi), indexed by bits.

    Cells split every octave into 2^``cell_bits`` equal parts, so a float32's cell
    index is its bit pattern shifted right and its position in the cell is the
    remaining low mantissa bits: no logarithm. Each cell stores the cubic Hermite
    polynomial (power basis in the position t in [0, 1)) of the function values and
    derivatives at its ends, computed in float64.
    """

    def __init__(self, fn, dfn, lo_exponent: int, hi_exponent: int, cell_bits: int = 6):
        self.shift = _MANTISSA_BITS - cell_bits
        self.lo = 2.0**lo_exponent
        self.hi = 2.0**hi_exponent
        self.base = (lo_exponent + _EXPONENT_BIAS) << cell_bits
        n_cells = (hi_exponent - lo_exponent) << cell_bits
        octave = np.repeat(np.arange(lo_exponent, hi_exponent, dtype=np.float64), 1 << cell_bits)
        step = np.exp2(octave - cell_bits)
        start = np.exp2(octave) + np.tile(np.arange(1 << cell_bits), n_cells >> cell_bits) * step
        end = start + step
        f0, f1 = fn(start), fn(end)
        d0, d1 = dfn(start) * step, dfn(end) * step
        coeffs = np.stack(
            [f0, d0, -3 * f0 - 2 * d0 + 3 * f1 - d1, 2 * f0 + d0 - 2 * f1 + d1], axis=-1
        )
        self.coeffs = torch.tensor(coeffs, dtype=torch.float32)  # (n_cells, 4)
        self.step = torch.tensor(step, dtype=torch.float32)
        self._on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """(coefficients (n_cells, 4), cell widths) on ``device``, cached."""
        device = torch.device(device)
        if device not in self._on:
            self._on[device] = (self.coeffs.to(device), self.step.to(device))
        return self._on[device]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Interpolated values for float32 x in [lo, hi) (callers handle the outside)."""
        coeffs, step = self.tensors(x.device)
        bits = x.detach().view(torch.int32)
        cell = (bits >> self.shift) - self.base
        t = (bits & ((1 << self.shift) - 1)).to(torch.float32) * (1.0 / (1 << self.shift))
        if torch.compiler.is_compiling():
            c0, c1, c2, c3 = (coeffs[:, i][cell] for i in range(4))
            value = c0 + t * (c1 + t * (c2 + t * c3))
        else:  # eager: one gather of whole rows, Horner in place (~2x faster; no autograd
            # graph here: the gradient is the straight-through term below)
            rows = coeffs.index_select(0, cell.reshape(-1)).view(*cell.shape, 4)
            c0, c1, c2, c3 = rows.unbind(-1)
            value = torch.addcmul(c2, t, c3).mul_(t).add_(c1).mul_(t).add_(c0)

        def derivative(xd: torch.Tensor) -> torch.Tensor:
            return (c1 + t * (2.0 * c2 + t * 3.0 * c3)) / step[cell]

        return _straight_through(value, x, derivative)
