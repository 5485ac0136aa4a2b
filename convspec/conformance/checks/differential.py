"""The differential and special families: a backend against the float64 reference on one case
(special-value cases run through the same check under family ``special``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import reference
from ...spec import OPS
from ...spec.accuracy import terms_per_output
from ..cases import Case
from ..context import (CheckContext, check_indices, check_result, compare_outputs, failure_status, indices_not_compared,
                       route, verdict)
from ..invoke import BackendFailure, Call
from ..results import CheckResult
from .hygiene import hygiene_results


def check_differential(ctx: CheckContext, case: Case, family: str = "differential",
                       repeat: bool = False) -> list[CheckResult]:
    """Backend vs reference on one case, and hygiene of the same call (with ``repeat``, a second
    call for HYGIENE-3)."""
    op = case.op
    params = case.params_object
    reason = ctx.unsupported(op, params, case.dtype)
    clause = OPS[op].clauses[0]
    if reason:
        return [check_result(ctx, family, family, op, clause, "unsupported", case, params, reason)]
    arrays = case.arrays()
    try:
        call = ctx.call(op, arrays, params)
    except BackendFailure as failure:
        status, message = failure_status(failure)
        return [check_result(ctx, family, family, op, failure.clause or clause, status, case, params, message)]
    expected = reference.evaluate(op, arrays, params)
    if op == "max_pool_backward" and np.isnan(np.asarray(arrays["x"], np.float64)).any():
        return [check_max_pool_backward_nan(ctx, case, params, arrays, call, expected, family)]
    not_compared = indices_not_compared(ctx, case, params, call, family)
    if not_compared is not None:  # the values are still checked
        expected = {name: value for name, value in expected.items() if name != "indices"}
    comparisons, notes = compare_outputs(ctx, case, op, params, arrays, call.outputs, expected)
    decided = verdict(ctx, family, family, op, clause, case, params, comparisons, notes)
    return [decided, *filter(None, [not_compared]),
            *hygiene_results(ctx, case, params, arrays, call, repeat=repeat and decided.status == "passed")]


def check_max_pool_backward_nan(ctx: CheckContext, case: Case, params: Any, arrays: dict[str, Any],
                                 call: Call, expected: dict[str, Any], family: str) -> CheckResult:
    """MAXPOOL-GRAD-1 with NaN windows: which NaN gets dy is implementation-defined, so dx must be
    dy routed to the backend's own max_pool indices, each a NaN of its window (MAXPOOL-NAN-1)."""
    op = "max_pool_backward"
    if "max_pool" not in ctx.caps.ops or ctx.unsupported("max_pool", params, case.dtype):
        return check_result(ctx, family, family, op, "MAXPOOL-GRAD-1", "unsupported", case, params,
                       "NaN windows: dx depends on the backend's max_pool indices, which it does not provide")
    try:
        forward = ctx.call("max_pool", {"x": arrays["x"]}, params)
    except BackendFailure as failure:
        status, message = failure_status(failure)
        return check_result(ctx, family, family, op, failure.clause or "MAXPOOL-GRAD-1", status, case, params,
                       f"max_pool: {message}")
    indices = forward.outputs.get("indices")
    if indices is None:
        reason = forward.missing.get("indices")
        return check_result(ctx, family, family, op, "MAXPOOL-GRAD-1", "unsupported" if reason is None else
                       "unsupported_raised", case, params, "NaN windows: the backend's max_pool returns no indices "
                       f"to route dx by{f' ({reason})' if reason else ''}")
    ref_forward = reference.evaluate("max_pool", {"x": arrays["x"]}, params)
    checked = check_indices("indices", indices, ref_forward["indices"], ref_forward["y"], arrays["x"], params)
    comparisons = [checked]
    if checked.passed:
        routed = route(arrays["dy"], np.asarray(indices).astype(np.int64), params.input_shape)
        mag = route(np.abs(np.asarray(arrays["dy"], np.float64)), np.asarray(indices).astype(np.int64),
                     params.input_shape)
        count = route(np.ones(params.output_shape), np.asarray(indices).astype(np.int64), params.input_shape)
        comparisons.append(ctx.compare("dx", call.outputs.get("dx"), routed, mag,
                                       terms_per_output(op, params)["dx"], case.dtype, exact_where=count <= 1,
                                       exact_rule="an element that at most one dy reaches is a copy of it",
                                       shape_clause="GRAD-SHAPE-1"))
    return verdict(ctx, family, family, op, "MAXPOOL-GRAD-1", case, params, comparisons)
