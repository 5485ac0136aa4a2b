"""Linearity and adjointness: linearity in x and in w, the bias shift, <conv(u), v> =
<u, conv_transpose(v)>, and gradient = transpose.
"""

from __future__ import annotations

import numpy as np

from ...spec import ConvParams, ConvTransposeParams, Params
from .base import NotApplicable, PropertyCheck, channel_shape, derive, dot_product, out_channels, weighted

# -- 1, 2: linearity -------------------------------------------------------------------------------

def check_linearity(check: PropertyCheck, which: str) -> None:
    """op(a₁ + a₂) = op(a₁) + op(a₂) for ``which`` ∈ {x, w}, no bias, a₁, a₂ disjoint parts of a.

    a₁ + a₂ = a exactly in any dtype; the two sides differ by at most the three calls' bounds.
    """
    op, params = check.op, check.params
    arrays = check.arrays(finite=True)
    label = op
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        params, label = derive(params, bias_shape=None), f"{op} without bias"
        arrays["b"] = None
    check.require((op, params, label))
    whole = arrays[which]
    mask = check.rng.random(whole.shape) < 0.5
    zero = np.zeros_like(whole)
    parts = [np.where(mask, whole, zero), np.where(mask, zero, whole)]
    y = check.call(op, arrays, params, f"{op}({which})")["y"]
    total, budget = np.zeros(params.output_shape), check.budget(op, arrays, params, "y")
    for index, part in enumerate(parts, 1):
        split = {**arrays, which: part}
        total = total + check.call(op, split, params, f"{op}({which}{index})")["y"].astype(np.float64)
        budget = budget + check.budget(op, split, params, "y")
    check.agree("y", y, total, budget, f"{op}({which}1 + {which}2) = {op}({which}1) + {op}({which}2)")


# -- 3: bias shift -------------------------------------------------------------------------------

def check_bias_shift(check: PropertyCheck) -> None:
    """op(x, w, b) − op(x, w) = b[o] at every output position of channel o (CONV-DEF-1, CONVT-DEF-1)."""
    op, params = check.op, check.params
    arrays = check.arrays()
    channels = out_channels(params)
    with_bias = params if params.bias_shape is not None else derive(params, bias_shape=(channels,))
    b = arrays["b"] if arrays.get("b") is not None else check.random((channels,))
    without = derive(params, bias_shape=None)
    check.require((op, with_bias, f"{op} with bias"), (op, without, f"{op} without bias"))
    biased = {**arrays, "b": b}
    plain = {**arrays, "b": None}
    y = check.call(op, biased, with_bias, f"{op}(x, w, b)")["y"]
    y0 = check.call(op, plain, without, f"{op}(x, w)")["y"]
    shifted = y0.astype(np.float64) + np.asarray(b, np.float64).reshape(channel_shape(y0.ndim))
    budget = check.budget(op, biased, with_bias, "y") + check.budget(op, plain, without, "y")
    check.agree("y", y, shifted, budget, f"{op}(x, w, b) = {op}(x, w) + b")


# -- 4: adjoint and gradient = transpose ---------------------------------------------------------

def _transpose_of(params: ConvParams) -> ConvTransposeParams:
    """conv_transpose mapping conv's output shape back to its input shape (CONV-GRAD-1): same s, d,
    pads, groups, output_padding a = (n + p_b + p_a − d·(k − 1) − 1) mod s, weight read unchanged."""
    return ConvTransposeParams(
        input_shape=params.output_shape, weight_shape=params.weight_shape, stride=params.stride,
        padding=params.pads, output_padding=params.output_padding_for_input(), dilation=params.dilation,
        groups=params.groups)


def _conv_of(params: ConvTransposeParams) -> ConvParams:
    """The conv whose adjoint ``params`` is (CONVT-DEF-1): input of conv_transpose's output shape."""
    return ConvParams(input_shape=params.output_shape, weight_shape=params.weight_shape, stride=params.stride,
                      padding=params.pads, dilation=params.dilation, groups=params.groups)


def _crop(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The first shape[i] entries along every axis (CONVT-DEF-1: keep the conv's first n outputs)."""
    return array[tuple(slice(0, n) for n in shape)]


def _adjoint_pair(check: PropertyCheck) -> tuple[ConvParams, ConvTransposeParams]:
    params = check.params
    if isinstance(params, ConvParams):
        if params.padding_mode != "zeros":
            raise NotApplicable("the adjoint identity is stated for zeros padding")
        conv = derive(params, bias_shape=None) if params.bias_shape is not None else params
        return conv, _transpose_of(conv)
    transpose = derive(params, bias_shape=None) if params.bias_shape is not None else params
    return _conv_of(transpose), transpose


def check_adjoint(check: PropertyCheck) -> None:
    """⟨C u, v⟩ = ⟨u, Cᵀ v⟩ with C = conv (first n outputs) and Cᵀ = conv_transpose, same weight
    (CONVT-DEF-1).

    Each side is a float64 inner product of backend outputs with exact inputs. With |C u − (C u)*|
    ≤ β_C and |Cᵀ v − (Cᵀ v)*| ≤ β_T elementwise and ⟨(C u)*, v⟩ = ⟨u, (Cᵀ v)*⟩ exactly,
    |⟨C u, v⟩ − ⟨u, Cᵀ v⟩| ≤ Σ β_C·|v| + Σ |u|·β_T + the two dots' float64 rounding.
    """
    conv, transpose = _adjoint_pair(check)
    arrays = check.arrays(finite=True)
    w = arrays["w"]
    check.require(("conv", conv, "conv (no bias)"), ("conv_transpose", transpose, "conv_transpose (its adjoint)"))
    if check.op == "conv":
        u, v = arrays["x"], check.random(transpose.input_shape)
    else:
        u, v = check.random(conv.input_shape), arrays["x"]
    left = {"x": u, "w": w, "b": None}
    right = {"x": v, "w": w, "b": None}
    cu = _crop(check.call("conv", left, conv, "conv(u)")["y"], transpose.input_shape)
    ctv = check.call("conv_transpose", right, transpose, "conv_transpose(v)")["y"]
    beta_c = check.budget("conv", left, conv, "y").apply(lambda a: _crop(a, transpose.input_shape))
    beta_t = check.budget("conv_transpose", right, transpose, "y")
    lhs, lhs_rounding = dot_product(cu, v)
    rhs, rhs_rounding = dot_product(u, ctv)
    bound = weighted(beta_c, v) + weighted(beta_t, u) + lhs_rounding + rhs_rounding
    check.agree_scalar("<conv(u), v>", lhs, rhs, bound, "<conv(u), v> = <u, conv_transpose(v)>")


def check_gradient_is_transpose(check: PropertyCheck) -> None:
    """conv_backward's dx = conv_transpose(dy) (CONV-GRAD-1, zeros padding); conv_transpose_backward's
    dx = conv(dy), first n outputs (CONVT-GRAD-1). Both sides within their own bounds."""
    op, params = check.op, check.params
    arrays = check.arrays()
    w, dy = arrays["w"], arrays["dy"]
    other: Params
    if isinstance(params, ConvParams):
        if params.padding_mode != "zeros":
            raise NotApplicable("dx = conv_transpose(dy) holds for zeros padding")
        other_op, other = "conv_transpose", _transpose_of(derive(params, bias_shape=None))
    else:
        other_op, other = "conv", _conv_of(derive(params, bias_shape=None))
    check.require((op, params, op), (other_op, other, f"{other_op} of dy"))
    dx = check.call(op, arrays, params, op)["dx"]
    inputs = {"x": dy, "w": w, "b": None}
    y = _crop(check.call(other_op, inputs, other, f"{other_op}(dy)")["y"].astype(np.float64), params.input_shape)
    budget = check.budget(op, arrays, params, "dx") + check.budget(other_op, inputs, other, "y").apply(
        lambda a: _crop(a, params.input_shape))
    check.agree("dx", dx, y, budget, f"dx = {other_op}(dy)")
