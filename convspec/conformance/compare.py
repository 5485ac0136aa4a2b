"""Applying the error model to arrays: one structured comparison per output.

The formulas live in :mod:`convspec.spec.accuracy`; this module applies them element-wise and
records what a report needs: how many elements broke which rule, the worst one (index, value,
reference, error, bound), the largest error / bound, and a histogram of error / bound for the
accuracy profile. Text is left to the report layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec import UNIT_ROUNDOFF, InternalError
from ..spec.dtypes import TINY
from ..spec.accuracy import bound_overflows, error_bound, statistical_limits, statistical_terms

#: Histogram edges of log10(error / bound) for the accuracy profile; exact matches are counted
#: apart, values past the last edge land in the last bin.
PROFILE_EDGES: tuple[float, ...] = tuple(x / 2 for x in range(-16, 5))  # 1e-8 .. 1e2


@dataclass
class Worst:
    """The element furthest outside (or closest to) its bound."""

    index: tuple[int, ...]
    out: float
    ref: float
    error: float
    bound: float

    def to_json(self) -> dict[str, Any]:
        return {"index": list(self.index), "out": _num(self.out), "ref": _num(self.ref),
                "error": _num(self.error), "bound": _num(self.bound)}


@dataclass
class Comparison:
    """Result of comparing one output array with its reference."""

    output: str
    count: int
    violations: int = 0
    clause: str = ""
    rule: str = ""
    max_ratio: float = 0.0
    worst: Worst | None = None
    exact: int = 0
    histogram: list[int] = field(default_factory=lambda: [0] * (len(PROFILE_EDGES) + 1))
    statistics: dict[str, float] | None = None

    @property
    def passed(self) -> bool:
        return self.violations == 0

    def to_json(self) -> dict[str, Any]:
        return {"output": self.output, "count": self.count, "violations": self.violations, "clause": self.clause,
                "rule": self.rule, "max_ratio": _num(self.max_ratio),
                "worst": self.worst.to_json() if self.worst else None, "exact": self.exact,
                "histogram": self.histogram,
                "statistics": None if self.statistics is None else {k: _num(v) for k, v in self.statistics.items()}}


def _num(value: float) -> float | str:
    """JSON has no NaN or infinity: those travel as strings."""
    value = float(value)
    return value if math.isfinite(value) else repr(value)


def _fail(comparison: Comparison, mask: np.ndarray, out: np.ndarray, ref: np.ndarray, clause: str, rule: str,
          error: np.ndarray | None = None, bound: np.ndarray | None = None) -> Comparison:
    comparison.violations = int(mask.sum())
    comparison.clause, comparison.rule = clause, rule
    if error is not None and bound is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(mask, error / bound, -np.inf)
        flat = int(np.nanargmax(ratio)) if np.isfinite(ratio).any() else int(np.argmax(mask))
    else:
        flat = int(np.argmax(mask))
    index = tuple(int(i) for i in np.unravel_index(flat, mask.shape))
    err = float(error[index]) if error is not None else abs(float(out[index]) - float(ref[index]))
    comparison.worst = Worst(index, float(out[index]), float(ref[index]), err,
                             float(bound[index]) if bound is not None else 0.0)
    return comparison


def compare(
    name: str,
    out: Any,
    ref: np.ndarray,
    mag: np.ndarray | None,
    *,
    k: int,
    dtype: str,
    accumulation: str | None = None,
    input_precision: str | None = None,
    exact: bool = False,
    signed_zeros: bool = False,
    exact_where: np.ndarray | None = None,
    exact_rule: str = "integer data with exactly representable partial sums must match exactly",
    bound: np.ndarray | None = None,
    nan_ok: np.ndarray | None = None,
    shape_clause: str = "HYGIENE-2",
) -> Comparison:
    """Compare ``out`` with the float64 ``ref`` under the error model.

    Rules, in order: shape (``shape_clause``, the clause whose formula decides it); a NaN
    reference needs NaN and an infinite one the same infinity (ERR-SPECIAL-1), except that a NaN
    is accepted where ``nan_ok`` is true (an implementation-defined NaN: CONV-GRAD-1,
    CONVT-GRAD-1); with ``exact`` every other element must match exactly, with
    ``signed_zeros`` down to the sign of a zero; so must the elements where ``exact_where`` is
    true (ERR-EXACT-1); otherwise ``|out − ref| ≤ bound`` (ERR-BOUND-1), the bound computed from
    ``mag`` unless given. An element whose bound reaches past the largest finite value of
    ``dtype`` may overflow to an infinity of the reference's sign.
    """
    out_arr = np.asarray(out)
    comparison = Comparison(name, int(np.size(ref)))
    if out_arr.shape != ref.shape:
        comparison.violations, comparison.clause = max(comparison.count, 1), shape_clause
        comparison.rule = f"shape {out_arr.shape} != expected {ref.shape}"
        return comparison
    out64 = out_arr.astype(np.float64)
    ref_nan = np.isnan(ref)
    bad = ref_nan & ~np.isnan(out64)
    if bad.any():
        return _fail(comparison, bad, out64, ref, "ERR-SPECIAL-1", "a NaN reference requires NaN")
    # NaN where a zero-extended formulation may produce it stands in for the strict value.
    accepted_nan = np.zeros(ref.shape, bool) if nan_ok is None else nan_ok & np.isnan(out64) & ~ref_nan
    ref_inf = np.isinf(ref)
    bad = ref_inf & (out64 != ref) & ~accepted_nan
    if bad.any():
        return _fail(comparison, bad, out64, ref, "ERR-SPECIAL-1", "an infinite reference requires the same infinity")
    finite = ~(ref_nan | ref_inf | accepted_nan)
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(out64 - ref)
    error = np.where(finite, error, 0.0)
    if exact:
        bad = finite & (error != 0)
        if signed_zeros:
            bad |= finite & (ref == 0) & (np.signbit(out64) != np.signbit(ref))
        comparison.exact = int((finite & ~bad).sum())
        if bad.any():
            return _fail(comparison, bad, out64, ref, "ERR-EXACT-1", "must match the reference exactly")
        return comparison
    if exact_where is not None:
        bad = finite & exact_where & (error != 0)
        if bad.any():
            return _fail(comparison, bad, out64, ref, "ERR-EXACT-1", exact_rule)
    if bound is None:
        if mag is None:  # engine self-check: never counted against a backend
            raise InternalError(f"comparing {name!r} under a bound needs its magnitude")
        bound = error_bound(mag, k, out_dtype=dtype, accumulation=accumulation, input_precision=input_precision)
        # ERR-SPECIAL-1 (3): where mag·(1 + α·K·u_acc) overflows the output dtype, anything goes.
        bound = np.where(bound_overflows(mag, k, dtype, accumulation), np.inf, bound)
        # ERR-SPECIAL-1 (4): a zero magnitude (every product and the bias zero) needs an exact zero.
        zero = finite & (np.asarray(mag) == 0) & (error != 0)
        if zero.any():
            return _fail(comparison, zero, out64, ref, "ERR-SPECIAL-1", "a zero magnitude requires an exact result")
    error = np.where(~finite | np.isinf(bound), 0.0, error)
    error = np.where(np.isnan(error), np.inf, error)  # a NaN output where the reference is finite
    bad = error > bound
    _profile(comparison, error, bound, finite)
    if bad.any():
        return _fail(comparison, bad, out64, ref, "ERR-BOUND-1",
                     "|out - ref| <= (alpha*K*u_acc + alpha*u_in + u_out)*mag + tiny", error, bound)
    return comparison


def _profile(comparison: Comparison, error: np.ndarray, bound: np.ndarray, finite: np.ndarray) -> None:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(finite & np.isfinite(bound), error / bound, np.nan)
    comparison.exact = int((finite & (error == 0)).sum())
    nonzero = ratio[np.isfinite(ratio) & (ratio > 0)]
    if nonzero.size:
        comparison.max_ratio = float(nonzero.max())
        bins = np.searchsorted(PROFILE_EDGES, np.log10(nonzero))
        comparison.histogram = np.bincount(np.minimum(bins, len(PROFILE_EDGES)),
                                           minlength=len(PROFILE_EDGES) + 1).tolist()


def statistical_test(
    out: Any,
    ref: np.ndarray,
    mag: np.ndarray,
    *,
    k: int,
    dtype: str,
    accumulation: str | None = None,
    input_precision: str | None = None,
    bias_term: bool = False,
    symmetric_data: bool = True,
) -> tuple[bool, dict[str, float]]:
    """ERR-STAT-1: TOSA's mean and variance limits on the normalised errors.

    e = (out − ref) / max(mag · u_out, tiny) over the T elements with finite ref and bound and
    mag > 0; k = max(1, ⌈K · u_acc / u_out⌉) (+1 with a bias). Passes when Σ e² ≤ 0.4·k·T and,
    for data drawn symmetrically about zero, |Σ e| ≤ 2·√(k·T). With a declared reduced input
    precision only the bias test applies.
    """
    out64 = np.asarray(out).astype(np.float64)
    use = np.isfinite(ref) & np.isfinite(mag) & (mag > 0) & np.isfinite(out64)
    e = (out64[use] - ref[use]) / np.maximum(mag[use] * UNIT_ROUNDOFF[dtype], TINY[dtype])
    count = int(e.size)
    terms = statistical_terms(k, dtype, accumulation, bias_term)
    bias_limit, variance_limit = statistical_limits(terms, count)
    total, squares = float(e.sum()), float(np.square(e).sum())
    check_variance = input_precision is None
    passed = (not check_variance or squares <= variance_limit) and (not symmetric_data or abs(total) <= bias_limit)
    return passed, {"count": count, "k": terms, "sum": total,
                    "bias_limit": bias_limit if symmetric_data else math.inf, "sum_of_squares": squares,
                    "variance_limit": variance_limit if check_variance else math.inf}
