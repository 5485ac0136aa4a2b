"""What every check needs: the run's Settings, the CheckContext (backend, invoker, error model),
comparison of a backend's outputs with expected ones under that error model, and the one verdict
helper that turns comparisons into a CheckResult (:func:`check_result`, :func:`summarise`,
:func:`verdict`, :func:`failure_status`).

Imports data modules (cases, compare, results, invoke) and the reference; never a check or the engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import reference
from ..backends import Backend
from ..spec import OPS, ConvParams, ConvTransposeParams, MaxPoolParams, Params
from ..spec.accuracy import error_bound, exact_integer_limit, nonlocal_terms, terms_per_output, wants_statistics
from ..spec.features import features_of
from .cases import INTEGER_RECIPES, Case
from .compare import Comparison, Worst, compare, statistical_test
from .invoke import BackendFailure, Call, Invoker
from .results import CheckResult

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



def check_result(ctx: CheckContext, family: str, check: str, op: str, clause: str, status: str, case: Case | None,
            params: Params | None, message: str = "", comparisons: list[Comparison] | None = None) -> CheckResult:
    return CheckResult(backend=ctx.backend.name, family=family, check=check, op=op, clause=clause, status=status,
                       case=case, features=tuple(sorted(features_of(op, params))) if params is not None else (),
                       message=message, comparisons=comparisons or [], backend_spec=ctx.spec)


def failure_status(failure: BackendFailure) -> tuple[str, str]:
    """Status and message of a call that returned nothing: *unsupported (raised)* for
    NotImplementedError and Unsupported (never a failure, even where the capabilities declared the
    configuration supported), *failed* for outputs an adapter found non-conforming (the clause is
    ``failure.clause``), else errored, crashed or timed_out (:func:`.invoke.failure_of`)."""
    return failure.status, failure.message


def indices_not_compared(ctx: CheckContext, case: Case, params: Params, call: Call,
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
    return check_result(ctx, family, family, case.op, "MAXPOOL-INDEX-1", status, case, params,
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
        comparison.worst = Worst(where, float(got[where]), float(ref_indices[where]), abs(float(got[where]) -
                                 float(ref_indices[where])), 0.0)
    else:
        comparison.exact = comparison.count
    return comparison


def route(dy: np.ndarray, indices: np.ndarray, input_shape: tuple[int, ...]) -> np.ndarray:
    """dx of max pool from given indices, in float64: each dy added at its index (MAXPOOL-GRAD-1)."""
    planes = np.zeros(input_shape[:2] + (int(np.prod(input_shape[2:])),))
    batch, channel = np.meshgrid(np.arange(indices.shape[0]), np.arange(indices.shape[1]), indexing="ij")
    flat = indices.reshape(indices.shape[:2] + (math.prod(indices.shape[2:]),))
    np.add.at(planes, (batch[..., None], channel[..., None], flat), np.asarray(dy, np.float64).reshape(flat.shape))
    return planes.reshape(input_shape)




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
        return mag <= exact_integer_limit(case.dtype, accumulation)
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


def summarise(comparisons: list[Comparison]) -> tuple[str, str]:
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


def first_failure(comparisons: list[Comparison]) -> Comparison | None:
    """The first comparison that did not pass (None when all did)."""
    return next((c for c in comparisons if not c.passed), None)


def verdict(ctx: CheckContext, family: str, check: str, op: str, clause: str, case: Case | None,
            params: Params | None, comparisons: list[Comparison], notes: list[str] | tuple[str, ...] = ()) -> CheckResult:
    """The result of a check decided by ``comparisons``: passed, or failed citing the clause of the
    first failing comparison (``clause`` when all passed); the message is the summary then ``notes``."""
    status, message = summarise(comparisons)
    failing = first_failure(comparisons)
    return check_result(ctx, family, check, op, failing.clause if failing else clause, status, case, params,
                  "; ".join(filter(None, [message, *notes])), comparisons)
