"""Oracle-free properties: relations a conforming backend's OWN outputs must satisfy.

Each property computes one problem two ways with the backend under test — e.g. a strided conv and
the stride-1 conv subsampled — and requires the two to agree. The reference is used only for the
magnitudes ``mag = op(|x|, |w|, |b|)`` of the error model, never for values, so every check here
still holds if the reference were wrong.

Two backend computations A and B of one quantity, each within its own ERR-BOUND-1 bound of the
exact answer, satisfy

    |A − B| ≤ bound_A + bound_B,     bound = (α·K·u_acc + α·u_in + u_out)·mag + tiny   (ERR-BOUND-1)

with each side's ``mag`` and ``K`` taken from its own configuration and mapped to the same output
positions; a right-hand side assembled from several calls adds their bounds, plus the float64
rounding of the assembly (u₆₄·|B|). Where a side's magnitude can overflow the dtype anything goes;
where a finite bound holds, both sides must be finite; a non-finite input reaching an element
requires the same NaN or infinity on both sides (ERR-SPECIAL-1). Arrays that are combined stay
exactly representable: splits have disjoint supports (x₁ + x₂ = x exactly), kernels are stuffed
with exact zeros, perturbations are powers of two times values on a coarse grid.

Every property is a :class:`Property` of :data:`PROPERTIES`; its ``run(ctx, case)`` returns one
``CheckResult`` (family ``"property"``, check = the property's name) — or none when the case lies
outside the property's domain (e.g. ``groups = 1`` for ``grouped_concat``), so an explicit
``--case`` run never reports a vacuous pass. Its ``strategy(op, ranks=…, dtypes=…, **sizes)``
draws cases inside that domain from :func:`convspec.conformance.strategies.cases`.

>>> sorted(PROPERTIES)[:3]
['adjoint', 'avg_pool_is_conv', 'bias_shift']
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec import (
    CLAUSES,
    OPS,
    UNIT_ROUNDOFF,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    InternalError,
    InvalidParams,
    MaxPoolParams,
    Params,
    PoolParams,
    effective_kernel,
    expected_shapes,
    init_kwargs,
    to_dtype,
)
from ..spec.accuracy import ALPHA
from .cases import Case
from .compare import Comparison, Worst, largest_finite, compare
from .invoke import BackendFailure
from .results import CheckResult
from .context import CheckContext, check_result, failure_status, summarise, window_members

__all__ = ["PROPERTIES", "Property", "avg_pool_divisor", "window_max"]

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

class _NotApplicable(Exception):
    """The case lies outside the property's domain: no result."""


class _Abort(Exception):
    """The check ends early with ``status`` (unsupported, unsupported_raised, errored, crashed,
    timed_out, failed)."""

    def __init__(self, status: str, message: str, clause: str = "") -> None:
        super().__init__(message)
        self.status, self.message, self.clause = status, message, clause


@dataclass
class _Budget:
    """Error budget per element: ``bound`` (+inf where anything goes) and ``special`` (True where a
    non-finite input reaches the element, so ERR-SPECIAL-1's NaN/infinity rules apply)."""

    bound: np.ndarray
    special: np.ndarray

    def __add__(self, other: _Budget) -> _Budget:
        return _Budget(self.bound + other.bound, self.special | other.special)

    def apply(self, fn: Callable[[np.ndarray], np.ndarray]) -> _Budget:
        return _Budget(fn(self.bound), fn(self.special))

    @staticmethod
    def concatenate(parts: Sequence[_Budget], axis: int) -> _Budget:
        return _Budget(np.concatenate([p.bound for p in parts], axis), np.concatenate([p.special for p in parts], axis))


class _Check:
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
            raise _NotApplicable("needs finite data")
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
                raise _Abort("unsupported", f"{label}: {reason}")

    def call(self, op: str, arrays: Mapping[str, Any], params: Params, label: str) -> dict[str, Any]:
        """The backend's outputs of ``op``, each present (max-pool indices may be None) and of the op
        table's shape (HYGIENE-2)."""
        inputs = {name: arrays.get(name) for name in OPS[op].inputs}
        try:
            outputs = self.ctx.call(op, inputs, params).outputs
        except BackendFailure as failure:
            status, message = failure_status(failure)
            raise _Abort(status, f"{label}: {message}", failure.clause) from None
        for name, shape in expected_shapes(op, params).items():
            if name not in OPS[op].outputs or shape is None:
                continue
            value = outputs.get(name)
            if value is None:
                if name == "indices":
                    continue
                raise _Abort("failed", f"{label}: output {name} missing", "HYGIENE-2")
            if tuple(np.shape(value)) != shape:
                raise _Abort("failed", f"{label}: {name} has shape {tuple(np.shape(value))}, expected {shape}",
                             "HYGIENE-2")
        return outputs

    def budget(self, op: str, arrays: Mapping[str, Any], params: Params, name: str) -> _Budget:
        """ERR-BOUND-1 of output ``name`` of ``op`` on these inputs, for this backend and dtype.

        +inf where mag·(1 + α·K·u_acc) passes the dtype's largest finite value (the element may
        overflow, ERR-SPECIAL-1) or where mag is not finite (a non-finite input reaches it).
        """
        inputs = {key: arrays.get(key) for key in OPS[op].inputs}
        mag = self.ctx.magnitude(op, inputs, params)[name]
        k = self.ctx.terms(op, params)[name]
        bound = self.ctx.bound(mag, k, self.dtype)
        u_acc = UNIT_ROUNDOFF[self.ctx.caps.accumulation_for(self.dtype)]
        with np.errstate(over="ignore", invalid="ignore"):
            overflow = mag * (1 + ALPHA * k * u_acc) > largest_finite(self.dtype)
        return _Budget(np.where(overflow, np.inf, bound), ~np.isfinite(mag))

    # -- comparing ---------------------------------------------------------------------------
    def agree(self, name: str, out: Any, ref: np.ndarray, budget: _Budget, relation: str) -> Comparison:
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
            comparison = _violation(name, lost, out64, ref, "ERR-SPECIAL-1",
                                    "finite inputs within range must give finite results on both sides")
            return self._add(comparison, relation)
        comparison = compare(name, out_arr, np.where(free, out64, ref), None, k=1, dtype=self.dtype,
                             bound=np.where(budget.special, np.inf, bound))
        return self._add(comparison, relation)

    def agree_scalar(self, name: str, lhs: float, rhs: float, bound: float, relation: str) -> Comparison:
        return self.agree(name, np.array([lhs]), np.array([rhs]),
                          _Budget(np.array([bound]), np.array([False])), relation)

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


def _violation(name: str, mask: np.ndarray, out: np.ndarray, ref: np.ndarray, clause: str, rule: str) -> Comparison:
    """A failed comparison at the first element of ``mask``."""
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(mask)), mask.shape))
    with np.errstate(invalid="ignore"):
        error = abs(float(out[index]) - float(ref[index]))
    return Comparison(name, int(mask.size), violations=int(mask.sum()), clause=clause, rule=rule,
                      worst=Worst(index, float(out[index]), float(ref[index]), error, 0.0))


def _runner(name: str, impl: Callable[[_Check], None], clauses: Mapping[str, str]
            ) -> Callable[[CheckContext, Case], list[CheckResult]]:
    def run(ctx: CheckContext, case: Case) -> list[CheckResult]:
        params = case.params_object
        check = _Check(ctx, name, case, clauses[case.op])
        try:
            impl(check)
        except _NotApplicable:
            return []
        except _Abort as abort:
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

def _derive(params: Any, **changes: Any) -> Any:
    """The parameter object of ``params`` with ``changes``; must be valid (else an engine bug)."""
    try:
        return type(params)(**{**init_kwargs(params), **changes})
    except InvalidParams as exc:
        raise InternalError(f"derived configuration invalid: {exc}") from exc


def _derive_or_skip(params: Any, **changes: Any) -> Any:
    """As :func:`_derive`, for derivations that can leave the spec's domain (then: no result)."""
    try:
        return type(params)(**{**init_kwargs(params), **changes})
    except InvalidParams as exc:
        raise _NotApplicable(str(exc)) from exc


def _out_channels(params: ConvParams | ConvTransposeParams) -> int:
    return params.output_shape[1]


def _channel_shape(ndim: int) -> tuple[int, ...]:
    """(1, C, 1, …): a per-channel vector broadcast over batch and space."""
    return (1, -1) + (1,) * (ndim - 2)


def _dot(a: Any, b: Any) -> tuple[float, float]:
    """⟨a, b⟩ in float64 and a bound on its rounding: γ_{L+1}·Σ|a·b| ≤ α·(L + 1)·u₆₄·Σ|a·b|."""
    products = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    return float(products.sum()), ALPHA * (products.size + 1) * U64 * float(np.abs(products).sum())


def _weighted(budget: _Budget, weights: Any) -> float:
    """Σ bound·|weights|: the error an elementwise budget can put into an inner product."""
    with np.errstate(invalid="ignore"):
        return float(np.sum(budget.bound * np.abs(np.asarray(weights, np.float64))))


# -- 1, 2: linearity -------------------------------------------------------------------------------

def _linearity(check: _Check, which: str) -> None:
    """op(a₁ + a₂) = op(a₁) + op(a₂) for ``which`` ∈ {x, w}, no bias, a₁, a₂ disjoint parts of a.

    a₁ + a₂ = a exactly in any dtype; the two sides differ by at most the three calls' bounds.
    """
    op, params = check.op, check.params
    arrays = check.arrays(finite=True)
    label = op
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        params, label = _derive(params, bias_shape=None), f"{op} without bias"
        arrays["b"] = None
    check.require((op, params, label))
    whole = arrays[which]
    mask = check.rng.random(whole.shape) < 0.5
    zero = np.zeros_like(whole)
    parts = [np.where(mask, whole, zero), np.where(mask, zero, whole)]
    y = check.call(op, arrays, params, f"{op}({which})")["y"]
    total, budget = np.zeros(params.output_shape), check.budget(op, arrays, params, "y")
    for index, part in enumerate(parts, 1):
        split = {**arrays, which: part}
        total = total + check.call(op, split, params, f"{op}({which}{index})")["y"].astype(np.float64)
        budget = budget + check.budget(op, split, params, "y")
    check.agree("y", y, total, budget, f"{op}({which}1 + {which}2) = {op}({which}1) + {op}({which}2)")


# -- 3: bias shift -------------------------------------------------------------------------------

def _bias_shift(check: _Check) -> None:
    """op(x, w, b) − op(x, w) = b[o] at every output position of channel o (CONV-DEF-1, CONVT-DEF-1)."""
    op, params = check.op, check.params
    arrays = check.arrays()
    channels = _out_channels(params)
    with_bias = params if params.bias_shape is not None else _derive(params, bias_shape=(channels,))
    b = arrays["b"] if arrays.get("b") is not None else check.random((channels,))
    without = _derive(params, bias_shape=None)
    check.require((op, with_bias, f"{op} with bias"), (op, without, f"{op} without bias"))
    biased = {**arrays, "b": b}
    plain = {**arrays, "b": None}
    y = check.call(op, biased, with_bias, f"{op}(x, w, b)")["y"]
    y0 = check.call(op, plain, without, f"{op}(x, w)")["y"]
    shifted = y0.astype(np.float64) + np.asarray(b, np.float64).reshape(_channel_shape(y0.ndim))
    budget = check.budget(op, biased, with_bias, "y") + check.budget(op, plain, without, "y")
    check.agree("y", y, shifted, budget, f"{op}(x, w, b) = {op}(x, w) + b")


# -- 4: adjoint and gradient = transpose ---------------------------------------------------------

def _transpose_of(params: ConvParams) -> ConvTransposeParams:
    """conv_transpose mapping conv's output shape back to its input shape (CONV-GRAD-1): same s, d,
    pads, groups, output_padding a = (n + p_b + p_a − d·(k − 1) − 1) mod s, weight read unchanged."""
    return ConvTransposeParams(
        input_shape=params.output_shape, weight_shape=params.weight_shape, stride=params.stride,
        padding=params.pads, output_padding=params.output_padding_for_input(), dilation=params.dilation,
        groups=params.groups)


def _conv_of(params: ConvTransposeParams) -> ConvParams:
    """The conv whose adjoint ``params`` is (CONVT-DEF-1): input of conv_transpose's output shape."""
    return ConvParams(input_shape=params.output_shape, weight_shape=params.weight_shape, stride=params.stride,
                      padding=params.pads, dilation=params.dilation, groups=params.groups)


def _crop(array: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The first shape[i] entries along every axis (CONVT-DEF-1: keep the conv's first n outputs)."""
    return array[tuple(slice(0, n) for n in shape)]


def _adjoint_pair(check: _Check) -> tuple[ConvParams, ConvTransposeParams]:
    params = check.params
    if isinstance(params, ConvParams):
        if params.padding_mode != "zeros":
            raise _NotApplicable("the adjoint identity is stated for zeros padding")
        conv = _derive(params, bias_shape=None) if params.bias_shape is not None else params
        return conv, _transpose_of(conv)
    transpose = _derive(params, bias_shape=None) if params.bias_shape is not None else params
    return _conv_of(transpose), transpose


def _adjoint(check: _Check) -> None:
    """⟨C u, v⟩ = ⟨u, Cᵀ v⟩ with C = conv (first n outputs) and Cᵀ = conv_transpose, same weight
    (CONVT-DEF-1).

    Each side is a float64 inner product of backend outputs with exact inputs. With |C u − (C u)*|
    ≤ β_C and |Cᵀ v − (Cᵀ v)*| ≤ β_T elementwise and ⟨(C u)*, v⟩ = ⟨u, (Cᵀ v)*⟩ exactly,
    |⟨C u, v⟩ − ⟨u, Cᵀ v⟩| ≤ Σ β_C·|v| + Σ |u|·β_T + the two dots' float64 rounding.
    """
    conv, transpose = _adjoint_pair(check)
    arrays = check.arrays(finite=True)
    w = arrays["w"]
    check.require(("conv", conv, "conv (no bias)"), ("conv_transpose", transpose, "conv_transpose (its adjoint)"))
    if check.op == "conv":
        u, v = arrays["x"], check.random(transpose.input_shape)
    else:
        u, v = check.random(conv.input_shape), arrays["x"]
    left = {"x": u, "w": w, "b": None}
    right = {"x": v, "w": w, "b": None}
    cu = _crop(check.call("conv", left, conv, "conv(u)")["y"], transpose.input_shape)
    ctv = check.call("conv_transpose", right, transpose, "conv_transpose(v)")["y"]
    beta_c = check.budget("conv", left, conv, "y").apply(lambda a: _crop(a, transpose.input_shape))
    beta_t = check.budget("conv_transpose", right, transpose, "y")
    lhs, lhs_rounding = _dot(cu, v)
    rhs, rhs_rounding = _dot(u, ctv)
    bound = _weighted(beta_c, v) + _weighted(beta_t, u) + lhs_rounding + rhs_rounding
    check.agree_scalar("<conv(u), v>", lhs, rhs, bound, "<conv(u), v> = <u, conv_transpose(v)>")


def _gradient_is_transpose(check: _Check) -> None:
    """conv_backward's dx = conv_transpose(dy) (CONV-GRAD-1, zeros padding); conv_transpose_backward's
    dx = conv(dy), first n outputs (CONVT-GRAD-1). Both sides within their own bounds."""
    op, params = check.op, check.params
    arrays = check.arrays()
    w, dy = arrays["w"], arrays["dy"]
    other: Params
    if isinstance(params, ConvParams):
        if params.padding_mode != "zeros":
            raise _NotApplicable("dx = conv_transpose(dy) holds for zeros padding")
        other_op, other = "conv_transpose", _transpose_of(_derive(params, bias_shape=None))
    else:
        other_op, other = "conv", _conv_of(_derive(params, bias_shape=None))
    check.require((op, params, op), (other_op, other, f"{other_op} of dy"))
    dx = check.call(op, arrays, params, op)["dx"]
    inputs = {"x": dy, "w": w, "b": None}
    y = _crop(check.call(other_op, inputs, other, f"{other_op}(dy)")["y"].astype(np.float64), params.input_shape)
    budget = check.budget(op, arrays, params, "dx") + check.budget(other_op, inputs, other, "y").apply(
        lambda a: _crop(a, params.input_shape))
    check.agree("dx", dx, y, budget, f"dx = {other_op}(dy)")


# -- 5: groups -------------------------------------------------------------------------------------

def _grouped_concat(check: _Check) -> None:
    """op with groups G = concat over g of the ungrouped op on group g's channel slices
    (CONV-GROUPS-1): x[:, g·C_g:(g+1)·C_g], the weight rows of group g, b[g·M:(g+1)·M]."""
    op, params = check.op, check.params
    if params.groups == 1:
        raise _NotApplicable("groups = 1")
    arrays = check.arrays()
    x, w, b = arrays["x"], arrays["w"], arrays.get("b")
    groups = params.groups
    c_g, m = params.input_shape[1] // groups, _out_channels(params) // groups
    per_group = []
    for g in range(groups):
        rows = slice(g * m, (g + 1) * m) if op == "conv" else slice(g * c_g, (g + 1) * c_g)
        w_g = np.ascontiguousarray(w[rows])
        inputs = {"x": np.ascontiguousarray(x[:, g * c_g:(g + 1) * c_g]), "w": w_g,
                  "b": None if b is None else np.ascontiguousarray(b[g * m:(g + 1) * m])}
        group_params = _derive(params, input_shape=(params.input_shape[0], c_g) + params.input_shape[2:],
                               weight_shape=w_g.shape, groups=1,
                               bias_shape=None if b is None else (m,))
        per_group.append((inputs, group_params))
    check.require((op, params, f"{op} with groups={groups}"),
                  *[(op, p, f"{op} of group {g} (groups=1)") for g, (_, p) in enumerate(per_group)])
    y = check.call(op, arrays, params, f"{op} (groups={groups})")["y"]
    ys = [check.call(op, inputs, p, f"{op} of group {g}")["y"].astype(np.float64)
          for g, (inputs, p) in enumerate(per_group)]
    budget = check.budget(op, arrays, params, "y") + _Budget.concatenate(
        [check.budget(op, inputs, p, "y") for inputs, p in per_group], axis=1)
    check.agree("y", y, np.concatenate(ys, axis=1), budget, f"{op}(groups={groups}) = concat of per-group {op}")


# -- 6: dilation -----------------------------------------------------------------------------------

def _dilation_zero_stuffed(check: _Check) -> None:
    """conv with dilation d = conv with dilation 1 and kernel w′[q·d] = w[q], zeros between taps
    (CONV-DEF-1: the sum over q of w[q]·x̃[p·s + q·d])."""
    params = check.params
    if all(d == 1 for d in params.dilation):
        raise _NotApplicable("dilation 1")
    arrays = check.arrays(finite=True)
    w = arrays["w"]
    stuffed_kernel = tuple(effective_kernel(k, d) for k, d in zip(params.kernel_size, params.dilation))
    stuffed = np.zeros(w.shape[:2] + stuffed_kernel, dtype=w.dtype)
    stuffed[(slice(None), slice(None)) + tuple(slice(None, None, d) for d in params.dilation)] = w
    plain = _derive(params, weight_shape=stuffed.shape, dilation=1, padding=params.pads)
    check.require(("conv", params, "conv"), ("conv", plain, "conv with the zero-stuffed kernel, dilation 1"))
    inputs = {**arrays, "w": stuffed}
    y = check.call("conv", arrays, params, "conv (dilated)")["y"]
    y1 = check.call("conv", inputs, plain, "conv (stuffed kernel)")["y"]
    budget = check.budget("conv", arrays, params, "y") + check.budget("conv", inputs, plain, "y")
    check.agree("y", y, y1.astype(np.float64), budget, "conv(dilation d) = conv(zero-stuffed kernel, dilation 1)")


# -- 7: stride -------------------------------------------------------------------------------------

def _stride_subsampled(check: _Check) -> None:
    """y_s[p] = y_1[p·s]: the stride-s output is the stride-1 output (same pads) subsampled
    (CONV-DEF-1, MAXPOOL-DEF-1, AVGPOOL-DEF-1: window p starts at p·s − p_b). Floor mode only."""
    op, params = check.op, check.params
    if all(s == 1 for s in params.stride):
        raise _NotApplicable("stride 1")
    if isinstance(params, PoolParams) and params.ceil_mode:
        raise _NotApplicable("ceil mode changes the window count")
    unit = _derive_or_skip(params, stride=1, padding=params.pads)
    check.require((op, params, f"{op} with stride {params.stride}"), (op, unit, f"{op} with stride 1"))
    arrays = check.arrays()
    strided = check.call(op, arrays, params, f"{op} (stride {params.stride})")
    full = check.call(op, arrays, unit, f"{op} (stride 1)")
    picks = (slice(None), slice(None)) + tuple(slice(0, o * s, s) for o, s in
                                               zip(params.output_shape[2:], params.stride))
    relation = f"{op}(stride s)[p] = {op}(stride 1)[p*s]"
    if op == "max_pool":
        indices = full.get("indices")
        check.same_selection(strided["y"], full["y"][picks], strided.get("indices"),
                             None if indices is None else indices[picks], relation)
        return
    budget = check.budget(op, arrays, params, "y") + check.budget(op, arrays, unit, "y").apply(lambda a: a[picks])
    check.agree("y", strided["y"], full["y"][picks].astype(np.float64), budget, relation)


# -- 8: padding strings ----------------------------------------------------------------------------

_STRING_CLAUSE = {"valid": "PAD-3", "same_upper": "PAD-4", "same_lower": "PAD-5"}


def _same_is_explicit(check: _Check) -> None:
    """op(padding='same_upper' | 'same_lower' | 'valid') = op(padding = the pads the spec resolves)
    (PAD-3, PAD-4, PAD-5)."""
    op, params = check.op, check.params
    if not isinstance(params.padding, str):
        raise _NotApplicable("explicit padding")
    check.clause = _STRING_CLAUSE[params.padding]
    explicit = _derive(params, padding=params.pads)
    check.require((op, params, f"{op} with padding={params.padding!r}"),
                  (op, explicit, f"{op} with padding={params.pads}"))
    arrays = check.arrays()
    named = check.call(op, arrays, params, f"{op} (padding={params.padding!r})")
    given = check.call(op, arrays, explicit, f"{op} (padding={params.pads})")
    relation = f"{op}(padding={params.padding!r}) = {op}(padding={params.pads})"
    if op == "max_pool":
        check.same_selection(named["y"], given["y"], named.get("indices"), given.get("indices"), relation)
        return
    budget = check.budget(op, arrays, params, "y") + check.budget(op, arrays, explicit, "y")
    check.agree("y", named["y"], given["y"].astype(np.float64), budget, relation)


# -- 9: rank lift ----------------------------------------------------------------------------------

def _insert(values: tuple[Any, ...], axis: int, value: Any) -> tuple[Any, ...]:
    return values[:axis] + (value,) + values[axis:]


def _lifted(params: Params, axis: int) -> Params:
    """``params`` with a size-1 spatial axis inserted before spatial dim ``axis``: kernel 1, stride 1,
    dilation 1, pads (0, 0) (output_padding 0) there."""
    changes: dict[str, Any] = {
        "input_shape": params.input_shape[:2] + _insert(params.input_shape[2:], axis, 1),
        "stride": _insert(params.stride, axis, 1),
        "dilation": _insert(params.dilation, axis, 1),
        "padding": params.padding if isinstance(params.padding, str) else _insert(params.pads, axis, (0, 0)),
    }
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        changes["weight_shape"] = params.weight_shape[:2] + _insert(params.kernel_size, axis, 1)
    else:
        changes["kernel_size"] = _insert(params.kernel_size, axis, 1)
    if isinstance(params, ConvTransposeParams):
        changes["output_padding"] = _insert(params.output_padding, axis, 0)
    return _derive(params, **changes)


def _rank_lift(check: _Check) -> None:
    """A rank-m problem = the rank-(m+1) problem with a size-1 spatial axis inserted (kernel 1,
    stride 1, pad 0, dilation 1 there): the definitions are rank-generic (LAYOUT-1)."""
    op, params = check.op, check.params
    axis = check.case.seed % (params.rank + 1)
    lifted = _lifted(params, axis)
    check.require((op, params, f"{op} rank {params.rank}"), (op, lifted, f"{op} rank {params.rank + 1}"))
    arrays = check.arrays()
    up = {name: None if value is None else np.expand_dims(value, 2 + axis) if name in ("x", "w") else value
          for name, value in arrays.items()}
    flat = check.call(op, arrays, params, f"{op} (rank {params.rank})")
    high = check.call(op, up, lifted, f"{op} (rank {params.rank + 1}, size-1 axis {axis})")

    def squeeze(a: np.ndarray) -> np.ndarray:
        return np.squeeze(a, axis=2 + axis)

    relation = f"{op}(rank m) = {op}(rank m+1 with a size-1 axis)"
    if op == "max_pool":
        indices = high.get("indices")
        check.same_selection(flat["y"], squeeze(high["y"]), flat.get("indices"),
                             None if indices is None else squeeze(indices), relation)
        return
    budget = check.budget(op, arrays, params, "y") + check.budget(op, up, lifted, "y").apply(squeeze)
    check.agree("y", flat["y"], squeeze(high["y"]).astype(np.float64), budget, relation)


# -- 10: permutations -----------------------------------------------------------------------------

def _permutation_equivariance(check: _Check) -> None:
    """Permuting the batch permutes the output batch; permuting groups, the input channels within
    a group (with the weight's matching axis), and the output channels within a group (weight rows
    or columns, and bias) permutes the output channels alike. Pools: batch and channels.

    y′ = op(x[π][:, in_perm], w′, b[out_perm]) = op(x, w, b)[π][:, out_perm].
    """
    op, params = check.op, check.params
    arrays = check.arrays()
    x = arrays["x"]
    rng = check.rng
    batch = rng.permutation(params.input_shape[0])
    permuted = dict(arrays)
    if isinstance(params, PoolParams):
        in_perm = out_perm = rng.permutation(params.input_shape[1])
    else:
        groups = params.groups
        c_g, m = params.input_shape[1] // groups, _out_channels(params) // groups
        sigma, rho, tau = rng.permutation(groups), rng.permutation(c_g), rng.permutation(m)
        in_perm = (sigma[:, None] * c_g + rho[None, :]).ravel()
        out_perm = (sigma[:, None] * m + tau[None, :]).ravel()
        w = arrays["w"]
        # conv: w[o, c] reads input channel g(o)·C_g + c; conv_transpose: w[g·C_g + c, m] writes g·M + m.
        permuted["w"] = w[out_perm][:, rho] if op == "conv" else w[in_perm][:, tau]
        if arrays.get("b") is not None:
            permuted["b"] = arrays["b"][out_perm]
    permuted["x"] = x[batch][:, in_perm]
    check.require((op, params, op))
    y = check.call(op, arrays, params, f"{op}(x)")
    y_perm = check.call(op, permuted, params, f"{op}(permuted x)")

    def reorder(a: np.ndarray) -> np.ndarray:
        return a[batch][:, out_perm]

    relation = f"{op}(permuted inputs) = permuted {op}(inputs)"
    if op == "max_pool":
        indices = y.get("indices")
        check.same_selection(y_perm["y"], reorder(y["y"]), y_perm.get("indices"),
                             None if indices is None else reorder(indices), relation)
        return
    budget = check.budget(op, permuted, params, "y") + check.budget(op, arrays, params, "y").apply(reorder)
    check.agree("y", y_perm["y"], reorder(y["y"]).astype(np.float64), budget, relation)


# -- 11: avg pool as a conv ------------------------------------------------------------------------

def avg_pool_divisor(params: AvgPoolParams) -> np.ndarray:
    """D(p) of AVGPOOL-DEF-1 for every output position p, in integer arithmetic, shape o.

    D(p) = divisor_override if given, else Π_i #{j < k_i : lo_i ≤ p_i·s_i − p_b,i + j·d_i < hi_i}
    with [lo, hi) = [−p_b, n + p_a) if count_include_pad (a ceil-mode overhang past the right
    padding does not count) and [0, n) otherwise.

    >>> avg_pool_divisor(AvgPoolParams(input_shape=(1, 1, 5), kernel_size=2, ceil_mode=True,
    ...                                count_include_pad=True)).tolist()
    [2, 2, 1]
    """
    out = params.output_shape[2:]
    if params.divisor_override is not None:
        return np.full(out, params.divisor_override, dtype=np.int64)
    divisor = np.ones((), dtype=np.int64)
    for n, o, k, s, d, (before, after) in zip(params.input_shape[2:], out, params.kernel_size, params.stride,
                                               params.dilation, params.pads):
        lo, hi = (-before, n + after) if params.count_include_pad else (0, n)
        t = (np.arange(o, dtype=np.int64) * s - before)[:, None] + np.arange(k, dtype=np.int64)[None, :] * d
        divisor = np.multiply.outer(divisor, ((t >= lo) & (t < hi)).sum(axis=1))
    return divisor.reshape(out)


def _avg_pool_is_conv(check: _Check) -> None:
    """avg_pool(x) = conv(x as (N·C, 1, *S), ones(1, 1, *k), zeros padding, same s, d, pads) / D
    (AVGPOOL-DEF-1), D from :func:`avg_pool_divisor`.

    A ceil-mode window overhanging the padded extent reads nothing there: the conv gets extra zero
    padding on the right, max(0, (o − 1)·s + d·(k − 1) + 1 − (n + p_b + p_a)), so it has o outputs.
    Bound: avg_pool's own + the conv's / D + u₆₄·|conv / D| (the float64 division).
    """
    params = check.params
    batch, channels = params.input_shape[:2]
    pads = tuple(
        (before, after + max(0, (o - 1) * s + effective_kernel(k, d) - (n + before + after)))
        for n, o, k, s, d, (before, after) in zip(params.input_shape[2:], params.output_shape[2:], params.kernel_size,
                                                  params.stride, params.dilation, params.pads))
    conv = ConvParams(input_shape=(batch * channels, 1) + params.input_shape[2:],
                      weight_shape=(1, 1) + params.kernel_size, stride=params.stride, padding=pads,
                      dilation=params.dilation)
    if conv.output_shape[2:] != params.output_shape[2:]:
        raise InternalError(f"avg_pool_is_conv: conv output {conv.output_shape} for pool output {params.output_shape}")
    check.require(("avg_pool", params, "avg_pool"), ("conv", conv, "conv with a ones kernel"))
    arrays = check.arrays()
    x = arrays["x"]
    inputs = {"x": x.reshape(conv.input_shape), "w": np.ones(conv.weight_shape, dtype=x.dtype), "b": None}
    y = check.call("avg_pool", arrays, params, "avg_pool")["y"]
    sums = check.call("conv", inputs, conv, "conv(x, ones)")["y"].astype(np.float64).reshape(params.output_shape)
    divisor = avg_pool_divisor(params).astype(np.float64)
    conv_budget = check.budget("conv", inputs, conv, "y")
    budget = check.budget("avg_pool", arrays, params, "y") + _Budget(
        conv_budget.bound.reshape(params.output_shape) / divisor, conv_budget.special.reshape(params.output_shape))
    check.agree("y", y, sums / divisor, budget, "avg_pool(x) = conv(x, ones) / D")


# -- 12: max pool from its definition --------------------------------------------------------------

def window_max(x: Any, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
    """y[n, c, p] = max over the window's taps t_j = p·s − p_b + j·d inside [0, n) (MAXPOOL-DEF-1),
    NaN if one of them is NaN (MAXPOOL-NAN-1); index = flat row-major index of the first maximum in
    row-major tap order (MAXPOOL-TIE-1, MAXPOOL-INDEX-1), unspecified for NaN windows.

    Computed directly from the definition: one gather per kernel tap, vectorised over positions.

    >>> y, index = window_max(np.array([[[3.0, 1, 3, 2]]]), MaxPoolParams(input_shape=(1, 1, 4), kernel_size=3,
    ...                                                                    stride=1, padding=1))
    >>> y.tolist(), index.tolist()
    ([[[3.0, 3.0, 3.0, 3.0]]], [[[0, 0, 2, 2]]])
    """
    values = np.asarray(x).astype(np.float64)
    spatial, out, rank = params.input_shape[2:], params.output_shape[2:], params.rank
    plane_strides = [math.prod(spatial[i + 1:]) for i in range(rank)]
    best = np.full(params.output_shape, np.nan)
    index = np.full(params.output_shape, -1, dtype=np.int64)
    have = np.zeros(out, dtype=bool)
    has_nan = np.zeros(params.output_shape, dtype=bool)
    for j in itertools.product(*(range(k) for k in params.kernel_size)):
        coords, inside = [], np.ones(out, dtype=bool)
        for i, (n, o, s, d, (before, _)) in enumerate(zip(spatial, out, params.stride, params.dilation, params.pads)):
            shape = [1] * rank
            shape[i] = o
            t = (np.arange(o, dtype=np.int64) * s - before + j[i] * d).reshape(shape)
            inside = inside & (t >= 0) & (t < n)
            coords.append(np.clip(t, 0, n - 1))
        value = values[(slice(None), slice(None)) + tuple(coords)]
        flat = sum(c * stride for c, stride in zip(coords, plane_strides))
        has_nan |= inside & np.isnan(value)
        take = inside & (~have | (value > best))
        best = np.where(take, value, best)
        index = np.where(take, flat, index)
        have = have | inside
    return np.where(has_nan, np.nan, best), index


def _max_pool_is_window_max(check: _Check) -> None:
    """y = the window maximum computed by the check from MAXPOOL-DEF-1 (exactly, signed zeros and
    NaN included); each index lies in its window (MAXPOOL-INDEX-1), x at the index is y (a NaN for a
    NaN window, MAXPOOL-NAN-1), and is the first maximum in row-major window order (MAXPOOL-TIE-1)."""
    params = check.params
    check.require(("max_pool", params, "max_pool"))
    arrays = check.arrays()
    x = arrays["x"]
    outputs = check.call("max_pool", arrays, params, "max_pool")
    want_y, want_index = window_max(x, params)
    check.comparisons.append(_rename(compare("y", outputs["y"], want_y, None, k=1, dtype=check.dtype, exact=True,
                                             signed_zeros=True), "MAXPOOL-DEF-1",
                                     "y = max over the window's taps inside the input"))
    indices = outputs.get("indices")
    if indices is None:
        check.notes.append("indices not returned: MAXPOOL-INDEX-1 not checked")
        return
    got = np.asarray(indices)
    if not np.issubdtype(got.dtype, np.integer):
        check.comparisons.append(Comparison("indices", int(got.size), violations=max(int(got.size), 1),
                                            clause="HYGIENE-2", rule=f"indices must be integers, got {got.dtype}"))
        return
    got = got.astype(np.int64)
    member = window_members(params, got)
    check.comparisons.append(_mask_comparison("indices", ~member, got, want_index, "MAXPOOL-INDEX-1",
                                              "the index lies in its window (flat, unpadded plane)"))
    if not member.all():
        return
    # explicit sizes, not -1: N = 0 is valid (LAYOUT-1)
    planes = np.asarray(x).astype(np.float64).reshape(params.input_shape[:2] + (math.prod(params.input_shape[2:]),))
    flat = got.reshape(got.shape[:2] + (math.prod(got.shape[2:]),))
    picked = np.take_along_axis(planes, flat, axis=-1).reshape(got.shape)
    y64 = np.asarray(outputs["y"]).astype(np.float64)
    same = (picked == y64) & (np.signbit(picked) == np.signbit(y64)) | np.isnan(picked) & np.isnan(y64)
    check.comparisons.append(_mask_comparison("x[indices]", ~same, picked, y64, "MAXPOOL-INDEX-1",
                                              "x at the returned index equals the returned y"))
    tie = ~np.isnan(want_y) & (got != want_index)
    check.comparisons.append(_mask_comparison("indices", tie, got, want_index, "MAXPOOL-TIE-1",
                                              "the first maximum in row-major window order"))


def _rename(comparison: Comparison, clause: str, rule: str) -> Comparison:
    if not comparison.passed and comparison.clause.startswith("ERR-"):
        nan = comparison.worst is not None and math.isnan(comparison.worst.ref)
        comparison.clause = "MAXPOOL-NAN-1" if nan else clause
        comparison.rule = f"{rule}: {comparison.rule}"
    return comparison


def _mask_comparison(name: str, bad: np.ndarray, got: np.ndarray, want: np.ndarray, clause: str,
                     rule: str) -> Comparison:
    if bad.any():
        return _violation(name, bad, got.astype(np.float64), want.astype(np.float64), clause, rule)
    return Comparison(name, int(bad.size), exact=int(bad.size))


# -- 13: finite differences ----------------------------------------------------------------------

def _finite_differences(check: _Check) -> None:
    """⟨g, v⟩ = (L(a + h·v) − L(a − h·v)) / 2h,  L(a) = ⟨f(…, a, …), dy⟩, for each gradient g = ∂L/∂a
    of the backward op (dx; dw and db for the convs), f the backend's own forward, in float64.

    Data (drawn by the check): x, w, b, dy and the direction v uniform on the grid 2⁻²⁰·ℤ ∩ [−1, 1];
    h = 2⁻⁴, so h·v and a ± h·v are exact. Max pool takes x = a permutation of the integers (no ties,
    values ≥ 1 apart) and |h·v| ≤ 2⁻⁴, so no window's argmax moves.

    Derivation. f is affine in a (conv, conv_transpose, avg pool; max pool on the fixed argmax
    pattern), so f(a + h·v) − f(a − h·v) = 2h·J·v exactly, and ⟨J·v, dy⟩ = ⟨v, Jᵀ·dy⟩ = ⟨v, g*⟩.
    The backend's outputs carry errors |F± − f(a ± h·v)| ≤ β± (ERR-BOUND-1 of the forward; 0 for max
    pool, which selects exactly, ERR-EXACT-1) and |g − g*| ≤ β_g (ERR-BOUND-1 of the gradient). So

        |⟨g, v⟩ − D| ≤ Σ β_g·|v| + (Σ (β₊ + β₋)·|dy| + ρ₊ + ρ₋ + u₆₄·|d₊ − d₋|) / 2h + ρ_g,

    D = (d₊ − d₋)/2h with d± = ⟨F±, dy⟩, ρ the float64 rounding of each dot (α·(L + 1)·u₆₄·Σ|a·b|);
    the division by 2h is exact. No free tolerance enters.
    """
    op, params = check.op, check.params
    forward = OPS[op].forward
    if forward is None:
        raise InternalError(f"finite differences of {op}: not a gradient op")
    check.dtype = "float64"
    if "float64" not in check.ctx.caps.dtypes:
        raise _Abort("unsupported", "finite differences need float64")
    check.require((op, params, op), (forward, params, f"{forward} (the forward)"))

    def grid(shape: tuple[int, ...]) -> np.ndarray:
        return np.round(check.rng.uniform(-1.0, 1.0, shape) / FD_GRID) * FD_GRID

    shapes = expected_shapes(forward, params)
    inputs: dict[str, Any] = {"x": grid(params.input_shape), "dy": grid(params.output_shape)}
    if op == "max_pool_backward":
        size = math.prod(params.input_shape)
        inputs["x"] = (check.rng.permutation(size) - size // 2).astype(np.float64).reshape(params.input_shape)
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        inputs["w"] = grid(params.weight_shape)
        inputs["b"] = None if params.bias_shape is None else grid(params.bias_shape)
    gradients = check.call(op, inputs, params, op)
    dy = inputs["dy"]
    forward_inputs: dict[str, Any] = {name: inputs.get(name) for name in OPS[forward].inputs}
    for name, key in (("dx", "x"), ("dw", "w"), ("db", "b")):
        shape = shapes.get(key)
        if name not in OPS[op].outputs or shape is None:
            continue
        v = grid(shape)
        sides = []
        for sign in (1.0, -1.0):
            moved = {**forward_inputs, key: forward_inputs[key] + sign * FD_STEP * v}
            y = check.call(forward, moved, params, f"{forward}({key} {'+' if sign > 0 else '-'} h*v)")["y"]
            if op == "max_pool_backward":
                beta = 0.0  # max pool selects: exact (ERR-EXACT-1)
            else:
                beta = _weighted(check.budget(forward, moved, params, "y"), dy)
            value, rounding = _dot(y, dy)
            sides.append((value, rounding + beta))
        (plus, err_plus), (minus, err_minus) = sides
        difference = (plus - minus) / (2 * FD_STEP)
        g = gradients[name]
        lhs, lhs_rounding = _dot(g, v)
        bound = (_weighted(check.budget(op, inputs, params, name), v) + lhs_rounding
                 + (err_plus + err_minus + U64 * abs(plus - minus)) / (2 * FD_STEP))
        check.agree_scalar(f"<{name}, v>", lhs, difference, bound,
                           f"<{name}, v> = (L({key} + h*v) - L({key} - h*v)) / 2h")


# -- strategies ------------------------------------------------------------------------------------

def _base(op: str, ranks: Sequence[int], dtypes: Sequence[str], size_kw: Mapping[str, Any],
          recipes: Sequence[str] = FINITE_RECIPES) -> Any:
    from .strategies import cases

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


def _zeros_mode(case: Case) -> Case:
    if case.params.get("padding_mode", "zeros") == "zeros":
        return case
    return case.with_(params={"padding_mode": "zeros"})


def _with_groups(case: Case, factor: int) -> Case:
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


def _with_dilation(case: Case) -> Case:
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


def _with_stride(case: Case) -> Case:
    """stride > 1 somewhere, pools in floor mode."""
    params = case.params_object
    changes: dict[str, Any] = {}
    if isinstance(params, PoolParams) and params.ceil_mode:
        changes["ceil_mode"] = False
    if all(s == 1 for s in params.stride):
        changes["stride"] = (2,) + params.stride[1:]
    return case.with_(params=changes) if changes else case


def _with_padding_string(case: Case, form: str) -> Case:
    if isinstance(case.params.get("padding", 0), str):
        return case
    return case.with_(params={"padding": form})


def _stride_one_is_valid(case: Case) -> bool:
    """The stride-1 pool with the same pads may hold an empty window (POOL-WINDOW-1): not drawn."""
    params = case.params_object
    try:
        type(params)(**{**init_kwargs(params), "stride": 1, "padding": params.pads})
    except InvalidParams:
        return False
    return True


def _strategy(adapt: Callable[..., Case | None] | None = None, extra: Any = None,
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


def _groups_extra() -> Any:
    from hypothesis import strategies as st

    return st.integers(2, 3)


def _padding_extra() -> Any:
    from hypothesis import strategies as st

    return st.sampled_from(("same_upper", "same_lower", "valid"))


# -- the table -------------------------------------------------------------------------------------

def _definition_clauses(ops: Sequence[str]) -> dict[str, str]:
    return {op: OPS[op].clauses[0] for op in ops}


def _property(name: str, ops: tuple[str, ...], description: str, impl: Callable[[_Check], None],
              strategy: Strategy, clauses: Mapping[str, str] | None = None, needs: tuple[str, ...] = ()) -> Property:
    by_op = dict(clauses) if clauses else _definition_clauses(ops)
    return Property(name=name, clause=by_op[ops[0]], ops=ops, description=description, strategy=strategy,
                    run=_runner(name, impl, by_op), clauses_by_op=by_op, needs=needs)


PROPERTIES: dict[str, Property] = {
    prop.name: prop
    for prop in (
        _property("linearity_x", ("conv", "conv_transpose", "avg_pool"),
                  "op(x1 + x2) = op(x1) + op(x2), x1 and x2 disjoint parts of x, no bias",
                  lambda check: _linearity(check, "x"), _strategy()),
        _property("linearity_w", ("conv", "conv_transpose"),
                  "op(w1 + w2) = op(w1) + op(w2), w1 and w2 disjoint parts of w, no bias",
                  lambda check: _linearity(check, "w"), _strategy()),
        _property("bias_shift", ("conv", "conv_transpose"),
                  "op(x, w, b) - op(x, w) = b broadcast over batch and space", _bias_shift, _strategy()),
        _property("adjoint", ("conv", "conv_transpose"),
                  "<conv(u), v> = <u, conv_transpose(v)> with shared weight, stride, dilation, pads, groups",
                  _adjoint, _strategy(_zeros_mode), {"conv": "CONVT-DEF-1", "conv_transpose": "CONVT-DEF-1"}),
        _property("gradient_is_transpose", ("conv_backward", "conv_transpose_backward"),
                  "conv_backward's dx = conv_transpose(dy); conv_transpose_backward's dx = conv(dy)",
                  _gradient_is_transpose, _strategy(_zeros_mode)),
        _property("grouped_concat", ("conv", "conv_transpose"),
                  "a grouped op = the concatenation of the ungrouped op on each group's channels",
                  _grouped_concat, _strategy(_with_groups, _groups_extra),
                  {"conv": "CONV-GROUPS-1", "conv_transpose": "CONV-GROUPS-1"}, needs=("groups",)),
        _property("dilation_zero_stuffed", ("conv",),
                  "conv with dilation d = conv with dilation 1 and d-1 zeros stuffed between kernel taps",
                  _dilation_zero_stuffed, _strategy(_with_dilation), needs=("dilation",)),
        _property("stride_subsampled", ("conv", "max_pool", "avg_pool"),
                  "the stride-s output = the stride-1 output (same pads) at positions p*s (floor mode)",
                  _stride_subsampled, _strategy(_with_stride, domain=_stride_one_is_valid), needs=("stride",)),
        _property("same_is_explicit", ("conv", "max_pool", "avg_pool"),
                  "padding 'same_upper', 'same_lower', 'valid' = the explicit pads the spec resolves",
                  _same_is_explicit, _strategy(_with_padding_string, _padding_extra),
                  {"conv": "PAD-4", "max_pool": "PAD-4", "avg_pool": "PAD-4"}),
        _property("rank_lift", ("conv", "conv_transpose", "max_pool", "avg_pool"),
                  "a rank-m problem = the rank-(m+1) problem with a size-1 spatial axis inserted",
                  _rank_lift, _strategy(lift=True)),
        _property("permutation_equivariance", ("conv", "conv_transpose", "max_pool", "avg_pool"),
                  "permuting batch and channels (with weight and bias) permutes the output alike",
                  _permutation_equivariance, _strategy()),
        _property("avg_pool_is_conv", ("avg_pool",),
                  "avg_pool(x) = conv(x per channel, ones kernel, same pads/stride/dilation) / divisor",
                  _avg_pool_is_conv, _strategy()),
        _property("max_pool_is_window_max", ("max_pool",),
                  "y = max over the listed window (computed by the check); indices in the window, x[index] = y",
                  _max_pool_is_window_max, _strategy(recipes=MAX_POOL_RECIPES),
                  {"max_pool": "MAXPOOL-DEF-1"}),
        _property("finite_differences", ("conv_backward", "conv_transpose_backward", "avg_pool_backward",
                                         "max_pool_backward"),
                  "<grad, v> = (L(a + h v) - L(a - h v)) / 2h with the backend's own forward, float64",
                  _finite_differences, _strategy(float64=True)),
    )
}
