"""Output-size formulas, each written once, in integer arithmetic.

All functions work on one spatial dim: ``n`` input size, ``k`` kernel size, ``s`` stride,
``d`` dilation, ``pads = (p_before, p_after)``. Callers map them over the spatial dims.
The formulas do not validate; the parameter objects do, with ``check_shape`` (LAYOUT-1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import InvalidParams

Shape = tuple[int, ...]
Pads = tuple[tuple[int, int], ...]


def is_int(value: Any) -> bool:
    """True for Python and NumPy integers; False for bools and floats, even integral ones."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def ceil_div(a: int, b: int) -> int:
    """⌈a / b⌉ for integers, b > 0, exact for any size (never via floats)."""
    return -(-a // b)


def effective_kernel(k: int, d: int) -> int:
    """Extent covered by a dilated kernel: d·(k − 1) + 1."""
    return d * (k - 1) + 1


def conv_output_size(n: int, k: int, s: int, d: int, pads: tuple[int, int]) -> int:
    """o = ⌊(n + p_b + p_a − d·(k−1) − 1) / s⌋ + 1  (CONV-SHAPE-1, POOL-SHAPE-1).

    >>> conv_output_size(224, 7, 2, 1, (3, 3))
    112
    """
    return (n + pads[0] + pads[1] - effective_kernel(k, d)) // s + 1


def pool_output_size(n: int, k: int, s: int, d: int, pads: tuple[int, int], ceil_mode: bool) -> int:
    """Floor mode as conv; ceil mode o = ⌈(n + p_b + p_a − d·(k−1) − 1) / s⌉ + 1, then o −= 1
    if (o − 1)·s ≥ n + p_b: the last window must start inside the input or the left padding
    (POOL-CEIL-1, PyTorch's rule).

    >>> pool_output_size(5, 2, 2, 1, (0, 0), ceil_mode=False), pool_output_size(5, 2, 2, 1, (0, 0), ceil_mode=True)
    (2, 3)
    """
    if not ceil_mode:
        return conv_output_size(n, k, s, d, pads)
    o = ceil_div(n + pads[0] + pads[1] - effective_kernel(k, d), s) + 1
    if (o - 1) * s >= n + pads[0]:
        o -= 1
    return o


def conv_transpose_output_size(
    n: int, k: int, s: int, d: int, pads: tuple[int, int], output_padding: int
) -> int:
    """o = (n − 1)·s − p_b − p_a + d·(k − 1) + output_padding + 1  (CONVT-SHAPE-1).

    >>> conv_transpose_output_size(112, 7, 2, 1, (3, 3), 1)
    224
    """
    return (n - 1) * s - pads[0] - pads[1] + d * (k - 1) + output_padding + 1


def same_pads(n: int, k: int, s: int, d: int, *, lower: bool) -> tuple[int, int]:
    """Pads of 'same_upper' (lower=False) or 'same_lower' (lower=True)  (PAD-4, PAD-5).

    o = ⌈n / s⌉, total = max((o − 1)·s + d·(k − 1) + 1 − n, 0); same_upper puts ⌊total/2⌋
    before, same_lower ⌈total/2⌉ before, the rest after.

    >>> same_pads(5, 4, 1, 1, lower=False), same_pads(5, 4, 1, 1, lower=True)
    ((1, 2), (2, 1))
    """
    o = ceil_div(n, s)
    total = max((o - 1) * s + effective_kernel(k, d) - n, 0)
    before = ceil_div(total, 2) if lower else total // 2
    return (before, total - before)


def window_starts(o: int, s: int, p_before: int) -> range:
    """Start coordinate (in unpadded input coordinates) of each of the ``o`` windows: p·s − p_b."""
    return range(-p_before, o * s - p_before, s)


def window_is_empty(start: int, n: int, k: int, d: int) -> bool:
    """True when no tap start + j·d (0 ≤ j < k) of a window falls inside [0, n)  (POOL-WINDOW-1)."""
    # First tap at or after 0: j0 = ⌈−start / d⌉ clamped to 0.
    j0 = max(ceil_div(-start, d), 0)
    return j0 >= k or start + j0 * d >= n


def check_shape(name: str, shape: Any, *, clause: str, ndim: int | None = None) -> Shape:
    """``shape`` as a tuple of ints, checked against the layout rule of ``clause``.

    Every dim must be a non-negative int; for ``x.shape`` (LAYOUT-1) the rank must be ≥ 3 and
    every dim but the batch ≥ 1; for any other array every dim must be ≥ 1 and, when ``ndim`` is
    given, the rank must be ``ndim``.
    """
    if not isinstance(shape, Sequence) or isinstance(shape, str) or not all(is_int(e) for e in shape):
        raise InvalidParams(name, shape, "must be a tuple of ints", clause)
    dims = tuple(int(e) for e in shape)
    if name == "x.shape":
        if len(dims) < 3:
            raise InvalidParams(
                name, dims, "must be (N, C, *spatial) with at least one spatial dim", clause,
                "add a size-1 spatial axis for a 0-D problem",
            )
        if dims[0] < 0 or min(dims[1:]) < 1:
            raise InvalidParams(name, dims, "needs N >= 0 and C and every spatial size >= 1", clause)
        return dims
    if ndim is not None and len(dims) != ndim:
        raise InvalidParams(name, dims, f"must have {ndim} dims to match x", clause)
    if min(dims, default=1) < 1:
        raise InvalidParams(name, dims, "must have every dim >= 1", clause)
    return dims
