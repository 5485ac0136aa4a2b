"""Bad command-line values: one line on stderr naming the option, the value and the rule, exit code
2, never a traceback (convspec.cli); the pytest plugin's equivalents are usage errors (exit code 4),
not INTERNALERROR; ``convspec --version``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from convspec import __version__
from convspec.cli import main
from convspec.spec import SPEC_VERSION

CASE = "conv x=1,2,7 w=3,2,3 s=2 p=1:1 d=1 g=1 dtype=float64 data=random seed=1"


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's errors and --version
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("argv, message", [
    pytest.param(["check", "naive", "--ranks", "0"], "argument --ranks: expected a positive integer, got '0'",
                 id="ranks-0"),
    pytest.param(["check", "naive", "--ranks", "two"], "argument --ranks: expected a positive integer, got 'two'",
                 id="ranks-word"),
    pytest.param(["check", "naive", "--checks", "nosuch"], "--checks: unknown check 'nosuch'; families:",
                 id="checks-nosuch"),
    pytest.param(["check", "naive", "--max-examples", "0"],
                 "argument --max-examples: expected a positive integer, got '0'", id="max-examples-0"),
    pytest.param(["check", "naive", "--timeout", "-1", "--isolate"],
                 "argument --timeout: expected a positive number of seconds, got '-1'", id="timeout-negative"),
    pytest.param(["check", "naive", "--timeout", "nan", "--isolate"],
                 "argument --timeout: expected a positive number of seconds, got 'nan'", id="timeout-nan"),
    pytest.param(["check", "naive", "--timeout", "5"],
                 "--timeout 5 needs --isolate: naive runs in this process, where a call cannot be stopped",
                 id="timeout-without-isolate"),
    pytest.param(["check", "naive", "--checks", "oracle"],
                 "--checks oracle compares against a second backend: name it with --oracle BACKEND",
                 id="oracle-check-without-oracle"),
    pytest.param(["check", "naive", "--checks", "oracle:im2col"],
                 "--checks oracle compares against a second backend: name it with --oracle BACKEND",
                 id="oracle-named-check-without-oracle"),
    pytest.param(["check", "naive", "--memory-limit", "0"], "argument --memory-limit: a size must be positive",
                 id="memory-limit-0"),
    pytest.param(["check", "naive", "--xfail", "/nonexistent/x.toml"],
                 "expected-failures file '/nonexistent/x.toml': cannot read it", id="xfail-missing"),
    pytest.param(["check", "nosuch"], "no backend named 'nosuch'", id="backend-nosuch"),
    pytest.param(["check", "naive", "--oracle", "nosuch"], "no backend named 'nosuch'", id="oracle-nosuch"),
    pytest.param(["vectors", "export", "/proc/nope", "--count", "1", "--no-catalogue", "--ops", "conv"],
                 "cannot write vectors to '/proc/nope'", id="vectors-export-unwritable"),
    pytest.param(["vectors", "export", "out", "--count", "0"], "argument --count: expected a positive integer",
                 id="vectors-count-0"),
    pytest.param(["vectors", "export", "out", "--ranks", "-1"], "argument --ranks: expected a positive integer",
                 id="vectors-ranks-negative"),
])
def test_bad_values_are_one_line_and_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(argv, capsys)
    assert code == 2, (out, err)
    assert message in err, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err + out
    assert not (tmp_path / "out").exists()


def test_version(capsys):
    code, out, _ = run_cli(["--version"], capsys)
    assert code == 0
    assert out.strip() == f"convspec {__version__} (spec {SPEC_VERSION})"


def test_oracle_check_with_an_oracle_runs(capsys):
    code, out, err = run_cli(["check", "naive", "--case", CASE, "--checks", "oracle", "--oracle", "im2col",
                              "--quiet"], capsys)
    assert code == 0, err
    assert "oracle 1 passed" in out  # not "CONFORMANT (;" with nothing run


def test_timeout_without_isolate_is_accepted_for_a_command_backend(capsys, tmp_path):
    program = tmp_path / "noop.sh"
    program.write_text("#!/bin/sh\nexit 3\n", encoding="utf-8")
    program.chmod(0o755)
    code, out, err = run_cli(["check", f"cmd:{program}", "--case", CASE.replace("float64", "float32"),
                              "--checks", "differential", "--timeout", "5", "--quiet"], capsys)
    assert code == 1 and "needs --isolate" not in err  # the program exits 3: errored, but the run ran
    assert "exited with status 3" in out


def test_run_conformance_rejects_the_same_mistakes():
    import convspec

    with pytest.raises(ValueError, match="the oracle check compares against a second backend"):
        convspec.run_conformance("naive", checks=["oracle"])
    with pytest.raises(ValueError, match="without isolate: naive runs in this process"):
        convspec.run_conformance("naive", timeout=5)
    with pytest.raises(ValueError, match="timeout=-1 must be a positive number"):
        convspec.run_conformance("naive", timeout=-1, isolate=True)


@pytest.mark.parametrize("args, message", [
    pytest.param(["--convspec-backend", "nosuch"], "ERROR: convspec: no backend named 'nosuch'", id="backend"),
    pytest.param(["--convspec-backend", "naive", "--convspec-checks", "oracle"],
                 "ERROR: convspec: the oracle check compares against a second backend", id="oracle"),
    pytest.param(["--convspec-backend", "naive", "--convspec-checks", "nosuch"],
                 "ERROR: convspec: unknown check 'nosuch'", id="check"),
    pytest.param(["--convspec-backend", "naive", "--convspec-xfail", "nope.toml"],
                 "ERROR: convspec: expected-failures file 'nope.toml': cannot read it", id="xfail"),
])
def test_pytest_plugin_bad_options_are_usage_errors(tmp_path: Path, args, message):
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    text = done.stdout + done.stderr
    assert done.returncode == 4, text  # pytest's usage error
    assert message in text and "INTERNALERROR" not in text and "Traceback" not in text
    assert len(text.strip().splitlines()) <= 2, text
