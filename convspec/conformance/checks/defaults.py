"""The ``defaults`` check family (PARAM-3): an argument left out takes its default.

Every other family calls a backend with every parameter given, so the defaults of a
torch.nn.functional look-alike never run: a ``max_pool2d`` whose stride defaults to 1 instead of
kernel_size passes all of them, and computes the wrong layer for every caller who writes
``max_pool2d(x, 2)``. This family calls such a backend through its ``with_defaults_omitted()``
view (:meth:`convspec.backends.FunctionalBackend.with_defaults_omitted`), which leaves out every
argument equal to its default, on cases whose parameters all sit at their defaults
(:func:`default_cases`), and compares the outputs with the reference as the differential family
does.

A difference is a failure of PARAM-3 when the same call with every argument given conforms; when
that call fails too, the bug is not in the defaults and the result carries the clause it breaks.
A backend called with the spec's parameter objects has no argument defaults: one *unsupported*
result per forward op says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ... import reference
from ...spec import FORWARD_OPS
from ..cases import Case
from ..context import CheckContext, check_result, compare_outputs, failure_status, indices_not_compared, summarise
from ..invoke import BackendFailure, Invoker
from ..results import CheckResult

CLAUSE = "PARAM-3"
_NO_DEFAULTS = "the backend is called with the spec's parameter objects: it has no argument defaults"


def default_cases(ops: Iterable[str], ranks: Iterable[int], dtype: str, seed: int = 0) -> list[Case]:
    """One case per forward op and rank with every defaultable parameter at its default (PARAM-3).

    The shapes make each default matter: a pool of kernel 2 on 7 elements has 3 windows at its
    default stride 2 (6 at stride 1) and 4 in ceil mode; a conv kernel of 3 changes the output
    size under any other stride, padding or dilation.

    >>> [c.descriptor for c in default_cases(["max_pool"], [1], "float32")]
    ['max_pool x=2,3,7 k=2 p=0:0 d=1 dtype=float32 data=random seed=0']
    """
    shapes = {
        "conv": lambda m: dict(input_shape=(2, 3) + (7,) * m, weight_shape=(4, 3) + (3,) * m),
        "conv_transpose": lambda m: dict(input_shape=(2, 3) + (5,) * m, weight_shape=(3, 2) + (3,) * m),
        "max_pool": lambda m: dict(input_shape=(2, 3) + (7,) * m, kernel_size=2),
        "avg_pool": lambda m: dict(input_shape=(2, 3) + (7,) * m, kernel_size=2, count_include_pad=True),
        "lp_pool": lambda m: dict(input_shape=(2, 3) + (7,) * m, kernel_size=2),  # p defaults to 2 (LPPOOL-PARAM-1)
    }
    return [Case(op, shapes[op](rank), dtype=dtype, data="random", seed=seed)
            for op in ops if op in FORWARD_OPS for rank in ranks]


def run_defaults(ctx: CheckContext, cases: Sequence[Case]) -> list[CheckResult]:
    """The defaults family on ``cases`` (forward ops only; the others are ignored)."""
    cases = [case for case in cases if case.op in FORWARD_OPS and case.op in ctx.caps.ops]
    omitting = getattr(ctx.backend, "with_defaults_omitted", None)
    with_defaults = frozenset(getattr(ctx.backend, "ops_with_defaults", ()))
    lacking = sorted({case.op for case in cases if not callable(omitting) or case.op not in with_defaults})
    results = [check_result(ctx, "defaults", "defaults", op, CLAUSE, "unsupported", None, None, _NO_DEFAULTS)
               for op in lacking]
    cases = [case for case in cases if case.op not in lacking]
    if not cases:
        return results
    assert callable(omitting)
    settings = ctx.settings
    invoker = Invoker(omitting(), isolate=settings.isolate, timeout=settings.timeout,
                      memory_limit=settings.memory_limit)
    try:
        results += [check_defaults(ctx, case, invoker) for case in cases]
    finally:
        invoker.close()
    return results


def check_defaults(ctx: CheckContext, case: Case, omitting: Invoker) -> CheckResult:
    """``case`` run through ``omitting`` (the backend leaving out arguments at their default) vs
    the reference; a failure is PARAM-3's unless the call with every argument given fails too."""
    op, params = case.op, case.params_object
    reason = ctx.unsupported(op, params, case.dtype)
    if reason:
        return check_result(ctx, "defaults", "defaults", op, CLAUSE, "unsupported", case, params, reason)
    arrays = case.arrays()
    try:
        call = omitting.call(op, arrays, params)
    except BackendFailure as failure:
        status, message = failure_status(failure)
        return check_result(ctx, "defaults", "defaults", op, failure.clause or CLAUSE, status, case, params,
                       f"with the arguments at their default left out: {message}")
    ctx.backend_seconds += call.seconds
    expected = reference.evaluate(op, arrays, params)
    if indices_not_compared(ctx, case, params, call, "defaults") is not None:
        expected = {name: value for name, value in expected.items() if name != "indices"}
    comparisons, notes = compare_outputs(ctx, case, op, params, arrays, call.outputs, expected)
    status, message = summarise(comparisons)
    if status == "passed":
        return check_result(ctx, "defaults", "defaults", op, CLAUSE, status, case, params, "; ".join(notes), comparisons)
    failing = next(c for c in comparisons if not c.passed)
    if _conforms_with_every_argument(ctx, case, arrays, expected):
        clause, message = CLAUSE, f"with the arguments at their default left out, {message}"
    else:
        clause, message = failing.clause, f"{message} (with every argument given as well)"
    return check_result(ctx, "defaults", "defaults", op, clause, status, case, params, message, comparisons)


def _conforms_with_every_argument(ctx: CheckContext, case: Case, arrays: dict[str, Any],
                                  expected: dict[str, Any]) -> bool:
    params = case.params_object
    try:
        call = ctx.call(case.op, arrays, params)
    except BackendFailure:
        return False
    comparisons, _ = compare_outputs(ctx, case, case.op, params, arrays, call.outputs, expected)
    return all(c.passed for c in comparisons)
