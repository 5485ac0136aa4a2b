"""Geometry: grouped = concatenated ungrouped, dilation = zero-stuffed kernel, stride = subsampled
stride-1 output, 'same'/'valid' = the explicit pads, rank lift, and batch/channel permutation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...spec import ConvParams, ConvTransposeParams, Params, PoolParams, effective_kernel
from .base import Budget, NotApplicable, PropertyCheck, derive, derive_or_skip, out_channels

# -- 5: groups -------------------------------------------------------------------------------------

def check_grouped_concat(check: PropertyCheck) -> None:
    """op with groups G = concat over g of the ungrouped op on group g's channel slices
    (CONV-GROUPS-1): x[:, g·C_g:(g+1)·C_g], the weight rows of group g, b[g·M:(g+1)·M]."""
    op, params = check.op, check.params
    if params.groups == 1:
        raise NotApplicable("groups = 1")
    arrays = check.arrays()
    x, w, b = arrays["x"], arrays["w"], arrays.get("b")
    groups = params.groups
    c_g, m = params.input_shape[1] // groups, out_channels(params) // groups
    per_group = []
    for g in range(groups):
        rows = slice(g * m, (g + 1) * m) if op == "conv" else slice(g * c_g, (g + 1) * c_g)
        w_g = np.ascontiguousarray(w[rows])
        inputs = {"x": np.ascontiguousarray(x[:, g * c_g:(g + 1) * c_g]), "w": w_g,
                  "b": None if b is None else np.ascontiguousarray(b[g * m:(g + 1) * m])}
        group_params = derive(params, input_shape=(params.input_shape[0], c_g) + params.input_shape[2:],
                               weight_shape=w_g.shape, groups=1,
                               bias_shape=None if b is None else (m,))
        per_group.append((inputs, group_params))
    check.require((op, params, f"{op} with groups={groups}"),
                  *[(op, p, f"{op} of group {g} (groups=1)") for g, (_, p) in enumerate(per_group)])
    y = check.call(op, arrays, params, f"{op} (groups={groups})")["y"]
    ys = [check.call(op, inputs, p, f"{op} of group {g}")["y"].astype(np.float64)
          for g, (inputs, p) in enumerate(per_group)]
    budget = check.budget(op, arrays, params, "y") + Budget.concatenate(
        [check.budget(op, inputs, p, "y") for inputs, p in per_group], axis=1)
    check.agree("y", y, np.concatenate(ys, axis=1), budget, f"{op}(groups={groups}) = concat of per-group {op}")


# -- 6: dilation -----------------------------------------------------------------------------------

def check_dilation_zero_stuffed(check: PropertyCheck) -> None:
    """conv with dilation d = conv with dilation 1 and kernel w′[q·d] = w[q], zeros between taps
    (CONV-DEF-1: the sum over q of w[q]·x̃[p·s + q·d])."""
    params = check.params
    if all(d == 1 for d in params.dilation):
        raise NotApplicable("dilation 1")
    arrays = check.arrays(finite=True)
    w = arrays["w"]
    stuffed_kernel = tuple(effective_kernel(k, d) for k, d in zip(params.kernel_size, params.dilation))
    stuffed = np.zeros(w.shape[:2] + stuffed_kernel, dtype=w.dtype)
    stuffed[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in params.dilation)] = w
    plain = derive(params, weight_shape=stuffed.shape, dilation=1, padding=params.pads)
    check.require(("conv", params, "conv"), ("conv", plain, "conv with the zero-stuffed kernel, dilation 1"))
    inputs = {**arrays, "w": stuffed}
    y = check.call("conv", arrays, params, "conv (dilated)")["y"]
    y1 = check.call("conv", inputs, plain, "conv (stuffed kernel)")["y"]
    budget = check.budget("conv", arrays, params, "y") + check.budget("conv", inputs, plain, "y")
    check.agree("y", y, y1.astype(np.float64), budget, "conv(dilation d) = conv(zero-stuffed kernel, dilation 1)")


# -- 7: stride -------------------------------------------------------------------------------------

def check_stride_subsampled(check: PropertyCheck) -> None:
    """y_s[p] = y_1[p·s]: the stride-s output is the stride-1 output (same pads) subsampled
    (CONV-DEF-1, MAXPOOL-DEF-1, AVGPOOL-DEF-1: window p starts at p·s − p_b). Floor mode only."""
    op, params = check.op, check.params
    if all(s == 1 for s in params.stride):
        raise NotApplicable("stride 1")
    if isinstance(params, PoolParams) and params.ceil_mode:
        raise NotApplicable("ceil mode changes the window count")
    unit = derive_or_skip(params, stride=1, padding=params.pads)
    check.require((op, params, f"{op} with stride {params.stride}"), (op, unit, f"{op} with stride 1"))
    arrays = check.arrays()
    strided = check.call(op, arrays, params, f"{op} (stride {params.stride})")
    full = check.call(op, arrays, unit, f"{op} (stride 1)")
    picks = (slice(None), slice(None)) + tuple(slice(0, o * s, s) for o, s in
                                               zip(params.output_shape[2:], params.stride))
    relation = f"{op}(stride s)[p] = {op}(stride 1)[p*s]"
    if op == "max_pool":
        indices = full.get("indices")
        check.same_selection(strided["y"], full["y"][picks], strided.get("indices"),
                             None if indices is None else indices[picks], relation)
        return
    budget = check.budget(op, arrays, params, "y") + check.budget(op, arrays, unit, "y").apply(lambda a: a[picks])
    check.agree("y", strided["y"], full["y"][picks].astype(np.float64), budget, relation)


# -- 8: padding strings ----------------------------------------------------------------------------

_STRING_CLAUSE = {"valid": "PAD-3", "same_upper": "PAD-4", "same_lower": "PAD-5"}


def check_same_is_explicit(check: PropertyCheck) -> None:
    """op(padding='same_upper' | 'same_lower' | 'valid') = op(padding = the pads the spec resolves)
    (PAD-3, PAD-4, PAD-5)."""
    op, params = check.op, check.params
    if not isinstance(params.padding, str):
        raise NotApplicable("explicit padding")
    check.clause = _STRING_CLAUSE[params.padding]
    explicit = derive(params, padding=params.pads)
    check.require((op, params, f"{op} with padding={params.padding!r}"),
                  (op, explicit, f"{op} with padding={params.pads}"))
    arrays = check.arrays()
    named = check.call(op, arrays, params, f"{op} (padding={params.padding!r})")
    given = check.call(op, arrays, explicit, f"{op} (padding={params.pads})")
    relation = f"{op}(padding={params.padding!r}) = {op}(padding={params.pads})"
    if op == "max_pool":
        check.same_selection(named["y"], given["y"], named.get("indices"), given.get("indices"), relation)
        return
    budget = check.budget(op, arrays, params, "y") + check.budget(op, arrays, explicit, "y")
    check.agree("y", named["y"], given["y"].astype(np.float64), budget, relation)


# -- 9: rank lift ----------------------------------------------------------------------------------

def _insert(values: tuple[Any, ...], axis: int, value: Any) -> tuple[Any, ...]:
    return values[:axis] + (value,) + values[axis:]


def _lifted(params: Params, axis: int) -> Params:
    """``params`` with a size-1 spatial axis inserted before spatial dim ``axis``: kernel 1, stride 1,
    dilation 1, pads (0, 0) (output_padding 0) there."""
    changes: dict[str, Any] = {
        "input_shape": params.input_shape[:2] + _insert(params.input_shape[2:], axis, 1),
        "stride": _insert(params.stride, axis, 1),
        "dilation": _insert(params.dilation, axis, 1),
        "padding": params.padding if isinstance(params.padding, str) else _insert(params.pads, axis, (0, 0)),
    }
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        changes["weight_shape"] = params.weight_shape[:2] + _insert(params.kernel_size, axis, 1)
    else:
        changes["kernel_size"] = _insert(params.kernel_size, axis, 1)
    if isinstance(params, ConvTransposeParams):
        changes["output_padding"] = _insert(params.output_padding, axis, 0)
    return derive(params, **changes)


def check_rank_lift(check: PropertyCheck) -> None:
    """A rank-m problem = the rank-(m+1) problem with a size-1 spatial axis inserted (kernel 1,
    stride 1, pad 0, dilation 1 there): the definitions are rank-generic (LAYOUT-1)."""
    op, params = check.op, check.params
    axis = check.case.seed % (params.rank + 1)
    lifted = _lifted(params, axis)
    check.require((op, params, f"{op} rank {params.rank}"), (op, lifted, f"{op} rank {params.rank + 1}"))
    arrays = check.arrays()
    up = {name: None if value is None else np.expand_dims(value, 2 + axis) if name in ("x", "w") else value
          for name, value in arrays.items()}
    flat = check.call(op, arrays, params, f"{op} (rank {params.rank})")
    high = check.call(op, up, lifted, f"{op} (rank {params.rank + 1}, size-1 axis {axis})")

    def squeeze(a: np.ndarray) -> np.ndarray:
        return np.squeeze(a, axis=2 + axis)

    relation = f"{op}(rank m) = {op}(rank m+1 with a size-1 axis)"
    if op == "max_pool":
        indices = high.get("indices")
        check.same_selection(flat["y"], squeeze(high["y"]), flat.get("indices"),
                             None if indices is None else squeeze(indices), relation)
        return
    budget = check.budget(op, arrays, params, "y") + check.budget(op, up, lifted, "y").apply(squeeze)
    check.agree("y", flat["y"], squeeze(high["y"]).astype(np.float64), budget, relation)


# -- 10: permutations -----------------------------------------------------------------------------

def check_permutation_equivariance(check: PropertyCheck) -> None:
    """Permuting the batch permutes the output batch; permuting groups, the input channels within
    a group (with the weight's matching axis), and the output channels within a group (weight rows
    or columns, and bias) permutes the output channels alike. Pools: batch and channels.

    y′ = op(x[π][:, in_perm], w′, b[out_perm]) = op(x, w, b)[π][:, out_perm].
    """
    op, params = check.op, check.params
    arrays = check.arrays()
    x = arrays["x"]
    rng = check.rng
    batch = rng.permutation(params.input_shape[0])
    permuted = dict(arrays)
    if isinstance(params, PoolParams):
        in_perm = out_perm = rng.permutation(params.input_shape[1])
    else:
        groups = params.groups
        c_g, m = params.input_shape[1] // groups, out_channels(params) // groups
        sigma, rho, tau = rng.permutation(groups), rng.permutation(c_g), rng.permutation(m)
        in_perm = (sigma[:, None] * c_g + rho[None, :]).ravel()
        out_perm = (sigma[:, None] * m + tau[None, :]).ravel()
        w = arrays["w"]
        # conv: w[o, c] reads input channel g(o)·C_g + c; conv_transpose: w[g·C_g + c, m] writes g·M + m.
        permuted["w"] = w[out_perm][:, rho] if op == "conv" else w[in_perm][:, tau]
        if arrays.get("b") is not None:
            permuted["b"] = arrays["b"][out_perm]
    permuted["x"] = x[batch][:, in_perm]
    check.require((op, params, op))
    y = check.call(op, arrays, params, f"{op}(x)")
    y_perm = check.call(op, permuted, params, f"{op}(permuted x)")

    def reorder(a: np.ndarray) -> np.ndarray:
        return a[batch][:, out_perm]

    relation = f"{op}(permuted inputs) = permuted {op}(inputs)"
    if op == "max_pool":
        indices = y.get("indices")
        check.same_selection(y_perm["y"], reorder(y["y"]), y_perm.get("indices"),
                             None if indices is None else reorder(indices), relation)
        return
    budget = check.budget(op, permuted, params, "y") + check.budget(op, arrays, params, "y").apply(reorder)
    check.agree("y", y_perm["y"], reorder(y["y"]).astype(np.float64), budget, relation)
