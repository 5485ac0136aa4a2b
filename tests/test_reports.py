"""Reports: the results JSON against its schema, and every format rendered from one results object.

Synthetic results (hand-built, one passing and one failing backend) pin what each format must
show; a small real run of the naive backend through the differential check makes sure
the engine's own results validate and render too. Clauses cited: ERR-BOUND-1 (worst element,
error vs bound, accuracy profile), MAXPOOL-TIE-1, HYGIENE-2 (failure cards), and every clause id
the schema admits.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from convspec.conformance import render
from convspec.conformance.cases import Case
from convspec.conformance.compare import PROFILE_EDGES, Comparison, Worst
from convspec.conformance.results import FAMILIES, STATUSES, BackendRun, CheckResult, Results
from convspec.spec import CLAUSES, OPS

jsonschema = pytest.importorskip("jsonschema")

BINS = len(PROFILE_EDGES) + 1
BOUND_BIN = PROFILE_EDGES.index(0.0)  # the last bin at or below error / bound = 1


# -- synthetic results -----------------------------------------------------------------------------

def _histogram(**bins: int) -> list[int]:
    counts = [0] * BINS
    for index, count in bins.items():
        counts[int(index.lstrip("b"))] = count
    return counts


def _result(backend: str, op: str, status: str, *, clause: str | None = None, case: Case | None = None,
            features: tuple[str, ...] = (), message: str = "", comparisons: list[Comparison] | None = None,
            family: str = "differential", check: str | None = None) -> CheckResult:
    return CheckResult(backend=backend, family=family, check=check or family, op=op,
                       clause=clause or OPS[op].clauses[0], status=status, case=case, features=features,
                       message=message, comparisons=comparisons or [], backend_spec=backend)


CONV_CASE = Case.parse("conv x=1,2,6 w=3,2,3 s=1 p=1:1 d=1 g=1 dtype=float32 data=random seed=1")
STRIDED_CASE = Case.parse("conv x=2,2,9,9 w=4,1,3,3 b s=2,2 p=same_upper d=1,1 g=2 dtype=float32 data=wide seed=5")
POOL_CASE = Case("max_pool", {"input_shape": (1, 2, 6, 6), "kernel_size": (3, 3), "stride": (1, 1),
                              "padding": ((1, 1), (1, 1))}, data="ties", seed=0, label="max-pool-ties-2d")
AVG_CASE = Case.parse("avg_pool x=1,1,5 k=2 s=2 p=0:1 d=1 ceil cip=1 div=3 dtype=float32 data=random seed=3")


def _passing(name: str) -> BackendRun:
    good = Comparison("y", 18, max_ratio=0.02, exact=4, histogram=_histogram(b8=3, b10=6, b12=5))
    wide = Comparison("y", 128, max_ratio=0.3, exact=0, histogram=_histogram(b11=40, b13=60, b15=28),
                      statistics={"count": 128, "k": 9, "sum": 1.5, "bias_limit": math.inf,
                                  "sum_of_squares": 20.0, "variance_limit": 460.8})
    pool = Comparison("y", 72, exact=72)
    indices = Comparison("indices", 72, exact=72)
    return BackendRun(name=name, spec=name, capabilities={"ops": sorted(OPS), "dtypes": ["float32"],
                                                          "unsupported": {"divisor_override": "no override"}},
                      seconds=1.25, backend_seconds=0.5, harness_seconds=0.75, results=[
                          _result(name, "conv", "passed", case=CONV_CASE, features=("padding",), comparisons=[good]),
                          _result(name, "conv", "passed", case=STRIDED_CASE,
                                  features=("bias", "groups", "padding", "same", "same_strided", "stride"),
                                  comparisons=[wide]),
                          _result(name, "max_pool", "passed", case=POOL_CASE, features=("padding",),
                                  comparisons=[pool, indices]),
                          _result(name, "avg_pool", "unsupported", case=AVG_CASE,
                                  features=("ceil_mode", "count_include_pad", "divisor_override", "padding",
                                            "asymmetric_padding", "stride"),
                                  message="divisor_override: no override"),
                          _result(name, "conv", "passed", clause="CONV-GROUPS-1", family="invalid",
                                  check="invalid:groups-not-dividing"),
                      ])


def _failing(name: str) -> BackendRun:
    over = Comparison("y", 18, violations=2, clause="ERR-BOUND-1",
                      rule="|out - ref| <= (alpha*K*u_acc + alpha*u_in + u_out)*mag + tiny", max_ratio=3.5,
                      worst=Worst((0, 1, 2), 1.5, 1.25, 0.25, 0.25 / 3.5), exact=1,
                      histogram=_histogram(b12=5, b14=6, b16=4, b17=1, b18=1))
    tie = Comparison("indices", 72, violations=6, clause="MAXPOOL-TIE-1",
                     rule="the index of the first maximum in row-major window order",
                     worst=Worst((0, 0, 0, 4), 11.0, 9.0, 2.0, 0.0))
    run = _passing(name)
    run.results += [
        _result(name, "conv", "failed", clause="ERR-BOUND-1", case=CONV_CASE, features=("padding",),
                message="y: 2/18 elements break ERR-BOUND-1 <script>alert('x')</script>", comparisons=[over]),
        _result(name, "max_pool", "failed", clause="MAXPOOL-TIE-1", case=POOL_CASE, features=("padding",),
                message="indices: 6/72 elements break MAXPOOL-TIE-1",
                comparisons=[Comparison("y", 72, exact=72), tie]),
        _result(name, "avg_pool", "errored", case=AVG_CASE.with_(params={"divisor_override": None}),
                features=("ceil_mode", "count_include_pad", "padding", "asymmetric_padding", "stride"),
                message="ZeroDivisionError: division by zero (at my_pool.c:12)"),
        _result(name, "conv", "failed", clause="HYGIENE-2", case=CONV_CASE, family="hygiene", features=("padding",),
                message="output dtypes ['y: float64'], expected float32"),
    ]
    return run


def synthetic_results() -> Results:
    """Two backends on the same checks: 'reference-like' passes, 'broken <c>' fails four ways."""
    return Results(backends=[_passing("reference-like"), _failing("broken <c>")],
                   settings={"ops": ["conv", "max_pool", "avg_pool"], "ranks": [1, 2], "seed": 0,
                             "max_examples": 5},
                   environment={"python": "3.11.0", "numpy": "2.4.0", "platform": "Linux-test", "machine": "x86_64",
                                "processor": "x86_64"},
                   created="2026-01-01T00:00:00Z")


def small_real_run() -> Results:
    """The naive backend through the differential check on a few catalogue-style cases."""
    from convspec.backends import load
    from convspec.conformance.invoke import Invoker
    from convspec.conformance.checks.differential import check_differential
    from convspec.conformance.context import CheckContext, Settings

    backend = load("naive")
    ctx = CheckContext(backend, "naive", Invoker(backend), Settings(checks=("differential", "hygiene")))
    caps = backend.capabilities
    run = BackendRun(name=backend.name, spec="naive", capabilities={
        "ops": sorted(caps.ops), "dtypes": sorted(caps.dtypes), "unsupported": dict(caps.unsupported),
        "accumulation": caps.accumulation})
    for descriptor in (
        "conv x=1,2,7 w=3,2,4 s=1 p=same_lower d=1 g=1 dtype=float32 data=random seed=2",
        "conv x=2,4,6,5 w=4,2,3,2 b s=2,1 p=1:0,2:1 d=1,2 g=2 dtype=float32 data=wide seed=3",
        "max_pool x=1,2,6,6 k=3,3 s=1,1 p=1:1,1:1 d=1,1 dtype=float32 data=ties seed=0",
        "avg_pool x=1,3,7 k=3 s=2 p=1:1 d=1 ceil cip=1 dtype=float32 data=random seed=4",
        "conv x=1,1,5 w=1,1,2 s=1 p=0:0 d=1 g=1 dtype=float32 data=nan seed=1",
    ):
        run.results += check_differential(ctx, Case.parse(descriptor))
    return Results(backends=[run], settings={"ops": ["conv", "max_pool", "avg_pool"], "cases": 5})


@pytest.fixture(scope="module")
def synthetic() -> Results:
    return synthetic_results()


@pytest.fixture(scope="module")
def real() -> Results:
    return small_real_run()


def _roundtrip(results: Results) -> Results:
    return Results.from_json(json.loads(render.render_json(results)))


# -- JSON and its schema ---------------------------------------------------------------------------

def test_synthetic_results_json_validates_against_the_schema(synthetic):
    render.validate(json.loads(render.render_json(synthetic)))


def test_real_run_json_validates_against_the_schema(real):
    assert real.backends[0].counts()["passed"] > 0
    render.validate(json.loads(render.render_json(real)))


def test_schema_loads_as_package_data():
    schema = render.load_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["schema_version"]["pattern"].startswith("^1")


def test_schema_enumerations_match_the_code():
    """The schema's enums are the code's tables (tables cannot drift)."""
    defs = render.load_schema()["$defs"]
    assert defs["status"]["enum"] == list(STATUSES)
    assert defs["check_result"]["properties"]["family"]["enum"] == list(FAMILIES)
    assert defs["check_result"]["properties"]["op"]["enum"] == list(OPS)
    histogram = defs["comparison"]["properties"]["histogram"]
    assert histogram["minItems"] == histogram["maxItems"] == BINS
    pattern = re.compile(defs["check_result"]["properties"]["clause"]["pattern"])
    assert all(pattern.match(clause) for clause in CLAUSES)


@pytest.mark.parametrize("path, value", [
    (("backends", 0, "results", 0, "status"), "maybe"),
    (("backends", 0, "results", 0, "comparisons", 0, "histogram"), [1, 2, 3]),
    (("backends", 0, "results", 0, "clause"), "not a clause"),
    (("schema_version",), "2.0"),
    (("backends", 0, "results", 0, "max_ratio"), "NaN-ish"),
], ids=["status", "histogram-length", "clause-id", "major-version", "non-finite-spelling"])
def test_schema_rejects_malformed_results(synthetic, path, value):
    obj = json.loads(render.render_json(synthetic))
    target = obj
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        render.validate(obj)


def test_non_finite_statistics_travel_as_strings(synthetic):
    """JSON has no infinity: the schema's 'inf' spelling, and it reads back as a float."""
    text = render.render_json(synthetic)
    assert "Infinity" not in text
    back = _roundtrip(synthetic)
    statistics = back.backends[0].results[1].comparisons[0].statistics
    assert statistics is not None and float(statistics["bias_limit"]) == math.inf


# -- round trips ---------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["json", "markdown", "html"])
def test_every_format_renders_the_same_from_saved_results(synthetic, fmt):
    """results → JSON → Results.from_json → report is the report of the original results."""
    assert render.render(_roundtrip(synthetic), fmt) == render.render(synthetic, fmt)


@pytest.mark.parametrize("fmt", ["json", "markdown", "html"])
def test_real_run_renders_in_every_format(real, fmt):
    text = render.render(_roundtrip(real), fmt)
    assert "naive" in text


def test_write_report_picks_the_format_from_the_suffix(synthetic, tmp_path):
    paths = [tmp_path / "r.json", tmp_path / "sub" / "r.md", tmp_path / "r.html"]
    for path in paths:
        render.write_report(synthetic, path)
    assert Results.from_json(json.loads(paths[0].read_text())).backends[1].name == "broken <c>"
    assert paths[1].read_text().startswith("## convspec conformance")
    assert paths[2].read_text().startswith("<!DOCTYPE html>")


def test_unknown_report_suffix_names_the_known_ones(synthetic, tmp_path):
    with pytest.raises(ValueError, match=r"unknown suffix '\.pdf'.*\.html.*\.json.*\.md"):
        render.write_report(synthetic, tmp_path / "report.pdf")
    assert not (tmp_path / "report.pdf").exists()


def test_merged_runs_render_every_backend(synthetic, real):
    merged = Results.merge([synthetic, real])
    text = render.render_html(merged)
    for name in ("reference-like", "broken &lt;c&gt;", "naive"):
        assert name in text
    render.validate(json.loads(render.render_json(merged)))


# -- the matrix and the profile ---------------------------------------------------------------------

def test_matrix_counts_results_per_op_clause_and_feature(synthetic):
    rows, cells = render.matrix(synthetic)
    row = {(r.op, r.kind, r.name): r for r in rows}
    conv_total = cells[(row[("conv", "op", "conv")], "broken <c>")]
    assert conv_total == Counter({"passed": 3, "failed": 2})
    assert cells[(row[("conv", "clause", "ERR-BOUND-1")], "broken <c>")] == Counter({"passed": 2, "failed": 1})
    assert cells[(row[("max_pool", "clause", "MAXPOOL-TIE-1")], "broken <c>")] == Counter({"passed": 1, "failed": 1})
    assert cells[(row[("max_pool", "clause", "MAXPOOL-TIE-1")], "reference-like")] == Counter({"passed": 1})
    assert cells[(row[("avg_pool", "feature", "divisor_override")], "reference-like")] == Counter({"unsupported": 1})
    assert ("conv", "feature", "(plain)") not in row  # every conv case here uses a feature
    # rows follow the op table, op total first, then clauses, then features
    assert [r.op for r in rows][0] == "conv" and rows[0].kind == "op"
    kinds = [r.kind for r in rows if r.op == "conv"]
    assert kinds == sorted(kinds, key=["op", "clause", "feature"].index)


def test_accuracy_profile_sums_every_comparison(synthetic):
    """ERR-BOUND-1: the profile is the sum of the comparisons' histograms of log10(error / bound)."""
    profile = render.accuracy_profile(synthetic.backends[1])
    expected = np.zeros(BINS, int)
    exact = 0
    for result in synthetic.backends[1].results:
        for comparison in result.comparisons:
            expected += comparison.histogram
            exact += comparison.exact
    assert profile.histogram == expected.tolist()
    assert profile.exact == exact
    assert profile.max_ratio == 3.5
    assert profile.beyond == 2  # the two elements past ratio 1
    assert profile.per_op["conv"][1] == 3.5


# -- Markdown ---------------------------------------------------------------------------------------

def test_markdown_has_the_summary_the_matrix_and_folded_failures(synthetic):
    text = render.render_markdown(synthetic)
    assert "❌ non-conformance found" in text
    assert "| backend | verdict |" in text
    assert "| op | clause | reference-like | broken &lt;c&gt; |" in text
    assert "| **max_pool** | all | ✅ 1 | ❌ 1/2 |" in text
    assert "|  | `MAXPOOL-TIE-1` | ✅ 1 | ❌ 1/2 |" in text
    assert text.count("<details><summary>❌") == 4
    assert "<details><summary>Op × feature</summary>" in text
    assert "convspec check 'broken <c>' --case 'max_pool x=1,2,6,6" in text  # in a ```sh block: raw text
    assert "worst at [0, 0, 0, 4]: got 11, expected 9" in text  # indices as integers
    assert "<script>" not in text.split("```")[0]


def test_markdown_stays_short_enough_for_a_pull_request_comment(synthetic):
    many = synthetic_results()
    broken = many.backends[1]
    broken.results += [broken.results[-4]] * 400
    text = render.render_markdown(many)
    assert len(text) < 65_536
    assert text.count("<details><summary>❌") == render.markdown.MAX_MARKDOWN_FAILURES
    assert f"and {404 - render.markdown.MAX_MARKDOWN_FAILURES} more" in text


def test_markdown_of_a_conformant_run_says_so(real):
    passing = Results(backends=[_passing("ok")], created="2026-01-01T00:00:00Z")
    text = render.render_markdown(passing)
    assert "✅ all backends conform" in text and "Failures" not in text


# -- HTML -----------------------------------------------------------------------------------------------

VOID = {"meta", "br", "input", "col", "img", "hr", "link"}


class _Structure(HTMLParser):
    """Checks tags are balanced; collects classes and the tags that could fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.classes: Counter[str] = Counter()
        self.fetching: list[str] = []
        self.tags: Counter[str] = Counter()

    def handle_starttag(self, tag, attrs):
        self.tags[tag] += 1
        attributes = dict(attrs)
        for name in (attributes.get("class") or "").split():
            self.classes[name] += 1
        for key in ("src", "href"):
            value = attributes.get(key)
            if value is not None and not value.startswith("#"):
                self.fetching.append(f"<{tag} {key}={value}>")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags[tag] += 1
        for name in (dict(attrs).get("class") or "").split():
            self.classes[name] += 1

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def _structure(text: str) -> _Structure:
    parser = _Structure()
    parser.feed(text)
    parser.close()
    return parser


def test_html_is_well_formed_and_self_contained(synthetic):
    text = render.render_html(synthetic)
    parsed = _structure(text)
    assert parsed.errors == [] and parsed.stack == []
    assert parsed.fetching == []  # no external asset: no src, no href but in-page anchors
    assert parsed.tags["script"] == 0 and parsed.tags["link"] == 0
    assert not re.search(r"url\(|@import|https?://(?!www\.w3\.org/2000/svg)", text)


def test_html_has_matrix_failure_cards_and_accuracy_plots(synthetic):
    text = render.render_html(synthetic)
    parsed = _structure(text)
    assert parsed.classes["matrix"] == 1
    assert parsed.classes["failure"] == 4
    assert parsed.classes["accuracy-plot"] == 2  # one per backend
    assert parsed.classes["cell"] > 0 and parsed.classes["fail"] > 0
    assert 'title="broken &lt;c&gt; · max_pool · MAXPOOL-TIE-1: 1 passed, 1 failed">✗ 1/2</td>' in text


def test_failure_card_shows_clause_case_worst_element_and_reproducers(synthetic):
    """ERR-BOUND-1: the card gives error, bound and error / bound of the worst element."""
    text = render.render_html(synthetic)
    card = text[text.index('<div class="failure" id="failure-1">'):text.index('id="failure-2"')]
    assert "ERR-BOUND-1: " + render.common.esc(CLAUSES["ERR-BOUND-1"]) in card
    assert f"<code>{CONV_CASE.descriptor}</code>" in card
    assert "<td>[0, 1, 2]</td><td>1.5</td><td>1.25</td><td>0.25</td><td>0.0714</td><td>3.5</td>" in card
    assert "2 / 18 (11.1%)" in card
    repro = CheckResult.from_json(synthetic.backends[1].results[5].to_json(), "broken <c>").reproducer()
    assert f'<pre class="cli">{render.common.esc(repro["cli"])}</pre>' in card
    assert f"<pre>{render.common.esc(repro['python'])}</pre>" in card


def test_html_escapes_every_text(synthetic):
    text = render.render_html(synthetic)
    assert "<script>" not in text and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in text
    assert "broken <c>" not in text


def test_errored_result_gets_a_card_without_comparisons(synthetic):
    text = render.render_html(synthetic)
    assert "ERRORED · broken &lt;c&gt; · avg_pool" in text
    assert "ZeroDivisionError: division by zero" in text


def test_accuracy_plot_marks_the_bound_and_counts_exact_matches(synthetic):
    profile = render.accuracy_profile(synthetic.backends[1])
    svg = render.html.profile_svg(profile, title="t")
    parsed = _structure(svg)
    assert parsed.errors == []
    assert parsed.tags["rect"] == BINS + 1  # every bin and the exact bar
    assert f"{profile.exact:,} elements equal to the reference" in svg
    assert "within bound" in svg and "beyond (fails)" in svg
    red_bars = re.findall(r'<rect[^>]*fill="#cf222e"', svg)
    assert len(red_bars) == BINS - BOUND_BIN - 1  # the bins past the bound are red


def test_coverage_lists_catalogue_classes_and_unexercised_features(synthetic):
    text = render.render_html(synthetic)
    coverage = text[text.index('<section id="coverage">'):text.index('<section id="environment">')]
    assert "max-pool-ties-2d" in coverage or "Catalogue equivalence classes" in coverage
    assert '<tr class="gap"><td title="conv_transpose output_padding > 0 [CONVT-PARAM-1]"><code>output_padding' \
           in coverage.replace("&gt;", ">")
    assert "Generated cases (hypothesis) per backend" in coverage


def test_environment_and_settings_are_shown(synthetic):
    text = render.render_html(synthetic)
    section = text[text.index('<section id="environment">'):]
    assert "Linux-test" in section and "max_examples" in section


def test_report_file_of_a_real_run_is_html(real, tmp_path):
    path = tmp_path / "real.html"
    render.write_report(real, path)
    parsed = _structure(path.read_text(encoding="utf-8"))
    assert parsed.errors == [] and parsed.classes["matrix"] == 1 and parsed.classes["accuracy-plot"] == 1


def test_results_module_documents_the_schema_file():
    assert (Path(render.__file__).parent.parent / "results_schema.json").is_file()


def test_results_schema_page_documents_every_field():
    """docs/results-schema.md names every property of the schema."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "results-schema.md").read_text(encoding="utf-8")
    schema = render.load_schema()
    names = set(schema["properties"])
    for definition in schema["$defs"].values():
        names |= set(definition.get("properties", {}))
    missing = sorted(name for name in names if f"`{name}`" not in page)
    assert missing == []


def test_terminal_summary_keeps_whole_unsupported_reasons():
    """A reason is shown whole ('avg_pool:dilation: torch … argument', not cut at its first colon),
    counted, the eight most common first."""
    from convspec.conformance.render.terminal import terminal_summary

    run = _passing("p")
    run.results = [_result("p", "avg_pool", "unsupported", case=AVG_CASE,
                           message="avg_pool:dilation: no dilation argument in avg_pool2d")] * 3
    run.results += [_result("p", "conv", "unsupported", case=CONV_CASE, message=f"reason {i}") for i in range(9)]
    text = terminal_summary(Results(backends=[run], settings={}, environment={}))
    line = next(line for line in text.splitlines() if "unsupported (declared by the backend)" in line)
    assert line.split(": ", 1)[1].startswith("avg_pool:dilation: no dilation argument in avg_pool2d ×3; reason 0 ×1")
    assert line.endswith("… 2 more reasons (see --report)")


def test_accumulation_per_dtype_is_shown_in_words():
    run = _passing("widening")
    run.capabilities = {**run.capabilities, "accumulation": {"float16": "float32", "bfloat16": "float32"}}
    text = render.render_html(Results(backends=[run], settings={}, environment={}))
    assert text.count("float16 in float32, bfloat16 in float32, the others in themselves") == 2  # card and details


def test_compact_json_keeps_what_every_report_reads(real):
    """Passed results are compact unless asked (--full-results): smaller, schema-valid, and every
    report rendered from it equals the report rendered from the full JSON; failures stay whole."""
    compact, full = render.render_json(real), render.render_json(real, full=True)
    assert len(compact) * 2 < len(full)
    render.validate(json.loads(compact))
    from_compact = Results.from_json(json.loads(compact))
    from_full = Results.from_json(json.loads(full))
    for fmt in ("markdown", "html"):
        assert render.render(from_compact, fmt) == render.render(from_full, fmt)
    passed = next(r for r in json.loads(compact)["backends"][0]["results"] if r["status"] == "passed")
    assert "clause_text" not in passed and set(passed["case"]) == {"descriptor", "label"}


def test_cli_full_results(tmp_path):
    from convspec import cli

    paths = [tmp_path / "c.json", tmp_path / "f.json"]
    for path, extra in zip(paths, ([], ["--full-results"])):
        assert cli.main(["check", "naive", "--ops", "max_pool", "--ranks", "1", "--max-examples", "2", "--quiet",
                         "--jobs", "1", "--report", str(path), *extra]) == 0
    compact, full = (json.loads(path.read_text()) for path in paths)
    assert "clause_text" in full["backends"][0]["results"][0]
    assert all("clause_text" not in r for r in compact["backends"][0]["results"] if r["status"] == "passed")
