"""The HTML report: one self-contained page (inline CSS and SVG, no script, no network): verdicts,
the op × clause/feature matrix, a card per failure with its reproducers, the accuracy profile,
coverage by equivalence class and feature, environment and settings, and a Speed section for
``convspec bench`` results.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from ...bench.render import speed_html
from ...spec import CLAUSES
from ...spec.features import FEATURES, PARTIAL_FEATURES
from ..compare import PROFILE_EDGES
from ..results import NONCONFORMING, NOT_APPLICABLE, STATUSES, CheckResult, FailureCluster, Results, status_label
from .common import (Profile, Row, accuracy_profile, bin_label, catalogue_classes, cell_state, count_nonconforming,
                     count_not_applicable, count_ran, counts_title, esc, failures_first, known_groups, matrix,
                     number_text, ratio_text, scope_text)
from .json import finite_json
from .page import html_page

#: Failure cards per backend in the HTML report.
MAX_HTML_FAILURES = 200


def _h_cell(counts: Counter[str] | None, backend: str, row: Row) -> str:
    state = cell_state(counts)
    if state == "none":
        return '<td class="cell none">·</td>'
    assert counts is not None
    title = esc(f"{backend} · {row.op} · {row.name}: {counts_title(counts)}")
    na = f' <span class="na-note">+{count_not_applicable(counts)} n/a</span>' if count_not_applicable(counts) else ""
    if state == "fail":
        text = f"✗ {count_nonconforming(counts)}/{count_ran(counts)}{na}"
    elif state == "known":
        text = f"⚠ {counts['known_failure']} known{na}"
    elif state == "pass":
        text = f"✓ {counts['passed']}{na}"
    elif state == "adapter":
        text = f"adapter {counts['validated_by_adapter']}"
    else:
        text = f"n/a {count_not_applicable(counts)}"
    return f'<td class="cell {state}" title="{title}">{text}</td>'


def _html_summary(results: Results) -> str:
    parts = ['<div class="cards">']
    for run in results.backends:
        counts = run.counts()
        css = {"conformant": "pass", "non-conformant": "fail"}.get(run.verdict, "na")
        parts.append(f'<div class="backend"><h3>{esc(run.name)} <span class="verdict {css}">'
                     f'{esc(run.verdict)}</span></h3>')
        if run.spec and run.spec != run.name:
            parts.append(f'<div class="small">loaded as <code>{esc(run.spec)}</code></div>')
        if run.load_error:
            parts.append(f'<p>{esc(run.load_error)}</p></div>')
            continue
        parts.append('<div class="counts">')
        for status in STATUSES:
            if counts[status] or status in ("passed", "failed", "unsupported"):
                color = ("var(--pass)" if status == "passed" else "var(--na)" if status in (
                    *NOT_APPLICABLE, "validated_by_adapter") else "#9a6700" if status == "known_failure"
                    else "var(--fail)" if counts[status] else "var(--muted)")
                parts.append(f'<span><b style="color:{color}">{counts[status]}</b> '
                             f'{esc(status_label(status).replace("_", " "))}</span>')
        parts.append("</div>")
        profile = accuracy_profile(run)
        caps = run.capabilities or {}
        facts = [f"{run.seconds:.1f} s ({run.backend_seconds:.1f} s in the backend)",
                 f"max error / bound {ratio_text(profile.max_ratio)} over {profile.compared:,} elements"]
        accumulation = caps.get("accumulation")
        if isinstance(accumulation, Mapping):
            facts.append("accumulates " + ", ".join(f"{dtype} in {acc}" for dtype, acc in accumulation.items())
                         + ", the others in themselves")
        elif accumulation:
            facts.append(f"accumulates in {accumulation}")
        if caps.get("input_precision"):
            facts.append(f"input precision {caps['input_precision']}")
        parts.append('<div class="small">' + "<br>".join(esc(f) for f in facts) + "</div>")
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
        rows.append(f"<tr><td>{esc(key)}</td><td>{esc(text)}</td></tr>")
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
           "<thead><tr><th>op · clause / feature</th>" + "".join(f"<th>{esc(n)}</th>" for n in names)
           + "</tr></thead>"]
    current = None
    for row in rows:
        if row.op != current:
            if current is not None:
                out.append("</tbody>")
            out.append(f'<tbody id="matrix-{esc(row.op)}">')
            current = row.op
        states = [cell_state(cells.get((row, n))) for n in names]
        clean = "clean" if "fail" not in states else "dirty"
        cells_html = "".join(_h_cell(cells.get((row, n)), n, row) for n in names)
        if row.kind == "op":
            out.append(f'<tr class="op {clean}"><th>{esc(row.op)}</th>{cells_html}</tr>')
            continue
        name = f"<code>{esc(row.name)}</code>"
        out.append(f'<tr class="{row.kind} {clean}"><td class="label" title="{esc(row.name)}: {esc(row.title)}">'
                   f'<span class="kind">{row.kind}</span>{name}<span class="desc">{esc(row.title)}</span></td>'
                   f"{cells_html}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _html_failure(result: CheckResult, number: int, cluster: FailureCluster | None = None) -> str:
    repro = result.reproducer()
    clause_text = CLAUSES.get(result.clause, "")
    parts = [f'<div class="failure" id="failure-{number}"><h3>{esc(result.status.upper())} · '
             f"{esc(result.backend)} · {esc(result.op)} · <code>{esc(result.clause)}</code></h3>"]
    if clause_text:
        parts.append(f'<div class="clause-text">{esc(result.clause)}: {esc(clause_text)}</div>')
    parts.append("<dl>")
    if cluster is not None:
        parts.append(f"<dt>cluster</dt><dd>{esc(cluster.id)}: {esc(cluster.cause)} (minimal case"
                     f"{' after shrinking' * cluster.shrunk})</dd>")
    parts.append(f"<dt>check</dt><dd>{esc(result.family)} / {esc(result.check)}</dd>")
    if result.case is not None:
        label = f' <span class="small">(catalogue: {esc(result.case.label)})</span>' if result.case.label else ""
        parts.append(f"<dt>case</dt><dd><code>{esc(result.case.descriptor)}</code>{label}</dd>")
    if result.features:
        parts.append(f"<dt>features</dt><dd>{esc(', '.join(result.features))}</dd>")
    if result.message:
        parts.append(f"<dt>what</dt><dd>{esc(result.message)}</dd>")
    parts.append("</dl>")
    failing = [c for c in result.comparisons if not c.passed]
    if failing:
        parts.append('<table class="worst"><tr><th>output</th><th>elements breaking</th><th>clause</th>'
                     "<th>worst index</th><th>got</th><th>expected</th><th>error</th><th>bound</th>"
                     "<th>error / bound</th></tr>")
        for comparison in failing:
            w = comparison.worst
            share = comparison.violations / comparison.count if comparison.count else 1.0
            cells = [esc(comparison.output), f"{comparison.violations:,} / {comparison.count:,} ({share:.1%})",
                     f'<code title="{esc(comparison.rule)}">{esc(comparison.clause)}</code>']
            if w is None:
                cells += ["—"] * 6
            else:
                ratio = ratio_text(w.error / w.bound) if w.bound else "—"
                cells += [esc(list(w.index)), esc(number_text(w.out, comparison.output)),
                          esc(number_text(w.ref, comparison.output)), esc(ratio_text(w.error)),
                          esc(ratio_text(w.bound)) if w.bound else "exact", esc(ratio)]
            parts.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
        parts.append("</table>")
    parts.append('<div class="repro"><span>reproduce (shell)</span>'
                 f"<pre class=\"cli\">{esc(repro['cli'])}</pre><span>reproduce (Python)</span>"
                 f"<pre>{esc(repro['python'])}</pre></div></div>")
    return "".join(parts)


def _failure_groups(results: Results) -> list[tuple[str, str, str, int, int]]:
    """(backend, op, clause, count, number of the first card) per kind of failure, in card order."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    number = 0
    for run in results.backends:
        for result in failures_first(run)[:MAX_HTML_FAILURES]:
            number += 1
            groups.setdefault((run.name, result.op, result.clause), [0, number])[0] += 1
    return [(backend, op, clause, count, first) for (backend, op, clause), (count, first) in groups.items()]


def _html_glance(results: Results) -> str:
    groups = _failure_groups(results)
    if not groups:
        return ""
    items = "".join(f'<li><a href="#failure-{first}">{esc(backend)} · {esc(op)} · <code>{esc(clause)}</code>'
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
        for result in failures_first(run)[:MAX_HTML_FAILURES]:
            number += 1
            for cluster in run.clusters:
                if cluster.is_representative(result):
                    cards[cluster.id] = number
        for cluster in run.clusters:
            signature = (f"{cluster.status} {'/'.join(cluster.clauses)}"
                         + (f" {cluster.exception}" if cluster.exception else ""))
            link = (f'<a href="#failure-{cards[cluster.id]}">{esc(cluster.id)}</a>' if cluster.id in cards
                    else esc(cluster.id))
            rows.append(f"<tr><td>{esc(run.name)}</td><td>{link}</td><td><code>{esc(signature)}</code>"
                        f'<div class="small">{esc(", ".join(cluster.checks))}</div></td><td>{esc(cluster.cause)}'
                        + (f'<div class="small">{esc(cluster.note)}</div>' if cluster.note else "")
                        + f"</td><td>{cluster.count}</td><td><code>{esc(cluster.representative)}</code></td></tr>")
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
        failures = failures_first(run)
        if not failures:
            continue
        out.append(f"<h3>{esc(run.name)}: {len(failures)} non-conforming result{'s' * (len(failures) != 1)}</h3>")
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
        for expected, members in known_groups(run):
            first = members[0]
            link = (f' · <a href="{esc(expected["link"])}">tracked here</a>' if expected.get("link") else "")
            case = f"<dd><code>{esc(first.case.descriptor)}</code></dd>" if first.case is not None else ""
            out.append(f'<div class="expected"><h3>known failure ×{len(members)} · {esc(run.name)} · '
                       f"{esc(first.op)} · <code>{esc(first.clause)}</code></h3><dl><dt>reason</dt>"
                       f"<dd>{esc(expected.get('reason', ''))}{link}</dd><dt>entry</dt>"
                       f"<dd>{esc(expected.get('source', ''))}</dd><dt>e.g.</dt>{case}"
                       f"<dd>{esc(first.message)}</dd><dt>reproduce (shell)</dt>"
                       f'<dd><pre class="cli">{esc(first.reproducer()["cli"])}</pre></dd></dl></div>')
        for entry in run.unexpected_passes:
            kind = "unexpectedly passed — a failure (strict)" if entry.get("strict") else \
                "unexpectedly passed — a warning"
            out.append(f'<div class="expected"><h3>{esc(kind)} · {esc(run.name)}</h3><p>'
                       f"{esc(entry['reason'])}</p><p class=\"small\">{entry['in_scope']} result(s) in its scope "
                       f"(<code>{esc(scope_text(entry))}</code>) ran and none failed: fixed here? "
                       f"({esc(entry['source'])})</p></div>")
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
             f'viewBox="0 0 {width} {height}" role="img" class="accuracy-plot" aria-label="{esc(title)}" '
             'font-family="system-ui, sans-serif" font-size="11">']
    if title:
        parts.append(f"<title>{esc(title)}</title>")
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
                     f'fill="{color}"><title>{esc(tip)}</title></rect>')

    bar(left, profile.exact, "#8c959f", f"{profile.exact:,} elements equal to the reference")
    parts.append(f'<text x="{left + slot / 2:.1f}" y="{top + plot_h + 14}" text-anchor="middle" '
                 'fill="#57606a">exact</text>')
    x0 = left + 2 * slot
    for index, count in enumerate(profile.histogram):
        color = "#cf222e" if index >= beyond_from else "#54aeff"
        bar(x0 + index * slot, count, color, f"{count:,} elements with error / bound in {bin_label(index)}")
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
        text += f" Typical error / bound of the rest: {bin_label(median)}; largest {ratio_text(profile.max_ratio)}."
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
            ops.append(f"<tr><td>{esc(op)}</td><td>{count:,}</td><td>{ratio_text(worst)}</td>"
                       f'<td class="bar-cell"><span class="bar{over}" style="width:{share * 130:.0f}px"></span>'
                       "</td></tr>")
        ops.append("</table>")
        out.append(f'<div class="profile" id="profile-{esc(run.name)}"><div><h3>{esc(run.name)}</h3>'
                   f"{profile_svg(profile, title=title)}</div><div><p>{esc(_profile_reading(profile))}</p>"
                   f"{''.join(ops)}</div></div>")
    return "".join(out)


def _html_coverage(results: Results) -> str:
    classes = catalogue_classes()
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
        out.append("<table><tr><th>class</th><th>entries</th>" + "".join(f"<th>{esc(n)}</th>" for n in names)
                   + "</tr>")
        for group in all_classes:
            seen = entries_seen.get(group, set())
            total = sum(1 for value in classes.values() if value == group) or len(seen)
            gap = "" if seen else ' class="gap"'
            row = Row("", "class", group)
            cells = "".join(_h_cell(by_class.get(group, {}).get(n), n, row) for n in names)
            out.append(f"<tr{gap}><td><code>{esc(group)}</code></td><td>{len(seen)}/{total}</td>{cells}</tr>")
        out.append("</table>")
        missing = [g for g in all_classes if g not in by_class]
        if missing:
            out.append(f'<p class="small">{len(missing)} class{"es" * (len(missing) != 1)} not exercised in this '
                       "run (highlighted).</p>")
    else:
        out.append("<p>No catalogue cases ran.</p>")
    out.append(f'<p class="small">Generated cases (hypothesis) per backend: '
               f'{esc(", ".join(f"{n}: {generated[n]:,}" for n in names))}.</p>')
    out.append("</div><div><h3>Features exercised</h3><table><tr><th>feature</th>"
               + "".join(f"<th>{esc(n)}</th>" for n in names) + "</tr>")
    for feature in (f for f in FEATURES if f not in PARTIAL_FEATURES):
        used = features_used.get(feature, Counter())
        gap = "" if sum(used.values()) else ' class="gap"'
        out.append(f'<tr{gap}><td title="{esc(FEATURES[feature])}"><code>{esc(feature)}</code></td>'
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
            out.append(f"<tr{gap}><td>{esc(run.name)}</td><td>{esc(op)}</td><td>{value['covered']}/"
                       f"{value['feasible']} ({value['cases']} cases)</td><td>{esc('; '.join(missing)) or '—'}</td></tr>")
    out.append('</table><p class="small">For every two features an op can use, the feasible combinations '
               "(both, either without the other, neither) reached by at least one generated case that ran.</p>")
    return "".join(out)


def _kv_table(mapping: Mapping[str, Any]) -> str:
    rows = []
    for key, value in mapping.items():
        text = value if isinstance(value, str) else json.dumps(finite_json(value), default=str)
        if len(text) > 400:
            text = text[:400] + " …"
        rows.append(f"<tr><td>{esc(key)}</td><td><code>{esc(text)}</code></td></tr>")
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
        sections.insert(-1, ("speed", "Speed", "".join(speed_html(obj) for obj in bench)))
    return html_page(f"convspec report — {results.created}", "convspec conformance report", meta,
                      f'<div class="banner {banner}">{esc(verdict)}{_html_glance(results)}</div>', sections,
                      "Generated by convspec. Every row and card cites a SPEC.md clause.")
