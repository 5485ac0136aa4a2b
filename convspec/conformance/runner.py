"""The conformance runner: cases in, structured results out.

For each backend and each selected op, the runner feeds catalogue cases and hypothesis-generated
cases through the check families (differential, special, property, invalid, hygiene, oracle),
compares against the float64 reference with the error model, and lets hypothesis shrink each
failure to a minimal case. Unsupported cases are recorded with the backend's reason; a backend
that raises, crashes or hangs gets that status for that case and the run goes on.
"""

from __future__ import annotations

import functools
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import reference
from ..backends import Backend, load
from ..spec import OPS, ConvParams, ConvTransposeParams, InternalError, MaxPoolParams, Params, bfloat16_available
from ..spec.accuracy import error_bound, nonlocal_terms, terms_per_output
from ..spec.features import features_of
from .cases import INTEGER_RECIPES, SPECIAL_RECIPES, Case
from .compare import Comparison, compare, statistical_test, wants_statistics
from .clusters import merge_clusters
from .invoke import BackendFailure, Call, Invoker
from .results import (FAMILIES, NONCONFORMING, BackendRun, CheckResult, FailureCluster, Launch, Results, case_size,
                      python_path_for)

if TYPE_CHECKING:
    from .xfail import XfailEntry

Progress = Callable[[str], None]

#: Seconds per backend call under ``isolate`` when no timeout is given.
DEFAULT_TIMEOUT = 60.0
#: Significand bits (with the implicit one) per precision: integers up to 2^p are exact.
_PRECISION_BITS = {"float16": 11, "bfloat16": 8, "tf32": 11, "float32": 24, "float64": 53}
_CONV_OPS = ("conv", "conv_backward", "conv_transpose", "conv_transpose_backward")


@dataclass
class Settings:
    """What a run covers. ``max_examples`` is per (op, check) stream of generated cases."""

    ops: tuple[str, ...] = tuple(OPS)
    ranks: tuple[int, ...] = (1, 2, 3)
    dtypes: tuple[str, ...] | None = None
    checks: tuple[str, ...] = ("differential", "special", "property", "invalid", "hygiene", "defaults")
    max_examples: int = 20
    seed: int = 0
    catalogue: bool = True
    isolate: bool = False
    timeout: float | None = 60.0
    memory_limit: int | None = None
    database: str | None = None
    shrink: bool = True


class _Stop(Exception):
    """Raised inside a hypothesis test to report a non-conforming result (and shrink it)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


class CheckContext:
    """What a check needs: the backend behind its invoker, the reference, the error model."""

    def __init__(self, backend: Backend, spec: str, invoker: Invoker, settings: Settings,
                 oracle: CheckContext | None = None) -> None:
        self.backend = backend
        self.spec = spec
        self.caps = backend.capabilities
        self.invoker = invoker
        self.settings = settings
        self.oracle = oracle
        self.backend_seconds = 0.0

    # -- calling ---------------------------------------------------------------------------
    def call(self, op: str, arrays: dict[str, Any], params: Params) -> Call:
        """The backend's outputs (BackendFailure when it raised, crashed or hung)."""
        call = self.invoker.call(op, arrays, params)
        self.backend_seconds += call.seconds
        return call

    def unsupported(self, op: str, params: Params, dtype: str) -> str | None:
        return self.caps.unsupported_reason(op, params, dtype)

    # -- the error model -------------------------------------------------------------------
    def _local(self, op: str) -> bool:
        """Whether ``op`` is bounded per element: a local backend, or a pool or its gradient, which
        are never non-local (ERR-NONLOCAL-1; for max pool a constant x would also reroute dy)."""
        return self.caps.local or (OPS[op].forward or op) in ("max_pool", "avg_pool")

    def magnitude(self, op: str, arrays: dict[str, Any], params: Params) -> dict[str, Any]:
        """mag = op(|x|, |w|, |b|). For a non-local backend (ERR-NONLOCAL-1), the same for every
        element: K · Π max|f| over the two factors f of the output's terms (+ max|b| for y), which
        is at least op(max|x|·1, |w|, |b|) anywhere; infinite where a non-finite w or b reaches.
        A transform mixes every input with every tap — padded, cropped and skipped ones
        included — into every output."""
        if self._local(op):
            return reference.magnitude(op, arrays, params)
        filled = {name: _max_abs_fill(value) if name not in ("w", "b") and value is not None else value
                  for name, value in arrays.items()}
        mags = reference.magnitude(op, filled, params)  # non-finite where a non-finite w or b reaches
        k_of = terms_per_output(op, params)
        out = {}
        for name, mag in mags.items():
            if mag is None or not mag.size:
                out[name] = mag
                continue
            peak = float(mag.max())
            if np.isfinite(peak):  # every term at its largest: at least op(max|x|·1, |w|, |b|)
                full = k_of[name] * math.prod(_largest(arrays.get(factor)) for factor in _FACTORS[op, name])
                peak = max(peak, full + (_largest(arrays.get("b")) if name == "y" else 0.0))
            out[name] = np.full_like(mag, peak)
        return out

    def terms(self, op: str, params: Params) -> dict[str, int]:
        """K per output; a non-local backend adds ⌈log2 L⌉ (ERR-NONLOCAL-1)."""
        k_of = terms_per_output(op, params)
        if self._local(op) or not OPS[op].linear:
            return k_of
        return {name: nonlocal_terms(k, params) for name, k in k_of.items()}

    def bound(self, mag: np.ndarray, k: int, dtype: str) -> np.ndarray:
        return error_bound(mag, k, out_dtype=dtype, accumulation=self.caps.accumulation_for(dtype),
                           input_precision=self.caps.input_precision)

    def compare(self, name: str, out: Any, ref: np.ndarray, mag: np.ndarray, k: int, dtype: str,
                **kw: Any) -> Comparison:
        return compare(name, out, ref, mag, k=k, dtype=dtype, accumulation=self.caps.accumulation_for(dtype),
                       input_precision=self.caps.input_precision, **kw)


#: The operands whose product makes each term of an output (ERR-NONLOCAL-1).
_FACTORS = {
    ("conv", "y"): ("x", "w"), ("conv_transpose", "y"): ("x", "w"),
    ("conv_backward", "dx"): ("dy", "w"), ("conv_backward", "dw"): ("x", "dy"), ("conv_backward", "db"): ("dy",),
    ("conv_transpose_backward", "dx"): ("dy", "w"), ("conv_transpose_backward", "dw"): ("x", "dy"),
    ("conv_transpose_backward", "db"): ("dy",),
}


def _largest(array: np.ndarray | None) -> float:
    """max|array| over its finite entries (0 for None or none)."""
    if array is None:
        return 0.0
    values = np.abs(np.asarray(array, dtype=np.float64))
    finite = values[np.isfinite(values)]
    return float(finite.max()) if finite.size else 0.0


def _max_abs_fill(array: np.ndarray) -> np.ndarray:
    """max|array| (over finite entries) everywhere, in the array's own dtype (exact: it is one of
    its elements)."""
    return np.full_like(array, _largest(array))


def _result(ctx: CheckContext, family: str, check: str, op: str, clause: str, status: str, case: Case | None,
            params: Params | None, message: str = "", comparisons: list[Comparison] | None = None) -> CheckResult:
    return CheckResult(backend=ctx.backend.name, family=family, check=check, op=op, clause=clause, status=status,
                       case=case, features=tuple(sorted(features_of(op, params))) if params is not None else (),
                       message=message, comparisons=comparisons or [], backend_spec=ctx.spec)


def _failure_status(failure: BackendFailure) -> tuple[str, str]:
    """Status and message of a call that returned nothing: *unsupported (raised)* for
    NotImplementedError and Unsupported (never a failure, even where the capabilities declared the
    configuration supported), *failed* for outputs an adapter found non-conforming (the clause is
    ``failure.clause``), else errored, crashed or timed_out (:func:`.invoke.failure_of`)."""
    return failure.status, failure.message


def _indices_not_compared(ctx: CheckContext, case: Case, params: Params, call: Call,
                          family: str) -> CheckResult | None:
    """The MAXPOOL-INDEX-1 result of a max_pool that returned values but no indices: *unsupported*
    when it declared ``indices`` unsupported, *unsupported (raised)* when it said why at run time
    (a str in place of the indices, e.g. the look-alike's function raised when asked for them).
    None when it returned indices, or none without saying why (then HYGIENE-2 fails)."""
    if case.op != "max_pool" or call.outputs.get("indices") is not None:
        return None
    reason = call.missing.get("indices")
    declared = ctx.caps.declared_unsupported("max_pool", "indices")
    if reason is None and declared is None:
        return None
    status = "unsupported_raised" if reason is not None else "unsupported"
    return _result(ctx, family, family, case.op, "MAXPOOL-INDEX-1", status, case, params,
                   f"indices not compared: {reason if reason is not None else declared}")


# -- max pool specifics -------------------------------------------------------------------------
def window_members(params: MaxPoolParams, index: Any) -> np.ndarray:
    """True where a flat spatial ``index`` (one per output element) lies in that output's window.

    Window p of a dim holds coordinates p·s − p_b + j·d, 0 ≤ j < k (MAXPOOL-INDEX-1).
    """
    spatial = params.input_shape[2:]
    inside = (index >= 0) & (index < int(np.prod(spatial)))
    coords = np.unravel_index(np.clip(index, 0, max(int(np.prod(spatial)) - 1, 0)), spatial)
    for axis, (coord, k, s, d, pads) in enumerate(
            zip(coords, params.kernel_size, params.stride, params.dilation, params.pads)):
        shape = [1] * index.ndim
        shape[2 + axis] = index.shape[2 + axis]
        start = (np.arange(index.shape[2 + axis]) * s - pads[0]).reshape(shape)
        offset = coord - start
        inside &= (offset >= 0) & (offset % d == 0) & (offset // d < k)
    return inside


def shape_clause(op: str, name: str, params: Params, shape: tuple[int, ...]) -> str:
    """The clause whose rule decides the shape of output ``name`` of ``op``, given a backend's
    differing ``shape``: a wrong spatial size breaks the output-size formula of the op (POOL-CEIL-1
    in ceil mode, PAD-4/PAD-5 for 'same*' padding, else POOL-SHAPE-1, CONV-SHAPE-1,
    CONVT-SHAPE-1); a gradient dx, dw, db breaks GRAD-SHAPE-1; a wrong channel count the layout
    clause that gives C_out (LAYOUT-2, LAYOUT-3; POOL-PARAM-1 for pools); a wrong rank or batch
    the op table (HYGIENE-2).

    >>> from convspec.spec import MaxPoolParams
    >>> shape_clause("max_pool", "y", MaxPoolParams(input_shape=(1, 1, 5), kernel_size=2, ceil_mode=True), (1, 1, 2))
    'POOL-CEIL-1'
    """
    if OPS[op].is_gradient:
        return "GRAD-SHAPE-1"
    expected = params.output_shape
    if len(shape) != len(expected) or shape[0] != expected[0]:
        return "HYGIENE-2"
    if shape[1] != expected[1]:
        return {ConvParams: "LAYOUT-2", ConvTransposeParams: "LAYOUT-3"}.get(type(params), "POOL-PARAM-1")
    if getattr(params, "ceil_mode", False):
        return "POOL-CEIL-1"
    padding = getattr(params, "padding", None)
    if isinstance(padding, str) and padding.startswith("same"):
        return "PAD-5" if padding == "same_lower" else "PAD-4"
    return {ConvParams: "CONV-SHAPE-1", ConvTransposeParams: "CONVT-SHAPE-1"}.get(type(params), "POOL-SHAPE-1")


def check_indices(name: str, indices: Any, ref_indices: Any, ref_y: Any, x: Any, params: Any) -> Comparison:
    """MAXPOOL-INDEX-1 / MAXPOOL-TIE-1 exactly where the window holds no NaN; MAXPOOL-NAN-1 (any
    NaN of the window) where it does. A wrong shape cites the clause that decides it
    (:func:`shape_clause`), a non-integer dtype HYGIENE-2."""
    comparison = Comparison(name, int(ref_indices.size))
    got = np.asarray(indices)
    if got.shape != ref_indices.shape or not np.issubdtype(got.dtype, np.integer):
        comparison.violations = max(comparison.count, 1)
        comparison.clause = (shape_clause("max_pool", name, params, got.shape) if got.shape != ref_indices.shape
                             else "HYGIENE-2")
        comparison.rule = f"indices must be integers of shape {ref_indices.shape}, got {got.dtype} {got.shape}"
        return comparison
    got = got.astype(np.int64)
    nan_window = np.isnan(ref_y)
    planes = np.asarray(x, dtype=np.float64).reshape(x.shape[:2] + (math.prod(x.shape[2:]),))
    flat = got.reshape(got.shape[:2] + (math.prod(got.shape[2:]),))
    picked = np.take_along_axis(planes, np.clip(flat, 0, max(planes.shape[-1] - 1, 0)), axis=-1).reshape(got.shape)
    in_window = window_members(params, got)
    wrong = ~nan_window & (got != ref_indices)
    # An index outside its window (or pointing at a value other than the maximum) breaks the index
    # form itself; one that points at an equal maximum of the window breaks only the tie rule.
    misplaced = wrong & ~(in_window & (picked == ref_y))
    if misplaced.any():
        clause, rule = "MAXPOOL-INDEX-1", "a flat index into the (n, c) plane of an element of the window holding the maximum"
    else:
        clause, rule = "MAXPOOL-TIE-1", "the index of the first maximum in row-major window order"
    if nan_window.any():
        bad_nan = nan_window & ~(in_window & np.isnan(picked))
        if bad_nan.any() and not wrong.any():
            clause, rule = "MAXPOOL-NAN-1", "a NaN window's index must point at one of its NaNs"
        wrong = wrong | bad_nan
    if wrong.any():
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(wrong)), wrong.shape))
        comparison.violations, comparison.clause, comparison.rule = int(wrong.sum()), clause, rule
        from .compare import Worst

        comparison.worst = Worst(where, float(got[where]), float(ref_indices[where]), abs(float(got[where]) -
                                 float(ref_indices[where])), 0.0)
    else:
        comparison.exact = comparison.count
    return comparison


def _route(dy: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """dx of max pool from given indices, in float64: each dy added at its index (MAXPOOL-GRAD-1)."""
    planes = np.zeros(input_shape[:2] + (int(np.prod(input_shape[2:])),))
    batch, channel = np.meshgrid(np.arange(indices.shape[0]), np.arange(indices.shape[1]), indexing="ij")
    flat = indices.reshape(indices.shape[:2] + (math.prod(indices.shape[2:]),))
    np.add.at(planes, (batch[..., None], channel[..., None], flat), np.asarray(dy, np.float64).reshape(flat.shape))
    return planes.reshape(input_shape)


# -- the differential family ----------------------------------------------------------------------
def exact_mask(op: str, case: Case, params: Any, arrays: dict[str, Any], mag: np.ndarray,
               accumulation: str | None, local: bool = True) -> np.ndarray | None:
    """Where ERR-EXACT-1 requires an exact result beyond max pool's forward (None: nowhere).

    (2) max_pool_backward: elements that at most one dy reaches are copies. (3) conv-family ops on
    integer data, for a local algorithm: elements whose magnitude (which bounds every partial sum)
    is at most 2^p of the accumulation and output precisions.
    """
    if op == "max_pool_backward":
        routed = reference.max_pool_backward(arrays["x"], np.ones(params.output_shape, np.asarray(arrays["x"]).dtype),
                                             params)
        return routed <= 1
    if op in _CONV_OPS and case.data in INTEGER_RECIPES and local:
        bits = min(_PRECISION_BITS[accumulation or case.dtype], _PRECISION_BITS[case.dtype])
        return mag <= 2.0**bits
    return None


def compare_outputs(ctx: CheckContext, case: Case, op: str, params: Params, arrays: dict[str, Any],
                    outputs: dict[str, Any], expected: dict[str, Any],
                    bound_of: Callable[[np.ndarray, int], np.ndarray] | None = None,
                    statistics: bool = True) -> tuple[list[Comparison], list[str]]:
    """Compare a backend's outputs of ``op`` with ``expected`` (the reference, or an oracle).

    Where a gradient may be NaN in place of its strict value (CONV-GRAD-1, CONVT-GRAD-1), NaN is
    accepted; an oracle's NaN there, where the strict reference value is not NaN, stands for that
    strict value. A wrong output shape cites the clause that decides it (:func:`shape_clause`).
    Returns the comparisons and notes (e.g. indices the backend did not return).
    """
    dtype = case.dtype
    k_of = ctx.terms(op, params)
    mags = ctx.magnitude(op, arrays, params)
    nan_ok = reference.zero_extension_nan(op, arrays, params)
    strict: dict[str, Any] = {}
    comparisons, notes = [], []
    for name in OPS[op].outputs:
        out, ref = outputs.get(name), expected.get(name)
        if ref is None:
            continue  # e.g. db without a bias
        if out is None:
            if name == "indices" and ("indices" in ctx.caps.unsupported or "max_pool:indices" in ctx.caps.unsupported):
                notes.append("indices not returned (declared unsupported): MAXPOOL-INDEX-1 not checked")
                continue
            comparisons.append(Comparison(name, int(ref.size), violations=max(int(ref.size), 1), clause="HYGIENE-2",
                                          rule=f"output {name} missing"))
            continue
        if op == "max_pool" and name == "indices":
            comparisons.append(check_indices(name, out, ref, expected["y"], arrays["x"], params))
            continue
        shape = np.shape(out)
        wrong_shape = shape_clause(op, name, params, shape) if shape != ref.shape else "HYGIENE-2"
        if op == "max_pool" and name == "y":
            comparisons.append(compare(name, out, ref, None, k=1, dtype=dtype, exact=True, signed_zeros=True,
                                       shape_clause=wrong_shape))
            continue
        mask = nan_ok.get(name)
        if mask is not None and (mask & np.isnan(ref)).any():
            strict = strict or reference.evaluate(op, arrays, params)
            ref = np.asarray(np.where(mask & np.isnan(ref), strict[name], ref))  # the oracle's NaN may be zero-extension's
        mag, k = mags[name], k_of[name]
        bound = bound_of(mag, k) if bound_of else None
        exact_where = exact_mask(op, case, params, arrays, mag, ctx.caps.accumulation_for(dtype), ctx.caps.local)
        rule = ("an element that at most one dy reaches is a copy of it" if op == "max_pool_backward" else
                "integer data with exactly representable partial sums must match exactly")
        comparison = ctx.compare(name, out, ref, mag, k, dtype, exact_where=exact_where, exact_rule=rule, bound=bound,
                                 nan_ok=mask, shape_clause=wrong_shape)
        if statistics and comparison.passed and wants_statistics(comparison.count, dtype) and op != "max_pool_backward":
            has_bias = isinstance(params, (ConvParams, ConvTransposeParams)) and params.bias_shape is not None
            passed, stats = statistical_test(
                out, ref, mag, k=k, dtype=dtype, accumulation=ctx.caps.accumulation_for(dtype),
                input_precision=ctx.caps.input_precision, bias_term=has_bias and name == "y",
                symmetric_data=case.data in ("random", "zeros", "impulse", "integers"))
            comparison.statistics = stats
            if not passed:
                comparison.violations, comparison.clause = 1, "ERR-STAT-1"
                comparison.rule = (f"normalised errors: sum {stats['sum']:.3g} (limit {stats['bias_limit']:.3g}), "
                                   f"sum of squares {stats['sum_of_squares']:.3g} "
                                   f"(limit {stats['variance_limit']:.3g})")
        comparisons.append(comparison)
    return comparisons, notes


def _summarise(comparisons: list[Comparison]) -> tuple[str, str]:
    failing = [c for c in comparisons if not c.passed]
    if not failing:
        return "passed", ""
    worst = failing[0]
    detail = f"{worst.output}: {worst.violations}/{worst.count} elements break {worst.clause} ({worst.rule})"
    if worst.worst is not None:
        w = worst.worst
        detail += (f"; worst at {w.index}: got {w.out!r}, expected {w.ref!r}, error {w.error:.3g}"
                   + (f" vs bound {w.bound:.3g}" if w.bound else ""))
    return "failed", detail


def check_differential(ctx: CheckContext, case: Case, family: str = "differential",
                       repeat: bool = False) -> list[CheckResult]:
    """Backend vs reference on one case, and hygiene of the same call (with ``repeat``, a second
    call for HYGIENE-3)."""
    op = case.op
    params = case.params_object
    reason = ctx.unsupported(op, params, case.dtype)
    clause = OPS[op].clauses[0]
    if reason:
        return [_result(ctx, family, family, op, clause, "unsupported", case, params, reason)]
    arrays = case.arrays()
    try:
        call = ctx.call(op, arrays, params)
    except BackendFailure as failure:
        status, message = _failure_status(failure)
        return [_result(ctx, family, family, op, failure.clause or clause, status, case, params, message)]
    expected = reference.evaluate(op, arrays, params)
    if op == "max_pool_backward" and np.isnan(np.asarray(arrays["x"], np.float64)).any():
        return [_check_max_pool_backward_nan(ctx, case, params, arrays, call, expected, family)]
    not_compared = _indices_not_compared(ctx, case, params, call, family)
    if not_compared is not None:  # the values are still checked
        expected = {name: value for name, value in expected.items() if name != "indices"}
    comparisons, notes = compare_outputs(ctx, case, op, params, arrays, call.outputs, expected)
    status, message = _summarise(comparisons)
    failing = next((c for c in comparisons if not c.passed), None)
    result = _result(ctx, family, family, op, failing.clause if failing else clause, status, case, params,
                     "; ".join(filter(None, [message] + notes)), comparisons)
    return [result, *filter(None, [not_compared]),
            *hygiene_results(ctx, case, params, arrays, call, repeat=repeat and status == "passed")]


def _check_max_pool_backward_nan(ctx: CheckContext, case: Case, params: Any, arrays: dict[str, Any],
                                 call: Call, expected: dict[str, Any], family: str) -> CheckResult:
    """MAXPOOL-GRAD-1 with NaN windows: which NaN gets dy is implementation-defined, so dx must be
    dy routed to the backend's own max_pool indices, each a NaN of its window (MAXPOOL-NAN-1)."""
    op = "max_pool_backward"
    if "max_pool" not in ctx.caps.ops or ctx.unsupported("max_pool", params, case.dtype):
        return _result(ctx, family, family, op, "MAXPOOL-GRAD-1", "unsupported", case, params,
                       "NaN windows: dx depends on the backend's max_pool indices, which it does not provide")
    try:
        forward = ctx.call("max_pool", {"x": arrays["x"]}, params)
    except BackendFailure as failure:
        status, message = _failure_status(failure)
        return _result(ctx, family, family, op, failure.clause or "MAXPOOL-GRAD-1", status, case, params,
                       f"max_pool: {message}")
    indices = forward.outputs.get("indices")
    if indices is None:
        reason = forward.missing.get("indices")
        return _result(ctx, family, family, op, "MAXPOOL-GRAD-1", "unsupported" if reason is None else
                       "unsupported_raised", case, params, "NaN windows: the backend's max_pool returns no indices "
                       f"to route dx by{f' ({reason})' if reason else ''}")
    ref_forward = reference.evaluate("max_pool", {"x": arrays["x"]}, params)
    checked = check_indices("indices", indices, ref_forward["indices"], ref_forward["y"], arrays["x"], params)
    comparisons = [checked]
    if checked.passed:
        routed = _route(arrays["dy"], np.asarray(indices).astype(np.int64), params.input_shape)
        mag = _route(np.abs(np.asarray(arrays["dy"], np.float64)), np.asarray(indices).astype(np.int64),
                     params.input_shape)
        count = _route(np.ones(params.output_shape), np.asarray(indices).astype(np.int64), params.input_shape)
        comparisons.append(ctx.compare("dx", call.outputs.get("dx"), routed, mag,
                                       terms_per_output(op, params)["dx"], case.dtype, exact_where=count <= 1,
                                       exact_rule="an element that at most one dy reaches is a copy of it",
                                       shape_clause="GRAD-SHAPE-1"))
    status, message = _summarise(comparisons)
    failing = next((c for c in comparisons if not c.passed), None)
    return _result(ctx, family, family, op, failing.clause if failing else "MAXPOOL-GRAD-1", status, case, params,
                   message, comparisons)


def hygiene_results(ctx: CheckContext, case: Case, params: Params, arrays: dict[str, Any], call: Call,
                    repeat: bool = False) -> list[CheckResult]:
    """HYGIENE-1 (inputs untouched), HYGIENE-2 (output dtypes), HYGIENE-3 (determinism, on ``repeat``)."""
    if "hygiene" not in ctx.settings.checks:
        return []
    op, results = case.op, []
    if call.mutated:
        results.append(_result(ctx, "hygiene", "hygiene", op, "HYGIENE-1", "failed", case, params,
                               f"modified its input(s) {call.mutated}"))
    wrong = [f"{name}: {value.dtype}" for name, value in call.outputs.items()
             if value is not None and name != "indices" and value.dtype.name != case.dtype]
    if wrong:
        results.append(_result(ctx, "hygiene", "hygiene", op, "HYGIENE-2", "failed", case, params,
                               f"output dtypes {wrong}, expected {case.dtype}"))
    indices = call.outputs.get("indices")
    if indices is not None and indices.dtype != np.int64:  # MAXPOOL-INDEX-2: int32 overflows past 2^31
        results.append(_result(ctx, "hygiene", "hygiene", op, "MAXPOOL-INDEX-2", "failed", case, params,
                               f"indices have dtype {indices.dtype}, expected int64"))
    if repeat and ctx.caps.deterministic:
        try:
            again = ctx.call(op, arrays, params)
        except BackendFailure as failure:
            # The first call returned: a second that raises, even NotImplementedError, is not repeatable.
            status = "failed" if failure.status == "unsupported_raised" else failure.status
            results.append(_result(ctx, "hygiene", "hygiene", op, "HYGIENE-3", status, case, params,
                                   f"second call: {failure.message}"))
        else:
            differs = [name for name, value in call.outputs.items()
                       if value is not None and (again.outputs.get(name) is None
                                                 or value.tobytes() != np.asarray(again.outputs[name]).tobytes())]
            results.append(_result(ctx, "hygiene", "hygiene", op, "HYGIENE-3", "failed" if differs else "passed",
                                   case, params, f"repeated call differs in {differs}" if differs else ""))
    if not results:
        results.append(_result(ctx, "hygiene", "hygiene", op, "HYGIENE-1", "passed", case, params))
    return results


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
            return [_result(ctx, "oracle", check, op, clause, "unsupported", case, params,
                            f"{who.backend.name}: {reason}")]
    arrays = case.arrays()
    try:
        call = ctx.call(op, arrays, params)
    except BackendFailure as failure:
        status, message = _failure_status(failure)
        return [_result(ctx, "oracle", check, op, failure.clause or clause, status, case, params, message)]
    if op == "max_pool_backward" and np.isnan(np.asarray(arrays["x"], np.float64)).any():
        # Which NaN of a window receives dy is implementation-defined (MAXPOOL-NAN-1): two correct
        # backends may differ, so each is held to its own indices instead.
        return [_check_max_pool_backward_nan(ctx, case, params, arrays, call, {}, "oracle")]
    try:
        theirs = oracle.call(op, arrays, params)
    except BackendFailure as failure:
        return [_result(ctx, "oracle", check, op, clause, "unsupported", case, params,
                        f"oracle {oracle.backend.name} failed: {failure.message}")]
    expected = {name: (None if v is None else np.asarray(v, dtype=np.float64)) for name, v in theirs.outputs.items()}
    not_compared = _indices_not_compared(ctx, case, params, call, "oracle")
    if op == "max_pool" and not_compared is None:
        ref = reference.evaluate(op, arrays, params)
        expected["indices"] = ref["indices"] if expected.get("indices") is None else expected["indices"]
    elif not_compared is not None:
        expected.pop("indices", None)

    def both(mag: np.ndarray, k: int) -> np.ndarray:
        return ctx.bound(mag, k, case.dtype) + oracle.bound(mag, k, case.dtype)

    comparisons, notes = compare_outputs(ctx, case, op, params, arrays, call.outputs, expected, both,
                                         statistics=False)
    status, message = _summarise(comparisons)
    failing = next((c for c in comparisons if not c.passed), None)
    return [_result(ctx, "oracle", check, op, failing.clause if failing else clause, status, case, params,
                    "; ".join(filter(None, [message] + notes)), comparisons), *filter(None, [not_compared])]


# -- the invalid family ---------------------------------------------------------------------------
def check_invalid(ctx: CheckContext, entry: Any) -> CheckResult:
    """The backend must raise on a configuration SPEC.md declares invalid (any exception). When
    convspec's adapter (command backend, FunctionBackend) refused it before the implementation ran,
    the status is ``validated_by_adapter``: conforming, but not to the implementation's credit."""
    from .catalogue import forge

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


# -- streams of generated cases ---------------------------------------------------------------------
#: Exploration of a stream ends at its first time-out: each one costs a whole --timeout, and a
#: backend that hangs on one case tends to hang on its neighbours (the cluster is still reported).
MAX_STREAM_TIMEOUTS = 1


@dataclass
class StreamOutcome:
    """What a stream did: the cases that ran (a result other than unsupported) and its clusters."""

    cases: list[Case]
    clusters: list[FailureCluster]


def run_stream(ctx: CheckContext, strategy: Any, check: Callable[[Case], list[CheckResult]],
               max_examples: int, record: Callable[[CheckResult], None], *, name: str = "") -> StreamOutcome:
    """Run ``check`` on up to ``max_examples`` drawn cases and record every distinct failure once,
    shrunk to a minimal case.

    1. *Explore*: hypothesis draws the whole budget without shrinking; each distinct case is
       checked once and its results kept; failures do not stop the search (a time-out does:
       :data:`MAX_STREAM_TIMEOUTS`). Passing and unsupported results are recorded in order.
    2. *Cluster* the non-conforming results (:func:`clusters.group_failures`): key (check, status,
       clause, exception type) and the features the failing cases share and passing ones lack.
    3. *Shrink* one representative per cluster: a second hypothesis run with the same seed draws
       the same cases, answered from the kept results without calling the backend, up to the
       first case failing like the cluster, then shrinks it under that predicate (only new shrink
       candidates call the backend; none after a time-out). Crashed and timed-out clusters are
       not re-run: their smallest case represents them. Only representatives are recorded.

    Hypothesis' own multi-bug mode tells bugs apart by exception type and raising line only, and
    would shrink every one of them, hung cases included; the runner's clusters use the spec's
    features instead, and skip what is costly to re-run.
    """
    from .clusters import NOT_RERUN, build_clusters, group_failures, matches

    explored: dict[str, tuple[Case, list[CheckResult]]] = {}
    known: dict[str, list[CheckResult]] = {}
    state = {"timeouts": 0, "calls_stopped": False}

    def checked(case: Case) -> list[CheckResult] | None:
        """The case's results: kept ones, else a new check (None once calls have stopped)."""
        descriptor = case.descriptor
        if descriptor in known:
            return known[descriptor]
        if state["calls_stopped"]:
            return None
        results = check(case)
        known[descriptor] = results
        if any(r.status == "timed_out" for r in results):
            state["timeouts"] += 1
            state["calls_stopped"] = state["timeouts"] >= MAX_STREAM_TIMEOUTS
        return results

    def explore(case: Case) -> None:
        if case.descriptor not in known:
            results = checked(case)
            if results is not None:
                explored[case.descriptor] = (case, results)

    if not _hypothesis_run(ctx, strategy, explore, max_examples, shrink=False):
        return StreamOutcome([], [])
    outcomes = [result for _, results in explored.values() for result in results]
    for result in outcomes:
        if result.status not in NONCONFORMING:
            record(result)
    ran = [case for case, results in explored.values() if any(r.status != "unsupported" for r in results)]
    groups = group_failures(outcomes)
    if not groups:
        return StreamOutcome(ran, [])
    op = groups[0].members[0].op

    def representative(group: Any) -> tuple[CheckResult, bool, str]:
        smallest = min(group.members, key=case_size)
        if group.key[1] in NOT_RERUN:
            return smallest, False, f"not shrunk: a {group.key[1].replace('_', ' ')} case is not run again"
        if not ctx.settings.shrink:
            return smallest, False, ""
        state["calls_stopped"] = False  # each shrink may call the backend until its own time-out
        state["timeouts"] = 0

        def body(case: Case) -> None:
            for result in checked(case) or ():
                if matches(result, group.key, group.conditions):
                    raise _Stop(result)

        try:
            _hypothesis_run(ctx, strategy, body, max_examples, shrink=True)
        except _Stop as stop:
            return stop.result, True, ""
        except Exception as exc:  # noqa: BLE001 - e.g. hypothesis' Flaky: keep the unshrunk case
            return smallest, False, f"not shrunk: {type(exc).__name__} on replay (is the backend deterministic?)"
        return smallest, False, "not shrunk: the replay did not reach the cluster"

    clusters = build_clusters(groups, op, len(explored), f"{op}/{name or groups[0].key[0]}", representative)
    for _, result in clusters:
        record(result)
    return StreamOutcome(ran, [cluster for cluster, _ in clusters])


def _hypothesis_run(ctx: CheckContext, strategy: Any, body: Callable[[Case], None], max_examples: int,
                    shrink: bool) -> bool:
    """Run ``body`` on drawn cases under the run's seed; False when every draw was filtered out
    (unsupported: the catalogue reports those). Exceptions of ``body`` propagate, shrunk."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
    from hypothesis.database import DirectoryBasedExampleDatabase
    from hypothesis.errors import Unsatisfiable

    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    database = DirectoryBasedExampleDatabase(ctx.settings.database) if ctx.settings.database and shrink else None
    test = settings(max_examples=max_examples, deadline=None, database=database, phases=phases,
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                    report_multiple_bugs=False, print_blob=False)(given(strategy)(body))
    try:
        seed(ctx.settings.seed)(test)()
    except Unsatisfiable:
        return False
    return True


# -- the whole run ----------------------------------------------------------------------------------
def _default_dtypes(ctx: CheckContext) -> tuple[str, ...]:
    """The declared dtypes, bfloat16 only where NumPy can hold it (DTYPE-1)."""
    preferred = ("float32", "float64", "float16") + (("bfloat16",) if bfloat16_available() else ())
    return tuple(d for d in preferred if d in ctx.caps.dtypes)


@np.errstate(all="ignore")  # NaN and inf cases are deliberate: no floating-point warning noise
def run_backend(backend: Backend, spec: str, settings: Settings, *, cases: Sequence[Case] | None = None,
                oracle: Backend | None = None, progress: Progress | None = None) -> BackendRun:
    """All selected checks of one backend."""
    from . import strategies
    from .catalogue import INVALID, catalogue_cases
    from .defaults import default_cases, run_defaults
    from .coverage import pair_coverage
    from .properties import PROPERTIES

    started = time.perf_counter()
    invoker = Invoker(backend, isolate=settings.isolate, timeout=settings.timeout, memory_limit=settings.memory_limit)
    oracle_ctx = None
    if oracle is not None:
        oracle_ctx = CheckContext(oracle, oracle.name, Invoker(oracle), settings)
    ctx = CheckContext(backend, spec, invoker, settings, oracle_ctx)
    run = BackendRun(name=backend.name, spec=spec, capabilities=capabilities_json(backend))

    def record(result: CheckResult) -> None:
        """Keep the results of the selected checks (hygiene rides on the differential calls)."""
        if result.family in settings.checks or result.check in settings.checks:
            run.results.append(result)

    say = progress or (lambda message: None)
    dtypes = settings.dtypes or _default_dtypes(ctx)
    # Generated cases go to the ranks the backend runs (the others would all be unsupported).
    declared = backend.capabilities.ranks
    ranks = tuple(r for r in settings.ranks if declared is None or r in declared) or settings.ranks
    ops = [op for op in settings.ops if op in OPS]
    checks = settings.checks
    size: dict[str, Any] = {"max_batch": 1, "max_channels": 2, "max_spatial": 5, "max_kernel": 3} if backend.capabilities.speed == "slow" else {}

    def supported(case: Case) -> bool:
        return ctx.unsupported(case.op, case.params_object, case.dtype) is None

    def steer(rich: Any, plain: Any = None) -> Any:
        """Generated cases go to what the backend declares it runs (the catalogue still shows what
        it does not); plain problems keep a stream alive for a backend that declares little."""
        from hypothesis import strategies as st

        return st.one_of(rich.filter(supported), plain) if plain is not None else rich.filter(supported)

    exercised: dict[str, list[frozenset[str]]] = {}

    def streamed(op: str, outcome: StreamOutcome) -> None:
        """Keep a stream's clusters, and the features of its cases for the pairwise coverage."""
        run.clusters += outcome.clusters
        exercised.setdefault(op, []).extend(features_of(c.op, c.params_object) for c in outcome.cases)

    def run_case(case: Case, repeat: bool = False) -> None:
        if "differential" in checks or "hygiene" in checks or (
                case.data in SPECIAL_RECIPES and "special" in checks):
            family = "special" if case.data in SPECIAL_RECIPES else "differential"
            for result in check_differential(ctx, case, family, repeat=repeat):
                record(result)
        if "oracle" in checks and oracle_ctx is not None:
            for result in check_oracle(ctx, case):
                record(result)

    try:
        if cases is not None:  # explicit cases only (--case)
            for case in cases:
                run_case(case, repeat=True)
                for name in _property_names(checks):
                    if case.op in PROPERTIES[name].ops:
                        for result in PROPERTIES[name].run(ctx, case):
                            record(result)
            if "defaults" in checks:
                for result in run_defaults(ctx, cases):
                    record(result)
            return run
        if settings.catalogue:
            catalogue = [c for c in catalogue_cases(ops=ops, ranks=ranks, dtypes=dtypes)]
            say(f"{backend.name}: catalogue ({len(catalogue)} cases)")
            prefetch = getattr(backend, "prefetch", None)
            if callable(prefetch) and not settings.isolate:  # e.g. a command backend: one process per batch
                requests = []
                for case in catalogue:
                    if not ctx.unsupported(case.op, case.params_object, case.dtype):
                        requests.append((case.op, case.arrays(), case.params_object))
                prefetch(requests)
            for case in catalogue:
                run_case(case, repeat=True)
        for op in ops:
            if op not in backend.capabilities.ops:
                record(_result(ctx, "differential", "differential", op, OPS[op].clauses[0], "unsupported", None,
                               None, f"op {op} not implemented"))
                continue
            if "differential" in checks or "oracle" in checks or "hygiene" in checks:
                say(f"{backend.name}: {op} generated cases")
                streamed(op, run_stream(
                    ctx, steer(strategies.cases(op, ranks=ranks, dtypes=dtypes, **size),
                               strategies.cases(op, ranks=ranks, dtypes=dtypes, features=False, **size)),
                    lambda case: _stream_check(ctx, case, checks, oracle_ctx), settings.max_examples, record,
                    name="differential"))
            if "special" in checks:
                say(f"{backend.name}: {op} special values")
                streamed(op, run_stream(ctx, steer(strategies.special_cases(op, ranks=ranks, dtypes=dtypes, **size)),
                                        lambda case: check_differential(ctx, case, "special"),
                                        max(settings.max_examples // 2, 1), record, name="special"))
        for name in _property_names(checks):
            prop = PROPERTIES[name]
            for op in [op for op in prop.ops if op in ops and op in backend.capabilities.ops]:
                lacking = list(filter(None, (backend.capabilities.declared_unsupported(op, f) for f in prop.needs)))
                if lacking:
                    record(_result(ctx, "property", name, op, prop.clauses_by_op.get(op, prop.clause), "unsupported",
                                   None, None, f"{lacking[0]} (every case of this property uses it)"))
                    continue
                say(f"{backend.name}: property {name} on {op}")
                streamed(op, run_stream(ctx, steer(prop.strategy(op, ranks=ranks, dtypes=dtypes, **size)),
                                        functools.partial(prop.run, ctx), max(settings.max_examples // 2, 1), record,
                                        name=name))
        if "invalid" in checks:
            say(f"{backend.name}: invalid configurations ({len(INVALID)})")
            for entry in INVALID:
                if entry.op in ops:
                    record(check_invalid(ctx, entry))
        if "defaults" in checks:
            say(f"{backend.name}: arguments left at their defaults")
            for result in run_defaults(ctx, default_cases(ops, ranks, dtypes[0], settings.seed)):
                record(result)
        run.clusters = merge_clusters(run.clusters, run.results)
        for op, feature_sets in exercised.items():
            run.pair_coverage[op] = pair_coverage(op, feature_sets, unsupported=backend.capabilities.unsupported).to_json()
    finally:
        invoker.close()
        run.seconds = time.perf_counter() - started
        run.backend_seconds = ctx.backend_seconds
        run.harness_seconds = run.seconds - ctx.backend_seconds
    return run


def _stream_check(ctx: CheckContext, case: Case, checks: Sequence[str], oracle: CheckContext | None) -> list[CheckResult]:
    results = check_differential(ctx, case) if "differential" in checks or "hygiene" in checks else []
    if "oracle" in checks and oracle is not None:
        results += check_oracle(ctx, case)
    return results


def _property_names(checks: Sequence[str]) -> list[str]:
    from .properties import PROPERTIES

    if "property" in checks:
        return list(PROPERTIES)
    return [name for name in PROPERTIES if name in checks]


def capabilities_json(backend: Backend) -> dict[str, Any]:
    """The backend's declared capabilities as plain JSON values."""
    caps = backend.capabilities
    out: dict[str, Any] = {}
    for spec_field in fields(caps):
        value = getattr(caps, spec_field.name)
        if isinstance(value, (set, frozenset)):
            value = sorted(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[spec_field.name] = value
    return out


def resolve_checks(checks: Iterable[str] | None, oracle: bool) -> tuple[str, ...]:
    """Expand ``checks`` (families or single property names); validate names."""
    from .properties import PROPERTIES

    if not checks:
        selected = ["differential", "special", "property", "invalid", "hygiene", "defaults"] + (
            ["oracle"] if oracle else [])
        return tuple(selected)
    known = set(FAMILIES) | set(PROPERTIES) | {"differential"}
    out = []
    for check in checks:
        name = check.split(":")[0] if check.startswith(("invalid:", "oracle:")) else check
        if name not in known:
            raise ValueError(f"unknown check {check!r}; families: {', '.join(FAMILIES)}; "
                             f"properties: {', '.join(PROPERTIES)}")
        out.append(name)
    if "oracle" in out and not oracle:
        raise ValueError("the oracle check compares against a second backend: name it with --oracle BACKEND "
                         "(run_conformance(oracle=...))")
    if oracle and "oracle" not in out:
        out.append("oracle")
    return tuple(out)


def run_conformance(
    backends: str | Backend | Sequence[str | Backend],
    *,
    ops: Iterable[str] | None = None,
    ranks: Iterable[int] = (1, 2, 3),
    dtypes: Iterable[str] | None = None,
    checks: Iterable[str] | None = None,
    max_examples: int = 20,
    seed: int = 0,
    cases: Sequence[Case | str] | None = None,
    oracle: str | Backend | None = None,
    isolate: bool = False,
    timeout: float | None = None,
    memory_limit: int | None = None,
    catalogue: bool = True,
    database: str | None = None,
    progress: Progress | None = None,
    xfail: str | os.PathLike[str] | Sequence[XfailEntry] | None = None,
) -> Results:
    """Check one or more backends against the spec; returns the structured :class:`Results`.

    ``backends`` are loader specs (``"naive"``, ``"my_pkg.mod:backend"``, ``"path/file.py:attr"``) or
    backend objects. ``cases`` (objects or descriptors) replaces catalogue and generated cases.
    Deterministic for a given ``seed``. With ``isolate``, ``timeout`` (seconds per call, default
    60) and ``memory_limit`` (bytes of address space of the child process) bound each backend call;
    a command backend (``cmd:``) honours ``timeout`` without ``isolate`` too (per run of its
    program), any other backend needs ``isolate`` for it (ValueError). ``xfail`` — an
    expected-failures file or its entries (:mod:`convspec.conformance.xfail`) — turns the failures
    it records into ``known_failure`` results and reports entries that unexpectedly passed.

    >>> results = run_conformance("naive", ops=["conv"], ranks=[1], max_examples=2, checks=["differential"])
    >>> results.exit_code
    0
    """
    from ..backends.command import CommandBackend
    from .xfail import apply_xfail, load_xfail

    items = [backends] if isinstance(backends, str) or not isinstance(backends, Sequence) else list(backends)
    entries = load_xfail(xfail) if isinstance(xfail, (str, os.PathLike)) else list(xfail or ())
    chosen_ops = tuple(ops) if ops else tuple(OPS)
    unknown = [op for op in chosen_ops if op not in OPS]
    if unknown:
        raise ValueError(f"unknown ops {unknown}; ops are {sorted(OPS)}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    checked = resolve_checks(checks, oracle is not None)
    loaded = [(item if isinstance(item, str) else getattr(item, "name", repr(item)),
               load(item) if isinstance(item, str) else item) for item in items]
    if timeout is not None and not isolate:
        deaf = [spec for spec, backend in loaded if not isinstance(backend, CommandBackend)]
        if deaf:
            raise ValueError(f"timeout={timeout!r} without isolate: {deaf[0]} runs in this process, where a call "
                             "cannot be stopped; add isolate=True (--isolate), or drop the timeout")
    for _, backend in loaded:
        if isinstance(backend, CommandBackend) and timeout is not None:
            backend.timeout = timeout  # per run of the program: killed past it, reported timed_out
    oracle_backend = load(oracle) if isinstance(oracle, str) else oracle
    settings = Settings(ops=chosen_ops, ranks=tuple(ranks), dtypes=tuple(dtypes) if dtypes else None,
                        checks=checked, max_examples=max_examples, seed=seed, catalogue=catalogue, isolate=isolate,
                        timeout=timeout if timeout is not None or not isolate else DEFAULT_TIMEOUT,
                        memory_limit=memory_limit, database=database)
    parsed = None if cases is None else [Case.parse(c) if isinstance(c, str) else c for c in cases]
    results = Results(settings={key: list(value) if isinstance(value, tuple) else value
                                for key, value in asdict(settings).items()}
                      | {"oracle": getattr(oracle_backend, "name", None), "cases": None if parsed is None else
                         [c.descriptor for c in parsed]}
                      | ({"xfail": str(xfail)} if isinstance(xfail, (str, os.PathLike)) else {}))
    oracle_spec = oracle if isinstance(oracle, str) else getattr(oracle, "name", None)
    for (spec, backend), item in zip(loaded, items):
        run = run_backend(backend, spec, settings, cases=parsed, oracle=oracle_backend, progress=progress)
        run.adopt(spec, Launch(python_path=python_path_for(spec) if isinstance(item, str) else "", oracle=oracle_spec,
                               isolate=isolate, timeout=settings.timeout if isolate or timeout is not None else None,
                               memory_limit=memory_limit))
        results.backends.append(run)
    return apply_xfail(results, entries) if entries else results


def print_progress(message: str) -> None:
    """A progress callback writing one line per stage to stderr."""
    print(f"  … {message}", file=sys.stderr, flush=True)
