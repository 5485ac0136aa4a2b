"""The oracle-free properties (convspec.conformance.properties): no false alarms on correct
backends, and each deliberately broken backend is caught by the property meant for it.

Mutants wrap a correct backend and override one method. Every test cites the
clause the property enforces.
"""

from __future__ import annotations

import doctest
import importlib
import math
import pkgutil
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from mutants import BackwardDxIgnoresStride, MaxPoolPaddedIndex

import convspec.conformance.properties as properties_package
from convspec.backends import Capabilities
from convspec.conformance.cases import Case
from convspec.conformance.invoke import Invoker
from convspec.conformance.context import CheckContext, Settings
from convspec.conformance.engine import run_stream
from convspec.conformance.properties import PROPERTIES, Property, avg_pool_divisor, window_max
from convspec.spec import (
    CLAUSES,
    OPS,
    AvgPoolParams,
    MaxPoolParams,
    init_kwargs,
)

DTYPES = ("float32", "float64", "float16", "bfloat16")
PAIRS = [(name, op) for name, prop in PROPERTIES.items() for op in prop.ops]


# -- backends ----------------------------------------------------------------------------------

class ReferenceBackend:
    """A correct backend from the reference's functions, rounded to the input dtype — a fallback
    for when no fast built-in backend imports (tests only: backends never use the reference)."""

    name = "reference-backend"

    def __init__(self) -> None:
        self.capabilities = Capabilities(dtypes=frozenset(DTYPES))

    def __getattr__(self, op: str) -> Any:
        if op not in OPS:
            raise AttributeError(op)
        from convspec import reference

        def method(*args: Any) -> Any:
            *arrays, params = args
            dtype = np.asarray(arrays[0]).dtype
            outputs = reference.FUNCTIONS[op](*arrays, params)
            if isinstance(outputs, tuple):
                return tuple(None if o is None else o if o.dtype == np.int64 else o.astype(dtype) for o in outputs)
            return outputs.astype(dtype)

        return method


def correct_backend() -> Any:
    try:
        from convspec.backends.im2col import Im2colBackend
    except ImportError:
        return ReferenceBackend()
    return Im2colBackend()


def context(backend: Any) -> CheckContext:
    """A CheckContext built the way engine.run_backend builds one."""
    return CheckContext(backend, backend.name, Invoker(backend), Settings())


class Mutant:
    """A correct backend with one method overridden by a subclass."""

    def __init__(self, inner: Any, capabilities: Capabilities | None = None) -> None:
        self.inner = inner
        self.name = f"mutant:{type(self).__name__}"
        self.capabilities = capabilities or inner.capabilities

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


def rebuild(params: Any, **changes: Any) -> Any:
    return type(params)(**{**init_kwargs(params), **changes})


def spatial_axes(params: Any) -> tuple[int, ...]:
    return tuple(range(2, 2 + params.rank))


class NonlinearConv(Mutant):
    """conv followed by a ReLU."""

    def conv(self, x, w, b, params):
        y = self.inner.conv(x, w, b, params)
        return np.maximum(y, np.zeros_like(y))


class LowPrecisionConv(Mutant):
    """conv silently computed in float16 for every dtype (a precision bug, not a formula bug)."""

    def conv(self, x, w, b, params):
        half = [None if a is None else a.astype(np.float16) for a in (x, w, b)]
        return self.inner.conv(*half, params).astype(x.dtype)


class DoubleBias(Mutant):
    def conv(self, x, w, b, params):
        y = self.inner.conv(x, w, b, params)
        return y if b is None else y + b.reshape((1, -1) + (1,) * params.rank)


class SwappedGroups(Mutant):
    """Group g of the output reads the input channels of group G − 1 − g."""

    def conv(self, x, w, b, params):
        n, c = x.shape[:2]
        groups = params.groups
        swapped = x.reshape((n, groups, c // groups) + x.shape[2:])[:, ::-1].reshape(x.shape)
        return self.inner.conv(np.ascontiguousarray(swapped), w, b, params)


class IgnoresDilation(Mutant):
    """Reads tap q at p·s + q instead of p·s + q·d (output cropped to the right size)."""

    def conv(self, x, w, b, params):
        if all(d == 1 for d in params.dilation):
            return self.inner.conv(x, w, b, params)
        y = self.inner.conv(x, w, b, rebuild(params, dilation=1, padding=params.pads))
        return y[tuple(slice(0, o) for o in params.output_shape)]


class StridePhase(Mutant):
    """The strided output taken from the stride-1 output at p·s + s − 1 instead of p·s."""

    def conv(self, x, w, b, params):
        if all(s == 1 for s in params.stride):
            return self.inner.conv(x, w, b, params)
        full = self.inner.conv(x, w, b, rebuild(params, stride=1, padding=params.pads))
        picks = [np.minimum(np.arange(o) * s + s - 1, size - 1)
                 for o, s, size in zip(params.output_shape[2:], params.stride, full.shape[2:])]
        return full[(slice(None), slice(None)) + np.ix_(*picks)]


class SameWrongSide(Mutant):
    """Resolves 'same_lower' as 'same_upper' and vice versa (the extra pad on the wrong side)."""

    @staticmethod
    def _swap(params):
        flipped = {"same_upper": "same_lower", "same_lower": "same_upper"}.get(params.padding)
        return rebuild(params, padding=flipped) if flipped else params

    def conv(self, x, w, b, params):
        return self.inner.conv(x, w, b, self._swap(params))

    def max_pool(self, x, params):
        return self.inner.max_pool(x, self._swap(params))

    def avg_pool(self, x, params):
        return self.inner.avg_pool(x, self._swap(params))


class AvgPoolOverhangCounts(Mutant):
    """count_include_pad divides every window by the full kernel size, overhang included."""

    def avg_pool(self, x, params):
        if params.count_include_pad and params.divisor_override is None:
            params = rebuild(params, divisor_override=math.prod(params.kernel_size))
        return self.inner.avg_pool(x, params)


class AvgPoolBackwardFullKernel(Mutant):
    """avg_pool_backward divides by Πk whatever the divisor rule says."""

    def avg_pool_backward(self, x, dy, params):
        return self.inner.avg_pool_backward(x, dy, rebuild(params, divisor_override=math.prod(params.kernel_size)))


class MaxPoolBackwardToArgmin(Mutant):
    """max_pool_backward routes dy to the window's minimum."""

    def max_pool_backward(self, x, dy, params):
        return self.inner.max_pool_backward(-x, dy, params)


class StaleBatch(Mutant):
    """Every image of the batch is computed from image 0 (a stale buffer)."""

    def conv(self, x, w, b, params):
        return self.inner.conv(np.ascontiguousarray(np.repeat(x[:1], x.shape[0], axis=0)), w, b, params)


class FlipsKernelFrom2D(Mutant):
    """A true convolution (kernel flipped) for rank ≥ 2 only."""

    def conv(self, x, w, b, params):
        if params.rank >= 2:
            w = np.ascontiguousarray(np.flip(w, axis=spatial_axes(params)))
        return self.inner.conv(x, w, b, params)


class FlippedTranspose(Mutant):
    """conv_transpose with the kernel flipped: not the adjoint of conv."""

    def conv_transpose(self, x, w, b, params):
        return self.inner.conv_transpose(x, np.ascontiguousarray(np.flip(w, axis=spatial_axes(params))), b, params)


class RaisesForUngrouped(Mutant):
    """Raises on a configuration it declares supported."""

    def conv(self, x, w, b, params):
        if params.groups == 1:
            raise RuntimeError("kernel launch failed")
        return self.inner.conv(x, w, b, params)


# -- helpers ---------------------------------------------------------------------------------------

def run(backend: Any, name: str, descriptor: str) -> Any:
    """The single result of property ``name`` on a case."""
    results = PROPERTIES[name].run(context(backend), Case.parse(descriptor))
    assert len(results) == 1, results
    result = results[0]
    assert result.family == "property" and result.check == name
    return result


def assert_caught(mutant_type: type, name: str, descriptor: str, clause: str) -> Any:
    """The correct backend passes the case; the mutant fails it, citing ``clause``."""
    good = run(correct_backend(), name, descriptor)
    assert good.status == "passed", good.message
    bad = run(mutant_type(correct_backend()), name, descriptor)
    assert bad.status == "failed", bad.message
    assert bad.clause == clause, (bad.clause, bad.message)
    assert bad.message
    return bad


# -- the table -------------------------------------------------------------------------------------

def test_table_names_ops_and_clauses():  # every check cites an existing clause
    assert PROPERTIES
    for name, prop in PROPERTIES.items():
        assert isinstance(prop, Property) and prop.name == name
        assert prop.clause in CLAUSES and prop.ops and set(prop.ops) <= set(OPS)
        assert set(prop.clauses_by_op) == set(prop.ops)
        assert all(clause in CLAUSES for clause in prop.clauses_by_op.values())
        assert prop.description and callable(prop.strategy) and callable(prop.run)


def test_every_listed_property_exists():
    assert set(PROPERTIES) == {
        "linearity_x", "linearity_w", "bias_shift", "adjoint", "gradient_is_transpose", "grouped_concat",
        "dilation_zero_stuffed", "stride_subsampled", "same_is_explicit", "rank_lift",
        "permutation_equivariance", "avg_pool_is_conv", "max_pool_is_window_max", "finite_differences"}


#: The properties package and every module of it (one per theme, the machinery, the strategies).
PROPERTY_MODULES = [properties_package] + [
    importlib.import_module(f"{properties_package.__name__}.{info.name}")
    for info in pkgutil.iter_modules(properties_package.__path__)]


def test_properties_never_read_reference_values():  # oracle-free: only magnitudes, via ctx.magnitude
    import convspec.reference as reference

    values = [value for module in PROPERTY_MODULES for value in vars(module).values()]
    assert not any(value is reference or getattr(value, "__module__", "").startswith("convspec.reference")
                   for value in values)


def test_docstring_examples_run():  # docstring examples are tested
    results = [doctest.testmod(module) for module in PROPERTY_MODULES]
    assert sum(r.failed for r in results) == 0 and sum(r.attempted for r in results) > 0


# -- no false alarms -------------------------------------------------------------------------------

@pytest.mark.parametrize("name,op", PAIRS, ids=[f"{n}-{o}" for n, o in PAIRS])
def test_property_holds_on_a_correct_backend(name, op):  # clause of each property, 20 drawn cases
    prop = PROPERTIES[name]
    ctx = context(correct_backend())
    statuses: list[str] = []

    @settings(max_examples=20, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(prop.strategy(op, ranks=(1, 2, 3), dtypes=DTYPES))
    def check(case):
        for result in prop.run(ctx, case):
            assert result.status == "passed", (case.descriptor, result.status, result.message)
            assert result.clause in CLAUSES
            statuses.append(result.status)

    check()
    assert len(statuses) >= 15  # drawn cases lie inside the property's domain


# -- mutants are caught ------------------------------------------------------------------------------

CONV_1D = "conv x=2,3,7 w=4,3,3 b s=1 p=1:1 d=1 g=1 dtype=float32 data=random seed=1"


@pytest.mark.parametrize("name", ["linearity_x", "linearity_w"])
def test_nonlinear_conv_breaks_linearity(name):  # CONV-DEF-1
    assert_caught(NonlinearConv, name, CONV_1D, "CONV-DEF-1")


def test_low_precision_conv_breaks_linearity_bounds():  # CONV-DEF-1 under ERR-BOUND-1: the bound is tight
    bad = assert_caught(LowPrecisionConv, "linearity_x", CONV_1D, "CONV-DEF-1")
    assert "error bounds" in bad.message


def test_double_bias_breaks_bias_shift():  # CONV-DEF-1: b[o] is added once
    assert_caught(DoubleBias, "bias_shift", CONV_1D, "CONV-DEF-1")


def test_bias_shift_adds_a_bias_to_a_case_without_one():  # CONV-DEF-1
    assert_caught(DoubleBias, "bias_shift", "conv x=1,2,6,5 w=3,2,2,2 s=1,2 p=0:1,1:0 d=1,1 g=1 dtype=float16 "
                  "data=random seed=3", "CONV-DEF-1")


def test_swapped_groups_break_grouped_concat():  # CONV-GROUPS-1
    assert_caught(SwappedGroups, "grouped_concat",
                  "conv x=1,4,6 w=6,2,3 b s=1 p=0:0 d=1 g=2 dtype=float32 data=random seed=2", "CONV-GROUPS-1")


def test_ignored_dilation_breaks_zero_stuffing():  # CONV-DEF-1: tap q reads p·s + q·d
    assert_caught(IgnoresDilation, "dilation_zero_stuffed",
                  "conv x=1,2,9,6 w=3,2,3,2 s=1,1 p=0:0,1:0 d=2,1 g=1 dtype=float32 data=random seed=3", "CONV-DEF-1")


def test_wrong_stride_phase_breaks_stride_subsampled():  # CONV-DEF-1: window p starts at p·s − p_b
    assert_caught(StridePhase, "stride_subsampled",
                  "conv x=1,2,9,8 w=3,2,3,2 s=2,3 p=1:1,0:1 d=1,1 g=1 dtype=float32 data=random seed=4", "CONV-DEF-1")


@pytest.mark.parametrize("descriptor,clause", [
    ("conv x=1,2,8 w=3,2,4 s=1 p=same_lower d=1 g=1 dtype=float32 data=random seed=5", "PAD-5"),
    ("conv x=1,2,7,8 w=3,2,2,3 s=2,1 p=same_upper d=1,1 g=1 dtype=float32 data=random seed=5", "PAD-4"),
    ("max_pool x=1,2,8 k=4 s=1 p=same_lower d=1 dtype=float32 data=random seed=5", "PAD-5"),
    ("avg_pool x=1,2,8 k=2 s=1 p=same_upper d=1 cip=0 dtype=float32 data=random seed=5", "PAD-4"),
])
def test_same_on_the_wrong_side_breaks_same_is_explicit(descriptor, clause):  # PAD-4, PAD-5
    assert_caught(SameWrongSide, "same_is_explicit", descriptor, clause)


def test_backward_forgetting_stride_breaks_gradient_is_transpose():  # CONV-GRAD-1
    assert_caught(BackwardDxIgnoresStride, "gradient_is_transpose",
                  "conv_backward x=1,2,9 w=3,2,3 s=2 p=1:1 d=1 g=1 dtype=float32 data=random seed=6", "CONV-GRAD-1")


def test_backward_forgetting_stride_breaks_finite_differences():  # CONV-GRAD-1
    bad = assert_caught(BackwardDxIgnoresStride, "finite_differences",
                        "conv_backward x=1,2,9 w=3,2,3 b s=2 p=1:1 d=1 g=1 dtype=float64 data=random seed=6",
                        "CONV-GRAD-1")
    failing = [c.output for c in bad.comparisons if not c.passed]
    assert failing == ["<dx, v>"]  # dw and db are intact


def test_avg_pool_counting_the_overhang_breaks_avg_pool_is_conv():  # AVGPOOL-DEF-1: overhang is not counted
    assert_caught(AvgPoolOverhangCounts, "avg_pool_is_conv",
                  "avg_pool x=1,2,5 k=2 s=2 p=0:0 d=1 ceil cip=1 dtype=float32 data=random seed=7", "AVGPOOL-DEF-1")


def test_padded_plane_index_breaks_window_max():  # MAXPOOL-INDEX-1
    assert_caught(MaxPoolPaddedIndex, "max_pool_is_window_max",
                  "max_pool x=1,2,6,5 k=3,3 s=2,2 p=1:1,1:1 d=1,1 dtype=float32 data=random seed=8", "MAXPOOL-INDEX-1")


def test_avg_pool_backward_wrong_divisor_breaks_finite_differences():  # AVGPOOL-GRAD-1
    assert_caught(AvgPoolBackwardFullKernel, "finite_differences",
                  "avg_pool_backward x=1,2,6 k=3 s=2 p=1:1 d=1 cip=0 dtype=float64 data=random seed=9",
                  "AVGPOOL-GRAD-1")


def test_max_pool_backward_to_argmin_breaks_finite_differences():  # MAXPOOL-GRAD-1
    assert_caught(MaxPoolBackwardToArgmin, "finite_differences",
                  "max_pool_backward x=1,2,6 k=2 s=2 p=0:0 d=1 dtype=float64 data=random seed=10", "MAXPOOL-GRAD-1")


def test_stale_batch_breaks_permutation_equivariance():  # CONV-DEF-1: images are independent
    descriptors = [f"conv x=4,2,6 w=2,2,3 s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed={seed}" for seed in range(4)]
    assert all(run(correct_backend(), "permutation_equivariance", d).status == "passed" for d in descriptors)
    statuses = [run(StaleBatch(correct_backend()), "permutation_equivariance", d) for d in descriptors]
    assert any(r.status == "failed" and r.clause == "CONV-DEF-1" for r in statuses)


def test_rank_dependent_kernel_flip_breaks_rank_lift():  # CONV-DEF-1 holds at every rank (LAYOUT-1)
    for seed in (0, 1):  # the size-1 axis goes before and after the spatial dim
        assert_caught(FlipsKernelFrom2D, "rank_lift",
                      f"conv x=1,2,7 w=2,2,3 s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed={seed}", "CONV-DEF-1")


@pytest.mark.parametrize("descriptor", [
    "conv x=1,3,7 w=2,3,3 s=2 p=1:0 d=1 g=1 dtype=float32 data=random seed=13",
    "conv_transpose x=1,2,5 w=2,3,3 s=2 p=1:1 outpad=1 d=1 g=1 dtype=float32 data=random seed=13",
])
def test_flipped_transpose_breaks_adjoint(descriptor):  # CONVT-DEF-1
    assert_caught(FlippedTranspose, "adjoint", descriptor, "CONVT-DEF-1")


def test_a_failure_in_a_stream_is_shrunk_and_recorded():  # CONV-DEF-1, through engine.run_stream
    prop = PROPERTIES["bias_shift"]
    ctx = context(DoubleBias(correct_backend()))
    recorded: list[Any] = []
    run_stream(ctx, prop.strategy("conv", ranks=(1, 2), dtypes=("float32",)),
               lambda case: prop.run(ctx, case), 10, recorded.append)
    failed = [r for r in recorded if r.status == "failed"]
    assert len(failed) == 1 and failed[0].clause == "CONV-DEF-1"
    shape = failed[0].case.params_object.input_shape
    assert math.prod(shape) <= 4  # shrunk towards the plainest problem
    assert "--checks bias_shift" in failed[0].reproducer()["cli"]


# -- statuses other than passed / failed -----------------------------------------------------------

def test_finite_differences_need_float64():  # CONV-GRAD-1 checked in float64 only
    backend = Mutant(correct_backend(), Capabilities(dtypes=frozenset({"float32"})))
    result = run(backend, "finite_differences",
                 "conv_backward x=1,2,6 w=2,2,3 s=1 p=0:0 d=1 g=1 dtype=float64 data=random seed=0")
    assert result.status == "unsupported" and result.message == "finite differences need float64"


def test_an_unsupported_derived_configuration_makes_the_check_unsupported():  # LAYOUT-1, rank m+1
    backend = Mutant(correct_backend(), Capabilities(ranks=frozenset({1}), dtypes=frozenset(DTYPES)))
    result = run(backend, "rank_lift", "conv x=1,2,7 w=2,2,3 s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed=0")
    assert result.status == "unsupported" and "rank 2" in result.message


def test_an_unsupported_feature_of_a_derived_configuration_is_named():  # AVGPOOL-DEF-1 via conv
    caps = Capabilities(dtypes=frozenset(DTYPES), unsupported={"conv:asymmetric_padding": "no asymmetric pads"})
    result = run(Mutant(correct_backend(), caps), "avg_pool_is_conv",
                 "avg_pool x=1,2,5 k=2 s=2 p=0:0 d=1 ceil cip=1 dtype=float32 data=random seed=7")
    assert result.status == "unsupported" and "conv with a ones kernel" in result.message


def test_a_raising_backend_is_errored_not_failed():  # CONV-GROUPS-1; the run goes on
    result = run(RaisesForUngrouped(correct_backend()), "grouped_concat",
                 "conv x=1,4,6 w=6,2,3 s=1 p=0:0 d=1 g=2 dtype=float32 data=random seed=2")
    assert result.status == "errored" and "kernel launch failed" in result.message


@pytest.mark.parametrize("name,descriptor", [
    ("grouped_concat", "conv x=1,2,6 w=2,2,3 s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed=0"),
    ("dilation_zero_stuffed", "conv x=1,2,6 w=2,2,3 s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed=0"),
    ("stride_subsampled", "max_pool x=1,2,6 k=2 s=2 p=0:0 d=1 ceil dtype=float32 data=random seed=0"),
    ("same_is_explicit", "conv x=1,2,6 w=2,2,3 s=1 p=1:1 d=1 g=1 dtype=float32 data=random seed=0"),
    ("adjoint", "conv x=1,2,6 w=2,2,3 s=1 p=1:1 d=1 g=1 mode=reflect dtype=float32 data=random seed=0"),
    ("linearity_x", "conv x=1,2,6 w=2,2,3 s=1 p=1:1 d=1 g=1 dtype=float32 data=nan seed=0"),
])
def test_cases_outside_a_property_give_no_result(name, descriptor):  # no vacuous passes
    assert PROPERTIES[name].run(context(correct_backend()), Case.parse(descriptor)) == []


def test_special_values_propagate_alike_in_both_configurations():  # ERR-SPECIAL-1, PAD-4
    for data in ("nan", "inf", "neg_inf"):
        result = run(correct_backend(), "same_is_explicit",
                     f"avg_pool x=2,2,7 k=3 s=2 p=same_lower d=1 cip=1 dtype=float32 data={data} seed=1")
        assert result.status == "passed", result.message


# -- the definitional helpers ----------------------------------------------------------------------

def test_avg_pool_divisor_by_hand():  # AVGPOOL-DEF-1
    # n = 5, k = 3, s = 2, pads (1, 1), ceil: windows start at -1, 1, 3 and the last overhangs by 0.
    params = dict(input_shape=(1, 1, 5), kernel_size=3, stride=2, padding=1, ceil_mode=True)
    assert avg_pool_divisor(AvgPoolParams(**params, count_include_pad=True)).tolist() == [3, 3, 3]
    assert avg_pool_divisor(AvgPoolParams(**params, count_include_pad=False)).tolist() == [2, 3, 2]
    # n = 4, k = 3, s = 2, pads (0, 1), ceil: windows at 0 and 2; the second covers 2, 3, 4 (4 = pad).
    overhang = dict(input_shape=(1, 1, 4), kernel_size=3, stride=2, padding=((0, 1),), ceil_mode=True)
    assert avg_pool_divisor(AvgPoolParams(**overhang, count_include_pad=True)).tolist() == [3, 3]
    # n = 5, k = 2, s = 2, no pads, ceil: the last window [4, 5] overhangs past the input: 1 tap counts.
    assert avg_pool_divisor(AvgPoolParams(input_shape=(1, 1, 5), kernel_size=2, ceil_mode=True,
                                          count_include_pad=True)).tolist() == [2, 2, 1]
    # product over dims; divisor_override wins
    two_d = AvgPoolParams(input_shape=(1, 1, 3, 3), kernel_size=2, stride=1, padding=1, count_include_pad=False)
    assert avg_pool_divisor(two_d).tolist() == [[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]]
    assert avg_pool_divisor(rebuild(two_d, divisor_override=7)).tolist() == [[7] * 4] * 4


def test_window_max_by_hand():  # MAXPOOL-DEF-1, MAXPOOL-TIE-1, MAXPOOL-NAN-1, MAXPOOL-INDEX-1
    x = np.array([[[[1.0, 5, 5], [-np.inf, np.nan, 2], [0.0, -0.0, 3]]]])
    params = MaxPoolParams(input_shape=x.shape, kernel_size=2, stride=1, padding=((1, 0), (0, 0)))
    y, index = window_max(x, params)
    # windows (rows -1..0, 0..1, 1..2) × (cols 0..1, 1..2)
    assert np.isnan(y[0, 0, 1:, :]).all()  # every window of rows 0..1 and 1..2 holds the NaN at (1, 1)
    assert y[0, 0, 0].tolist() == [5.0, 5.0] and index[0, 0, 0].tolist() == [1, 1]  # first of the tied 5s
    ties = np.array([[[-0.0, 0.0, -1.0]]])
    y, index = window_max(ties, MaxPoolParams(input_shape=ties.shape, kernel_size=2, stride=1))
    assert index.tolist() == [[[0, 1]]] and np.signbit(y[0, 0, 0]) and not np.signbit(y[0, 0, 1])


def test_window_max_agrees_with_the_reference_on_drawn_cases():  # MAXPOOL-DEF-1 (a test of the helper)
    from convspec import reference
    from convspec.conformance.strategies import cases

    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(cases("max_pool", ranks=(1, 2, 3), dtypes=("float32",), recipes=("ties", "random", "nan", "neg_inf")))
    def check(case):
        x = case.arrays()["x"]
        y, index = window_max(x, case.params_object)
        ref_y, ref_index = reference.max_pool(x, case.params_object)
        np.testing.assert_array_equal(y, ref_y)
        finite = ~np.isnan(ref_y)
        np.testing.assert_array_equal(index[finite], ref_index[finite])

    check()


def test_avg_pool_divisor_agrees_with_the_reference_on_drawn_cases():  # AVGPOOL-DEF-1 (a test of the helper)
    from convspec import reference
    from convspec.conformance.strategies import cases

    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(cases("avg_pool", ranks=(1, 2, 3), dtypes=("float64",), recipes=("random",)))
    def check(case):
        params = case.params_object
        ones = np.ones(params.input_shape)
        # avg_pool of ones = (taps inside the input) / D; taps inside = D without count_include_pad
        inside = avg_pool_divisor(rebuild(params, count_include_pad=False, divisor_override=None))
        expected = np.broadcast_to(inside / avg_pool_divisor(params), params.output_shape)
        np.testing.assert_allclose(reference.avg_pool(ones, params), expected, rtol=4e-16, atol=0)

    check()
