"""A printed reproducer reproduces: every ``reproduce:`` line of ``convspec check``, run as printed,
gives the same non-conformance, and so does its Python snippet (convspec.conformance.results,
CheckResult.reproducer). The line carries what the run needed: ``--oracle`` for oracle failures,
``--isolate --timeout`` for crashes and hangs, ``--timeout`` for a command backend, and
``PYTHONPATH=.`` for a module found in the current folder. Also: a command backend is killed past
``--timeout`` (timed_out), and ``path/to/file.py`` backends import the modules beside them.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from convspec.backends import load
from convspec.cli import main

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "tests" / "mutants.py"

#: A batch of 2: the case tests/mutants.py's crashing and hanging backends misbehave on.
BAD = "conv x=2,2,5,5 w=3,2,3,3 s=1,1 p=1:1,1:1 d=1,1 g=1 dtype=float32 data=random seed=2"
BIASED = "conv x=1,2,6 w=3,2,3 b s=1 p=0:0 d=1 g=1 dtype=float64 data=random seed=3"


def check(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", *argv, "--quiet"])
    return code, capsys.readouterr().out


def reproducers(out: str) -> tuple[list[str], list[str]]:
    """The printed CLI lines and Python snippets."""
    lines = out.splitlines()
    cli = [line.split("reproduce: ", 1)[1] for line in lines if "reproduce: " in line]
    snippets = []
    for number, line in enumerate(lines):
        if line.strip() == "python:":
            body = []
            for following in lines[number + 1:]:
                if not following.startswith("      "):
                    break
                body.append(following[6:])
            snippets.append("\n".join(body))
    return cli, snippets


def run_printed(line: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Run a printed ``convspec check ...`` line in this process (no environment assignments)."""
    words = shlex.split(line)
    assert words[:2] == ["convspec", "check"], line
    return main(words[1:]), capsys.readouterr().out


def run_snippet(snippet: str) -> str:
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        exec(compile(snippet, "<reproducer>", "exec"), {})  # noqa: S102 - the printed snippet itself
    return output.getvalue()


@pytest.mark.parametrize("argv, words, status", [
    pytest.param([f"{MUTANTS}:BiasTwice", "--case", BIASED, "--checks", "oracle", "--oracle", "naive"],
                 ["--oracle", "naive"], "FAILED conv [oracle:naive]", id="oracle-needs---oracle"),
    pytest.param([f"{MUTANTS}:SegfaultBackend", "--case", BAD, "--checks", "differential", "--isolate",
                  "--timeout", "5"], ["--isolate", "--timeout", "5"], "CRASHED conv [differential]",
                 id="crash-needs---isolate"),
    pytest.param([f"{MUTANTS}:HangBackend", "--case", BAD, "--checks", "differential", "--isolate", "--timeout", "1"],
                 ["--isolate", "--timeout", "1"], "TIMED_OUT conv [differential]", id="hang-needs---timeout"),
])
def test_printed_reproducer_reproduces(argv, words, status, capsys):
    code, out = check(argv, capsys)
    assert code == 1 and status in out, out
    [cli], [snippet] = reproducers(out)
    assert " ".join(words) in cli
    again, out_again = run_printed(cli, capsys)
    assert again == 1 and status in out_again, out_again
    assert status in run_snippet(snippet)


def test_reproducer_of_a_passing_option_set_adds_nothing(capsys):
    """An ordinary failure's reproducer names no --oracle, --isolate or PYTHONPATH."""
    code, out = check([f"{MUTANTS}:BiasTwice", "--case", BIASED, "--checks", "differential", "--isolate"], capsys)
    assert code == 1
    [cli], _ = reproducers(out)
    assert cli == f"convspec check {MUTANTS}:BiasTwice --case '{BIASED}' --checks differential"


# -- a command backend past --timeout ------------------------------------------------------------------


def test_command_backend_is_killed_past_timeout_and_reported_timed_out(capsys, tmp_path):
    pids = tmp_path / "pids"
    program = tmp_path / "hang.sh"
    program.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        [ "$1" = "--capabilities" ] && exit 1
        sleep 1000 &
        echo $! >> {pids}
        wait
        """), encoding="utf-8")
    program.chmod(0o755)
    case = BIASED.replace("float64", "float32").replace(" b ", " ")
    started = time.perf_counter()
    code, out = check([f"cmd:{program}", "--case", case, "--checks", "differential", "--timeout", "1"], capsys)
    assert time.perf_counter() - started < 10
    assert code == 1 and "TIMED_OUT conv [differential]" in out, out
    assert "ran past --timeout 1 s on 1 call(s) and was killed" in out
    [cli], _ = reproducers(out)
    assert cli.endswith("--checks differential --timeout 1") and "--isolate" not in cli
    again, out_again = run_printed(cli, capsys)
    assert again == 1 and "TIMED_OUT" in out_again
    for pid in map(int, pids.read_text().split()):  # the program's own children were killed too
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), f"child {pid} of the timed-out program still runs"


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


# -- PYTHONPATH=. for a module found in the current folder ------------------------------------------------

SHIFTED_MODULE = '''
import numpy as np
from convspec.backends import Capabilities, load

_naive = load("naive")


class Shifted:
    """naive, but conv adds 0.01 to every output."""
    name = "shifted"
    capabilities = Capabilities(ops={"conv"}, ranks=frozenset({1}))

    def conv(self, x, w, b, params):
        y = _naive.conv(x, w, b, params)
        return y + np.asarray(0.01, y.dtype)


backend = Shifted()
'''


def _convspec_command(folder: Path) -> Path:
    """A ``convspec`` executable like the installed one: a script whose folder (not the current
    one) is sys.path[0], importing this checkout's convspec after whatever PYTHONPATH adds."""
    script = folder / "convspec"
    script.write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(1, {str(ROOT)!r})\n"
                      "from convspec.cli import main\nsys.exit(main())\n", encoding="utf-8")
    script.chmod(0o755)
    return folder


def test_module_form_reproducer_names_the_pythonpath_it_needed(tmp_path):
    work, bin_dir, elsewhere = tmp_path / "work", tmp_path / "bin", tmp_path / "elsewhere"
    for folder in (work, bin_dir, elsewhere):
        folder.mkdir()
    (work / "shiftmod.py").write_text(SHIFTED_MODULE, encoding="utf-8")
    _convspec_command(bin_dir)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    first = subprocess.run("PYTHONPATH=. convspec check shiftmod:backend --case "
                           f"'{BIASED}' --checks differential --quiet", shell=True, cwd=work, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert first.returncode == 1, first.stdout + first.stderr
    [cli], [snippet] = reproducers(first.stdout)
    assert cli.startswith("PYTHONPATH=. convspec check shiftmod:backend --case")
    again = subprocess.run(cli, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=120,
                           check=False)
    assert again.returncode == 1 and "FAILED conv [differential]" in again.stdout, again.stdout + again.stderr
    without = subprocess.run(cli.removeprefix("PYTHONPATH=. "), shell=True, cwd=work, env=env, capture_output=True,
                             text=True, timeout=120, check=False)
    assert without.returncode == 2 and "no module named 'shiftmod'" in without.stderr  # the prefix is needed
    (elsewhere / "snippet.py").write_text(snippet, encoding="utf-8")  # sys.path[0] is not the current folder
    python = subprocess.run([sys.executable, str(elsewhere / "snippet.py")], cwd=work,
                            env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120,
                            check=False)
    assert "FAILED conv [differential]" in python.stdout, python.stdout + python.stderr


# -- path/to/file.py backends import the modules beside them -----------------------------------------------


def test_file_backend_imports_modules_beside_it(tmp_path, monkeypatch):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "beside_helper.py").write_text("from convspec.backends import load\nNAIVE = load('naive')\n",
                                          encoding="utf-8")
    (lib / "beside_lazy.py").write_text("def conv(x, w, b, p):\n    from beside_helper import NAIVE\n"
                                        "    return NAIVE.conv(x, w, b, p)\n", encoding="utf-8")
    (lib / "beside_backend.py").write_text(textwrap.dedent("""\
        from beside_helper import NAIVE            # at import, as `python beside_backend.py` could
        from convspec.backends import Capabilities


        class Backend:
            name = "beside"
            capabilities = Capabilities(ops={"conv"}, ranks=frozenset({1}))

            def conv(self, x, w, b, params):
                import beside_lazy                 # when called
                return beside_lazy.conv(x, w, b, params)


        backend = Backend()
        """), encoding="utf-8")
    monkeypatch.chdir(tmp_path.parent)
    monkeypatch.setattr(sys, "path", list(sys.path))
    backend = load(f"{lib / 'beside_backend.py'}:backend")
    import convspec

    results = convspec.run_conformance(backend, cases=[BIASED], checks=["differential"])
    assert results.exit_code == 0, results.summary()
