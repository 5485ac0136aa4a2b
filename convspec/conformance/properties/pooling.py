"""Pooling from its definition: avg_pool as a per-channel conv divided by its divisor, max_pool
as the maximum over each listed window (values, indices, ties, NaN).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ...spec import AvgPoolParams, ConvParams, InternalError, MaxPoolParams, effective_kernel
from ..compare import Comparison, compare
from ..context import window_members
from .base import Budget, PropertyCheck, violation

# -- 11: avg pool as a conv ------------------------------------------------------------------------

def avg_pool_divisor(params: AvgPoolParams) -> np.ndarray:
    """D(p) of AVGPOOL-DEF-1 for every output position p, in integer arithmetic, shape o.

    D(p) = divisor_override if given, else Π_i #{j < k_i : lo_i ≤ p_i·s_i − p_b,i + j·d_i < hi_i}
    with [lo, hi) = [−p_b, n + p_a) if count_include_pad (a ceil-mode overhang past the right
    padding does not count) and [0, n) otherwise.

    >>> avg_pool_divisor(AvgPoolParams(input_shape=(1, 1, 5), kernel_size=2, ceil_mode=True,
    ...                                count_include_pad=True)).tolist()
    [2, 2, 1]
    """
    out = params.output_shape[2:]
    if params.divisor_override is not None:
        return np.full(out, params.divisor_override, dtype=np.int64)
    divisor = np.ones((), dtype=np.int64)
    for n, o, k, s, d, (before, after) in zip(params.input_shape[2:], out, params.kernel_size, params.stride,
                                               params.dilation, params.pads):
        lo, hi = (-before, n + after) if params.count_include_pad else (0, n)
        t = (np.arange(o, dtype=np.int64) * s - before)[:, None] + np.arange(k, dtype=np.int64)[None, :] * d
        divisor = np.multiply.outer(divisor, ((t >= lo) & (t < hi)).sum(axis=1))
    return divisor.reshape(out)


def check_avg_pool_is_conv(check: PropertyCheck) -> None:
    """avg_pool(x) = conv(x as (N·C, 1, *S), ones(1, 1, *k), zeros padding, same s, d, pads) / D
    (AVGPOOL-DEF-1), D from :func:`avg_pool_divisor`.

    A ceil-mode window overhanging the padded extent reads nothing there: the conv gets extra zero
    padding on the right, max(0, (o − 1)·s + d·(k − 1) + 1 − (n + p_b + p_a)), so it has o outputs.
    Bound: avg_pool's own + the conv's / D + u₆₄·|conv / D| (the float64 division).
    """
    params = check.params
    batch, channels = params.input_shape[:2]
    pads = tuple(
        (before, after + max(0, (o - 1) * s + effective_kernel(k, d) - (n + before + after)))
        for n, o, k, s, d, (before, after) in zip(params.input_shape[2:], params.output_shape[2:], params.kernel_size,
                                                  params.stride, params.dilation, params.pads))
    conv = ConvParams(input_shape=(batch * channels, 1) + params.input_shape[2:],
                      weight_shape=(1, 1) + params.kernel_size, stride=params.stride, padding=pads,
                      dilation=params.dilation)
    if conv.output_shape[2:] != params.output_shape[2:]:
        raise InternalError(f"avg_pool_is_conv: conv output {conv.output_shape} for pool output {params.output_shape}")
    check.require(("avg_pool", params, "avg_pool"), ("conv", conv, "conv with a ones kernel"))
    arrays = check.arrays()
    x = arrays["x"]
    inputs = {"x": x.reshape(conv.input_shape), "w": np.ones(conv.weight_shape, dtype=x.dtype), "b": None}
    y = check.call("avg_pool", arrays, params, "avg_pool")["y"]
    sums = check.call("conv", inputs, conv, "conv(x, ones)")["y"].astype(np.float64).reshape(params.output_shape)
    divisor = avg_pool_divisor(params).astype(np.float64)
    conv_budget = check.budget("conv", inputs, conv, "y")
    budget = check.budget("avg_pool", arrays, params, "y") + Budget(
        conv_budget.bound.reshape(params.output_shape) / divisor, conv_budget.special.reshape(params.output_shape))
    check.agree("y", y, sums / divisor, budget, "avg_pool(x) = conv(x, ones) / D")


# -- 12: max pool from its definition --------------------------------------------------------------

def window_max(x: Any, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
    """y[n, c, p] = max over the window's taps t_j = p·s − p_b + j·d inside [0, n) (MAXPOOL-DEF-1),
    NaN if one of them is NaN (MAXPOOL-NAN-1); index = flat row-major index of the first maximum in
    row-major tap order (MAXPOOL-TIE-1, MAXPOOL-INDEX-1), unspecified for NaN windows.

    Computed directly from the definition: one gather per kernel tap, vectorised over positions.

    >>> y, index = window_max(np.array([[[3.0, 1, 3, 2]]]), MaxPoolParams(input_shape=(1, 1, 4), kernel_size=3,
    ...                                                                    stride=1, padding=1))
    >>> y.tolist(), index.tolist()
    ([[[3.0, 3.0, 3.0, 3.0]]], [[[0, 0, 2, 2]]])
    """
    values = np.asarray(x).astype(np.float64)
    spatial, out, rank = params.input_shape[2:], params.output_shape[2:], params.rank
    plane_strides = [math.prod(spatial[i + 1:]) for i in range(rank)]
    best = np.full(params.output_shape, np.nan)
    index = np.full(params.output_shape, -1, dtype=np.int64)
    have = np.zeros(out, dtype=bool)
    has_nan = np.zeros(params.output_shape, dtype=bool)
    for j in itertools.product(*(range(k) for k in params.kernel_size)):
        coords, inside = [], np.ones(out, dtype=bool)
        for i, (n, o, s, d, (before, _)) in enumerate(zip(spatial, out, params.stride, params.dilation, params.pads)):
            shape = [1] * rank
            shape[i] = o
            t = (np.arange(o, dtype=np.int64) * s - before + j[i] * d).reshape(shape)
            inside = inside & (t >= 0) & (t < n)
            coords.append(np.clip(t, 0, n - 1))
        value = values[(slice(None), slice(None)) + tuple(coords)]
        flat = sum(c * stride for c, stride in zip(coords, plane_strides))
        has_nan |= inside & np.isnan(value)
        take = inside & (~have | (value > best))
        best = np.where(take, value, best)
        index = np.where(take, flat, index)
        have = have | inside
    return np.where(has_nan, np.nan, best), index


def check_max_pool_is_window_max(check: PropertyCheck) -> None:
    """y = the window maximum computed by the check from MAXPOOL-DEF-1 (exactly, signed zeros and
    NaN included); each index lies in its window (MAXPOOL-INDEX-1), x at the index is y (a NaN for a
    NaN window, MAXPOOL-NAN-1), and is the first maximum in row-major window order (MAXPOOL-TIE-1)."""
    params = check.params
    check.require(("max_pool", params, "max_pool"))
    arrays = check.arrays()
    x = arrays["x"]
    outputs = check.call("max_pool", arrays, params, "max_pool")
    want_y, want_index = window_max(x, params)
    check.comparisons.append(_rename(compare("y", outputs["y"], want_y, None, k=1, dtype=check.dtype, exact=True,
                                             signed_zeros=True), "MAXPOOL-DEF-1",
                                     "y = max over the window's taps inside the input"))
    indices = outputs.get("indices")
    if indices is None:
        check.notes.append("indices not returned: MAXPOOL-INDEX-1 not checked")
        return
    got = np.asarray(indices)
    if not np.issubdtype(got.dtype, np.integer):
        check.comparisons.append(Comparison("indices", int(got.size), violations=max(int(got.size), 1),
                                            clause="HYGIENE-2", rule=f"indices must be integers, got {got.dtype}"))
        return
    got = got.astype(np.int64)
    member = window_members(params, got)
    check.comparisons.append(_mask_comparison("indices", ~member, got, want_index, "MAXPOOL-INDEX-1",
                                              "the index lies in its window (flat, unpadded plane)"))
    if not member.all():
        return
    # explicit sizes, not -1: N = 0 is valid (LAYOUT-1)
    planes = np.asarray(x).astype(np.float64).reshape(params.input_shape[:2] + (math.prod(params.input_shape[2:]),))
    flat = got.reshape(got.shape[:2] + (math.prod(got.shape[2:]),))
    picked = np.take_along_axis(planes, flat, axis=-1).reshape(got.shape)
    y64 = np.asarray(outputs["y"]).astype(np.float64)
    same = (picked == y64) & (np.signbit(picked) == np.signbit(y64)) | np.isnan(picked) & np.isnan(y64)
    check.comparisons.append(_mask_comparison("x[indices]", ~same, picked, y64, "MAXPOOL-INDEX-1",
                                              "x at the returned index equals the returned y"))
    tie = ~np.isnan(want_y) & (got != want_index)
    check.comparisons.append(_mask_comparison("indices", tie, got, want_index, "MAXPOOL-TIE-1",
                                              "the first maximum in row-major window order"))


def _rename(comparison: Comparison, clause: str, rule: str) -> Comparison:
    if not comparison.passed and comparison.clause.startswith("ERR-"):
        nan = comparison.worst is not None and math.isnan(comparison.worst.ref)
        comparison.clause = "MAXPOOL-NAN-1" if nan else clause
        comparison.rule = f"{rule}: {comparison.rule}"
    return comparison


def _mask_comparison(name: str, bad: np.ndarray, got: np.ndarray, want: np.ndarray, clause: str,
                     rule: str) -> Comparison:
    if bad.any():
        return violation(name, bad, got.astype(np.float64), want.astype(np.float64), clause, rule)
    return Comparison(name, int(bad.size), exact=int(bad.size))
