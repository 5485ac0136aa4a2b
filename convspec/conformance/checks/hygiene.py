"""The hygiene family: inputs untouched (HYGIENE-1), output dtypes (HYGIENE-2, MAXPOOL-INDEX-2),
determinism of a repeated call (HYGIENE-3).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ...spec import Params
from ..cases import Case
from ..context import CheckContext, check_result
from ..invoke import BackendFailure, Call
from ..results import CheckResult


def hygiene_results(ctx: CheckContext, case: Case, params: Params, arrays: dict[str, Any], call: Call,
                    repeat: bool = False) -> list[CheckResult]:
    """HYGIENE-1 (inputs untouched), HYGIENE-2 (output dtypes), HYGIENE-3 (determinism, on ``repeat``)."""
    if "hygiene" not in ctx.settings.checks:
        return []
    op, results = case.op, []
    if call.mutated:
        results.append(check_result(ctx, "hygiene", "hygiene", op, "HYGIENE-1", "failed", case, params,
                               f"modified its input(s) {call.mutated}"))
    wrong = [f"{name}: {value.dtype}" for name, value in call.outputs.items()
             if value is not None and name != "indices" and value.dtype.name != case.dtype]
    if wrong:
        results.append(check_result(ctx, "hygiene", "hygiene", op, "HYGIENE-2", "failed", case, params,
                               f"output dtypes {wrong}, expected {case.dtype}"))
    indices = call.outputs.get("indices")
    if indices is not None and indices.dtype != np.int64:  # MAXPOOL-INDEX-2: int32 overflows past 2^31
        results.append(check_result(ctx, "hygiene", "hygiene", op, "MAXPOOL-INDEX-2", "failed", case, params,
                               f"indices have dtype {indices.dtype}, expected int64"))
    if repeat and ctx.caps.deterministic:
        try:
            again = ctx.call(op, arrays, params)
        except BackendFailure as failure:
            # The first call returned: a second that raises, even NotImplementedError, is not repeatable.
            status = "failed" if failure.status == "unsupported_raised" else failure.status
            results.append(check_result(ctx, "hygiene", "hygiene", op, "HYGIENE-3", status, case, params,
                                   f"second call: {failure.message}"))
        else:
            differs = [name for name, value in call.outputs.items()
                       if value is not None and (again.outputs.get(name) is None
                                                 or value.tobytes() != np.asarray(again.outputs[name]).tobytes())]
            results.append(check_result(ctx, "hygiene", "hygiene", op, "HYGIENE-3", "failed" if differs else "passed",
                                   case, params, f"repeated call differs in {differs}" if differs else ""))
    if not results:
        results.append(check_result(ctx, "hygiene", "hygiene", op, "HYGIENE-1", "passed", case, params))
    return results
