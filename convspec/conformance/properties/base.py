"""The machinery every property shares: the Property record, the evaluation of one property on
one case (PropertyCheck: calls, error budgets, comparisons, abort), deriving configurations,
and the constants of the data the properties draw.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...spec import (CLAUSES, OPS, UNIT_ROUNDOFF, ConvParams, ConvTransposeParams, InternalError, InvalidParams, Params,
                     expected_shapes, init_kwargs, to_dtype)
from ...spec.accuracy import ALPHA, bound_overflows
from ..cases import Case
from ..compare import Comparison, Worst, compare
from ..context import CheckContext, check_result, failure_status, summarise
from ..invoke import BackendFailure
from ..results import CheckResult

#: Unit roundoff of float64, in which every check assembles its right-hand side.
U64 = UNIT_ROUNDOFF["float64"]
#: Data recipes of the generated cases whose values are all finite.
FINITE_RECIPES = ("impulse", "integers", "random", "wide", "cancel", "zeros")
#: Recipes for the max-pool window check: ties, signed zeros, NaN and -inf windows included.
MAX_POOL_RECIPES = ("ties", "random", "integers", "neg_zero", "nan", "neg_inf")
#: Step of the finite differences (a power of two: h·v is exact) and the grid of their data.
FD_STEP = 2.0**-4
FD_GRID = 2.0**-20

Strategy = Callable[..., Any]  # (op, *, ranks, dtypes, **size_kw) -> SearchStrategy[Case]


@dataclass(frozen=True)
class Property:
    """One oracle-free property: a relation among a backend's outputs on related problems.

    ``clause`` is the SPEC.md clause it enforces (``clauses_by_op`` refines it per op);
    ``strategy(op, *, ranks, dtypes, **size_kw)`` draws the cases to check it on; ``run(ctx,
    case)`` returns one result (family ``"property"``, check ``name``), or none outside its domain.
    """

    name: str
    clause: str
    ops: tuple[str, ...]
    description: str
    strategy: Strategy
    run: Callable[[CheckContext, Case], list[CheckResult]]
    clauses_by_op: Mapping[str, str] = field(default_factory=dict)
    #: features every case of this property uses: a backend declaring one unsupported skips it
    needs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = [c for c in (self.clause, *self.clauses_by_op.values()) if c not in CLAUSES]
        if unknown or any(op not in OPS for op in self.ops):
            raise InternalError(f"property {self.name}: unknown clauses {unknown} or ops {self.ops}")


# -- evaluation machinery ------------------------------------------------------------------------

class NotApplicable(Exception):
    """The case lies outside the property's domain: no result."""


class Abort(Exception):
    """The check ends early with ``status`` (unsupported, unsupported_raised, errored, crashed,
    timed_out, failed)."""

    def __init__(self, status: str, message: str, clause: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.clause = status, message, clause


@dataclass
class Budget:
    """Error budget per element: ``bound`` (+inf where anything goes) and ``special`` (True where a
    non-finite input reaches the element, so ERR-SPECIAL-1's NaN/infinity rules apply)."""

    bound: np.ndarray
    special: np.ndarray

    def __add__(self, other: Budget) -> Budget:
        return Budget(self.bound + other.bound, self.special | other.special)

    def apply(self, fn: Callable[[np.ndarray], np.ndarray]) -> Budget:
        return Budget(fn(self.bound), fn(self.special))

    @staticmethod
    def concatenate(parts: Sequence[Budget], axis: int) -> Budget:
        return Budget(np.concatenate([p.bound for p in parts], axis), np.concatenate([p.special for p in parts], axis))


class PropertyCheck:
    """One evaluation of a property on one case: guarded calls, error budgets, comparisons."""

    def __init__(self, ctx: CheckContext, name: str, case: Case, clause: str) -> None:
        self.ctx, self.name, self.case, self.clause = ctx, name, case, clause
        self.op = case.op
        self.params: Any = case.params_object  # the op's parameter object; each property narrows it
        self.dtype = case.dtype
        self.comparisons: list[Comparison] = []
        self.notes: list[str] = []
        self.rng = np.random.default_rng([case.seed, zlib.crc32(name.encode())])

    # -- inputs ------------------------------------------------------------------------------
    def arrays(self, finite: bool = False) -> dict[str, Any]:
        """The case's input arrays; with ``finite`` the property needs finite data (a split or a
        zero-stuffed kernel multiplies zeros by every input, and 0·inf is NaN)."""
        arrays = self.case.arrays()
        if finite and not all(np.isfinite(np.asarray(a, np.float64)).all() for a in arrays.values() if a is not None):
            raise NotApplicable("needs finite data")
        return arrays

    def random(self, shape: tuple[int, ...], dtype: str | None = None) -> np.ndarray:
        """Uniform values in [−1, 1], rounded to the dtype."""
        return self.rng.uniform(-1.0, 1.0, shape).astype(to_dtype(dtype or self.dtype))

    # -- calling -----------------------------------------------------------------------------
    def require(self, *configs: tuple[str, Params, str]) -> None:
        """Unsupported unless the backend declares every (op, params, label) configuration supported."""
        for op, params, label in configs:
            reason = self.ctx.unsupported(op, params, self.dtype)
            if reason:
                raise Abort("unsupported", f"{label}: {reason}")

    def call(self, op: str, arrays: Mapping[str, Any], params: Params, label: str) -> dict[str, Any]:
        """The backend's outputs of ``op``, each present (max-pool indices may be None) and of the op
        table's shape (HYGIENE-2)."""
        inputs = {name: arrays.get(name) for name in OPS[op].inputs}
        try:
            outputs = self.ctx.call(op, inputs, params).outputs
        except BackendFailure as failure:
            status, message = failure_status(failure)
            raise Abort(status, f"{label}: {message}", failure.clause) from None
        for name, shape in expected_shapes(op, params).items():
            if name not in OPS[op].outputs or shape is None:
                continue
            value = outputs.get(name)
            if value is None:
                if name == "indices":
                    continue
                raise Abort("failed", f"{label}: output {name} missing", "HYGIENE-2")
            if tuple(np.shape(value)) != shape:
                raise Abort("failed", f"{label}: {name} has shape {tuple(np.shape(value))}, expected {shape}",
                             "HYGIENE-2")
        return outputs

    def budget(self, op: str, arrays: Mapping[str, Any], params: Params, name: str) -> Budget:
        """ERR-BOUND-1 of output ``name`` of ``op`` on these inputs, for this backend and dtype.

        +inf where mag·(1 + α·K·u_acc) passes the dtype's largest finite value (the element may
        overflow, ERR-SPECIAL-1) or where mag is not finite (a non-finite input reaches it).
        """
        inputs = {key: arrays.get(key) for key in OPS[op].inputs}
        mag = self.ctx.magnitude(op, inputs, params)[name]
        k = self.ctx.terms(op, params)[name]
        bound = self.ctx.bound(mag, k, self.dtype)
        overflow = bound_overflows(mag, k, self.dtype, self.ctx.caps.accumulation_for(self.dtype))
        return Budget(np.where(overflow, np.inf, bound), ~np.isfinite(mag))

    # -- comparing ---------------------------------------------------------------------------
    def agree(self, name: str, out: Any, ref: np.ndarray, budget: Budget, relation: str) -> Comparison:
        """Require |out − ref| ≤ budget (+ u₆₄·|ref|, the float64 assembly of ``ref``)."""
        out_arr = np.asarray(out)
        ref = np.asarray(ref, dtype=np.float64)
        if out_arr.shape != ref.shape:
            comparison = compare(name, out_arr, ref, None, k=1, dtype=self.dtype, bound=budget.bound)
            return self._add(comparison, relation)
        out64 = out_arr.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            bound = budget.bound + np.where(np.isfinite(ref), U64 * np.abs(ref), 0.0)
        free = np.isinf(bound) & ~budget.special
        lost = np.isfinite(bound) & ~budget.special & ~(np.isfinite(out64) & np.isfinite(ref))
        if lost.any():
            comparison = violation(name, lost, out64, ref, "ERR-SPECIAL-1",
                                    "finite inputs within range must give finite results on both sides")
            return self._add(comparison, relation)
        comparison = compare(name, out_arr, np.where(free, out64, ref), None, k=1, dtype=self.dtype,
                             bound=np.where(budget.special, np.inf, bound))
        return self._add(comparison, relation)

    def agree_scalar(self, name: str, lhs: float, rhs: float, bound: float, relation: str) -> Comparison:
        return self.agree(name, np.array([lhs]), np.array([rhs]),
                          Budget(np.array([bound]), np.array([False])), relation)

    def same_selection(self, y: Any, ref_y: Any, indices: Any, ref_indices: Any, relation: str) -> None:
        """Max pool selects: y exactly (signed zeros too), indices exactly where the window has no
        NaN (which NaN is indexed is implementation-defined, MAXPOOL-NAN-1)."""
        ref64 = np.asarray(ref_y).astype(np.float64)
        self._add(compare("y", y, ref64, None, k=1, dtype=self.dtype, exact=True, signed_zeros=True), relation)
        if indices is None or ref_indices is None:
            self.notes.append("indices not returned: not compared")
            return
        got = np.asarray(indices).astype(np.int64)
        want = np.where(np.isnan(ref64), got, np.asarray(ref_indices).astype(np.int64))
        self._add(compare("indices", got, want.astype(np.float64), None, k=1, dtype="float64", exact=True), relation)

    def _add(self, comparison: Comparison, relation: str) -> Comparison:
        """Record ``comparison``; a broken error-model rule is reported as a breach of the property's
        clause, stated as the relation (the right-hand side is the backend's own, not a reference)."""
        if not comparison.passed and comparison.clause.startswith("ERR-"):
            rule = {"ERR-BOUND-1": "|lhs − rhs| ≤ the sum of both sides' error bounds",
                    "ERR-EXACT-1": "both sides must be identical"}.get(comparison.clause, comparison.rule)
            comparison.clause = self.clause
            comparison.rule = f"{relation}: {rule.replace('reference', 'right-hand side')}"
        self.comparisons.append(comparison)
        return comparison


def violation(name: str, mask: np.ndarray, out: np.ndarray, ref: np.ndarray, clause: str, rule: str) -> Comparison:
    """A failed comparison at the first element of ``mask``."""
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))
    with np.errstate(invalid="ignore"):
        error = abs(float(out[index]) - float(ref[index]))
    return Comparison(name, int(mask.size), violations=int(mask.sum()), clause=clause, rule=rule,
                      worst=Worst(index, float(out[index]), float(ref[index]), error, 0.0))


def runner_for(name: str, impl: Callable[[PropertyCheck], None], clauses: Mapping[str, str]
            ) -> Callable[[CheckContext, Case], list[CheckResult]]:
    def run(ctx: CheckContext, case: Case) -> list[CheckResult]:
        params = case.params_object
        check = PropertyCheck(ctx, name, case, clauses[case.op])
        try:
            impl(check)
        except NotApplicable:
            return []
        except Abort as abort:
            return [check_result(ctx, "property", name, case.op, abort.clause or check.clause, abort.status, case,
                            params, abort.message, check.comparisons)]
        status, message = summarise(check.comparisons)
        failing = next((c for c in check.comparisons if not c.passed), None)
        clause = failing.clause if failing is not None and failing.clause in CLAUSES else check.clause
        return [check_result(ctx, "property", name, case.op, clause, status, case, params,
                        "; ".join(filter(None, [message, *check.notes])), check.comparisons)]

    run.__name__ = f"run_{name}"
    return run


# -- deriving configurations ---------------------------------------------------------------------

def derive(params: Any, **changes: Any) -> Any:
    """The parameter object of ``params`` with ``changes``; must be valid (else an engine bug)."""
    try:
        return type(params)(**{**init_kwargs(params), **changes})
    except InvalidParams as exc:
        raise InternalError(f"derived configuration invalid: {exc}") from exc


def derive_or_skip(params: Any, **changes: Any) -> Any:
    """As :func:`derive`, for derivations that can leave the spec's domain (then: no result)."""
    try:
        return type(params)(**{**init_kwargs(params), **changes})
    except InvalidParams as exc:
        raise NotApplicable(str(exc)) from exc


def out_channels(params: ConvParams | ConvTransposeParams) -> int:
    return params.output_shape[1]


def channel_shape(ndim: int) -> tuple[int, ...]:
    """(1, C, 1, …): a per-channel vector broadcast over batch and space."""
    return (1, -1) + (1,) * (ndim - 2)


def dot_product(a: Any, b: Any) -> tuple[float, float]:
    """⟨a, b⟩ in float64 and a bound on its rounding: γ_{L+1}·Σ|a·b| ≤ α·(L + 1)·u₆₄·Σ|a·b|."""
    products = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    return float(products.sum()), ALPHA * (products.size + 1) * U64 * float(np.abs(products).sum())


def weighted(budget: Budget, weights: Any) -> float:
    """Σ bound·|weights|: the error an elementwise budget can put into an inner product."""
    with np.errstate(invalid="ignore"):
        return float(np.sum(budget.bound * np.abs(np.asarray(weights, np.float64))))
