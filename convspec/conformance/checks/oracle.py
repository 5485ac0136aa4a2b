"""The oracle family: a backend against a second backend (``--oracle``), both error budgets combined.
"""

from __future__ import annotations

import numpy as np

from ... import reference
from ...spec import OPS, InternalError
from ..cases import Case
from ..context import CheckContext, check_result, compare_outputs, failure_status, indices_not_compared, verdict
from ..invoke import BackendFailure
from ..results import CheckResult
from .differential import check_max_pool_backward_nan


def check_oracle(ctx: CheckContext, case: Case) -> list[CheckResult]:
    """Backend vs a second backend (``--oracle``) with both error budgets combined."""
    oracle = ctx.oracle
    if oracle is None:
        raise InternalError("the oracle family needs an oracle backend")
    op, params = case.op, case.params_object
    clause = OPS[op].clauses[0]
    check = f"oracle:{oracle.backend.name}"
    for who in (ctx, oracle):
        reason = who.unsupported(op, params, case.dtype)
        if reason:
            return [check_result(ctx, "oracle", check, op, clause, "unsupported", case, params,
                            f"{who.backend.name}: {reason}")]
    arrays = case.arrays()
    try:
        call = ctx.call(op, arrays, params)
    except BackendFailure as failure:
        status, message = failure_status(failure)
        return [check_result(ctx, "oracle", check, op, failure.clause or clause, status, case, params, message)]
    if op == "max_pool_backward" and np.isnan(np.asarray(arrays["x"], np.float64)).any():
        # Which NaN of a window receives dy is implementation-defined (MAXPOOL-NAN-1): two correct
        # backends may differ, so each is held to its own indices instead.
        return [check_max_pool_backward_nan(ctx, case, params, arrays, call, {}, "oracle")]
    try:
        theirs = oracle.call(op, arrays, params)
    except BackendFailure as failure:
        return [check_result(ctx, "oracle", check, op, clause, "unsupported", case, params,
                        f"oracle {oracle.backend.name} failed: {failure.message}")]
    expected = {name: (None if v is None else np.asarray(v, dtype=np.float64)) for name, v in theirs.outputs.items()}
    not_compared = indices_not_compared(ctx, case, params, call, "oracle")
    if op == "max_pool" and not_compared is None:
        ref = reference.evaluate(op, arrays, params)
        expected["indices"] = ref["indices"] if expected.get("indices") is None else expected["indices"]
    elif not_compared is not None:
        expected.pop("indices", None)

    def both(mag: np.ndarray, k: int) -> np.ndarray:
        return ctx.bound(mag, k, case.dtype) + oracle.bound(mag, k, case.dtype)

    comparisons, notes = compare_outputs(ctx, case, op, params, arrays, call.outputs, expected, both,
                                         statistics=False)
    return [verdict(ctx, "oracle", check, op, clause, case, params, comparisons, notes), *filter(None, [not_compared])]
