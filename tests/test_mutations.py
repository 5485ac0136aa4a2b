"""No missed bugs: every realistic single-bug variant of a correct backend is caught by
``run_conformance`` with its default settings (max_examples=20, seed=0, every check family),
and the correct backend passes the same runs (no false alarms).

Each row of :data:`MUTANTS` names a mutant of ``tests/mutants.py``, the ops its bug touches (the
only setting narrowed, to keep the suite fast) and **caught by**: the checks that catch it, as
``check/clause`` (``check`` is the differential or special family, a property name, ``hygiene``,
or ``invalid:<entry>``; ``clause`` the SPEC.md clause the failing result cites). The test asserts
at least one of them is among the run's failures.

A mutant the engine misses with default settings is an engine gap: it stays in the table under
``xfail(strict=True)`` with the reason, so the test turns red once the engine catches it.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any

import mutants
import numpy as np
import pytest

from convspec.conformance import Results, run_conformance

CONV, CONVT, CONV_BW, CONVT_BW = ("conv",), ("conv_transpose",), ("conv_backward",), ("conv_transpose_backward",)
MAXPOOL, MAXPOOL_BW, AVGPOOL, AVGPOOL_BW = ("max_pool",), ("max_pool_backward",), ("avg_pool",), ("avg_pool_backward",)

ALL_RANKS, RANKS_1_2 = (1, 2, 3), (1, 2)


def row(mutant: str, ops: tuple[str, ...], caught_by: str, *, ranks: tuple[int, ...] = ALL_RANKS,
        marks: Any = ()) -> Any:
    return pytest.param(mutant, ops, ranks, frozenset(caught_by.split()), id=mutant, marks=marks)


#: mutant (tests/mutants.py) | ops | caught by (any of: check/clause) | ranks: the default (1, 2, 3),
#: or (1, 2) for a rank-independent bug whose run shrinks slowly (to keep the file fast)
MUTANTS = [
    # padding
    row("SameUpperPadsSwapped", CONV, "same_is_explicit/PAD-4 differential/ERR-EXACT-1", ranks=RANKS_1_2),
    row("ReflectAsSymmetric", CONV, "differential/ERR-EXACT-1"),
    row("CircularOffByOne", CONV, "differential/ERR-EXACT-1"),
    # convolution
    row("KernelFlipped", CONV, "differential/ERR-EXACT-1 adjoint/CONVT-DEF-1", ranks=RANKS_1_2),
    row("Rank3DepthFlipped", CONV, "differential/ERR-BOUND-1"),
    row("BiasTwice", CONV, "bias_shift/CONV-DEF-1 differential/ERR-EXACT-1"),
    row("ConvTransposeBiasMissing", CONVT, "bias_shift/CONVT-DEF-1 differential/ERR-EXACT-1"),
    row("GroupsInterleaved", CONV, "grouped_concat/CONV-GROUPS-1 differential/ERR-EXACT-1", ranks=RANKS_1_2),
    row("Fp16Accumulation", CONV, "differential/ERR-BOUND-1 differential/ERR-STAT-1"),
    row("SparseSkipsZeroWeights", CONV, "special/ERR-SPECIAL-1"),
    row("SilentTF32", CONV, "differential/ERR-BOUND-1 differential/ERR-STAT-1"),
    row("ConvTransposeOutputPaddingBefore", CONVT, "differential/ERR-EXACT-1 adjoint/CONVT-DEF-1"),
    row("AcceptsStrideZero", CONV, "invalid:stride-zero/PARAM-2"),
    # convolution gradients
    row("BackwardDxIgnoresStride", CONV_BW, "gradient_is_transpose/CONV-GRAD-1 finite_differences/CONV-GRAD-1"),
    row("BackwardDwIgnoresDilation", CONV_BW, "finite_differences/CONV-GRAD-1 differential/ERR-EXACT-1"),
    row("Col2imOverwrites", CONV_BW, "gradient_is_transpose/CONV-GRAD-1 differential/ERR-EXACT-1"),
    row("ConvTransposeBackwardDxFlipped", CONVT_BW,
        "gradient_is_transpose/CONVT-GRAD-1 finite_differences/CONVT-GRAD-1"),
    # max pool
    row("MaxPoolLastTie", MAXPOOL, "differential/MAXPOOL-TIE-1 special/MAXPOOL-TIE-1"),
    row("MaxPoolDropsNaN", MAXPOOL, "special/ERR-SPECIAL-1 special/MAXPOOL-NAN-1"),
    row("MaxPoolDilationIgnored", MAXPOOL, "max_pool_is_window_max/MAXPOOL-DEF-1 differential/ERR-EXACT-1"),
    row("MaxPoolCeilKeepsDroppedWindow", MAXPOOL, "differential/POOL-CEIL-1"),
    row("MaxPoolNegativeZeroLost", MAXPOOL, "special/ERR-EXACT-1 max_pool_is_window_max/MAXPOOL-DEF-1"),
    row("MaxPoolPaddedIndex", MAXPOOL, "max_pool_is_window_max/MAXPOOL-INDEX-1 differential/MAXPOOL-INDEX-1"),
    row("MaxPoolGlobalIndex", MAXPOOL, "max_pool_is_window_max/MAXPOOL-INDEX-1 differential/MAXPOOL-INDEX-1"),
    row("MaxPoolBackwardAssigns", MAXPOOL_BW, "finite_differences/MAXPOOL-GRAD-1 differential/ERR-BOUND-1"),
    # average pool
    row("AvgPoolCeilModeAsFloor", AVGPOOL, "differential/POOL-CEIL-1", ranks=RANKS_1_2),
    row("AvgPoolOverhangCounted", AVGPOOL, "avg_pool_is_conv/AVGPOOL-DEF-1 differential/ERR-BOUND-1", ranks=RANKS_1_2),
    row("AvgPoolCountIncludePadIgnored", AVGPOOL, "avg_pool_is_conv/AVGPOOL-DEF-1 differential/ERR-BOUND-1"),
    row("AvgPoolDivisorOverrideIgnored", AVGPOOL, "avg_pool_is_conv/AVGPOOL-DEF-1 differential/ERR-BOUND-1"),
    row("AvgPoolMaskMultiplied", AVGPOOL, "special/ERR-SPECIAL-1"),
    row("AvgPoolBackwardFullKernel", AVGPOOL_BW, "finite_differences/AVGPOOL-GRAD-1 differential/ERR-BOUND-1"),
    # hygiene
    row("AvgPoolBackwardScalesDyInPlace", AVGPOOL_BW, "hygiene/HYGIENE-1"),
    row("Float64Output", CONV, "hygiene/HYGIENE-2"),
    row("NondeterministicNoise", CONV, "hygiene/HYGIENE-3"),
]

#: Correct backends behind the same machinery: the plain wrapper (= im2col) on every op set of
#: the table, and the hand-written implementations some mutants switch a bug on in.
CONTROLS = sorted({("Mutant", param.values[1], param.values[2]) for param in MUTANTS}) + [
    ("PaddedCopyControl", CONV, ALL_RANKS),
    ("TapConvControl", CONV, ALL_RANKS),
    ("Col2imControl", CONV_BW, ALL_RANKS),
    ("ScanMaxPool", MAXPOOL, ALL_RANKS),
    ("MaskedAvgPoolControl", AVGPOOL, ALL_RANKS),
]


@functools.cache
def run(name: str, ops: tuple[str, ...], ranks: tuple[int, ...]) -> Results:
    """run_conformance with default settings but ``ops`` and ``ranks`` (cached: controls share runs)."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf and friends in special-value cases
        return run_conformance(getattr(mutants, name)(), ops=list(ops), ranks=ranks, max_examples=20, seed=0)


def tokens(results: Results) -> set[str]:
    """Every way a failure can be named: check/clause, check, clause."""
    out: set[str] = set()
    for failure in results.failures():
        out |= {f"{failure.check}/{failure.clause}", failure.check, failure.clause}
    return out


def test_table_has_at_least_25_mutants():
    assert len(MUTANTS) >= 25
    assert len({param.id for param in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("name, ops, ranks, caught_by", MUTANTS)
def test_mutant_is_caught(name: str, ops: tuple[str, ...], ranks: tuple[int, ...], caught_by: frozenset[str]) -> None:
    results = run(name, ops, ranks)
    assert results.exit_code == 1, f"{name} passed every check:\n{results.summary()}"
    found = tokens(results)
    assert caught_by & found, (
        f"{name} was caught, but not by {sorted(caught_by)}; failures: {sorted(t for t in found if '/' in t)}")


@pytest.mark.parametrize("name, ops, ranks", CONTROLS, ids=[
    f"{name}-{'+'.join(ops)}-ranks{''.join(map(str, ranks))}" for name, ops, ranks in CONTROLS])
def test_correct_backend_passes(name: str, ops: tuple[str, ...], ranks: tuple[int, ...]) -> None:
    results = run(name, ops, ranks)
    assert results.exit_code == 0, "\n".join(
        f"{r.check} {r.clause} {r.status}: {r.message} [{r.case.descriptor if r.case else ''}]"
        for r in results.failures()[:10])


# -- which clause a max-pool index failure cites ------------------------------------------------------

#: Dilated, padded windows (MAXPOOL-INDEX-1's corner); random data: no ties, no NaN.
INDEX_CASE = "max_pool x=1,2,7,7 k=3,3 s=1,2 p=2:2,2:1 d=2,2 dtype=float32 data=random seed=0"
TIES_CASE = "max_pool x=2,2,6,6 k=3,3 s=1,1 p=1:1,1:1 d=1,1 dtype=float32 data=ties seed=0"


def test_tie_bug_cites_maxpool_tie_1() -> None:
    results = run_conformance(mutants.MaxPoolLastTie(), cases=[TIES_CASE], checks=["differential"])
    assert {r.clause for r in results.failures()} == {"MAXPOOL-TIE-1"}


@pytest.mark.parametrize("name", ["MaxPoolGlobalIndex", "MaxPoolPaddedIndex"])
def test_index_bug_cites_maxpool_index_1(name: str) -> None:
    results = run_conformance(getattr(mutants, name)(), cases=[INDEX_CASE], checks=["differential"])
    assert {r.clause for r in results.failures()} == {"MAXPOOL-INDEX-1"}


def _conv_half_accumulation(x: Any, w: Any, b: Any, params: Any) -> np.ndarray:
    """A float16 conv that rounds its channel sum to float16 after each input channel (im2col per
    channel): half accumulation, which a backend declaring float32 accumulation must not do."""
    from convspec.backends import load
    from convspec.spec import ConvParams

    im2col = load("im2col")
    x, w = np.asarray(x), np.asarray(w)
    if params.groups != 1:
        return im2col.conv(x, w, b, params)
    one = ConvParams(input_shape=(x.shape[0], 1, *x.shape[2:]), weight_shape=(w.shape[0], 1, *w.shape[2:]),
                     stride=params.stride, padding=params.pads, dilation=params.dilation,
                     padding_mode=params.padding_mode)
    y = np.zeros(params.output_shape, np.float16)
    for c in range(x.shape[1]):
        y = (y + im2col.conv(x[:, c:c + 1], w[:, c:c + 1], None, one)).astype(np.float16)
    if b is not None:
        y = (y + np.asarray(b).reshape((-1,) + (1,) * params.rank)).astype(np.float16)
    return y


def test_declared_float32_accumulation_tightens_the_bound_enough_to_catch_half_accumulation() -> None:
    """Capabilities.accumulation per dtype (ERR-BOUND-1's u_acc): the same float16-accumulating
    conv passes when it declares the input dtype, and fails ERR-BOUND-1 when it claims float32."""
    from convspec.backends import FunctionBackend

    def run(accumulation: Any) -> Results:
        backend = FunctionBackend("half-accumulation", conv=_conv_half_accumulation, dtypes={"float16"},
                                  accumulation=accumulation)
        return run_conformance(backend, ops=["conv"], dtypes=["float16"], checks=["differential"])

    assert run(None).exit_code == 0
    claimed = run({"float16": "float32"})
    assert claimed.exit_code == 1 and {r.clause for r in claimed.failures()} == {"ERR-BOUND-1"}
