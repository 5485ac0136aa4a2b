"""The invalid family: a backend must raise on a configuration SPEC.md declares invalid.
"""

from __future__ import annotations

from typing import Any

from ..catalogue import forge
from ..context import CheckContext
from ..invoke import BackendFailure
from ..results import CheckResult


def check_invalid(ctx: CheckContext, entry: Any) -> CheckResult:
    """The backend must raise on a configuration SPEC.md declares invalid (any exception). When
    convspec's adapter (command backend, FunctionBackend) refused it before the implementation ran,
    the status is ``validated_by_adapter``: conforming, but not to the implementation's credit."""
    params, arrays = forge(entry)
    check = f"invalid:{entry.name}"
    result = CheckResult(backend=ctx.backend.name, family="invalid", check=check, op=entry.op, clause=entry.clause,
                         status="passed", case=None, backend_spec=ctx.spec)
    if entry.op not in ctx.caps.ops:
        result.status, result.message = "unsupported", f"op {entry.op} not implemented"
        return result
    try:
        call = ctx.call(entry.op, arrays, params)
    except BackendFailure as failure:
        if failure.status in ("crashed", "timed_out"):
            result.status, result.message = failure.status, failure.message
        elif failure.by_adapter:  # convspec's adapter refused it: the implementation never saw it
            result.status, result.message = "validated_by_adapter", f"validated by the adapter: {failure.message}"
        elif failure.status == "failed":  # it returned, and an adapter found the outputs broken
            result.status, result.message = "failed", f"returned instead of raising: {failure.message}"
        else:
            result.message = f"raised {failure.message}"
        return result
    shapes = {name: None if v is None else v.shape for name, v in call.outputs.items()}
    result.status = "failed"
    result.message = f"returned {shapes} instead of raising for {entry.description or entry.name}"
    return result
