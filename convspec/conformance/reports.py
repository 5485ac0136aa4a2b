"""Reports rendered from a :class:`~convspec.conformance.results.Results`: JSON, Markdown, HTML.

* **JSON** — the results object itself (schema ``results_schema.json``, documented in
  ``docs/results-schema.md``); ``convspec report`` reads it back and merges runs.
* **Markdown** — the verdict per backend and the op × clause matrix, short enough for a
  pull-request comment; the feature rows and each failure folded in ``<details>``.
* **HTML** — one self-contained page (inline CSS and SVG, no script, no network): verdicts, the
  op × clause/feature matrix, a card per failure with its reproducers, the accuracy profile
  (distribution of error / bound over every compared element), coverage by equivalence class and
  feature, environment and settings.

* **Speed** — ``convspec bench --json`` output (format ``convspec-bench``, described in
  :mod:`convspec.bench`) shown beside the results: a Speed section in HTML and Markdown, or a page
  of its own (:func:`render_speed`).

``write_report(results, path, bench=...)`` picks the format from the suffix. Results carry structure only
this module and :mod:`convspec.conformance.report` (terminal) turn it into prose.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..spec import CLAUSES, OPS
from ..spec.features import FEATURES, PARTIAL_FEATURES
from .compare import PROFILE_EDGES
from .results import NONCONFORMING, NOT_APPLICABLE, STATUSES, BackendRun, CheckResult, FailureCluster, Results, status_label

__all__ = [
    "FORMATS",
    "accuracy_profile",
    "check_bench",
    "load_schema",
    "matrix",
    "render",
    "render_html",
    "render_json",
    "render_markdown",
    "render_speed",
    "report_format",
    "validate",
    "write_report",
]

#: file suffix -> format name
FORMATS: dict[str, str] = {".json": "json", ".md": "markdown", ".markdown": "markdown", ".html": "html",
                           ".htm": "html"}

#: Failure cards per backend in the HTML report, failures per report in Markdown.
MAX_HTML_FAILURES = 200
MAX_MARKDOWN_FAILURES = 15
#: GitHub refuses comments over 65536 characters.
MARKDOWN_BUDGET = 60_000


# -- choosing and writing ---------------------------------------------------------------------------

def report_format(path: str | os.PathLike[str]) -> str:
    """The format of a report file from its suffix; ValueError names the suffixes known.

    >>> report_format("out/report.HTML")
    'html'
    """
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"report file {str(path)!r}: unknown suffix {suffix!r}; use one of "
                         f"{', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def render(results: Results | None, fmt: str, bench: Sequence[Mapping[str, Any]] = ()) -> str:
    """The report text in format ``fmt`` ("json", "markdown" or "html"), with a Speed section for
    each ``convspec bench`` JSON object in ``bench``; ``results`` None gives the speed page alone.
    ValueError for a JSON report with bench results (the results schema has no place for them)."""
    if fmt not in ("json", "markdown", "html"):
        raise ValueError(f"fmt={fmt!r} is not one of ['html', 'json', 'markdown']")
    for obj in bench:
        check_bench(obj)
    if fmt == "json":
        if bench or results is None:
            raise ValueError("a .json report holds conformance results only; write bench results "
                             "into an .html or .md report")
        return render_json(results)
    if results is None:
        if not bench:
            raise ValueError("nothing to report: no conformance results and no bench results")
        return render_speed(bench, fmt)
    if fmt == "markdown":
        return render_markdown(results) + "".join("\n" + _speed_md(obj) for obj in bench)
    return render_html(results, bench)


def write_report(results: Results | None, path: str | os.PathLike[str],
                 bench: Sequence[Mapping[str, Any]] = ()) -> None:
    """Write ``results`` (and ``bench`` speed results) to ``path`` as JSON, Markdown or HTML,
    chosen by the suffix (.json, .md, .html); parent directories are created."""
    text = render(results, report_format(path), bench)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")


# -- JSON -------------------------------------------------------------------------------------------

def _finite_json(value: Any) -> Any:
    """Non-finite floats as the strings of the schema ('inf', '-inf', 'nan'), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, Mapping):
        return {key: _finite_json(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    return value


def render_json(results: Results) -> str:
    """``results`` as JSON (schema version ``SCHEMA_VERSION``), what ``Results.from_json`` reads."""
    return json.dumps(_finite_json(results.to_json()), indent=1, allow_nan=False) + "\n"


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema of results (``convspec/conformance/results_schema.json``)."""
    from importlib import resources

    text = resources.files("convspec.conformance").joinpath("results_schema.json").read_text(encoding="utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def validate(obj: Mapping[str, Any]) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``obj`` (parsed results JSON) meets the schema.

    Needs the ``jsonschema`` package (in the ``test`` extra).
    """
    import jsonschema

    jsonschema.Draft202012Validator(load_schema()).validate(obj)


# -- the matrix ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One row of the matrix: an op, and either its total, one clause or one feature."""

    op: str
    kind: str  # "op", "clause", "feature"
    name: str

    @property
    def title(self) -> str:
        if self.kind == "op":
            return self.op
        if self.kind == "clause":
            return CLAUSES.get(self.name, "")
        return FEATURES.get(self.name, "the plainest form: no feature" if self.name == PLAIN else "")


PLAIN = "(plain)"


def _op_order(op: str) -> int:
    return list(OPS).index(op) if op in OPS else len(OPS)


def _clause_order(clause: str) -> int:
    return list(CLAUSES).index(clause) if clause in CLAUSES else len(CLAUSES)


def _feature_order(feature: str) -> int:
    return -1 if feature == PLAIN else list(FEATURES).index(feature) if feature in FEATURES else len(FEATURES)


def matrix(results: Results) -> tuple[list[Row], dict[tuple[Row, str], Counter[str]]]:
    """Rows op × (total, clause, feature) and status counts per (row, backend name).

    A result counts in its op's total, under its clause (a passed comparison with the reference
    under every clause it was held to, see :func:`_clauses_met`), and under every feature its
    case uses (a case with none under ``(plain)``); results without a case (invalid
    configurations) count in the total and under their clause only.
    """
    cells: dict[tuple[Row, str], Counter[str]] = {}
    rows: set[Row] = set()
    for run in results.backends:
        for result in run.results:
            keys = [Row(result.op, "op", result.op)]
            keys += [Row(result.op, "clause", clause) for clause in _clauses_met(result)]
            if result.case is not None:
                keys += [Row(result.op, "feature", f) for f in (result.features or (PLAIN,))]
            for row in keys:
                rows.add(row)
                cells.setdefault((row, run.name), Counter())[result.status] += 1
    kind_order = {"op": 0, "clause": 1, "feature": 2}
    ordered = sorted(rows, key=lambda r: (_op_order(r.op), r.op, kind_order[r.kind],
                                          _clause_order(r.name) if r.kind == "clause" else _feature_order(r.name),
                                          r.name))
    return ordered, cells


def _clauses_met(result: CheckResult) -> tuple[str, ...]:
    """The clauses a result speaks for: its own, and for a passed comparison against the
    reference every clause of the op's definition and of the error model it was held to."""
    if result.status != "passed" or result.family not in ("differential", "special", "oracle") \
            or result.op not in OPS:
        return (result.clause,)
    info = OPS[result.op]
    implied = info.clauses + (("ERR-BOUND-1",) if info.linear else ("ERR-EXACT-1",))
    if result.family == "special":
        implied += ("ERR-SPECIAL-1",)
    return tuple(dict.fromkeys((result.clause, *implied)))


def _cell_state(counts: Counter[str] | None) -> str:
    if not counts:
        return "none"
    if any(counts[s] for s in NONCONFORMING):
        return "fail"
    if counts["known_failure"]:
        return "known"
    if counts["passed"]:
        return "pass"
    if counts["validated_by_adapter"]:
        return "adapter"
    return "unsupported"


def _na(counts: Counter[str]) -> int:
    """Checks that did not run: declared unsupported, or raised NotImplementedError / Unsupported."""
    return sum(counts[s] for s in NOT_APPLICABLE)


def _bad(counts: Counter[str]) -> int:
    return sum(counts[s] for s in NONCONFORMING)


def _ran(counts: Counter[str]) -> int:
    return counts["passed"] + _bad(counts)


def _counts_title(counts: Counter[str]) -> str:
    return ", ".join(f"{counts[s]} {status_label(s)}" for s in STATUSES if counts[s])


# -- the accuracy profile -----------------------------------------------------------------------------

@dataclass
class Profile:
    """error / bound over every element compared under the error model, summed over results.

    ``histogram`` has one count per bin of log10(error / bound) (see PROFILE_EDGES); ``exact``
    counts elements equal to their reference; ``max_ratio`` is the largest error / bound.
    """

    histogram: list[int]
    exact: int
    max_ratio: float
    per_op: dict[str, tuple[int, float]]  # op -> (elements compared, largest error / bound)

    @property
    def compared(self) -> int:
        return self.exact + sum(self.histogram)

    @property
    def beyond(self) -> int:
        """Elements past their bound (error / bound > 1)."""
        first_beyond = PROFILE_EDGES.index(0.0) + 1
        return sum(self.histogram[first_beyond:])

    def quantile_bin(self, q: float) -> int | None:
        """The histogram bin holding the q-quantile of the non-exact elements."""
        total = sum(self.histogram)
        if not total:
            return None
        running = 0
        for index, count in enumerate(self.histogram):
            running += count
            if running >= q * total:
                return index
        return len(self.histogram) - 1


def accuracy_profile(run: BackendRun) -> Profile:
    """The accuracy profile of one backend: its comparisons' histograms summed."""
    histogram = [0] * (len(PROFILE_EDGES) + 1)
    exact, top = 0, 0.0
    per_op: dict[str, tuple[int, float]] = {}
    for result in run.results:
        for comparison in result.comparisons:
            if len(comparison.histogram) == len(histogram):
                histogram = [a + b for a, b in zip(histogram, comparison.histogram)]
            exact += comparison.exact
            ratio = comparison.max_ratio if math.isfinite(comparison.max_ratio) else 0.0
            top = max(top, ratio)
            count, worst = per_op.get(result.op, (0, 0.0))
            per_op[result.op] = (count + comparison.exact + sum(comparison.histogram), max(worst, ratio))
    return Profile(histogram, exact, top, dict(sorted(per_op.items(), key=lambda item: _op_order(item[0]))))


def _bin_label(index: int) -> str:
    if index == 0:
        return f"≤ 1e{PROFILE_EDGES[0]:g}"
    if index == len(PROFILE_EDGES):
        return f"> 1e{PROFILE_EDGES[-1]:g}"
    return f"1e{PROFILE_EDGES[index - 1]:g} – 1e{PROFILE_EDGES[index]:g}"


# -- helpers --------------------------------------------------------------------------------------------

def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _ratio(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def _num(value: float, output: str = "") -> str:
    """A value as it is: the shortest repr that round-trips (indices as integers)."""
    if output == "indices" and math.isfinite(value):
        return str(int(value))
    return repr(float(value))


def _verdict_symbol(run: BackendRun) -> str:
    return {"conformant": "✅", "non-conformant": "❌"}.get(run.verdict, "⚠️")


def _catalogue_classes() -> dict[str, str]:
    """Catalogue entry name -> equivalence class (empty when the catalogue cannot be imported)."""
    try:
        from .catalogue import CATALOGUE
    except Exception:  # noqa: BLE001 - a report of saved results must render without the engine
        return {}
    return {entry.name: entry.equivalence_class for entry in CATALOGUE}


def _failures(run: BackendRun) -> list[CheckResult]:
    """Non-conforming results, the minimal case of each failure cluster first (BackendRun.failures)."""
    return run.failures()


def _clusters_md(results: Results) -> list[str]:
    rows = [(run.name, cluster) for run in results.backends for cluster in run.clusters]
    if not rows:
        return []
    lines = [f"### Distinct failures ({len(rows)})", "",
             "| backend | cluster | signature | likely cause | cases | minimal case |", "| --- | --- | --- | --- | ---: | --- |"]
    for name, cluster in rows:
        signature = f"{cluster.status} {'/'.join(cluster.clauses)}" + (f" {cluster.exception}" if cluster.exception else "")
        lines.append(f"| {_md(name)} | {_md(cluster.id)} | {_md(signature)} ({_md(', '.join(cluster.checks))}) | "
                     f"{_md(cluster.cause)} | {cluster.count} | `{_md(cluster.representative)}` |")
    return lines + [""]


def _coverage_md(results: Results) -> list[str]:
    runs = [run for run in results.backends if run.pair_coverage]
    if not runs:
        return []
    lines = ["<details><summary>Pairwise feature coverage of generated cases</summary>", "",
             "| backend | covered | per op | never reached |", "| --- | ---: | --- | --- |"]
    for run in runs:
        covered = sum(int(v["covered"]) for v in run.pair_coverage.values())
        feasible = sum(int(v["feasible"]) for v in run.pair_coverage.values())
        missing = [f"{op}: {m}" for op, v in run.pair_coverage.items() for m in v["missing"]]
        lines.append(f"| {_md(run.name)} | {covered}/{feasible} | "
                     + _md(", ".join(f"{op} {v['covered']}/{v['feasible']}" for op, v in run.pair_coverage.items()))
                     + f" | {_md('; '.join(missing[:12]) + (' …' if len(missing) > 12 else ''))} |")
    return lines + ["", "</details>", ""]


# -- Markdown ---------------------------------------------------------------------------------------------

def _md(text: Any) -> str:
    """Text safe inside a GitHub table cell or summary line."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_cell(counts: Counter[str] | None) -> str:
    state = _cell_state(counts)
    if state == "none":
        return ""
    assert counts is not None
    if state == "fail":
        return f"❌ {_bad(counts)}/{_ran(counts)}"
    if state == "known":
        return f"⚠️ {counts['known_failure']} known"
    if state == "pass":
        extra = f" ({_na(counts)} n/a)" if _na(counts) else ""
        return f"✅ {counts['passed']}{extra}"
    if state == "adapter":
        return f"🔹 {counts['validated_by_adapter']} by adapter"
    return f"⚪ n/a {_na(counts)}"


def _summary_rows_md(results: Results) -> list[str]:
    lines = ["| backend | verdict | passed | failed | unsupported (declared / raised) | errored / crashed / timed out | "
             "max error / bound | time |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in results.backends:
        counts = run.counts()
        if run.load_error:
            lines.append(f"| {_md(run.name)} | ⚠️ not loaded: {_md(run.load_error)} | | | | | | |")
            continue
        profile = accuracy_profile(run)
        lines.append(f"| {_md(run.name)} | {_verdict_symbol(run)} {run.verdict} | {counts['passed']} | "
                     f"{counts['failed']} | {counts['unsupported']} / {counts['unsupported_raised']} | "
                     f"{counts['errored'] + counts['crashed'] + counts['timed_out']} | "
                     f"{_ratio(profile.max_ratio)} | {run.seconds:.1f} s |")
    return lines


def _matrix_md(results: Results, rows: Sequence[Row], cells: Mapping[tuple[Row, str], Counter[str]],
               kinds: Sequence[str]) -> list[str]:
    names = [run.name for run in results.backends if not run.load_error]
    lines = ["| op | " + ("clause" if "clause" in kinds else "feature") + " | "
             + " | ".join(_md(n) for n in names) + " |",
             "| --- | --- | " + " | ".join("---" for _ in names) + " |"]
    shown_op = None
    for row in rows:
        if row.kind not in kinds:
            continue
        op_cell = f"**{row.op}**" if row.op != shown_op else ""
        shown_op = row.op
        label = "all" if row.kind == "op" else f"`{row.name}`"
        lines.append(f"| {op_cell} | {label} | " + " | ".join(_md_cell(cells.get((row, n))) for n in names) + " |")
    return lines


def _failure_md(result: CheckResult) -> list[str]:
    repro = result.reproducer()
    head = f"❌ {_md(result.backend)} · {result.op} · {result.clause} ({result.status}, {result.check})"
    body = [f"<details><summary>{head}</summary>", "",
            f"**{result.clause}** — {_md(CLAUSES.get(result.clause, ''))}", ""]
    if result.case is not None:
        body += [f"Case{f' (catalogue: {_md(result.case.label)})' if result.case.label else ''}:", "",
                 f"```\n{result.case.descriptor}\n```", ""]
    detailed = [c for c in result.comparisons if not c.passed and c.worst is not None]
    if result.message and not detailed:
        body += [f"What: {_md(result.message)}", ""]
    for comparison in detailed:
        w = comparison.worst
        assert w is not None
        body.append(f"- `{comparison.output}`: {comparison.violations}/{comparison.count} elements break "
                    f"{comparison.clause}; worst at {list(w.index)}: got {_num(w.out, comparison.output)}, expected {_num(w.ref, comparison.output)}, "
                    f"error {_ratio(w.error)}" + (f" vs bound {_ratio(w.bound)} (error / bound "
                                                   f"{_ratio(w.error / w.bound)})" if w.bound else ""))
    body += ["", "Reproduce:", "", f"```sh\n{repro['cli']}\n```", "", f"```python\n{repro['python']}\n```", "",
             "</details>", ""]
    return body


def _known_groups(run: BackendRun) -> list[tuple[dict[str, Any], list[CheckResult]]]:
    """A backend's known failures grouped by the expected-failures entry they matched."""
    groups: dict[str, tuple[dict[str, Any], list[CheckResult]]] = {}
    for result in run.results:
        if result.status == "known_failure" and result.expected:
            groups.setdefault(str(result.expected.get("source", "")), (result.expected, []))[1].append(result)
    return list(groups.values())


def _scope_text(entry: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={','.join(map(str, values))}" for key, values in entry.get("match", {}).items())


def _expected_md(results: Results) -> list[str]:
    """Known failures (reason, count, a case and its reproducer) and unexpected passes."""
    lines: list[str] = []
    for run in results.backends:
        for expected, members in _known_groups(run):
            first = members[0]
            link = f" ([tracked]({expected['link']}))" if expected.get("link") else ""
            lines += [f"- ⚠️ **{_md(run.name)}** known failure ×{len(members)} — {_md(expected.get('reason', ''))}"
                      f"{link} <sub>({_md(expected.get('source', ''))})</sub>",
                      f"  e.g. `{first.op}` {first.clause}" + (f": `{first.case.descriptor}`" if first.case else "")]
        for entry in run.unexpected_passes:
            kind = "❌ unexpectedly passed (strict)" if entry.get("strict") else "⚠️ unexpectedly passed (a warning)"
            lines.append(f"- {kind}: **{_md(run.name)}** {_md(entry['reason'])} — {entry['in_scope']} result(s) in "
                         f"its scope (`{_md(_scope_text(entry))}`) ran, none failed "
                         f"<sub>({_md(entry['source'])})</sub>")
    return (["### Expected failures", ""] + lines + [""]) if lines else []


def render_markdown(results: Results, *, max_failures: int = MAX_MARKDOWN_FAILURES) -> str:
    """A pull-request comment: verdicts, the op × clause matrix, features and failures folded."""
    verdict = "✅ all backends conform" if results.conformant else "❌ non-conformance found"
    if results.conformant and results.known_failures():
        verdict += f" (apart from {len(results.known_failures())} known failure(s))"
    lines = [f"## convspec conformance: {verdict}", "",
             f"convspec {results.suite_version} · spec {results.spec_version} · {results.created} · "
             f"{_md(results.environment.get('platform', ''))}", ""]
    lines += _summary_rows_md(results) + [""]
    rows, cells = matrix(results)
    if rows:
        lines += ["### Op × clause", ""] + _matrix_md(results, rows, cells, ("op", "clause")) + [""]
        lines += ["<details><summary>Op × feature</summary>", ""] + _matrix_md(results, rows, cells, ("feature",))
        lines += ["", "</details>", ""]
    lines += _coverage_md(results) + _clusters_md(results)
    failures = results.failures()
    if failures:
        lines += [f"### Failures ({len(failures)})", ""]
        budget = MARKDOWN_BUDGET - sum(len(line) + 1 for line in lines)
        shown = 0
        for result in failures[:max_failures]:
            block = _failure_md(result)
            size = sum(len(line) + 1 for line in block)
            if size > budget:
                break
            budget -= size
            lines += block
            shown += 1
        if shown < len(failures):
            lines += [f"… and {len(failures) - shown} more: see the HTML or JSON report.", ""]
    lines += _expected_md(results)
    lines.append("<sub>Legend: ✅ passed · ❌ non-conforming / run · ⚠️ known failure (expected-failures file) · "
                 "🔹 validated by the adapter, not the implementation · ⚪ n/a: unsupported (declared, or raised "
                 "NotImplementedError). "
                 "Generated by `convspec report`.</sub>")
    return "\n".join(lines) + "\n"


# -- HTML -----------------------------------------------------------------------------------------------

_CSS = """
:root { --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #cf222e; --fail-bg: #ffebe9; --na: #57606a;
  --na-bg: #eef1f4; --line: #d0d7de; --muted: #57606a; --accent: #0969da; --code-bg: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2328; background: #fff; }
main { max-width: 1200px; margin: 0 auto; padding: 0 24px 48px; }
header.top { background: #24292f; color: #fff; padding: 14px 0; }
header.top .inner { max-width: 1200px; margin: 0 auto; padding: 0 24px; display: flex; align-items: baseline;
  gap: 18px; flex-wrap: wrap; }
header.top h1 { font-size: 20px; margin: 0; font-weight: 600; }
header.top .meta { color: #c9d1d9; font-size: 13px; }
nav { position: sticky; top: 0; z-index: 5; background: #fff; border-bottom: 1px solid var(--line);
  padding: 8px 0; margin-bottom: 8px; font-size: 13px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 16px; }
h2 { font-size: 18px; margin: 28px 0 10px; padding-bottom: 4px; border-bottom: 1px solid var(--line); }
h3 { font-size: 15px; margin: 18px 0 8px; }
.banner { margin: 16px 0 4px; padding: 12px 16px; border-radius: 6px; font-size: 16px; font-weight: 600; }
.glance { margin: 6px 0 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap; gap: 4px 8px;
  font-size: 13px; font-weight: 400; }
.glance li { background: #fff; border: 1px solid #ffcecb; border-radius: 4px; padding: 1px 8px; }
.glance a { color: var(--fail); text-decoration: none; }
.banner.pass { background: var(--pass-bg); color: var(--pass); border: 1px solid #aceebb; }
.banner.fail { background: var(--fail-bg); color: var(--fail); border: 1px solid #ffcecb; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 12px; }
.backend { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.backend h3 { margin: 0 0 6px; font-size: 15px; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600; }
.verdict.pass { background: var(--pass-bg); color: var(--pass); }
.verdict.fail { background: var(--fail-bg); color: var(--fail); }
.verdict.na { background: var(--na-bg); color: var(--na); }
.counts { display: flex; gap: 12px; flex-wrap: wrap; margin: 8px 0 4px; font-size: 13px; }
.counts b { font-size: 15px; }
.small { font-size: 12px; color: var(--muted); }
table { border-collapse: collapse; font-size: 13px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #eaeef2; text-align: left; vertical-align: top; }
th { background: var(--code-bg); font-weight: 600; }
table.matrix { width: 100%; table-layout: fixed; }
table.matrix thead th { position: sticky; top: 37px; z-index: 2; border-bottom: 1px solid var(--line); }
table.matrix col.label { width: 42%; }
table.matrix td.cell { text-align: center; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.matrix tr.op th { background: #eaeef2; font-size: 14px; }
table.matrix tr.op td.cell { font-weight: 600; background: #f6f8fa; }
table.matrix td.label { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; padding-left: 22px; }
table.matrix td.label code { font-size: 12px; }
table.matrix td.label .kind { display: inline-block; width: 62px; color: var(--muted); font-size: 11px;
  text-transform: uppercase; letter-spacing: .03em; }
table.matrix td.label .desc { color: var(--muted); margin-left: 6px; }
td.pass { background: var(--pass-bg); color: var(--pass); }
td.fail { background: var(--fail-bg); color: var(--fail); font-weight: 700; }
td.unsupported, td.adapter { background: var(--na-bg); color: var(--na); }
td.known { background: #fff8c5; color: #9a6700; font-weight: 600; }
.expected { border: 1px solid #eac54f; border-left: 4px solid #bf8700; border-radius: 6px; padding: 8px 14px;
  margin: 10px 0; background: #fffdf2; }
td.none { color: #c4c9cf; }
.na-note { color: var(--na); font-weight: 400; font-size: 11px; }
#only-failing:checked ~ table.matrix tbody tr.clean { display: none; }
label.toggle { font-size: 13px; margin-left: 4px; cursor: pointer; }
.legend { font-size: 12px; color: var(--muted); margin: 6px 0 10px; }
.legend span { display: inline-block; padding: 0 6px; border-radius: 3px; margin-right: 6px; }
.failure { border: 1px solid #ffcecb; border-left: 4px solid var(--fail); border-radius: 6px; padding: 10px 14px;
  margin: 10px 0; background: #fff; }
.failure h3 { margin: 0 0 4px; font-size: 14px; }
.failure .clause-text { color: #424a53; margin: 2px 0 8px; }
.failure dl { display: grid; grid-template-columns: 90px 1fr; gap: 2px 10px; margin: 6px 0; }
.failure dt { color: var(--muted); }
.failure dd { margin: 0; overflow-wrap: anywhere; }
pre { background: var(--code-bg); border: 1px solid #eaeef2; border-radius: 5px; padding: 8px 10px; margin: 4px 0;
  overflow-x: auto; font: 12px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; white-space: pre; }
code { font: 12px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.repro { margin-top: 8px; }
.repro span { font-size: 12px; color: var(--muted); }
.repro pre.cli { white-space: pre-wrap; overflow-wrap: anywhere; }
table.worst td, table.worst th { font-variant-numeric: tabular-nums; }
.profile { display: grid; grid-template-columns: 620px 1fr; gap: 18px; align-items: start;
  border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; margin: 10px 0; }
.profile svg { display: block; }
.profile table { width: 100%; }
.bar-cell { width: 140px; }
.bar { height: 9px; border-radius: 2px; background: #54aeff; display: inline-block; vertical-align: middle; }
.bar.over { background: var(--fail); }
.bar.slow { background: #d4a72c; }
details > summary { cursor: pointer; color: var(--accent); margin: 6px 0; }
.kv td:first-child { color: var(--muted); white-space: nowrap; }
.two { display: grid; grid-template-columns: 1fr 1fr; gap: 20px; }
.gap { background: #fff8c5; }
@media (max-width: 1000px) { .profile, .two { grid-template-columns: 1fr; } }
"""


def _h_cell(counts: Counter[str] | None, backend: str, row: Row) -> str:
    state = _cell_state(counts)
    if state == "none":
        return '<td class="cell none">·</td>'
    assert counts is not None
    title = _esc(f"{backend} · {row.op} · {row.name}: {_counts_title(counts)}")
    na = f' <span class="na-note">+{_na(counts)} n/a</span>' if _na(counts) else ""
    if state == "fail":
        text = f"✗ {_bad(counts)}/{_ran(counts)}{na}"
    elif state == "known":
        text = f"⚠ {counts['known_failure']} known{na}"
    elif state == "pass":
        text = f"✓ {counts['passed']}{na}"
    elif state == "adapter":
        text = f"adapter {counts['validated_by_adapter']}"
    else:
        text = f"n/a {_na(counts)}"
    return f'<td class="cell {state}" title="{title}">{text}</td>'


def _html_summary(results: Results) -> str:
    parts = ['<div class="cards">']
    for run in results.backends:
        counts = run.counts()
        css = {"conformant": "pass", "non-conformant": "fail"}.get(run.verdict, "na")
        parts.append(f'<div class="backend"><h3>{_esc(run.name)} <span class="verdict {css}">'
                     f'{_esc(run.verdict)}</span></h3>')
        if run.spec and run.spec != run.name:
            parts.append(f'<div class="small">loaded as <code>{_esc(run.spec)}</code></div>')
        if run.load_error:
            parts.append(f'<p>{_esc(run.load_error)}</p></div>')
            continue
        parts.append('<div class="counts">')
        for status in STATUSES:
            if counts[status] or status in ("passed", "failed", "unsupported"):
                color = ("var(--pass)" if status == "passed" else "var(--na)" if status in (
                    *NOT_APPLICABLE, "validated_by_adapter") else "#9a6700" if status == "known_failure"
                    else "var(--fail)" if counts[status] else "var(--muted)")
                parts.append(f'<span><b style="color:{color}">{counts[status]}</b> '
                             f'{_esc(status_label(status).replace("_", " "))}</span>')
        parts.append("</div>")
        profile = accuracy_profile(run)
        caps = run.capabilities or {}
        facts = [f"{run.seconds:.1f} s ({run.backend_seconds:.1f} s in the backend)",
                 f"max error / bound {_ratio(profile.max_ratio)} over {profile.compared:,} elements"]
        accumulation = caps.get("accumulation")
        if isinstance(accumulation, Mapping):
            facts.append("accumulates " + ", ".join(f"{dtype} in {acc}" for dtype, acc in accumulation.items())
                         + ", the others in themselves")
        elif accumulation:
            facts.append(f"accumulates in {accumulation}")
        if caps.get("input_precision"):
            facts.append(f"input precision {caps['input_precision']}")
        parts.append('<div class="small">' + "<br>".join(_esc(f) for f in facts) + "</div>")
        parts.append(_capabilities_details(caps))
        parts.append("</div>")
    parts.append("</div>")
    return "".join(parts)


def _capabilities_details(caps: Mapping[str, Any]) -> str:
    if not caps:
        return ""
    rows = []
    for key, value in caps.items():
        if key == "unsupported" and isinstance(value, Mapping):
            text = "; ".join(f"{k}: {v}" for k, v in value.items()) or "—"
        elif key == "accumulation" and isinstance(value, Mapping):
            text = ", ".join(f"{k} in {v}" for k, v in value.items()) + ", the others in themselves"
        elif isinstance(value, (list, tuple)):
            text = ", ".join(str(v) for v in value) or "—"
        else:
            text = "—" if value is None else str(value)
        rows.append(f"<tr><td>{_esc(key)}</td><td>{_esc(text)}</td></tr>")
    return f'<details><summary>capabilities</summary><table class="kv">{"".join(rows)}</table></details>'


def _html_matrix(results: Results) -> str:
    rows, cells = matrix(results)
    names = [run.name for run in results.backends if not run.load_error]
    if not rows:
        return "<p>No checks ran.</p>"
    out = ['<input type="checkbox" id="only-failing"><label class="toggle" for="only-failing">'
           "show only rows with a failure</label>",
           '<div class="legend"><span class="pass-key" style="background:var(--pass-bg);color:var(--pass)">✓ n'
           '</span>passed <span style="background:var(--fail-bg);color:var(--fail)">✗ f/n</span>non-conforming of '
           'those run <span style="background:var(--na-bg);color:var(--na)">n/a</span>unsupported (declared, or '
           'raised NotImplementedError) '
           "· a case counts under its clause and under every feature it uses</div>",
           '<table class="matrix"><colgroup><col class="label">' + "<col>" * len(names) + "</colgroup>",
           "<thead><tr><th>op · clause / feature</th>" + "".join(f"<th>{_esc(n)}</th>" for n in names)
           + "</tr></thead>"]
    current = None
    for row in rows:
        if row.op != current:
            if current is not None:
                out.append("</tbody>")
            out.append(f'<tbody id="matrix-{_esc(row.op)}">')
            current = row.op
        states = [_cell_state(cells.get((row, n))) for n in names]
        clean = "clean" if "fail" not in states else "dirty"
        cells_html = "".join(_h_cell(cells.get((row, n)), n, row) for n in names)
        if row.kind == "op":
            out.append(f'<tr class="op {clean}"><th>{_esc(row.op)}</th>{cells_html}</tr>')
            continue
        name = f"<code>{_esc(row.name)}</code>"
        out.append(f'<tr class="{row.kind} {clean}"><td class="label" title="{_esc(row.name)}: {_esc(row.title)}">'
                   f'<span class="kind">{row.kind}</span>{name}<span class="desc">{_esc(row.title)}</span></td>'
                   f"{cells_html}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _html_failure(result: CheckResult, number: int, cluster: FailureCluster | None = None) -> str:
    repro = result.reproducer()
    clause_text = CLAUSES.get(result.clause, "")
    parts = [f'<div class="failure" id="failure-{number}"><h3>{_esc(result.status.upper())} · '
             f"{_esc(result.backend)} · {_esc(result.op)} · <code>{_esc(result.clause)}</code></h3>"]
    if clause_text:
        parts.append(f'<div class="clause-text">{_esc(result.clause)}: {_esc(clause_text)}</div>')
    parts.append("<dl>")
    if cluster is not None:
        parts.append(f"<dt>cluster</dt><dd>{_esc(cluster.id)}: {_esc(cluster.cause)} (minimal case"
                     f"{' after shrinking' * cluster.shrunk})</dd>")
    parts.append(f"<dt>check</dt><dd>{_esc(result.family)} / {_esc(result.check)}</dd>")
    if result.case is not None:
        label = f' <span class="small">(catalogue: {_esc(result.case.label)})</span>' if result.case.label else ""
        parts.append(f"<dt>case</dt><dd><code>{_esc(result.case.descriptor)}</code>{label}</dd>")
    if result.features:
        parts.append(f"<dt>features</dt><dd>{_esc(', '.join(result.features))}</dd>")
    if result.message:
        parts.append(f"<dt>what</dt><dd>{_esc(result.message)}</dd>")
    parts.append("</dl>")
    failing = [c for c in result.comparisons if not c.passed]
    if failing:
        parts.append('<table class="worst"><tr><th>output</th><th>elements breaking</th><th>clause</th>'
                     "<th>worst index</th><th>got</th><th>expected</th><th>error</th><th>bound</th>"
                     "<th>error / bound</th></tr>")
        for comparison in failing:
            w = comparison.worst
            share = comparison.violations / comparison.count if comparison.count else 1.0
            cells = [_esc(comparison.output), f"{comparison.violations:,} / {comparison.count:,} ({share:.1%})",
                     f'<code title="{_esc(comparison.rule)}">{_esc(comparison.clause)}</code>']
            if w is None:
                cells += ["—"] * 6
            else:
                ratio = _ratio(w.error / w.bound) if w.bound else "—"
                cells += [_esc(list(w.index)), _esc(_num(w.out, comparison.output)),
                          _esc(_num(w.ref, comparison.output)), _esc(_ratio(w.error)),
                          _esc(_ratio(w.bound)) if w.bound else "exact", _esc(ratio)]
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append('<div class="repro"><span>reproduce (shell)</span>'
                 f"<pre class=\"cli\">{_esc(repro['cli'])}</pre><span>reproduce (Python)</span>"
                 f"<pre>{_esc(repro['python'])}</pre></div></div>")
    return "".join(parts)


def _failure_groups(results: Results) -> list[tuple[str, str, str, int, int]]:
    """(backend, op, clause, count, number of the first card) per kind of failure, in card order."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    number = 0
    for run in results.backends:
        for result in _failures(run)[:MAX_HTML_FAILURES]:
            number += 1
            groups.setdefault((run.name, result.op, result.clause), [0, number])[0] += 1
    return [(backend, op, clause, count, first) for (backend, op, clause), (count, first) in groups.items()]


def _html_glance(results: Results) -> str:
    groups = _failure_groups(results)
    if not groups:
        return ""
    items = "".join(f'<li><a href="#failure-{first}">{_esc(backend)} · {_esc(op)} · <code>{_esc(clause)}</code>'
                     f"</a>{f' ×{count}' if count > 1 else ''}</li>"
                     for backend, op, clause, count, first in groups[:12])
    more = f"<li>… {len(groups) - 12} more kinds</li>" if len(groups) > 12 else ""
    return f'<ul class="glance">{items}{more}</ul>'


def _html_clusters(results: Results) -> str:
    """The distinct failures: per cluster its signature, likely cause, count and minimal case,
    linked to the card of its representative."""
    rows, number = [], 0
    for run in results.backends:
        cards = {}
        for result in _failures(run)[:MAX_HTML_FAILURES]:
            number += 1
            for cluster in run.clusters:
                if cluster.is_representative(result):
                    cards[cluster.id] = number
        for cluster in run.clusters:
            signature = (f"{cluster.status} {'/'.join(cluster.clauses)}"
                         + (f" {cluster.exception}" if cluster.exception else ""))
            link = (f'<a href="#failure-{cards[cluster.id]}">{_esc(cluster.id)}</a>' if cluster.id in cards
                    else _esc(cluster.id))
            rows.append(f"<tr><td>{_esc(run.name)}</td><td>{link}</td><td><code>{_esc(signature)}</code>"
                        f'<div class="small">{_esc(", ".join(cluster.checks))}</div></td><td>{_esc(cluster.cause)}'
                        + (f'<div class="small">{_esc(cluster.note)}</div>' if cluster.note else "")
                        + f"</td><td>{cluster.count}</td><td><code>{_esc(cluster.representative)}</code></td></tr>")
    if not rows:
        return ""
    return (f'<h3>Distinct failures ({len(rows)})</h3><table class="clusters"><tr><th>backend</th><th>cluster</th>'
            "<th>signature (checks)</th><th>likely cause</th><th>cases</th><th>minimal case</th></tr>"
            + "".join(rows) + "</table>")


def _html_failures(results: Results) -> str:
    if not results.failures():
        return "<p>None: every supported check passed.</p>"
    out, number = [_html_clusters(results)], 0
    for run in results.backends:
        failures = _failures(run)
        if not failures:
            continue
        out.append(f"<h3>{_esc(run.name)}: {len(failures)} non-conforming result{'s' * (len(failures) != 1)}</h3>")
        for result in failures[:MAX_HTML_FAILURES]:
            number += 1
            cluster = next((c for c in run.clusters if c.is_representative(result)), None)
            out.append(_html_failure(result, number, cluster))
        if len(failures) > MAX_HTML_FAILURES:
            out.append(f"<p>… {len(failures) - MAX_HTML_FAILURES} more in the JSON report.</p>")
    return "".join(out)


def _html_expected(results: Results) -> str:
    """Known failures (reason, link, count, a case and its reproducer) and unexpected passes."""
    out = []
    for run in results.backends:
        for expected, members in _known_groups(run):
            first = members[0]
            link = (f' · <a href="{_esc(expected["link"])}">tracked here</a>' if expected.get("link") else "")
            case = f"<dd><code>{_esc(first.case.descriptor)}</code></dd>" if first.case is not None else ""
            out.append(f'<div class="expected"><h3>known failure ×{len(members)} · {_esc(run.name)} · '
                       f"{_esc(first.op)} · <code>{_esc(first.clause)}</code></h3><dl><dt>reason</dt>"
                       f"<dd>{_esc(expected.get('reason', ''))}{link}</dd><dt>entry</dt>"
                       f"<dd>{_esc(expected.get('source', ''))}</dd><dt>e.g.</dt>{case}"
                       f"<dd>{_esc(first.message)}</dd><dt>reproduce (shell)</dt>"
                       f'<dd><pre class="cli">{_esc(first.reproducer()["cli"])}</pre></dd></dl></div>')
        for entry in run.unexpected_passes:
            kind = "unexpectedly passed — a failure (strict)" if entry.get("strict") else \
                "unexpectedly passed — a warning"
            out.append(f'<div class="expected"><h3>{_esc(kind)} · {_esc(run.name)}</h3><p>'
                       f"{_esc(entry['reason'])}</p><p class=\"small\">{entry['in_scope']} result(s) in its scope "
                       f"(<code>{_esc(_scope_text(entry))}</code>) ran and none failed: fixed here? "
                       f"({_esc(entry['source'])})</p></div>")
    return "".join(out)


def profile_svg(profile: Profile, *, title: str = "") -> str:
    """An inline SVG bar chart of the accuracy profile: counts (log scale) per bin of
    log10(error / bound), the exact matches apart on the left, a line at error = bound."""
    width, height = 600, 250
    left, right, top, bottom = 52, 14, 26, 50
    bins = len(profile.histogram)
    slots = bins + 2  # the exact bar and a gap before the bins
    slot = (width - left - right) / slots
    plot_h = height - top - bottom
    peak = max([profile.exact, *profile.histogram, 1])
    decades = max(1, math.ceil(math.log10(peak + 1)))  # the y axis spans log10(count + 1) in [0, decades]

    def y_of(count: int) -> float:
        return top + plot_h * (1 - math.log10(count + 1) / decades) if count else top + plot_h

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" class="accuracy-plot" aria-label="{_esc(title)}" '
             'font-family="system-ui, sans-serif" font-size="11">']
    if title:
        parts.append(f"<title>{_esc(title)}</title>")
    for decade in range(decades + 1):  # gridlines at 1, 10, 100, ... elements
        count = 10**decade
        y = y_of(count) if count <= 10**decades else top
        if y < top - 0.5:
            continue
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eaeef2"/>')
        label = f"{count:,}" if count < 10**4 else f"1e{decade}"
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#57606a">{label}</text>')
    beyond_from = PROFILE_EDGES.index(0.0) + 1

    def bar(x: float, count: int, color: str, tip: str) -> None:
        y = y_of(count)
        parts.append(f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{slot - 2:.1f}" height="{top + plot_h - y:.1f}" '
                     f'fill="{color}"><title>{_esc(tip)}</title></rect>')

    bar(left, profile.exact, "#8c959f", f"{profile.exact:,} elements equal to the reference")
    parts.append(f'<text x="{left + slot / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                 'fill="#57606a">exact</text>')
    x0 = left + 2 * slot
    for index, count in enumerate(profile.histogram):
        color = "#cf222e" if index >= beyond_from else "#54aeff"
        bar(x0 + index * slot, count, color, f"{count:,} elements with error / bound in {_bin_label(index)}")
    # x ticks at whole decades: bin i ends at PROFILE_EDGES[i]
    for index, edge in enumerate(PROFILE_EDGES):
        if edge != int(edge) or int(edge) % 2:
            continue
        x = x0 + (index + 1) * slot
        label = "1" if edge == 0 else f"1e{int(edge)}"
        parts.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top + plot_h}" y2="{top + plot_h + 4}" stroke="#57606a"/>')
        parts.append(f'<text x="{x:.1f}" y="{top + plot_h + 15}" text-anchor="middle" fill="#57606a">{label}</text>')
    parts.append(f'<line x1="{x0:.1f}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" '
                 'stroke="#57606a"/>')
    xb = x0 + beyond_from * slot  # error / bound = 1
    parts.append(f'<line x1="{xb:.1f}" x2="{xb:.1f}" y1="{top - 8}" y2="{top + plot_h}" stroke="#cf222e" '
                 'stroke-width="1.5" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{xb - 4:.1f}" y="{top - 12}" text-anchor="end" fill="#1a7f37">within bound ←</text>')
    parts.append(f'<text x="{xb + 4:.1f}" y="{top - 12}" fill="#cf222e">→ beyond (fails)</text>')
    parts.append(f'<text x="{(x0 + width - right) / 2:.1f}" y="{height - 10}" text-anchor="middle" '
                 'fill="#1f2328">error / bound per element (log scale)</text>')
    parts.append(f'<text x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" fill="#1f2328" '
                 f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">elements (log)</text>')
    parts.append("</svg>")
    return "".join(parts)


def _profile_reading(profile: Profile) -> str:
    """One sentence that says what the plot shows."""
    if not profile.compared:
        return "No element was compared under the error model."
    median = profile.quantile_bin(0.5)
    exact_share = profile.exact / profile.compared
    text = f"{profile.compared:,} elements compared; {exact_share:.0%} exactly equal to the reference."
    if median is not None:
        text += f" Typical error / bound of the rest: {_bin_label(median)}; largest {_ratio(profile.max_ratio)}."
        if profile.beyond:
            text += f" {profile.beyond:,} elements lie beyond their bound."
        elif profile.max_ratio > 0.5:
            text += (" Some elements come within 2× of their bound: close to the limit of the precision the "
                     "backend declares (its accumulation dtype, default the input dtype).")
        else:
            text += " Every element stays at least 2× inside its bound."
    return text


def _html_profiles(results: Results) -> str:
    out = ['<p class="small">For every element compared under the error model (ERR-BOUND-1) the ratio '
           "error / bound: near 1e-3 or below for an implementation that rounds like its dtype; a mass near "
           "1 means precision close to what the spec tolerates (e.g. a lower accumulation precision); "
           "red bars fail. Max pool values and indices are compared exactly and count as exact.</p>"]
    for run in results.backends:
        if run.load_error:
            continue
        profile = accuracy_profile(run)
        title = f"accuracy profile of {run.name}"
        ops = ['<table><tr><th>op</th><th>elements</th><th>max error / bound</th><th class="bar-cell"></th></tr>']
        for op, (count, worst) in profile.per_op.items():
            # bar length: log10 ratio from 1e-8 (empty) to 1 (full); past 1 the bar turns red
            share = 0.0 if worst <= 0 else min(1.0, max(0.0, (math.log10(worst) + 8) / 8))
            over = " over" if worst > 1 else ""
            ops.append(f"<tr><td>{_esc(op)}</td><td>{count:,}</td><td>{_ratio(worst)}</td>"
                       f'<td class="bar-cell"><span class="bar{over}" style="width:{share * 130:.0f}px"></span>'
                       "</td></tr>")
        ops.append("</table>")
        out.append(f'<div class="profile" id="profile-{_esc(run.name)}"><div><h3>{_esc(run.name)}</h3>'
                   f"{profile_svg(profile, title=title)}</div><div><p>{_esc(_profile_reading(profile))}</p>"
                   f"{''.join(ops)}</div></div>")
    return "".join(out)


def _html_coverage(results: Results) -> str:
    classes = _catalogue_classes()
    names = [run.name for run in results.backends if not run.load_error]
    by_class: dict[str, dict[str, Counter[str]]] = {}
    entries_seen: dict[str, set[str]] = {}
    generated: Counter[str] = Counter()
    features_used: dict[str, Counter[str]] = {}
    for run in results.backends:
        for result in run.results:
            if result.case is None:
                continue
            if result.case.label:
                group = classes.get(result.case.label, result.case.label)
                by_class.setdefault(group, {}).setdefault(run.name, Counter())[result.status] += 1
                entries_seen.setdefault(group, set()).add(result.case.label)
            else:
                generated[run.name] += 1
            if result.status == "passed" or result.status in NONCONFORMING:
                for feature in result.features:
                    features_used.setdefault(feature, Counter())[run.name] += 1
    out = ['<div class="two"><div><h3>Catalogue equivalence classes</h3>']
    all_classes = sorted(set(classes.values()) | set(by_class))
    if all_classes:
        out.append("<table><tr><th>class</th><th>entries</th>" + "".join(f"<th>{_esc(n)}</th>" for n in names)
                   + "</tr>")
        for group in all_classes:
            seen = entries_seen.get(group, set())
            total = sum(1 for value in classes.values() if value == group) or len(seen)
            gap = "" if seen else ' class="gap"'
            row = Row("", "class", group)
            cells = "".join(_h_cell(by_class.get(group, {}).get(n), n, row) for n in names)
            out.append(f"<tr{gap}><td><code>{_esc(group)}</code></td><td>{len(seen)}/{total}</td>{cells}</tr>")
        out.append("</table>")
        missing = [g for g in all_classes if g not in by_class]
        if missing:
            out.append(f'<p class="small">{len(missing)} class{"es" * (len(missing) != 1)} not exercised in this '
                       "run (highlighted).</p>")
    else:
        out.append("<p>No catalogue cases ran.</p>")
    out.append(f'<p class="small">Generated cases (hypothesis) per backend: '
               f'{_esc(", ".join(f"{n}: {generated[n]:,}" for n in names))}.</p>')
    out.append("</div><div><h3>Features exercised</h3><table><tr><th>feature</th>"
               + "".join(f"<th>{_esc(n)}</th>" for n in names) + "</tr>")
    for feature in (f for f in FEATURES if f not in PARTIAL_FEATURES):
        used = features_used.get(feature, Counter())
        gap = "" if sum(used.values()) else ' class="gap"'
        out.append(f'<tr{gap}><td title="{_esc(FEATURES[feature])}"><code>{_esc(feature)}</code></td>'
                   + "".join(f"<td>{used[n]:,}</td>" for n in names) + "</tr>")
    out.append('</table><p class="small">Checks run (passed or not) whose case uses the feature; '
               "highlighted rows were never exercised.</p></div></div>")
    out.append(_html_pair_coverage(results))
    return "".join(out)


def _html_pair_coverage(results: Results) -> str:
    """Per backend and op: feasible combinations of two features (both, one without the other,
    neither) that some generated case reached, the missing ones listed (coverage.py)."""
    runs = [run for run in results.backends if run.pair_coverage]
    if not runs:
        return ""
    out = ["<h3>Pairwise feature coverage of generated cases</h3><table><tr><th>backend</th><th>op</th>"
           "<th>covered</th><th>never reached</th></tr>"]
    for run in runs:
        for op, value in run.pair_coverage.items():
            missing = value["missing"]
            gap = ' class="gap"' if missing else ""
            out.append(f"<tr{gap}><td>{_esc(run.name)}</td><td>{_esc(op)}</td><td>{value['covered']}/"
                       f"{value['feasible']} ({value['cases']} cases)</td><td>{_esc('; '.join(missing)) or '—'}</td></tr>")
    out.append('</table><p class="small">For every two features an op can use, the feasible combinations '
               "(both, either without the other, neither) reached by at least one generated case that ran.</p>")
    return "".join(out)


def _kv_table(mapping: Mapping[str, Any]) -> str:
    rows = []
    for key, value in mapping.items():
        text = value if isinstance(value, str) else json.dumps(_finite_json(value), default=str)
        if len(text) > 400:
            text = text[:400] + " …"
        rows.append(f"<tr><td>{_esc(key)}</td><td><code>{_esc(text)}</code></td></tr>")
    return f'<table class="kv">{"".join(rows)}</table>'


def render_html(results: Results, bench: Sequence[Mapping[str, Any]] = ()) -> str:
    """The self-contained HTML report (inline CSS and SVG; no script, no external asset), with a
    Speed section when ``bench`` holds ``convspec bench`` JSON objects."""
    failures = results.failures()
    known = len(results.known_failures())
    verdict = ("All backends conform to the spec" + (f", apart from {known} known failure{'s' * (known != 1)}."
                                                      if known else ".") if results.conformant else
               f"Non-conformance found: {len(failures)} non-conforming result{'s' * (len(failures) != 1)} in "
               f"{sum(1 for run in results.backends if not run.conformant)} of {len(results.backends)} backend"
               f"{'s' * (len(results.backends) != 1)}.")
    banner = "pass" if results.conformant else "fail"
    meta = (f"convspec {results.suite_version} · spec {results.spec_version} · {results.created} · "
            f"{results.environment.get('platform', '')}")
    sections = [
        ("summary", "Summary", _html_summary(results)),
        ("matrix", "Op × clause / feature matrix", _html_matrix(results)),
        ("failures", f"Failures ({len(failures)})", _html_failures(results)),
        *([("expected", "Expected failures", expected)] if (expected := _html_expected(results)) else []),
        ("accuracy", "Accuracy profile", _html_profiles(results)),
        ("coverage", "Coverage", _html_coverage(results)),
        ("environment", "Environment and settings",
         f'<div class="two"><div><h3>Environment</h3>{_kv_table(results.environment)}</div>'
         f"<div><h3>Settings</h3>{_kv_table(results.settings)}</div></div>"),
    ]
    if bench:
        sections.insert(-1, ("speed", "Speed", "".join(_html_speed(obj) for obj in bench)))
    return _html_page(f"convspec report — {results.created}", "convspec conformance report", meta,
                      f'<div class="banner {banner}">{_esc(verdict)}{_html_glance(results)}</div>', sections,
                      "Generated by convspec. Every row and card cites a SPEC.md clause.")


def _html_page(title: str, heading: str, meta: str, banner: str, sections: Sequence[tuple[str, str, str]],
               footer: str) -> str:
    nav = "".join(f'<a href="#{key}">{_esc(name)}</a>' for key, name, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{_esc(name)}</h2>{content}</section>' for key, name, content in sections)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body>"
            f'<header class="top"><div class="inner"><h1>{_esc(heading)}</h1>'
            f'<span class="meta">{_esc(meta)}</span></div></header><main>'
            f"<nav>{nav}</nav>{banner}{body}"
            f'<p class="small">{_esc(footer)}</p>'
            "</main></body></html>\n")


# -- Speed: ``convspec bench --json`` output ------------------------------------------------------

BENCH_FORMAT, BENCH_VERSION = "convspec-bench", 1

#: ×baseline bars are drawn to scale up to this ratio (and clipped beyond).
BAR_MAX_RATIO = 4.0


def check_bench(obj: Any) -> None:
    """ValueError unless ``obj`` is ``convspec bench --json`` output this version can show."""
    if not isinstance(obj, Mapping) or obj.get("format") != BENCH_FORMAT:
        raise ValueError(f"not convspec bench output: expected a JSON object with \"format\": \"{BENCH_FORMAT}\"")
    if obj.get("version") != BENCH_VERSION:
        raise ValueError(f"convspec bench output version {obj.get('version')!r}; this convspec reads version "
                         f"{BENCH_VERSION}")
    missing = [key for key in ("machine", "settings", "notes", "rows", "summary") if key not in obj]
    if missing:
        raise ValueError(f"convspec bench output without {', '.join(missing)}")
    if not isinstance(obj["machine"], Mapping) or not isinstance(obj["notes"], list):
        raise ValueError("convspec bench output: machine must be an object and notes a list")
    if not isinstance(obj["settings"], Mapping) or not _is_count(obj["settings"].get("threads"), none=True):
        raise ValueError("convspec bench output: settings.threads must be a non-negative integer or null")
    for part, fields in (("rows", _BENCH_ROW_FIELDS), ("summary", _BENCH_SUMMARY_FIELDS)):
        if not isinstance(obj[part], list):
            raise ValueError(f"convspec bench output: {part} must be a list")
        for index, entry in enumerate(obj[part]):
            for field, kind in fields.items():
                meaning, valid = _BENCH_KINDS[kind]
                if not valid(entry.get(field, ...) if isinstance(entry, Mapping) else ...):  # ...: missing
                    raise ValueError(f"convspec bench output: {part}[{index}].{field} must be {meaning}")


def _is_count(value: Any, *, none: bool = False) -> bool:
    return (value is None and none) or (isinstance(value, int) and not isinstance(value, bool) and value >= 0)


def _is_number_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


#: What a field of a bench row or summary line must hold: (its description, its test).
_BENCH_KINDS: dict[str, tuple[str, Any]] = {
    "text": ("a string", lambda value: isinstance(value, str)),
    "count": ("an integer", _is_count),
    "number?": ("a number or null", _is_number_or_none),
}
#: The fields the report reads of a bench row and of a summary line, and their kinds.
_BENCH_ROW_FIELDS = {"suite": "text", "layer": "text", "dtype": "text", "direction": "text", "backend": "text",
                     "status": "text", "median_s": "number?", "gflops": "number?", "ratio_torch": "number?",
                     "ratio_matmul": "number?"}
_BENCH_SUMMARY_FIELDS = {"suite": "text", "dtype": "text", "direction": "text", "backend": "text",
                         "layers": "count", "total_s": "number?", "geomean_gflops": "number?",
                         "geomean_ratio_torch": "number?", "geomean_ratio_matmul": "number?"}


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def _gflops(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _total_ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.1f}"


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1e3:.3f}"


def _times(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} ×"


def _ratio_bar(ratio: float | None) -> str:
    """The ratio and a bar to scale (1 × at a quarter of the width): blue if faster, amber if slower."""
    if ratio is None:
        return '<td class="bar-cell">–</td>'
    width = 120 * min(ratio, BAR_MAX_RATIO) / BAR_MAX_RATIO
    css = "bar" if ratio <= 1 else "bar slow"
    return (f'<td class="bar-cell"><span class="{css}" style="width:{width:.0f}px"></span> '
            f"{_esc(_times(ratio))}</td>")


def _bench_caption(obj: Mapping[str, Any]) -> str:
    machine, settings = obj["machine"], obj["settings"]
    blas = "; ".join(f"{lib.get('internal_api', '')} {lib.get('version') or ''}".strip()
                     + (f" core {lib['architecture']}" if lib.get("architecture") else "")
                     + (f", {_count(lib['num_threads'], 'thread')}" if lib.get("num_threads") else "")
                     for lib in machine.get("blas", [])) or "unknown"
    parts = [str(machine.get("date", "")), str(machine.get("cpu", "")), f"{machine.get('cpu_count', '?')} CPUs",
             f"BLAS {blas}"]
    if machine.get("torch"):
        parts.append(f"torch {machine['torch']} ({machine.get('torch_threads')} threads)")
    if settings.get("threads"):
        parts.append(f"--threads {settings['threads']}")
    load = machine.get("load_average") or {}
    if load.get("before"):
        parts.append(f"load {load['before'][0]:.2f} → {(load.get('after') or load['before'])[0]:.2f}")
    if machine.get("git_commit"):
        parts.append(f"commit {machine['git_commit']}")
    return " · ".join(parts)


def _html_speed(obj: Mapping[str, Any]) -> str:
    """One bench run: its machine, the geometric means per suite, the layers folded."""
    baseline = obj["settings"].get("baseline") or "baseline"
    suites = ", ".join(obj["settings"].get("suites", []))
    threads = obj["settings"].get("threads")
    limit = f" · {_count(threads, 'thread')}" if threads else ""  # an int (check_bench)
    out = [f"<h3>Suites {_esc(suites)} · {_esc(', '.join(obj['settings'].get('dtypes', [])))}{limit}</h3>",
           f'<p class="small">{_esc(_bench_caption(obj))}</p>',
           ("<table><tr><th>suite</th><th>dtype</th><th>direction</th><th>backend</th><th>layers</th>"
            f"<th>total ms</th><th>GFLOP/s</th><th>× {_esc(baseline)}</th><th>× matmul</th></tr>")]
    for row in obj["summary"]:
        out.append(f"<tr><td>{_esc(row['suite'])}</td><td>{_esc(row['dtype'])}</td><td>{_esc(row['direction'])}</td>"
                   f"<td>{_esc(row['backend'])}</td><td>{row['layers']}</td><td>{_total_ms(row['total_s'])}</td>"
                   f"<td>{_gflops(row['geomean_gflops'])}</td>{_ratio_bar(row['geomean_ratio_torch'])}"
                   f"<td>{_esc(_times(row['geomean_ratio_matmul']))}</td></tr>")
    out.append('</table><p class="small">Medians of repeated calls; GFLOP/s and ratios are geometric means '
               f"over the layers; × {_esc(baseline)} and × matmul were measured in the same run.</p>")
    out.append(f"<details><summary>Every layer ({len(obj['rows'])} rows)</summary>"
               "<table><tr><th>suite</th><th>layer</th><th>dtype</th><th>direction</th><th>backend</th>"
               f"<th>median ms</th><th>GFLOP/s</th><th>× {_esc(baseline)}</th><th>× matmul</th></tr>")
    for row in obj["rows"]:
        if row["status"] != "ok":
            cells = f'<td colspan="4">{_esc(row["status"])}: {_esc(row.get("message", ""))}</td>'
        else:
            cells = (f"<td>{_ms(row['median_s'])}</td><td>{_gflops(row['gflops'])}</td>"
                     f"{_ratio_bar(row['ratio_torch'])}<td>{_esc(_times(row['ratio_matmul']))}</td>")
        out.append(f"<tr><td>{_esc(row['suite'])}</td><td>{_esc(row['layer'])}</td><td>{_esc(row['dtype'])}</td>"
                   f"<td>{_esc(row['direction'])}</td><td>{_esc(row['backend'])}</td>{cells}</tr>")
    out.append("</table></details>")
    if obj["notes"]:
        out.append('<ul class="small">' + "".join(f"<li>{_esc(note)}</li>" for note in obj["notes"]) + "</ul>")
    return "".join(out)


def _speed_md(obj: Mapping[str, Any]) -> str:
    baseline = obj["settings"].get("baseline") or "baseline"
    lines = [f"### Speed: {_md(', '.join(obj['settings'].get('suites', [])))}", "", _md(_bench_caption(obj)), "",
             f"| suite | dtype | direction | backend | layers | total ms | GFLOP/s | × {_md(baseline)} | × matmul |",
             "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for row in obj["summary"]:
        lines.append(f"| {_md(row['suite'])} | {_md(row['dtype'])} | {_md(row['direction'])} | {_md(row['backend'])} | "
                     f"{row['layers']} | {_total_ms(row['total_s'])} | {_gflops(row['geomean_gflops'])} | "
                     f"{_times(row['geomean_ratio_torch'])} | {_times(row['geomean_ratio_matmul'])} |")
    if obj["notes"]:
        lines += [""] + [f"- {_md(note)}" for note in obj["notes"]]
    return "\n".join(lines) + "\n"


def render_speed(bench: Sequence[Mapping[str, Any]], fmt: str = "html") -> str:
    """A page of ``convspec bench`` results alone, in "html" or "markdown"."""
    if not bench:
        raise ValueError("nothing to report: no bench results")
    for obj in bench:
        check_bench(obj)
    if fmt == "markdown":
        return "## convspec bench\n\n" + "\n".join(_speed_md(obj) for obj in bench)
    dates = sorted(str(obj["machine"].get("date", "")) for obj in bench)
    meta = f"{len(bench)} run{'s' * (len(bench) != 1)} · {dates[0]}" + (f" – {dates[-1]}" if len(dates) > 1 else "")
    return _html_page(f"convspec bench — {dates[0]}", "convspec bench", meta, "",
                      [("speed", "Speed", "".join(_html_speed(obj) for obj in bench))],
                      "Generated by convspec bench. Benchmarks report; they never assert times.")

