"""Every distinct bug per run: streams keep searching after a failure, group failures into
clusters by signature, shrink one representative each and report them all
(convspec/conformance/clusters.py, engine.run_stream). Also: crashed and timed-out cases are
never run again to shrink them, the minimal case of a failing op is listed first, and the
pairwise feature coverage of generated cases (convspec/conformance/coverage.py).

Clauses cited: AVGPOOL-DEF-1 (divisor_override), POOL-CEIL-1 (ceil mode), CONV-GROUPS-1,
CONV-DEF-1 (dilation), ERR-BOUND-1 / ERR-EXACT-1 (one value clause for clustering).
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import mutants
import numpy as np
import pytest

from convspec.conformance import Results, run_conformance
from convspec.conformance.cases import Case
from convspec.conformance.clusters import group_failures, key_of
from convspec.conformance.coverage import op_features, pair_coverage, strategy_coverage
from convspec.conformance.results import BackendRun, CheckResult
from convspec.spec.features import features_of

# -- backends with two independent bugs in one op --------------------------------------------------


class AvgPoolTwoBugs(mutants.AvgPoolCeilModeAsFloor):
    """avg_pool raises on divisor_override (a kernel never written: errored, AVGPOOL-DEF-1) AND
    computes ceil-mode pools in floor mode (POOL-CEIL-1)."""

    @mutants.validated
    def avg_pool(self, x, params):
        if params.divisor_override is not None:
            raise RuntimeError("divisor_override: no kernel for it")
        return self.inner.avg_pool(x, mutants.rebuild(params, ceil_mode=False) if params.ceil_mode else params)


class ConvGroupsAndDilation(mutants.Mutant):
    """conv writes the groups' output channels in reverse group order (CONV-GROUPS-1) AND reads a
    dilated kernel's taps in reverse order (CONV-DEF-1)."""

    @mutants.validated
    def conv(self, x, w, b, params):
        if any(d > 1 for d in params.dilation):
            w = np.ascontiguousarray(np.asarray(w)[(...,) + (slice(None, None, -1),) * params.rank])
        y = self.inner.conv(x, w, b, params)
        groups, out_channels = params.groups, y.shape[1]
        blocks = y.reshape((y.shape[0], groups, out_channels // groups) + y.shape[2:])
        return np.ascontiguousarray(blocks[:, ::-1].reshape(y.shape))


def _default_run(backend: Any, op: str) -> Results:
    with np.errstate(all="ignore"):
        return run_conformance(backend, ops=[op])  # every other setting: the defaults


@pytest.fixture(scope="module")
def avg_pool_two_bugs() -> Results:
    return _default_run(AvgPoolTwoBugs(), "avg_pool")


def test_two_independent_avg_pool_bugs_are_both_reported(avg_pool_two_bugs: Results) -> None:
    """AVGPOOL-DEF-1 (raises on divisor_override) does not hide POOL-CEIL-1 (floor windows)."""
    clusters = avg_pool_two_bugs.backends[0].clusters
    raised = [c for c in clusters if c.status == "errored"]
    assert raised and raised[0].exception == "RuntimeError" and raised[0].conditions == ("divisor_override",)
    assert "whenever divisor_override" in raised[0].cause
    wrong = [c for c in clusters if c.status == "failed"]
    assert wrong, [c.signature for c in clusters]
    # The ceil-mode bug's minimal cases use ceil mode and no divisor_override.
    for cluster in wrong:
        case = Case.parse(cluster.representative)
        assert case.params.get("ceil_mode") and case.params.get("divisor_override") is None
    failures = avg_pool_two_bugs.failures()
    assert {r.status for r in failures} >= {"errored", "failed"}


def test_two_independent_conv_bugs_are_both_reported() -> None:
    """A conv wrong with groups > 1 (CONV-GROUPS-1) and wrong with dilation (CONV-DEF-1)."""
    clusters = _default_run(ConvGroupsAndDilation(), "conv").backends[0].clusters
    conditions = [set(c.conditions) for c in clusters if c.status == "failed"]
    assert any("groups" in c for c in conditions) and any("dilation" in c for c in conditions), \
        [c.signature for c in clusters]
    groups = next(c for c in clusters if "groups" in c.conditions)
    assert "groups > 1" in groups.cause and groups.cause.startswith("fails ")
    assert groups.shrunk and Case.parse(groups.representative).params["groups"] > 1


def test_a_conformant_backend_has_no_cluster() -> None:
    run = conformant_run("avg_pool")
    assert run.conformant and run.clusters == []
    assert run.pair_coverage["avg_pool"]["covered"] > 0


def test_a_single_bug_is_explained_by_its_feature() -> None:  # AVGPOOL-DEF-1: divisor_override ignored
    clusters = _default_run(mutants.AvgPoolDivisorOverrideIgnored(), "avg_pool").backends[0].clusters
    assert clusters and clusters[0].conditions == ("divisor_override",), [c.signature for c in clusters]
    # Every minimal case keeps the feature the bug needs.
    assert all(Case.parse(c.representative).params.get("divisor_override") for c in clusters)


# -- the minimal case first (issue: not after three dtypes of bigger ones) ---------------------------------


def test_minimal_shrunk_case_is_listed_first(avg_pool_two_bugs: Results) -> None:
    run = avg_pool_two_bugs.backends[0]
    first = run.failures()[0]
    assert any(c.is_representative(first) for c in run.clusters)
    catalogue = [r for r in run.failures() if r.case is not None and r.case.label]
    assert catalogue, "the catalogue cases failing too come after the minimal cases"
    summary = avg_pool_two_bugs.summary()
    listed = [line for line in summary.splitlines() if line.strip().startswith("case: ")]
    assert listed[0].split("case: ")[1] == first.case.descriptor
    assert "distinct failures" in summary and "cluster avg_pool#1" in summary


def test_clusters_travel_in_json_and_every_report(avg_pool_two_bugs: Results) -> None:
    from convspec.conformance import render

    text = render.render_json(avg_pool_two_bugs)
    render.validate(json.loads(text))
    again = Results.from_json(json.loads(text))
    assert [c.to_json() for c in again.backends[0].clusters] == [c.to_json() for c in avg_pool_two_bugs.backends[0].clusters]
    assert again.backends[0].pair_coverage == avg_pool_two_bugs.backends[0].pair_coverage
    cause = avg_pool_two_bugs.backends[0].clusters[0].cause
    assert cause in render.render_markdown(avg_pool_two_bugs)
    page = render.render_html(avg_pool_two_bugs)
    assert "Distinct failures" in page and "Pairwise feature coverage" in page


# -- grouping, on hand-built results ---------------------------------------------------------------


def _result(descriptor: str, status: str, clause: str = "CONV-DEF-1", message: str = "") -> CheckResult:
    case = Case.parse(descriptor)
    return CheckResult(backend="b", family="differential", check="differential", op=case.op, clause=clause,
                       status=status, case=case, features=tuple(sorted(features_of(case.op, case.params_object))),
                       message=message)


PLAIN = "conv x=1,2,6 w=2,2,3 s=1 p=0:0 d=1 g=1 dtype=float32 data=random seed={}"
GROUPED = "conv x=1,4,6 w=4,2,3 s=1 p=0:0 d=1 g=2 dtype=float32 data=random seed={}"
DILATED = "conv x=1,2,7 w=2,2,3 s=1 p=0:0 d=2 g=1 dtype=float32 data=random seed={}"
STRIDED = "conv x=1,2,7 w=2,2,3 s=2 p=0:0 d=1 g=1 dtype=float32 data=random seed={}"


def test_failures_split_by_the_feature_that_explains_them() -> None:
    outcomes = ([_result(PLAIN.format(i), "passed") for i in range(3)]
                + [_result(STRIDED.format(i), "passed") for i in range(2)]
                + [_result(GROUPED.format(i), "failed", "ERR-BOUND-1") for i in range(3)]
                + [_result(DILATED.format(i), "failed", "ERR-EXACT-1") for i in range(2)])
    groups = group_failures(outcomes)
    assert [(g.conditions, len(g.members)) for g in groups] == [(("groups",), 3), (("dilation",), 2)]
    assert groups[0].passing_with == 0 and groups[0].clauses == ("ERR-BOUND-1",)


def test_value_clauses_are_one_key_but_exceptions_are_not() -> None:  # ERR-BOUND-1 = ERR-EXACT-1 here
    bound, exact = _result(PLAIN.format(0), "failed", "ERR-BOUND-1"), _result(PLAIN.format(1), "failed", "ERR-EXACT-1")
    assert key_of(bound) == key_of(exact)
    raised = _result(PLAIN.format(2), "errored", message="RuntimeError: no kernel (at k.py:3)")
    other = _result(PLAIN.format(3), "errored", message="ValueError: bad (at k.py:9)")
    assert key_of(raised)[3] == "RuntimeError" and key_of(raised) != key_of(other)


def test_a_feature_passing_cases_also_have_does_not_explain() -> None:
    outcomes = ([_result(GROUPED.format(i), "passed") for i in range(4)]
                + [_result(GROUPED.format(10 + i), "failed") for i in range(2)])
    (group,) = group_failures(outcomes)
    assert group.passing_with == 4 and "passing cases have it too" in _cause(group)


def test_all_zero_passing_cases_are_no_counter_evidence() -> None:
    zeros = "conv x=1,4,6 w=4,2,3 s=1 p=0:0 d=1 g=2 dtype=float32 data=zeros seed={}"
    outcomes = ([_result(zeros.format(i), "passed") for i in range(3)] + [_result(PLAIN.format(0), "passed")]
                + [_result(GROUPED.format(i), "failed") for i in range(2)])
    (group,) = group_failures(outcomes)
    assert group.conditions == ("groups",) and group.passing_with == 0


def _cause(group: Any) -> str:
    from convspec.conformance.clusters import cause_text

    return cause_text("conv", group.key[1], group.key[3], group.conditions, len(group.members), group.passing_with,
                      group.shared)


# -- crashed and timed-out cases are recorded once, never re-run ----------------------------------------


class _Logged(mutants.Mutant):
    """Appends a digest of every conv input to ``log`` (from the child process too)."""

    def __init__(self, log: Path) -> None:
        super().__init__()
        self.log = str(log)

    def note(self, x: Any) -> None:
        with open(self.log, "a") as handle:
            handle.write(f"{np.shape(x)[0]} {hashlib.sha1(np.ascontiguousarray(x).tobytes()).hexdigest()}\n")


class LoggedHang(_Logged):
    def conv(self, x, w, b, params):
        self.note(x)
        return mutants.HangBackend.conv(self, x, w, b, params)


class LoggedSegfault(_Logged):
    def conv(self, x, w, b, params):
        self.note(x)
        return mutants.SegfaultBackend.conv(self, x, w, b, params)


def _calls(log: Path) -> list[tuple[int, str]]:
    lines = log.read_text().split("\n") if log.exists() else []
    return [(int(batch), digest) for batch, digest in (line.split() for line in lines if line)]


def test_a_hang_is_recorded_once_and_never_run_again(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    results = run_conformance(LoggedHang(log), ops=["conv"], ranks=[1], checks=["differential"], max_examples=20,
                              isolate=True, timeout=1.0, catalogue=False)
    hung = [digest for batch, digest in _calls(log) if batch == 2]
    assert len(hung) == 1, f"{len(hung)} calls on a hanging input (MAX_STREAM_TIMEOUTS = 1, no shrinking)"
    (cluster,) = results.backends[0].clusters
    assert cluster.status == "timed_out" and not cluster.shrunk and "not run again" in cluster.note
    assert [r.status for r in results.failures()] == ["timed_out"]


def test_a_crash_is_never_run_again_to_shrink_it(tmp_path: Path) -> None:
    log = tmp_path / "calls"
    results = run_conformance(LoggedSegfault(log), ops=["conv"], ranks=[1], checks=["differential"],
                              max_examples=20, isolate=True, timeout=10.0, catalogue=False)
    crashed = [digest for batch, digest in _calls(log) if batch == 2]
    assert crashed and len(crashed) == len(set(crashed)), "a crashing input was run twice"
    clusters = results.backends[0].clusters
    assert [c.status for c in clusters] == ["crashed"] and clusters[0].count == len(crashed)
    assert any(r.status == "passed" for r in results.all_results())  # exploration went on after the crash


# -- pairwise feature coverage ------------------------------------------------------------------------


def test_pair_coverage_counts_only_feasible_combinations() -> None:
    cov = pair_coverage("max_pool", [{"stride"}, {"ceil_mode", "padding"}, set()])
    assert "no padding + ceil_mode" in cov.missing and "no dilation + stride" not in cov.missing
    everything = pair_coverage("conv", [])
    assert "no padding + padding_mode.reflect" not in everything.missing  # a mode needs padding
    assert "padding_mode.reflect + padding_mode.circular" not in everything.missing  # one mode at a time
    features = op_features("conv")
    pairs = len(features) * (len(features) - 1) // 2
    assert everything.covered == 0 and 3 * pairs <= everything.feasible < 4 * pairs


def test_pair_coverage_skips_features_declared_unsupported() -> None:
    cov = pair_coverage("avg_pool", [], unsupported={"avg_pool:dilation": "no dilation"})
    assert not any(m.startswith("dilation +") or "+ dilation" in m for m in cov.missing)


#: Pairs the issue names: 'same' with a padding mode at stride 1, ceil mode without padding.
IMPORTANT = {"conv": ["no stride + same", "no stride + padding_mode.reflect", "no stride + padding_mode.circular",
                      "groups + dilation"],
             "max_pool": ["no padding + ceil_mode", "no stride + ceil_mode", "no dilation + stride"],
             "avg_pool": ["no padding + ceil_mode", "ceil_mode + divisor_override", "no dilation + count_include_pad"]}


@functools.cache
def conformant_run(op: str) -> BackendRun:
    return _default_run(mutants.Mutant(), op).backends[0]


@pytest.mark.parametrize("op", sorted(IMPORTANT))
def test_default_run_reaches_important_feature_pairs(op: str) -> None:
    coverage = conformant_run(op).pair_coverage[op]
    assert not set(IMPORTANT[op]) & set(coverage["missing"]), coverage["missing"]
    assert coverage["covered"] >= 0.95 * coverage["feasible"], coverage


def test_strategy_coverage_prints_per_op(capsys: pytest.CaptureFixture[str]) -> None:
    from convspec.conformance import coverage

    assert coverage.main(["--max-examples", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    from convspec.spec import OPS

    assert len(lines) == len(OPS) and all("of feature pairs in 5 cases" in line for line in lines)
    assert strategy_coverage("max_pool", max_examples=5).cases == 5


def test_run_reports_pair_coverage_per_op(avg_pool_two_bugs: Results) -> None:
    run: BackendRun = avg_pool_two_bugs.backends[0]
    assert set(run.pair_coverage) == {"avg_pool"}
    assert "pairwise feature coverage" in avg_pool_two_bugs.summary()
