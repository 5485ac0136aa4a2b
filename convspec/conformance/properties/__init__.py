"""Oracle-free properties: relations a conforming backend's OWN outputs must satisfy.

Each property computes one problem two ways with the backend under test — e.g. a strided conv and
the stride-1 conv subsampled — and requires the two to agree. The reference is used only for the
magnitudes ``mag = op(|x|, |w|, |b|)`` of the error model, never for values, so every check here
still holds if the reference were wrong.

Two backend computations A and B of one quantity, each within its own ERR-BOUND-1 bound of the
exact answer, satisfy

    |A − B| ≤ bound_A + bound_B,     bound = (α·K·u_acc + α·u_in + u_out)·mag + tiny   (ERR-BOUND-1)

with each side's ``mag`` and ``K`` taken from its own configuration and mapped to the same output
positions; a right-hand side assembled from several calls adds their bounds, plus the float64
rounding of the assembly (u₆₄·|B|). Where a side's magnitude can overflow the dtype anything goes;
where a finite bound holds, both sides must be finite; a non-finite input reaching an element
requires the same NaN or infinity on both sides (ERR-SPECIAL-1). Arrays that are combined stay
exactly representable: splits have disjoint supports (x₁ + x₂ = x exactly), kernels are stuffed
with exact zeros, perturbations are powers of two times values on a coarse grid.

The package holds one module per theme — ``linearity`` (linearity, bias, adjoint, gradient =
transpose), ``geometry`` (groups, dilation, stride, padding strings, rank lift, permutations),
``pooling`` (avg pool as a conv, max pool as the window maximum), ``gradients`` (finite
differences) — on the shared machinery of ``base`` and the strategies of ``domains``; this
module holds the table.

Every property is a :class:`Property` of :data:`PROPERTIES`; its ``run(ctx, case)`` returns one
``CheckResult`` (family ``"property"``, check = the property's name) — or none when the case lies
outside the property's domain (e.g. ``groups = 1`` for ``grouped_concat``), so an explicit
``--case`` run never reports a vacuous pass. Its ``strategy(op, ranks=…, dtypes=…, **sizes)``
draws cases inside that domain from :func:`convspec.conformance.strategies.cases`.

>>> sorted(PROPERTIES)[:3]
['adjoint', 'avg_pool_is_conv', 'bias_shift']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from ...spec import OPS
from .base import MAX_POOL_RECIPES, Property, PropertyCheck, Strategy, runner_for
from .domains import (groups_extra, padding_extra, strategy_for, stride_one_is_valid, with_dilation, with_groups,
                      with_padding_string, with_stride, zeros_mode)
from .geometry import (check_dilation_zero_stuffed, check_grouped_concat, check_permutation_equivariance,
                       check_rank_lift, check_same_is_explicit, check_stride_subsampled)
from .gradients import check_finite_differences
from .linearity import check_adjoint, check_bias_shift, check_gradient_is_transpose, check_linearity
from .pooling import avg_pool_divisor, check_avg_pool_is_conv, check_max_pool_is_window_max, window_max

__all__ = ["PROPERTIES", "Property", "avg_pool_divisor", "window_max"]


# -- the table -------------------------------------------------------------------------------------

def _definition_clauses(ops: Sequence[str]) -> dict[str, str]:
    return {op: OPS[op].clauses[0] for op in ops}


def _property(name: str, ops: tuple[str, ...], description: str, impl: Callable[[PropertyCheck], None],
              strategy: Strategy, clauses: Mapping[str, str] | None = None, needs: tuple[str, ...] = ()) -> Property:
    by_op = dict(clauses) if clauses else _definition_clauses(ops)
    return Property(name=name, clause=by_op[ops[0]], ops=ops, description=description, strategy=strategy,
                    run=runner_for(name, impl, by_op), clauses_by_op=by_op, needs=needs)


PROPERTIES: dict[str, Property] = {
    prop.name: prop
    for prop in (
        _property("linearity_x", ("conv", "conv_transpose", "avg_pool"),
                  "op(x1 + x2) = op(x1) + op(x2), x1 and x2 disjoint parts of x, no bias",
                  lambda check: check_linearity(check, "x"), strategy_for()),
        _property("linearity_w", ("conv", "conv_transpose"),
                  "op(w1 + w2) = op(w1) + op(w2), w1 and w2 disjoint parts of w, no bias",
                  lambda check: check_linearity(check, "w"), strategy_for()),
        _property("bias_shift", ("conv", "conv_transpose"),
                  "op(x, w, b) - op(x, w) = b broadcast over batch and space", check_bias_shift, strategy_for()),
        _property("adjoint", ("conv", "conv_transpose"),
                  "<conv(u), v> = <u, conv_transpose(v)> with shared weight, stride, dilation, pads, groups",
                  check_adjoint, strategy_for(zeros_mode), {"conv": "CONVT-DEF-1", "conv_transpose": "CONVT-DEF-1"}),
        _property("gradient_is_transpose", ("conv_backward", "conv_transpose_backward"),
                  "conv_backward's dx = conv_transpose(dy); conv_transpose_backward's dx = conv(dy)",
                  check_gradient_is_transpose, strategy_for(zeros_mode)),
        _property("grouped_concat", ("conv", "conv_transpose"),
                  "a grouped op = the concatenation of the ungrouped op on each group's channels",
                  check_grouped_concat, strategy_for(with_groups, groups_extra),
                  {"conv": "CONV-GROUPS-1", "conv_transpose": "CONV-GROUPS-1"}, needs=("groups",)),
        _property("dilation_zero_stuffed", ("conv",),
                  "conv with dilation d = conv with dilation 1 and d-1 zeros stuffed between kernel taps",
                  check_dilation_zero_stuffed, strategy_for(with_dilation), needs=("dilation",)),
        _property("stride_subsampled", ("conv", "max_pool", "avg_pool"),
                  "the stride-s output = the stride-1 output (same pads) at positions p*s (floor mode)",
                  check_stride_subsampled, strategy_for(with_stride, domain=stride_one_is_valid), needs=("stride",)),
        _property("same_is_explicit", ("conv", "max_pool", "avg_pool"),
                  "padding 'same_upper', 'same_lower', 'valid' = the explicit pads the spec resolves",
                  check_same_is_explicit, strategy_for(with_padding_string, padding_extra),
                  {"conv": "PAD-4", "max_pool": "PAD-4", "avg_pool": "PAD-4"}),
        _property("rank_lift", ("conv", "conv_transpose", "max_pool", "avg_pool"),
                  "a rank-m problem = the rank-(m+1) problem with a size-1 spatial axis inserted",
                  check_rank_lift, strategy_for(lift=True)),
        _property("permutation_equivariance", ("conv", "conv_transpose", "max_pool", "avg_pool"),
                  "permuting batch and channels (with weight and bias) permutes the output alike",
                  check_permutation_equivariance, strategy_for()),
        _property("avg_pool_is_conv", ("avg_pool",),
                  "avg_pool(x) = conv(x per channel, ones kernel, same pads/stride/dilation) / divisor",
                  check_avg_pool_is_conv, strategy_for()),
        _property("max_pool_is_window_max", ("max_pool",),
                  "y = max over the listed window (computed by the check); indices in the window, x[index] = y",
                  check_max_pool_is_window_max, strategy_for(recipes=MAX_POOL_RECIPES),
                  {"max_pool": "MAXPOOL-DEF-1"}),
        _property("finite_differences", ("conv_backward", "conv_transpose_backward", "avg_pool_backward",
                                         "max_pool_backward"),
                  "<grad, v> = (L(a + h v) - L(a - h v)) / 2h with the backend's own forward, float64",
                  check_finite_differences, strategy_for(float64=True)),
    )
}
