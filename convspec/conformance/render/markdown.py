"""The Markdown report: the verdict per backend and the op × clause matrix, short enough for a
pull-request comment; feature rows and each failure folded in ``<details>``.
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ...spec import CLAUSES
from ..results import CheckResult, Results
from .common import (Row, accuracy_profile, cell_state, count_nonconforming, count_not_applicable, count_ran,
                     known_groups, matrix, number_text, ratio_text, scope_text, verdict_symbol)

MAX_MARKDOWN_FAILURES = 15
#: GitHub refuses comments over 65536 characters.
MARKDOWN_BUDGET = 60_000


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


def _md(text: Any) -> str:
    """Text safe inside a GitHub table cell or summary line."""
    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def _md_cell(counts: Counter[str] | None) -> str:
    state = cell_state(counts)
    if state == "none":
        return ""
    assert counts is not None
    if state == "fail":
        return f"❌ {count_nonconforming(counts)}/{count_ran(counts)}"
    if state == "known":
        return f"⚠️ {counts['known_failure']} known"
    if state == "pass":
        extra = f" ({count_not_applicable(counts)} n/a)" if count_not_applicable(counts) else ""
        return f"✅ {counts['passed']}{extra}"
    if state == "adapter":
        return f"🔹 {counts['validated_by_adapter']} by adapter"
    return f"⚪ n/a {count_not_applicable(counts)}"


def _summary_rows_md(results: Results) -> list[str]:
    lines = ["| backend | verdict | passed | failed | unsupported (declared / raised) | errored / crashed / timed out | "
             "max error / bound | time |", "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for run in results.backends:
        counts = run.counts()
        if run.load_error:
            lines.append(f"| {_md(run.name)} | ⚠️ not loaded: {_md(run.load_error)} | | | | | | |")
            continue
        profile = accuracy_profile(run)
        lines.append(f"| {_md(run.name)} | {verdict_symbol(run)} {run.verdict} | {counts['passed']} | "
                     f"{counts['failed']} | {counts['unsupported']} / {counts['unsupported_raised']} | "
                     f"{counts['errored'] + counts['crashed'] + counts['timed_out']} | "
                     f"{ratio_text(profile.max_ratio)} | {run.seconds:.1f} s |")
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
                    f"{comparison.clause}; worst at {list(w.index)}: got {number_text(w.out, comparison.output)}, expected {number_text(w.ref, comparison.output)}, "
                    f"error {ratio_text(w.error)}" + (f" vs bound {ratio_text(w.bound)} (error / bound "
                                                   f"{ratio_text(w.error / w.bound)})" if w.bound else ""))
    body += ["", "Reproduce:", "", f"```sh\n{repro['cli']}\n```", "", f"```python\n{repro['python']}\n```", "",
             "</details>", ""]
    return body



def _expected_md(results: Results) -> list[str]:
    """Known failures (reason, count, a case and its reproducer) and unexpected passes."""
    lines: list[str] = []
    for run in results.backends:
        for expected, members in known_groups(run):
            first = members[0]
            link = f" ([tracked]({expected['link']}))" if expected.get("link") else ""
            lines += [f"- ⚠️ **{_md(run.name)}** known failure ×{len(members)} — {_md(expected.get('reason', ''))}"
                      f"{link} <sub>({_md(expected.get('source', ''))})</sub>",
                      f"  e.g. `{first.op}` {first.clause}" + (f": `{first.case.descriptor}`" if first.case else "")]
        for entry in run.unexpected_passes:
            kind = "❌ unexpectedly passed (strict)" if entry.get("strict") else "⚠️ unexpectedly passed (a warning)"
            lines.append(f"- {kind}: **{_md(run.name)}** {_md(entry['reason'])} — {entry['in_scope']} result(s) in "
                         f"its scope (`{_md(scope_text(entry))}`) ran, none failed "
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
