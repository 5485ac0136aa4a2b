"""Gradients by finite differences of the backend's own forward, in float64.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...spec import OPS, ConvParams, ConvTransposeParams, InternalError, expected_shapes
from .base import FD_GRID, FD_STEP, U64, Abort, PropertyCheck, dot_product, weighted

# -- 13: finite differences ----------------------------------------------------------------------

def check_finite_differences(check: PropertyCheck) -> None:
    """⟨g, v⟩ = (L(a + h·v) − L(a − h·v)) / 2h,  L(a) = ⟨f(…, a, …), dy⟩, for each gradient g = ∂L/∂a
    of the backward op (dx; dw and db for the convs), f the backend's own forward, in float64.

    Data (drawn by the check): x, w, b, dy and the direction v uniform on the grid 2⁻²⁰·ℤ ∩ [−1, 1];
    h = 2⁻⁴, so h·v and a ± h·v are exact. Max pool takes x = a permutation of the integers (no ties,
    values ≥ 1 apart) and |h·v| ≤ 2⁻⁴, so no window's argmax moves.

    Derivation. f is affine in a (conv, conv_transpose, avg pool; max pool on the fixed argmax
    pattern), so f(a + h·v) − f(a − h·v) = 2h·J·v exactly, and ⟨J·v, dy⟩ = ⟨v, Jᵀ·dy⟩ = ⟨v, g*⟩.
    The backend's outputs carry errors |F± − f(a ± h·v)| ≤ β± (ERR-BOUND-1 of the forward; 0 for max
    pool, which selects exactly, ERR-EXACT-1) and |g − g*| ≤ β_g (ERR-BOUND-1 of the gradient). So

        |⟨g, v⟩ − D| ≤ Σ β_g·|v| + (Σ (β₊ + β₋)·|dy| + ρ₊ + ρ₋ + u₆₄·|d₊ − d₋|) / 2h + ρ_g,

    D = (d₊ − d₋)/2h with d± = ⟨F±, dy⟩, ρ the float64 rounding of each dot (α·(L + 1)·u₆₄·Σ|a·b|);
    the division by 2h is exact. No free tolerance enters.
    """
    op, params = check.op, check.params
    forward = OPS[op].forward
    if forward is None:
        raise InternalError(f"finite differences of {op}: not a gradient op")
    check.dtype = "float64"
    if "float64" not in check.ctx.caps.dtypes:
        raise Abort("unsupported", "finite differences need float64")
    check.require((op, params, op), (forward, params, f"{forward} (the forward)"))

    def grid(shape: tuple[int, ...]) -> np.ndarray:
        return np.round(check.rng.uniform(-1.0, 1.0, shape) / FD_GRID) * FD_GRID

    shapes = expected_shapes(forward, params)
    inputs: dict[str, Any] = {"x": grid(params.input_shape), "dy": grid(params.output_shape)}
    if op == "max_pool_backward":
        size = math.prod(params.input_shape)
        inputs["x"] = (check.rng.permutation(size) - size // 2).astype(np.float64).reshape(params.input_shape)
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        inputs["w"] = grid(params.weight_shape)
        inputs["b"] = None if params.bias_shape is None else grid(params.bias_shape)
    gradients = check.call(op, inputs, params, op)
    dy = inputs["dy"]
    forward_inputs: dict[str, Any] = {name: inputs.get(name) for name in OPS[forward].inputs}
    for name, key in (("dx", "x"), ("dw", "w"), ("db", "b")):
        shape = shapes.get(key)
        if name not in OPS[op].outputs or shape is None:
            continue
        v = grid(shape)
        sides = []
        for sign in (1.0, -1.0):
            moved = {**forward_inputs, key: forward_inputs[key] + sign * FD_STEP * v}
            y = check.call(forward, moved, params, f"{forward}({key} {'+' if sign > 0 else '-'} h*v)")["y"]
            if op == "max_pool_backward":
                beta = 0.0  # max pool selects: exact (ERR-EXACT-1)
            else:
                beta = weighted(check.budget(forward, moved, params, "y"), dy)
            value, rounding = dot_product(y, dy)
            sides.append((value, rounding + beta))
        (plus, err_plus), (minus, err_minus) = sides
        difference = (plus - minus) / (2 * FD_STEP)
        g = gradients[name]
        lhs, lhs_rounding = dot_product(g, v)
        bound = (weighted(check.budget(op, inputs, params, name), v) + lhs_rounding
                 + (err_plus + err_minus + U64 * abs(plus - minus)) / (2 * FD_STEP))
        check.agree_scalar(f"<{name}, v>", lhs, difference, bound,
                           f"<{name}, v> = (L({key} + h*v) - L({key} - h*v)) / 2h")
