"""The pytest plugin (``pytest --convspec-backend``): one item per (backend, op, family, clause),
failures with clause and reproducers, unsupported features as skips, JUnit classes per backend.
Each test runs pytest in a subprocess, in an empty folder, as a user's CI would."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SHIFTED = '''
import numpy as np
from convspec.backends import Capabilities, load

_naive = load("naive")


class Shifted:
    """naive, but conv adds 0.01 to every output (a bias bug); ranks 2 only."""
    name = "shifted"
    capabilities = Capabilities(ops=_naive.capabilities.ops, ranks=frozenset({2}))

    def __getattr__(self, op):
        return getattr(_naive, op)

    def conv(self, x, w, b, params):
        y = _naive.conv(x, w, b, params)
        return y + np.asarray(0.01, y.dtype)


backend = Shifted()
'''


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-rfs", "-p", "no:cacheprovider", "--convspec-max-examples", "3",
               "--junitxml", str(folder / "junit.xml"), *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)


def test_a_conformant_backend_passes_with_one_junit_class(tmp_path):
    done = _pytest(tmp_path, "--convspec-backend", "naive", "--convspec-ops", "max_pool", "--convspec-ranks", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    cases = ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")
    names = {(case.get("classname"), case.get("name")) for case in cases}
    assert ("convspec.naive", "convspec[naive-max_pool-differential-MAXPOOL-DEF-1]") in names
    assert {classname for classname, _ in names} == {"convspec.naive"}


def test_a_bug_fails_with_its_clause_and_reproducer(tmp_path):
    (tmp_path / "shifted.py").write_text(SHIFTED, encoding="utf-8")
    done = _pytest(tmp_path, "--convspec-backend", "shifted.py:backend", "--convspec-ops", "conv",
                   "--convspec-ranks", "2", "--convspec-checks", "differential")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED convspec/shifted::convspec[shifted-conv-differential-ERR-BOUND-1]" in done.stdout
    assert "convspec check shifted.py:backend --case" in done.stdout  # the reproducer
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert int(root.find("testsuite").get("failures")) >= 1


def test_unsupported_features_are_skips_with_the_reason(tmp_path):
    (tmp_path / "shifted.py").write_text(SHIFTED, encoding="utf-8")
    done = _pytest(tmp_path, "--convspec-backend", "shifted.py:backend", "--convspec-ops", "conv",
                   "--convspec-ranks", "1", "--convspec-checks", "differential")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SKIPPED" in done.stdout and "unsupported: spatial rank 1 not supported (ranks [2])" in done.stdout


def test_nothing_runs_without_the_option(tmp_path):
    done = _pytest(tmp_path)
    assert done.returncode == 5  # pytest's "no tests collected"


def test_under_xdist_the_workers_split_the_shards(tmp_path):
    """``pytest -n 2``: one item per shard, each run by one worker; the bug is still found, with
    its clause and reproducer, and a conformant backend passes."""
    import pytest

    pytest.importorskip("xdist")
    (tmp_path / "shifted.py").write_text(SHIFTED, encoding="utf-8")
    done = _pytest(tmp_path, "-n", "2", "--convspec-backend", "shifted.py:backend", "--convspec-backend", "naive",
                   "--convspec-ops", "conv", "max_pool", "--convspec-ranks", "2")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAILED convspec/shifted::convspec[shifted-conv-cases]" in done.stdout
    assert "ERR-BOUND-1" in done.stdout and "convspec check shifted.py:backend --case" in done.stdout
    names = {case.get("name") for case in ET.parse(tmp_path / "junit.xml").getroot().iter("testcase")}
    assert {"convspec[naive-conv-cases]", "convspec[naive-max_pool-cases]", "convspec[shifted-max_pool-cases]"} <= names
    assert any(name.startswith("convspec[naive-conv-") and not name.endswith("-cases]") for name in names)  # properties
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAILED")]
    assert failed and all("shifted-conv-" in line for line in failed)


def test_one_shard_runs_alone(tmp_path):
    """Items are independent: ``-k`` selects one shard, and only it runs."""
    done = _pytest(tmp_path, "--convspec-shards", "--convspec-backend", "naive", "--convspec-ops", "max_pool",
                   "--convspec-ranks", "1", "-k", "max_pool-cases")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout and "deselected" in done.stdout
