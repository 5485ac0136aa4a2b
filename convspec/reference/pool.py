"""Max, average and Lp pooling, forward and gradients, in float64, any spatial rank.

Window p of a spatial dim covers input coordinates u = p·s − p_b + q·d, 0 ≤ q < k (POOL-SHAPE-1).
Every op loops over the Πk taps q and handles all batches, channels and windows of a tap at
once through one strided view of the padded input (:mod:`.window`). The buffer is padded
far enough for ceil-mode windows that overhang the right padding (POOL-CEIL-1).
"""

from __future__ import annotations

import functools

import numpy as np

from ..spec import AvgPoolParams, LpPoolParams, MaxPoolParams, PoolParams, check_arrays
from .window import covering_pads, flat_index, fold, inside, pad, spatial, tap_slices, taps, window_coordinates


def _buffer_pads(params: PoolParams) -> tuple[tuple[int, int], ...]:
    return covering_pads(
        params.input_shape[2:], params.kernel_size, params.stride, params.dilation, params.pads,
        params.output_shape[2:],
    )


def _tap_windows(params: PoolParams, q: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    return window_coordinates(q, params.stride, params.dilation, params.pads, params.output_shape[2:])


def _tap_view(x_tilde: np.ndarray, params: PoolParams, q: tuple[int, ...]) -> tuple[slice, ...]:
    return spatial(x_tilde, 2, tap_slices(q, params.stride, params.dilation, params.output_shape[2:]))


# --------------------------------------------------------------------------------------------
# max pool


def _max_pool_select(x: np.ndarray, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y, the flat index of the selected element, and the selected tap, for every window.

    A running (best, index) over the taps in row-major order. Tap q of window p is taken when it
    reads an input element (padding never wins, even against −inf inputs) and either nothing was
    taken yet, or x̃ > best (strict: the first maximum stays, MAXPOOL-TIE-1), or x̃ is NaN while
    best is not (the first NaN of the window stays, MAXPOOL-NAN-1).
    """
    x_tilde = pad(x, _buffer_pads(params), value=-np.inf)
    out_shape = params.output_shape
    best = np.full(out_shape, -np.inf)
    index = np.zeros(out_shape, dtype=np.int64)
    chosen_tap = np.zeros(out_shape, dtype=np.int64)
    found = np.zeros(out_shape[2:], dtype=bool)  # depends on the window only, not on (n, c)
    for t, q in enumerate(taps(params.kernel_size)):
        x_q = x_tilde[_tap_view(x_tilde, params, q)]
        u = _tap_windows(params, q)
        real = inside(u, params.input_shape[2:])
        with np.errstate(invalid="ignore"):
            take = real & (~found | (x_q > best) | (np.isnan(x_q) & ~np.isnan(best)))
        best = np.where(take, x_q, best)
        index = np.where(take, flat_index(u, params.input_shape[2:]), index)
        chosen_tap = np.where(take, t, chosen_tap)
        found |= real
    return best, index, chosen_tap


def max_pool(x: np.ndarray, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
    """y[n, c, p] = max_{q : 0 ≤ u < n} x[n, c, u],  u = p·s − p_b + q·d;  indices[n, c, p] = the flat u

    (MAXPOOL-DEF-1): taps outside the input never win. A window holding a NaN gives NaN and the
    index of its first NaN (MAXPOOL-NAN-1); among equal maxima the first in row-major window order
    wins (MAXPOOL-TIE-1); indices are flat row-major into the unpadded plane (MAXPOOL-INDEX-1).

    Returns (y float64, indices int64), both (N, C, *o).

    >>> from convspec.spec import MaxPoolParams
    >>> x = np.array([[[3.0, 1, 3, 3, np.nan]]])
    >>> max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=3, stride=2, padding=1))
    (array([[[ 3.,  3., nan]]]), array([[[0, 2, 4]]]))
    """
    check_arrays("max_pool", params, {"x": x})
    y, index, _ = _max_pool_select(np.asarray(x, dtype=np.float64), params)
    return y, index


def max_pool_backward(x: np.ndarray, dy: np.ndarray, params: MaxPoolParams) -> np.ndarray:
    """dx[n, c, u] = Σ_{p : indices[n, c, p] = u} dy[n, c, p]

    (MAXPOOL-GRAD-1): each dy is routed to the element its window selected (:func:`max_pool`) and
    accumulated where windows overlap; written as the scatter-add adjoint, tap by tap, into the
    padded buffer, then cropped.

    Returns dx, float64 (N, C, *S).

    >>> from convspec.spec import MaxPoolParams
    >>> x = np.array([[[3.0, 1, 3, 3, np.nan]]])
    >>> max_pool_backward(x, np.array([[[1.0, 10, 100]]]), MaxPoolParams(input_shape=x.shape, kernel_size=3,
    ...                                                                  stride=2, padding=1))
    array([[[  1.,   0.,  10.,   0., 100.]]])
    """
    check_arrays("max_pool_backward", params, {"x": x, "dy": dy})
    dy = np.asarray(dy, dtype=np.float64)
    _, _, chosen_tap = _max_pool_select(np.asarray(x, dtype=np.float64), params)
    pads = _buffer_pads(params)
    dx_tilde = pad(np.zeros(params.input_shape), pads)
    for t, q in enumerate(taps(params.kernel_size)):
        dx_tilde[_tap_view(dx_tilde, params, q)] += np.where(chosen_tap == t, dy, 0.0)
    return fold(dx_tilde, pads)


# --------------------------------------------------------------------------------------------
# avg pool


def _divisor(params: AvgPoolParams) -> np.ndarray | float:
    """divisor[p] = Π_i count_i(p_i): divisor_override if given; else the taps u = p·s − p_b + q·d
    inside [−p_b, n + p_a) (count_include_pad: padding counts, a ceil-mode overhang does not), or
    inside [0, n) (AVGPOOL-DEF-1)."""
    if params.divisor_override is not None:
        return float(params.divisor_override)
    counts = []
    for n, k, s, d, (before, after), o in zip(
        params.input_shape[2:], params.kernel_size, params.stride, params.dilation, params.pads,
        params.output_shape[2:],
    ):
        u = np.arange(o)[:, None] * s - before + np.arange(k)[None, :] * d  # (window, tap)
        low, high = (-before, n + after) if params.count_include_pad else (0, n)
        counts.append(((u >= low) & (u < high)).sum(axis=1).astype(np.float64))
    return functools.reduce(np.multiply, np.ix_(*counts))


def avg_pool(x: np.ndarray, params: AvgPoolParams) -> np.ndarray:
    """y[n, c, p] = (Σ_{q : 0 ≤ u < n} x[n, c, u]) / divisor[p],  u = p·s − p_b + q·d

    (AVGPOOL-DEF-1). divisor = divisor_override if given; else, per dim, the number of taps inside
    [−p_b, n + p_a) with count_include_pad (a ceil-mode overhang past p_a does not count) or inside
    [0, n) without, multiplied over the dims. NaN and ±inf propagate.

    Returns y, float64 (N, C, *o).

    >>> from convspec.spec import AvgPoolParams
    >>> x = np.array([[[1.0, 2, 3, 4, 5]]])
    >>> avg_pool(x, AvgPoolParams(input_shape=x.shape, kernel_size=2, padding=1, count_include_pad=True))
    array([[[0.5, 2.5, 4.5]]])
    """
    check_arrays("avg_pool", params, {"x": x})
    x_tilde = pad(np.asarray(x, dtype=np.float64), _buffer_pads(params))
    total = np.zeros(params.output_shape)
    for q in taps(params.kernel_size):
        total += x_tilde[_tap_view(x_tilde, params, q)]
    return total / _divisor(params)


def avg_pool_backward(x: np.ndarray, dy: np.ndarray, params: AvgPoolParams) -> np.ndarray:
    """dx[n, c, u] = Σ_{(p, q) : p·s − p_b + q·d = u} dy[n, c, p] / divisor[p]

    (AVGPOOL-GRAD-1): each dy / divisor is spread over the input elements of its window; the
    scatter-add adjoint of :func:`avg_pool`, tap by tap, into the padded buffer, then cropped.

    Returns dx, float64 (N, C, *S).

    >>> from convspec.spec import AvgPoolParams
    >>> x = np.zeros((1, 1, 5))
    >>> avg_pool_backward(x, np.array([[[1.0, 2, 3]]]), AvgPoolParams(input_shape=x.shape, kernel_size=2,
    ...                                                              padding=1, count_include_pad=True))
    array([[[0.5, 1. , 1. , 1.5, 1.5]]])
    """
    check_arrays("avg_pool_backward", params, {"x": x, "dy": dy})
    share = np.asarray(dy, dtype=np.float64) / _divisor(params)
    pads = _buffer_pads(params)
    dx_tilde = pad(np.zeros(params.input_shape), pads)
    for q in taps(params.kernel_size):
        dx_tilde[_tap_view(dx_tilde, params, q)] += share
    return fold(dx_tilde, pads)


# --------------------------------------------------------------------------------------------
# Lp pool (ONNX LpPool)


def _lp_sum(x: np.ndarray, params: LpPoolParams) -> np.ndarray:
    """S[n, c, p] = Σ_{q : 0 ≤ u < n} |x[n, c, u]|^p; padding taps add 0 (LPPOOL-DEF-1)."""
    x_tilde = pad(np.abs(np.asarray(x, dtype=np.float64)) ** params.p, _buffer_pads(params))
    total = np.zeros(params.output_shape)
    for q in taps(params.kernel_size):
        total += x_tilde[_tap_view(x_tilde, params, q)]
    return total


def lp_pool(x: np.ndarray, params: LpPoolParams) -> np.ndarray:
    """y[n, c, p] = (Σ_{q : 0 ≤ u < n} |x[n, c, u]|^p)^(1/p),  u = p·s − p_b + q·d

    (LPPOOL-DEF-1, ONNX LpPool). Padding taps contribute 0; NaN propagates, ±inf gives +inf.

    Returns y, float64 (N, C, *o).

    >>> from convspec.spec import LpPoolParams
    >>> x = np.array([[[3.0, -4, 0, 1]]])
    >>> lp_pool(x, LpPoolParams(input_shape=x.shape, kernel_size=2))
    array([[[5., 1.]]])
    """
    check_arrays("lp_pool", params, {"x": x})
    return _lp_sum(x, params) ** (1.0 / params.p)


def lp_pool_backward(x: np.ndarray, dy: np.ndarray, params: LpPoolParams) -> np.ndarray:
    """dx[n, c, u] = Σ_{(p, q) : p·s − p_b + q·d = u} dy[n, c, p] · g(x[n, c, u], y[n, c, p])

    (LPPOOL-GRAD-1), with g(x, y) = sign(x)·|x|^(p−1) / y^(p−1), the partial derivative of
    y = (Σ|x|^p)^(1/p), and g = 0 where y = 0 (the subgradient 0 at the norm's kink; for p = 1
    it is sign(x), with sign(0) = 0). The scatter-add adjoint, tap by tap, then cropped.

    Returns dx, float64 (N, C, *S).

    >>> from convspec.spec import LpPoolParams
    >>> x = np.array([[[3.0, -4, 0, 0]]])
    >>> lp_pool_backward(x, np.array([[[10.0, 1]]]), LpPoolParams(input_shape=x.shape, kernel_size=2))
    array([[[ 6., -8.,  0.,  0.]]])
    """
    check_arrays("lp_pool_backward", params, {"x": x, "dy": dy})
    p = params.p
    x64 = np.asarray(x, dtype=np.float64)
    y = _lp_sum(x64, params) ** (1.0 / p)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(y == 0, 0.0, np.asarray(dy, dtype=np.float64) / y ** (p - 1))
    pads = _buffer_pads(params)
    dx_tilde = pad(np.zeros(params.input_shape), pads)
    for q in taps(params.kernel_size):
        dx_tilde[_tap_view(dx_tilde, params, q)] += share
    # every tap of one window shares dy/y^(p−1); the factor of element u is sign(x_u)|x_u|^(p−1)
    # (|x|^0 = 1 for p = 1, sign(0) = 0 keeps the zero elements at 0).
    return fold(dx_tilde, pads) * (np.sign(x64) * np.abs(x64) ** (p - 1))
