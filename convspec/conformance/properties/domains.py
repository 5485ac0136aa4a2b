"""The hypothesis strategies that draw cases inside each property's domain (groups, dilation,
stride, padding strings, rank lift, float64 for finite differences).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ...spec import InvalidParams, PoolParams, effective_kernel, init_kwargs
from ..cases import Case
from .base import FINITE_RECIPES, Strategy

# -- strategies ------------------------------------------------------------------------------------

def _base(op: str, ranks: Sequence[int], dtypes: Sequence[str], size_kw: Mapping[str, Any],
          recipes: Sequence[str] = FINITE_RECIPES) -> Any:
    from ..strategies import cases

    return cases(op, ranks=tuple(ranks), dtypes=tuple(dtypes), recipes=tuple(recipes), **size_kw)


def _valid(case: Case | None) -> bool:
    """Keeps cases whose parameters build (an adapted case may leave the spec's domain)."""
    if case is None:
        return False
    try:
        case.params_object
    except InvalidParams:
        return False
    return True


def zeros_mode(case: Case) -> Case:
    if case.params.get("padding_mode", "zeros") == "zeros":
        return case
    return case.with_(params={"padding_mode": "zeros"})


def with_groups(case: Case, factor: int) -> Case:
    """groups > 1: a groups = 1 case gets ``factor`` copies of its channels, one group each."""
    params: Any = case.params_object
    if params.groups > 1:
        return case
    x, w = params.input_shape, params.weight_shape
    changes: dict[str, Any] = {"input_shape": (x[0], x[1] * factor) + x[2:],
                               "weight_shape": (w[0] * factor,) + w[1:], "groups": factor}
    if params.bias_shape is not None:
        changes["bias_shape"] = (params.output_shape[1] * factor,)
    return case.with_(params=changes)


def with_dilation(case: Case) -> Case:
    """dilation > 1: the widest kernel dim (made ≥ 2 taps) gets dilation 2 and the input grows by the
    extra effective extent, so the kernel still fits (CONV-SHAPE-2)."""
    params: Any = case.params_object
    if any(d > 1 for d in params.dilation):
        return case
    axis = int(np.argmax(params.kernel_size))
    kernel = list(params.kernel_size)
    grow = effective_kernel(max(kernel[axis], 2), 2) - effective_kernel(kernel[axis], 1)
    kernel[axis] = max(kernel[axis], 2)
    spatial = list(params.input_shape[2:])
    spatial[axis] += grow
    dilation = list(params.dilation)
    dilation[axis] = 2
    return case.with_(params={"input_shape": params.input_shape[:2] + tuple(spatial),
                              "weight_shape": params.weight_shape[:2] + tuple(kernel), "dilation": tuple(dilation)})


def with_stride(case: Case) -> Case:
    """stride > 1 somewhere, pools in floor mode."""
    params = case.params_object
    changes: dict[str, Any] = {}
    if isinstance(params, PoolParams) and params.ceil_mode:
        changes["ceil_mode"] = False
    if all(s == 1 for s in params.stride):
        changes["stride"] = (2,) + params.stride[1:]
    return case.with_(params=changes) if changes else case


def with_padding_string(case: Case, form: str) -> Case:
    if isinstance(case.params.get("padding", 0), str):
        return case
    return case.with_(params={"padding": form})


def stride_one_is_valid(case: Case) -> bool:
    """The stride-1 pool with the same pads may hold an empty window (POOL-WINDOW-1): not drawn."""
    params = case.params_object
    try:
        type(params)(**{**init_kwargs(params), "stride": 1, "padding": params.pads})
    except InvalidParams:
        return False
    return True


def strategy_for(adapt: Callable[..., Case | None] | None = None, extra: Any = None,
              recipes: Sequence[str] = FINITE_RECIPES, float64: bool = False, lift: bool = False,
              domain: Callable[[Case], bool] | None = None) -> Strategy:
    """Cases of ``strategies.cases`` made to fit the property by ``adapt`` (with an ``extra()`` draw),
    kept when valid and inside ``domain``."""

    def strategy(op: str, *, ranks: Sequence[int] = (1, 2, 3), dtypes: Sequence[str] = ("float32",),
                 **size_kw: Any) -> Any:
        from hypothesis import strategies as st

        chosen_ranks = tuple(ranks)
        if lift:  # rank_lift needs rank m + 1 too: prefer ranks whose lift is among ``ranks``
            chosen_ranks = tuple(r for r in ranks if r + 1 <= max(ranks)) or chosen_ranks
        base = _base(op, chosen_ranks, ("float64",) if float64 else dtypes, size_kw, recipes)
        if adapt is None:
            drawn = base
        elif extra is None:
            drawn = base.map(adapt)
        else:
            drawn = st.tuples(base, extra()).map(lambda pair: adapt(*pair))
        if adapt is None and domain is None:
            return drawn
        return drawn.filter(lambda case: _valid(case) and (domain is None or domain(case)))

    return strategy


def groups_extra() -> Any:
    from hypothesis import strategies as st

    return st.integers(2, 3)


def padding_extra() -> Any:
    from hypothesis import strategies as st

    return st.sampled_from(("same_upper", "same_lower", "valid"))
