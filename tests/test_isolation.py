"""``isolate=True`` / ``--isolate``: a backend that segfaults, hangs, exits, runs away with memory
or mutates its input is reported as such for the cases it does it on, and the run goes on
(convspec.conformance.invoke.Invoker). Without isolation a backend's exception on a valid input
is *errored*, never a harness crash. HYGIENE-1 is checked either way.

The misbehaving backends (tests/mutants.py) wrap the im2col backend and misbehave only on a batch
of 2, so every run here holds passing cases before and after the bad one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import mutants
import pytest

from convspec.conformance import Results, run_conformance

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 2.0

#: A case with batch 1, the affected case (batch 2), another with batch 1.
GOOD_1D = "conv x=1,2,6 w=3,2,3 s=1 p=1:1 d=1 g=1 dtype=float32 data=random seed=1"
BAD = "conv x=2,2,5,5 w=3,2,3,3 s=1,1 p=1:1,1:1 d=1,1 g=1 dtype=float32 data=random seed=2"
GOOD_2D = "conv x=1,3,5,4 w=2,3,3,2 s=2,1 p=0:1,1:0 d=1,1 g=1 dtype=float64 data=integers seed=3"
CASES = [GOOD_1D, BAD, GOOD_2D]
CHECKS = ["differential", "hygiene"]


def by_case(results: Results) -> dict[str, list]:
    out: dict[str, list] = {}
    for result in results.all_results():
        out.setdefault(result.case.descriptor if result.case else "", []).append(result)
    return out


def assert_only_bad_case_fails(results: Results, status: str, clause: str | None = None) -> list:
    """The affected case has ``status`` (citing ``clause``); the cases around it all passed."""
    cases = by_case(results)
    assert list(cases) == CASES, "the run stopped or reordered cases"
    for descriptor in (GOOD_1D, GOOD_2D):
        assert {r.status for r in cases[descriptor]} == {"passed"}, [r.message for r in cases[descriptor]]
    bad = [r for r in cases[BAD] if r.status != "passed"]
    assert bad and {r.status for r in bad} == {status}, [(r.status, r.message) for r in cases[BAD]]
    if clause is not None:
        assert {r.clause for r in bad} == {clause}
    assert results.exit_code == 1
    return bad


# -- isolate=True: each misbehaviour becomes a status of the affected case ---------------------------


@pytest.mark.parametrize("backend, status, message", [
    pytest.param("SegfaultBackend", "crashed", r"backend process died", id="segfault-crashed"),
    pytest.param("ExitBackend", "crashed", r"backend process died", id="os_exit-crashed"),
    pytest.param("HangBackend", "timed_out", r"no answer within --timeout 2\.0 s", id="hang-timed_out"),
    pytest.param("RunawayAllocationBackend", "crashed", r"runaway allocation: .*MemoryError",
                 id="runaway-allocation-crashed"),
    pytest.param("RaisesBackend", "errored", r"RuntimeError: kernel launch failed", id="raises-errored"),
])
def test_isolated_failure_is_recorded_and_run_goes_on(backend: str, status: str, message: str) -> None:
    started = time.perf_counter()
    results = run_conformance(getattr(mutants, backend)(), cases=CASES, checks=CHECKS, isolate=True, timeout=TIMEOUT)
    bad = assert_only_bad_case_fails(results, status)
    assert all(re.search(message, r.message) for r in bad), [r.message for r in bad]
    assert time.perf_counter() - started < 10 * TIMEOUT  # a hang costs one timeout, not the run


@pytest.mark.parametrize("backend, cause", [
    pytest.param("SegfaultBackend", "signal 11", id="segfault"),
    pytest.param("ExitBackend", "exit code 3", id="os_exit"),
])
def test_crash_message_names_the_signal_or_exit_code(backend: str, cause: str) -> None:
    results = run_conformance(getattr(mutants, backend)(), cases=[BAD], checks=CHECKS, isolate=True, timeout=TIMEOUT)
    assert [r.status for r in results.all_results()] == ["crashed"]
    assert cause in next(iter(results.all_results())).message


def test_isolated_input_mutation_is_hygiene_1() -> None:
    """The child mutates its copy; the parent still sees it (HYGIENE-1), and the reference, fed the
    parent's pristine arrays, agrees with the backend's output (differential passes)."""
    results = run_conformance(mutants.MutatesInputBackend(), cases=CASES, checks=CHECKS, isolate=True,
                              timeout=TIMEOUT)
    bad = assert_only_bad_case_fails(results, "failed", "HYGIENE-1")
    assert "['x']" in bad[0].message
    assert {r.status for r in by_case(results)[BAD] if r.family == "differential"} == {"passed"}


def test_isolated_stream_shrinks_a_crash_and_completes() -> None:
    """Generated cases too: the crash is shrunk to a minimal batch-2 case (each try restarts the
    child), and the run goes on to the properties and the invalid family."""
    results = run_conformance(mutants.SegfaultBackend(), ops=["conv"], ranks=[1], max_examples=5, isolate=True,
                              timeout=TIMEOUT, catalogue=False)
    crashed = [r for r in results.failures() if r.status == "crashed"]
    assert crashed and all(r.case.params["input_shape"][0] == 2 for r in crashed)
    assert any(r.status == "passed" for r in results.all_results())
    assert any(r.family == "invalid" and r.status == "passed" for r in results.all_results())
    assert results.exit_code == 1


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_memory_limit_turns_a_large_workspace_into_a_crash() -> None:
    """Settings.memory_limit (RLIMIT_AS of the child) refuses a 4 GiB workspace: *crashed*, and the
    run goes on."""
    with open("/proc/self/status") as status:
        current = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    limit = current + 2**30  # room for the child's work, not for the workspace
    results = run_conformance(mutants.LargeWorkspaceBackend(), ops=["conv"], cases=CASES, checks=CHECKS,
                              isolate=True, timeout=30.0, memory_limit=limit)
    bad = assert_only_bad_case_fails(results, "crashed")
    assert all("runaway allocation" in r.message for r in bad)


def test_large_workspace_without_a_limit_is_harmless() -> None:
    """The control: without memory_limit the same backend passes (the 4 GiB are never touched)."""
    results = run_conformance(mutants.LargeWorkspaceBackend(), cases=CASES, checks=CHECKS, isolate=True,
                              timeout=30.0)
    assert results.exit_code == 0


# -- without isolation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("backend, message", [
    pytest.param("RaisesBackend", "RuntimeError: kernel launch failed", id="raises"),
    pytest.param("RunawayAllocationBackend", "MemoryError", id="runaway-allocation"),
])
def test_exception_without_isolation_is_errored(backend: str, message: str) -> None:
    results = run_conformance(getattr(mutants, backend)(), cases=CASES, checks=CHECKS)
    bad = assert_only_bad_case_fails(results, "errored")
    assert all(message in r.message for r in bad)


def test_input_mutation_without_isolation_is_hygiene_1() -> None:
    results = run_conformance(mutants.MutatesInputBackend(), cases=CASES, checks=CHECKS)
    bad = assert_only_bad_case_fails(results, "failed")
    assert "HYGIENE-1" in {r.clause for r in bad}


def test_input_mutation_does_not_corrupt_the_reference() -> None:  # HYGIENE-1: the backend works on copies
    results = run_conformance(mutants.MutatesInputBackend(), cases=[BAD], checks=CHECKS)
    outcomes = {(r.family, r.clause, r.status) for r in results.all_results()}
    assert ("differential", "CONV-DEF-1", "passed") in outcomes and ("hygiene", "HYGIENE-1", "failed") in outcomes
    assert not any(family == "differential" and status != "passed" for family, _, status in outcomes)


def test_hygiene_alone_still_checks_inputs() -> None:  # HYGIENE-1 with --checks hygiene only
    results = run_conformance(mutants.MutatesInputBackend(), cases=CASES, checks=["hygiene"])
    assert results.exit_code == 1 and "HYGIENE-1" in {r.clause for r in results.failures()}


# -- the CLI ----------------------------------------------------------------------------------------


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "convspec.cli", "check", *args], check=False, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_isolate_reports_a_segfault() -> None:
    done = cli("tests/mutants.py:SegfaultBackend", "--isolate", "--timeout", "2", "--ops", "conv", "--ranks", "1",
               "--max-examples", "6", "--no-catalogue", "--quiet")  # enough draws to reach a batch of 2
    assert done.returncode == 1, done.stdout + done.stderr
    assert "crashed" in done.stdout and "CRASHED conv" in done.stdout
    assert "backend process died" in done.stdout


def test_cli_isolate_reports_a_hang() -> None:
    done = cli("tests/mutants.py:HangBackend", "--isolate", "--timeout", "2", "--case", GOOD_1D, "--case", BAD,
               "--checks", "differential", "hygiene", "--quiet")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "TIMED_OUT conv" in done.stdout and "timed_out" in done.stdout
    assert BAD in done.stdout


def test_cli_without_isolate_survives_an_exception() -> None:
    done = cli("tests/mutants.py:RaisesBackend", "--case", GOOD_1D, "--case", BAD, "--checks", "differential",
               "--quiet")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "ERRORED conv" in done.stdout and "kernel launch failed" in done.stdout
