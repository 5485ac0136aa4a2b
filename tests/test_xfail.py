"""Expected-failures files (``--xfail FILE``, ``run_conformance(xfail=...)``,
``--convspec-xfail``): convspec.conformance.xfail.

A matching non-conformance is a *known failure* (shown with its reason, not counted); an entry
whose scope ran without that failure *unexpectedly passed* (a warning; a failure when strict);
an entry never hides a failure outside its scope; a malformed file is one line naming the file,
the entry and the key. The shipped ``known-failures/torch.toml`` records the oneDNN bfloat16 conv3d
bug, reproduced here by a torch wrapper that returns that bug's wrong answer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from convspec.backends import Capabilities, load
from convspec.cli import main
from convspec.conformance import Results, run_conformance
from convspec.conformance.render import render_html, render_markdown, validate
from convspec.conformance.xfail import XfailEntry, XfailFileError, apply_xfail, load_xfail

ROOT = Path(__file__).resolve().parents[1]
TORCH_FILE = ROOT / "known-failures" / "torch.toml"

STRIDED = "conv x=1,2,7 w=3,2,3 s=2 p=1:1 d=1 g=1 dtype=float64 data=random seed=1"
DILATED = "conv x=1,2,7 w=3,2,3 s=1 p=0:0 d=2 g=1 dtype=float64 data=random seed=2"
PLAIN = "conv x=1,2,6 w=3,2,3 s=1 p=0:0 d=1 g=1 dtype=float64 data=random seed=3"
CASES = [STRIDED, DILATED, PLAIN]


class TwoBugs:
    """naive, but conv is off by one whenever stride > 1 or (when ``dilation_bug``) dilation > 1."""

    def __init__(self, dilation_bug: bool = True) -> None:
        self._naive = load("naive")
        self.name = "twobugs"
        self.capabilities = Capabilities(ops={"conv"})
        self.dilation_bug = dilation_bug

    def conv(self, x, w, b, params):
        y = self._naive.conv(x, w, b, params)
        if max(params.stride) > 1 or (self.dilation_bug and max(params.dilation) > 1):
            y = y + 1.0
        return y


def stride_entry(**changes) -> XfailEntry:
    fields = {"backend": ("twobugs",), "op": ("conv",), "features": ("stride",),
              "reason": "strided conv off by one (upstream #1)", "link": "https://example.org/1", "source": "t entry 1"}
    return XfailEntry(**{**fields, **changes})


def run(backend, entries=None, xfail=None) -> Results:
    return run_conformance(backend, cases=CASES, checks=["differential"],
                           xfail=xfail if xfail is not None else entries)


def statuses(results: Results) -> dict[str, str]:
    return {r.case.descriptor: r.status for r in results.all_results() if r.family == "differential"}


# -- known failures -----------------------------------------------------------------------------------


def test_without_an_entry_both_bugs_fail():
    results = run(TwoBugs())
    assert statuses(results) == {STRIDED: "failed", DILATED: "failed", PLAIN: "passed"}
    assert results.exit_code == 1


def test_a_matching_failure_is_a_known_failure_with_its_reason():
    results = run(TwoBugs(dilation_bug=False), [stride_entry()])
    assert statuses(results) == {STRIDED: "known_failure", DILATED: "passed", PLAIN: "passed"}
    assert results.exit_code == 0 and results.conformant
    known = results.known_failures()[0]
    assert known.expected == {"reason": "strided conv off by one (upstream #1)", "link": "https://example.org/1",
                              "strict": False, "status": "failed", "source": "t entry 1"}
    summary = results.summary()
    assert "1 known failure" in summary
    assert "known failure ×1 [t entry 1]: strided conv off by one (upstream #1) (https://example.org/1)" in summary
    assert STRIDED in summary and "NON-CONFORMANT" not in summary
    assert "apart from 1 known failure" in summary
    outcome = results.backends[0].expected_failures
    assert [(e["outcome"], e["matched"], e["in_scope"]) for e in outcome] == [("known failure", 1, 1)]


def test_an_entry_never_hides_a_failure_outside_its_scope():
    results = run(TwoBugs(), [stride_entry()])
    assert statuses(results) == {STRIDED: "known_failure", DILATED: "failed", PLAIN: "passed"}
    assert results.exit_code == 1
    assert "FAILED conv [differential]" in results.summary()


@pytest.mark.parametrize("changes, matches", [
    pytest.param({}, True, id="all-keys"),
    pytest.param({"backend": ("other", "twobugs")}, True, id="backend-list-any-of"),
    pytest.param({"backend": ("other",)}, False, id="other-backend"),
    pytest.param({"op": ("conv_backward",)}, False, id="other-op"),
    pytest.param({"clause": ("ERR-BOUND-1",)}, True, id="clause"),
    pytest.param({"clause": ("CONV-SHAPE-1",)}, False, id="other-clause"),
    pytest.param({"features": ("stride", "padding")}, True, id="features-all-used"),
    pytest.param({"features": ("stride", "groups")}, False, id="feature-not-used"),
    pytest.param({"dtype": ("float64",)}, True, id="dtype"),
    pytest.param({"dtype": ("float32", "bfloat16")}, False, id="other-dtype"),
    pytest.param({"rank": (1,)}, True, id="rank"),
    pytest.param({"rank": (2, 3)}, False, id="other-rank"),
])
def test_every_key_narrows_the_match(changes, matches):
    results = run(TwoBugs(dilation_bug=False), [stride_entry(**changes)])
    assert statuses(results)[STRIDED] == ("known_failure" if matches else "failed")


# -- unexpected passes ----------------------------------------------------------------------------------


def test_an_entry_whose_scope_passed_is_a_visible_harmless_warning():
    results = run(load("naive"), [stride_entry(backend=("naive",))])
    assert results.exit_code == 0 and results.backends[0].verdict == "conformant"
    [entry] = results.backends[0].unexpected_passes
    assert entry["in_scope"] == 1 and entry["matched"] == 0
    assert "unexpectedly passed (a warning) [t entry 1]: 1 result(s) in its scope (backend=naive op=conv " \
           "features=stride) ran, none failed: strided conv off by one" in results.summary()


def test_a_strict_entry_that_passed_is_a_failure():
    results = run(load("naive"), [stride_entry(backend=("naive",), strict=True)])
    assert results.exit_code == 1 and results.backends[0].verdict == "non-conformant"
    assert "unexpectedly passed (FAILED, strict)" in results.summary()


def test_an_entry_whose_scope_did_not_run_is_silent():
    results = run(load("naive"), [stride_entry(backend=("naive",), op=("max_pool",), features=None)])
    assert results.exit_code == 0
    assert [e["outcome"] for e in results.backends[0].expected_failures] == ["not run"]
    assert "unexpectedly" not in results.summary()


def test_entries_for_another_backend_are_not_listed():
    results = run(load("naive"), [stride_entry()])
    assert results.backends[0].expected_failures == []


# -- reports ---------------------------------------------------------------------------------------------


def test_known_failures_and_unexpected_passes_in_every_report():
    results = run_conformance([TwoBugs(dilation_bug=False), load("naive")], cases=CASES, checks=["differential"],
                              xfail=[stride_entry(), stride_entry(backend=("naive",), reason="naive bug, fixed")])
    obj = json.loads(results.dumps())
    validate(obj)  # the schema knows the new status and fields
    again = Results.from_json(obj)
    assert [r.status for r in again.known_failures()] == ["known_failure"]
    assert again.known_failures()[0].expected["reason"] == "strided conv off by one (upstream #1)"
    assert again.backends[1].unexpected_passes[0]["reason"] == "naive bug, fixed"
    assert again.summary() == results.summary()
    markdown, page = render_markdown(again), render_html(again)
    for text in (markdown, page):
        assert "known failure" in text and "strided conv off by one (upstream #1)" in text
        assert "unexpectedly passed" in text and "naive bug, fixed" in text
        assert STRIDED in text
    assert "apart from 1 known failure" in markdown
    known_json = next(r for r in obj["backends"][0]["results"] if r["status"] == "known_failure")
    assert known_json["reproducer"]["cli"].startswith("convspec check twobugs --case")


# -- the file ----------------------------------------------------------------------------------------------


def write(tmp_path: Path, text: str, name: str = "xfail.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_toml_and_json_files_give_the_same_entries(tmp_path):
    toml = write(tmp_path, '[[xfail]]\nbackend = "twobugs"\nop = ["conv"]\nfeatures = "stride"\nrank = 1\n'
                           'reason = "why"\nlink = "https://example.org"\nstrict = true\n')
    js = write(tmp_path, json.dumps({"xfail": [{"backend": "twobugs", "op": ["conv"], "features": "stride",
                                                "rank": 1, "reason": "why", "link": "https://example.org",
                                                "strict": True}]}), "xfail.json")
    a, b = load_xfail(toml), load_xfail(js)
    assert a[0].source == f"{toml} entry 1" and b[0].source == f"{js} entry 1"
    assert [(e.backend, e.op, e.features, e.rank, e.reason, e.link, e.strict) for e in a] == \
        [(e.backend, e.op, e.features, e.rank, e.reason, e.link, e.strict) for e in b] == \
        [(("twobugs",), ("conv",), ("stride",), (1,), "why", "https://example.org", True)]


@pytest.mark.parametrize("text, message", [
    pytest.param('[[xfail]]\nop = "conv"\n', "entry 1: key 'reason' is required", id="no-reason"),
    pytest.param('[[xfail]]\nop = "conv"\nreason = " "\n', "entry 1: key 'reason' is required", id="blank-reason"),
    pytest.param('[[xfail]]\nreason = "r"\n', "entry 1: no match key", id="no-match-key"),
    pytest.param('[[xfail]]\nop = "conv"\nreason = "r"\n[[xfail]]\nfeature = "stride"\nreason = "r"\n',
                 "entry 2: unknown key 'feature' (did you mean 'features'?)", id="unknown-key"),
    pytest.param('[[xfail]]\nop = "conv2d"\nreason = "r"\n', "entry 1: key 'op': 'conv2d' is not one of conv,",
                 id="bad-op"),
    pytest.param('[[xfail]]\ndtype = "bf16"\nreason = "r"\n', "key 'dtype': 'bf16' is not one of float16",
                 id="bad-dtype"),
    pytest.param('[[xfail]]\nclause = "ERR-9"\nreason = "r"\n', "key 'clause': 'ERR-9' is not one of", id="bad-clause"),
    pytest.param('[[xfail]]\nfeatures = ["strides"]\nreason = "r"\n', "key 'features': 'strides' is not one of",
                 id="bad-feature"),
    pytest.param('[[xfail]]\nrank = 0\nreason = "r"\n', "key 'rank': 0 is not a spatial rank", id="bad-rank"),
    pytest.param('[[xfail]]\nbackend = []\nreason = "r"\n', "key 'backend': an empty list matches nothing",
                 id="empty-list"),
    pytest.param('[[xfail]]\nbackend = 3\nreason = "r"\n', "key 'backend': 3 is not a non-empty string",
                 id="backend-not-str"),
    pytest.param('[[xfail]]\nop = "conv"\nreason = "r"\nstrict = "yes"\n', "key 'strict': 'yes' is not true or false",
                 id="strict-not-bool"),
    pytest.param('[[xfail]]\nop = "conv"\nreason = "r"\nlink = 1\n', "key 'link': 1 is not a string", id="bad-link"),
    pytest.param('[[xfail]\nop = "conv"\n', "not valid TOML", id="not-toml"),
    pytest.param('skip = true\n', "expected only [[xfail]] entries at the top level, found key 'skip'",
                 id="top-level-key"),
    pytest.param('xfail = "all"\n', "'xfail' must be a list of entries", id="xfail-not-list"),
])
def test_a_malformed_file_is_one_line_naming_file_entry_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(XfailFileError) as caught:
        load_xfail(path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_names_it(tmp_path):
    with pytest.raises(XfailFileError, match=r"nope\.toml.*cannot read it"):
        load_xfail(tmp_path / "nope.toml")


def test_cli_applies_the_file_and_rejects_a_bad_one(tmp_path, capsys):
    good = write(tmp_path, '[[xfail]]\nbackend = "naive"\nop = "conv"\nfeatures = "stride"\nreason = "r1"\n')
    assert main(["check", "naive", "--case", STRIDED, "--checks", "differential", "--xfail", str(good), "--quiet"]) == 0
    assert "unexpectedly passed (a warning)" in capsys.readouterr().out
    bad = write(tmp_path, '[[xfail]]\nop = "conv"\n', "bad.toml")
    assert main(["check", "naive", "--case", STRIDED, "--xfail", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"convspec: error: {bad} entry 1: key 'reason' is required: a non-empty string saying why it fails"


# -- the shipped file: the oneDNN bfloat16 conv3d bug -------------------------------------------------------

AMX_CASE = "conv x=2,1,2,4,3 w=1,1,1,2,3 s=1,1,2 p=0:0,0:0,0:0 d=1,1,1 g=1 dtype=bfloat16 data=impulse seed=0"


class OneDnnAmxBug:
    """The torch backend as it behaves on an AMX CPU: bfloat16 conv3d with N=2 and a stride of 2 in
    the last dim returns a result 0.6 off (scaled by 1.6), as oneDNN did there."""

    def __init__(self) -> None:
        self._torch = load("torch")
        self.name = "torch"
        self.capabilities = self._torch.capabilities

    def conv(self, x, w, b, params):
        y = self._torch.conv(x, w, b, params)
        if x.dtype.name == "bfloat16" and params.rank == 3 and x.shape[0] == 2 and params.stride[-1] == 2:
            y = (np.asarray(y, np.float32) * 1.6).astype(y.dtype)
        return y


def test_the_shipped_torch_file_loads():
    [entry] = load_xfail(TORCH_FILE)
    assert (entry.backend, entry.op, entry.dtype, entry.rank, entry.features, entry.strict) == \
        (("torch",), ("conv",), ("bfloat16",), (3,), ("stride",), False)
    assert "oneDNN" in entry.reason and "mkldnn.enabled=False" in entry.reason


def test_the_shipped_torch_file_turns_the_amx_bug_into_a_known_failure():
    pytest.importorskip("torch")
    results = run_conformance(OneDnnAmxBug(), cases=[AMX_CASE], checks=["differential"])
    assert [r.status for r in results.all_results() if r.family == "differential"] == ["failed"]
    results = apply_xfail(results, load_xfail(TORCH_FILE))
    assert [r.status for r in results.all_results() if r.family == "differential"] == ["known_failure"]
    assert results.exit_code == 0 and "known failure ×1" in results.summary()


def test_the_shipped_torch_file_on_a_cpu_without_the_bug_is_an_unexpected_pass(capsys):
    pytest.importorskip("torch")
    import torch

    with torch.backends.mkldnn.flags(enabled=False):  # correct everywhere, as on a CPU without AMX
        code = main(["check", "torch", "--case", AMX_CASE, "--checks", "differential", "--xfail", str(TORCH_FILE),
                     "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    assert "torch: CONFORMANT" in out and "unexpectedly passed (a warning)" in out


# -- the pytest plugin ------------------------------------------------------------------------------------

TWOBUGS_FILE = '''
import numpy as np
from convspec.backends import Capabilities, load

_naive = load("naive")


class StrideBug:
    name = "stridebug"
    capabilities = Capabilities(ops={"conv"}, ranks=frozenset({1}))

    def conv(self, x, w, b, params):
        y = _naive.conv(x, w, b, params)
        return y + 1.0 if max(params.stride) > 1 else y


backend = StrideBug()
'''


def _pytest(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pytest", "-q", "-rxXf", "-p", "no:cacheprovider", "--convspec-max-examples", "3",
               "--convspec-backend", "stridebug.py:backend", "--convspec-checks", "differential", *args]
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("strict, code, outcome", [
    pytest.param("false", 0, "XPASS", id="not-strict"),
    pytest.param("true", 1, "[XPASS(strict)]", id="strict"),
])
def test_pytest_plugin_known_failure_is_xfail_and_unexpected_pass_is_xpass(tmp_path, strict, code, outcome):
    (tmp_path / "stridebug.py").write_text(TWOBUGS_FILE, encoding="utf-8")
    (tmp_path / "x.toml").write_text(
        f'[[xfail]]\nbackend = "stridebug"\nfeatures = "stride"\nreason = "strided conv off by one"\n'
        f'[[xfail]]\nbackend = "stridebug"\nclause = "CONV-DEF-1"\nreason = "groups were broken once"\n'
        f'strict = {strict}\n', encoding="utf-8")
    done = _pytest(tmp_path, "--convspec-xfail", "x.toml")
    assert done.returncode == code, done.stdout + done.stderr
    assert "XFAIL" in done.stdout and "strided conv off by one" in done.stdout
    assert outcome in done.stdout and "groups were broken once" in done.stdout
