"""convspec.reference — the float64 oracle: forward and gradients of every op, any spatial rank.

Functions take arrays of any spec dtype (float16, bfloat16, float32, float64) and the spec's
parameter object, with the backend calling convention (``convspec.backends.base.Backend``); they
check the arrays against the parameters first (``convspec.spec.check_arrays``), compute in float64
and return float64 arrays (max-pool indices int64). Inputs are never modified.

:func:`evaluate` dispatches by op name; :func:`magnitude` gives ``mag`` of the error model
(ERR-BOUND-1); :func:`zero_extension_nan` where a gradient may be NaN in place of its strict
value (CONV-GRAD-1, CONVT-GRAD-1). Imports only ``convspec.spec``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..spec import OPS, Params, check_arrays
from .conv import (
    conv,
    conv_backward,
    conv_backward_zero_extension_nan,
    conv_transpose,
    conv_transpose_backward,
    conv_transpose_backward_zero_extension_nan,
)
from .pool import avg_pool, avg_pool_backward, lp_pool, lp_pool_backward, max_pool, max_pool_backward

__all__ = [
    "FUNCTIONS",
    "avg_pool",
    "avg_pool_backward",
    "conv",
    "conv_backward",
    "conv_transpose",
    "conv_transpose_backward",
    "evaluate",
    "lp_pool",
    "lp_pool_backward",
    "magnitude",
    "max_pool",
    "max_pool_backward",
    "zero_extension_nan",
]

#: op name of ``convspec.spec.OPS`` -> the reference function computing it.
FUNCTIONS: Mapping[str, Callable[..., Any]] = {
    "conv": conv,
    "conv_backward": conv_backward,
    "conv_transpose": conv_transpose,
    "conv_transpose_backward": conv_transpose_backward,
    "max_pool": max_pool,
    "max_pool_backward": max_pool_backward,
    "avg_pool": avg_pool,
    "avg_pool_backward": avg_pool_backward,
    "lp_pool": lp_pool,
    "lp_pool_backward": lp_pool_backward,
}


def evaluate(op: str, arrays: Mapping[str, np.ndarray | None], params: Params) -> dict[str, np.ndarray | None]:
    """outputs = op(*arrays[OPS[op].inputs], params), keyed by the names of ``OPS[op].outputs``.

    A missing input (an absent bias) is None; so is ``db`` without a bias.

    >>> from convspec.spec import MaxPoolParams
    >>> x = np.array([[[1.0, 5, 2, 2]]])
    >>> evaluate("max_pool", {"x": x}, MaxPoolParams(input_shape=x.shape, kernel_size=2))
    {'y': array([[[5., 2.]]]), 'indices': array([[[1, 2]]])}
    """
    if op not in FUNCTIONS:
        raise KeyError(f"unknown op {op!r}; ops are {sorted(FUNCTIONS)}")
    info = OPS[op]
    result = FUNCTIONS[op](*(arrays.get(name) for name in info.inputs), params)
    outputs = (result,) if len(info.outputs) == 1 else tuple(result)
    return dict(zip(info.outputs, outputs))


def magnitude(op: str, arrays: Mapping[str, np.ndarray | None], params: Params) -> dict[str, np.ndarray | None]:
    """mag = op(|x|, |w|, |b|, |dy|) for a linear op; |y| and max_pool_backward(x, |dy|) for max pool.

    The ``mag`` of the error bound ERR-BOUND-1, one float64 array per output of ``OPS[op].outputs``;
    every term of the sum is counted with its absolute value, so mag ≥ |op(…)|. max pool selects
    and does not sum: mag of y is |y|, of its gradient the routed |dy|; its indices must match
    exactly (ERR-EXACT-1) and get mag 0.

    >>> from convspec.spec import ConvParams
    >>> x, w = np.array([[[1.0, -2, 3]]]), np.array([[[1.0, 1]]])
    >>> magnitude("conv", {"x": x, "w": w}, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    {'y': array([[[3., 5.]]])}
    """
    check_arrays(op, params, dict(arrays))
    info = OPS[op]
    absolute = {name: None if a is None else np.abs(np.asarray(a, dtype=np.float64)) for name, a in arrays.items()}
    if info.linear:
        return evaluate(op, absolute, params)
    if op == "max_pool":
        y, indices = FUNCTIONS[op](arrays["x"], params)
        return {"y": np.abs(y), "indices": np.zeros(indices.shape)}
    x = np.asarray(arrays["x"], dtype=np.float64)  # the routing depends on x itself, not on |x|
    return {"dx": FUNCTIONS[op](x, absolute["dy"], params)}


#: gradient op -> where its zero-extended form may be NaN (CONV-GRAD-1, CONVT-GRAD-1).
_ZERO_EXTENSION_NAN: Mapping[str, Callable[..., Any]] = {
    "conv_backward": conv_backward_zero_extension_nan,
    "conv_transpose_backward": conv_transpose_backward_zero_extension_nan,
}


def zero_extension_nan(op: str, arrays: Mapping[str, np.ndarray | None], params: Params) -> dict[str, np.ndarray | None]:
    """Per output of ``op``, True where NaN is accepted in place of the strict value, or None.

    The reference computes every sum over its terms only (strict). A gradient formulation that
    multiplies zeros which are not terms (zero-stuffed or zero-extended dy, col2im over the
    uncropped output) gives the same values, except NaN where such a zero meets a NaN or an
    infinity; CONV-GRAD-1 and CONVT-GRAD-1 accept both. Only conv_backward and
    conv_transpose_backward have such elements; every other op gets None for every output.

    >>> from convspec.spec import ConvParams
    >>> x, w = np.array([[[1.0, 2, np.inf]]]), np.ones((1, 1, 2))
    >>> params = ConvParams(input_shape=x.shape, weight_shape=w.shape, stride=2)
    >>> zero_extension_nan("conv_backward", {"x": x, "w": w, "dy": np.ones((1, 1, 1))}, params)["dw"]
    array([[[ True,  True]]])
    """
    info = OPS[op]
    if op not in _ZERO_EXTENSION_NAN:
        return dict.fromkeys(info.outputs)
    masks = _ZERO_EXTENSION_NAN[op](*(arrays.get(name) for name in info.inputs), params)
    return dict(zip(info.outputs, masks))
