"""The windowing primitive that convolution and every pool share.

Each op of the reference is composed of three moves on an array whose spatial axes are
``first_axis, ..., first_axis + m − 1``:

1. :func:`pad` extends x to x̃ by the padding mode (PAD-MODE-1), in one ``np.pad`` call;
2. :func:`tap_slices` gives, for one kernel tap q, the strided view of x̃ that holds
   x̃[p·s + q·d] for every output position p — a basic slice, so a view, never a copy;
3. :func:`fold` is the adjoint of :func:`pad`: it adds the gradient of every padded copy back
   onto the element it copies (for zeros padding: a crop).

x̃ is indexed from its first padded element, so x̃[u] = x[u − p_b] inside the input.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from typing import Literal

import numpy as np

from ..spec import Pads, Shape

#: Padding mode of the spec (PAD-MODE-1) -> the ``np.pad`` mode that defines it.
NUMPY_PAD_MODES: dict[str, Literal["constant", "reflect", "edge", "wrap"]] = {
    "zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap",
}


def taps(kernel_size: Shape) -> Iterator[tuple[int, ...]]:
    """Every kernel tap q = (q_1, …, q_m), 0 ≤ q_i < k_i, in row-major order (MAXPOOL-TIE-1).

    >>> list(taps((2, 2)))
    [(0, 0), (0, 1), (1, 0), (1, 1)]
    """
    return itertools.product(*(range(k) for k in kernel_size))


def tap_slices(q: tuple[int, ...], stride: Shape, dilation: Shape, out_size: Shape) -> tuple[slice, ...]:
    """x̃[p·s + q·d] for p = 0, …, o − 1 in every spatial dim, as one slice per dim.

    >>> tap_slices((2,), (3,), (2,), (4,))
    (slice(4, 14, 3),)
    """
    return tuple(
        slice(q_i * d_i, q_i * d_i + (o_i - 1) * s_i + 1, s_i)
        for q_i, s_i, d_i, o_i in zip(q, stride, dilation, out_size)
    )


def spatial(a: np.ndarray, first_axis: int, index: tuple[slice, ...]) -> tuple[slice, ...]:
    """The full index of ``a`` that applies ``index`` to its spatial axes and keeps the others."""
    return (slice(None),) * first_axis + index + (slice(None),) * (a.ndim - first_axis - len(index))


def pad(a: np.ndarray, pads: Pads, mode: str = "zeros", *, first_axis: int = 2, value: float = 0.0) -> np.ndarray:
    """x̃: ``a`` extended by ``pads`` on its spatial axes by the padding mode (PAD-MODE-1).

    zeros → the constant ``value``; reflect → ``np.pad`` 'reflect' (the edge is not repeated);
    replicate → 'edge'; circular → 'wrap'. Returns a new C-contiguous array, or ``a`` itself when
    every pad is zero: a caller that writes into the result must own ``a``.

    >>> pad(np.array([[[1.0, 2.0, 3.0]]]), ((2, 1),), "reflect")
    array([[[3., 2., 1., 2., 3., 2.]]])
    """
    if not any(before or after for before, after in pads):
        return a
    width = [(0, 0)] * a.ndim
    width[first_axis : first_axis + len(pads)] = pads
    if mode == "zeros":
        return np.pad(a, width, mode="constant", constant_values=value)
    return np.pad(a, width, mode=NUMPY_PAD_MODES[mode])


def source_index(n: int, pads: tuple[int, int], mode: str) -> np.ndarray:
    """For each position u of x̃ along one dim, the element of x it copies (−1 for a zero).

    u − p_b inside [0, n) copies itself; outside, reflect mirrors about the edge without repeating
    it, replicate clamps, circular wraps, zeros copies nothing (PAD-MODE-1, valid under PAD-MODE-2).

    >>> source_index(3, (2, 2), "reflect").tolist(), source_index(3, (2, 2), "circular").tolist()
    ([2, 1, 0, 1, 2, 1, 0], [1, 2, 0, 1, 2, 0, 1])
    """
    before, after = pads
    u = np.arange(-before, n + after)
    if mode == "zeros":
        return np.where((u >= 0) & (u < n), u, -1)
    if mode == "reflect":
        u = np.abs(u)
        return np.where(u > n - 1, 2 * (n - 1) - u, u)
    if mode == "replicate":
        return np.clip(u, 0, n - 1)
    return u % n  # circular


def fold(g: np.ndarray, pads: Pads, mode: str = "zeros", *, first_axis: int = 2) -> np.ndarray:
    """Adjoint of :func:`pad`: dx[i] = Σ_{u : source(u) = i} dx̃[u], one spatial dim at a time.

    Padding is separable (``np.pad`` pads one axis after another), so its adjoint is the product
    of the per-axis adjoints. For zeros padding this is a crop.

    >>> fold(np.ones((1, 1, 6)), ((2, 1),), "reflect")
    array([[[1., 3., 2.]]])
    """
    for axis, (before, after) in enumerate(pads, start=first_axis):
        n = g.shape[axis] - before - after
        moved = np.moveaxis(g, axis, 0)
        core = moved[before : before + n].copy()
        if mode != "zeros":
            source = source_index(n, (before, after), mode)
            u = np.r_[0:before, before + n : before + n + after]  # the padded copies
            np.add.at(core, source[u], moved[u])
        g = np.moveaxis(core, 0, axis)
    return g


def window_coordinates(
    q: tuple[int, ...], stride: Shape, dilation: Shape, pads: Pads, out_size: Shape
) -> tuple[np.ndarray, ...]:
    """Input coordinate u_i = p_i·s_i − p_b,i + q_i·d_i of tap q in every window p, one open-mesh
    array per dim (shape 1 × … × o_i × … × 1), in unpadded coordinates (POOL-SHAPE-1).

    >>> [u.tolist() for u in window_coordinates((1,), (2,), (1,), ((1, 1),), (3,))]
    [[0, 2, 4]]
    """
    return np.ix_(*(np.arange(o_i) * s_i - pair[0] + q_i * d_i
                    for q_i, s_i, d_i, pair, o_i in zip(q, stride, dilation, pads, out_size)))


def inside(coordinates: tuple[np.ndarray, ...], spatial_size: Shape) -> np.ndarray:
    """True where every coordinate u_i lies in [0, n_i): the tap reads a real input element."""
    return functools.reduce(
        np.logical_and, ((u >= 0) & (u < n) for u, n in zip(coordinates, spatial_size))
    )


def flat_index(coordinates: tuple[np.ndarray, ...], spatial_size: Shape) -> np.ndarray:
    """Row-major flat index Σ_i u_i·Π_{j>i} n_j into the unpadded spatial plane (MAXPOOL-INDEX-1)."""
    strides = np.cumprod((1,) + tuple(spatial_size[:0:-1]))[::-1]
    return functools.reduce(np.add, (u * int(stride) for u, stride in zip(coordinates, strides)))


def covering_pads(spatial_size: Shape, kernel_size: Shape, stride: Shape, dilation: Shape, pads: Pads,
                  out_size: Shape) -> Pads:
    """Pads of a buffer that every window reaches into: (p_b, max(p_a, reach)), where
    reach = (o − 1)·s + d·(k − 1) + 1 − n − p_b is how far the last window ends past the input —
    beyond p_a only for a ceil-mode overhang (POOL-CEIL-1).
    """
    return tuple(
        (pair[0], max(pair[1], (o - 1) * s + d * (k - 1) + 1 - n - pair[0]))
        for n, k, s, d, pair, o in zip(spatial_size, kernel_size, stride, dilation, pads, out_size)
    )
