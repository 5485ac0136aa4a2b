"""Turning results into text: the terminal summary and the failure details.

Results carry structure only; this module is where it becomes prose.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..results import STATUSES, BackendRun, CheckResult, FailureCluster, status_label

if TYPE_CHECKING:
    from ..results import Results


def counts_by(results: list[CheckResult], *keys: str) -> dict[tuple[str, ...], Counter[str]]:
    """Status counts grouped by the given CheckResult attributes (e.g. "op", "family")."""
    table: dict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    for result in results:
        table[tuple(getattr(result, key) for key in keys)][result.status] += 1
    return dict(table)


def _counts_text(counter: Counter[str]) -> str:
    return " ".join(f"{counter[s]} {status_label(s)}" for s in STATUSES if counter[s])


def expected_failure_lines(run: BackendRun, indent: str = "  ") -> list[str]:
    """Known failures (grouped by entry, with the reason and the first case) and the entries that
    unexpectedly passed (a warning, or a failure for a strict entry) of one backend's run."""
    lines = []
    known: dict[str, list[CheckResult]] = {}
    for result in run.results:
        if result.status == "known_failure" and result.expected:
            known.setdefault(str(result.expected.get("source", "")), []).append(result)
    for source, members in known.items():
        first = members[0]
        expected = first.expected or {}
        link = f" ({expected['link']})" if expected.get("link") else ""
        lines.append(f"{indent}known failure ×{len(members)} [{source}]: {expected.get('reason', '')}{link}")
        lines.append(f"{indent}  e.g. {first.op} [{first.check}] {first.clause}"
                     + (f": {first.case.descriptor}" if first.case is not None else ""))
    for entry in run.unexpected_passes:
        strict = "FAILED, strict" if entry.get("strict") else "a warning"
        scope = " ".join(f"{key}={','.join(map(str, values))}" for key, values in entry["match"].items())
        lines.append(f"{indent}unexpectedly passed ({strict}) [{entry['source']}]: {entry['in_scope']} result(s) in "
                     f"its scope ({scope}) ran, none failed: {entry['reason']}")
    return lines


def cluster_line(cluster: FailureCluster) -> str:
    """``conv#1 failed ERR-EXACT-1 [differential, grouped_concat]: fails whenever groups > 1 …``."""
    found = ", ".join(cluster.checks or (cluster.check,))
    exception = f" {cluster.exception}" if cluster.exception else ""
    return (f"{cluster.id} {cluster.status} {'/'.join(cluster.clauses)}{exception} [{found}]: {cluster.cause}"
            + (f"; {cluster.note}" if cluster.note else ""))


def coverage_line(pair_coverage: Mapping[str, Mapping[str, Any]]) -> str:
    """``pairwise feature coverage: 950/958 (99%); conv 173/173, …`` (see coverage.py)."""
    covered = sum(int(v["covered"]) for v in pair_coverage.values())
    feasible = sum(int(v["feasible"]) for v in pair_coverage.values())
    share = f" ({covered / feasible:.0%})" if feasible else ""
    return (f"pairwise feature coverage of generated cases: {covered}/{feasible}{share}; "
            + ", ".join(f"{op} {v['covered']}/{v['feasible']}" for op, v in pair_coverage.items()))


def describe_failure(result: CheckResult, indent: str = "    ", *, cluster: FailureCluster | None = None) -> str:
    """Clause, case, worst element and reproducers of one non-conforming result (with the likely
    cause of the failure ``cluster`` it represents)."""
    from ...spec import CLAUSES

    lines = [f"{result.status.upper()} {result.op} [{result.check}] {result.clause}: {CLAUSES.get(result.clause, '')}"]
    if cluster is not None:
        lines.append(f"cluster {cluster.id}: {cluster.cause} (minimal case{' after shrinking' * cluster.shrunk})")
    if result.case is not None:
        lines.append(f"case: {result.case.descriptor}")
    if result.message:
        lines.append(f"what: {result.message}")
    worst = result.worst
    if worst is not None and not worst.passed and worst.max_ratio and worst.max_ratio != float("inf"):
        lines.append(f"error / bound: {worst.max_ratio:.3g}")
    repro = result.reproducer()
    lines.append(f"reproduce: {repro['cli']}")
    lines.append("python:")
    lines += ["  " + line for line in repro["python"].splitlines()]
    return "\n".join(indent + line if i else indent[:-2] + "- " + line for i, line in enumerate(lines))


def terminal_summary(results: Results, *, max_failures: int = 10) -> str:
    """Per backend: the verdict, counts per op and check family, unsupported reasons, failures."""
    out = []
    for run in results.backends:
        header = f"{run.name}: {run.verdict.upper()}"
        if run.load_error:
            out.append(f"{header} — {run.load_error}")
            continue
        out.append(f"{header}  ({_counts_text(run.counts())}; {run.seconds:.1f} s, "
                   f"backend {run.backend_seconds:.1f} s, harness {run.harness_seconds:.1f} s)")
        table = counts_by(run.results, "op", "family")
        ops = sorted({op for op, _ in table})
        families = sorted({family for _, family in table})
        width = max((len(op) for op in ops), default=4)
        for op in ops:
            cells = [f"{family} {_counts_text(table[(op, family)])}" for family in families if (op, family) in table]
            out.append(f"  {op:<{width}}  " + " | ".join(cells))
        if run.pair_coverage:
            out.append("  " + coverage_line(run.pair_coverage))
        for status, who in (("unsupported", "declared by the backend"), ("unsupported_raised", "raised by the backend")):
            reasons = Counter(r.message for r in run.results if r.status == status)
            if reasons:
                more = f"; … {len(reasons) - 8} more reasons (see --report)" if len(reasons) > 8 else ""
                out.append(f"  unsupported ({who}): "
                           + "; ".join(f"{reason} ×{count}" for reason, count in reasons.most_common(8)) + more)
        if any(r.status == "validated_by_adapter" for r in run.results):
            out.append("  validated by the adapter: convspec refused those invalid configurations before the "
                       "implementation ran; its own validation was not exercised")
        out += expected_failure_lines(run)
        if run.clusters:
            out.append(f"  {len(run.clusters)} distinct failure{'s' * (len(run.clusters) != 1)} "
                       "(clusters of generated cases; the minimal case of each is listed first below):")
            out += [f"  * {cluster_line(cluster)}" for cluster in run.clusters]
        failures = run.failures()
        clusters = {c.id: c for c in run.clusters}
        for result in failures[:max_failures]:
            cluster = clusters.get(result.cluster)
            out.append(describe_failure(result, cluster=cluster if cluster and cluster.is_representative(result) else None))
        if len(failures) > max_failures:
            out.append(f"  … {len(failures) - max_failures} more non-conforming results (see --report)")
    verdict = "all backends conform" if results.conformant else "NON-CONFORMANCE found"
    if results.conformant and results.known_failures():
        verdict += f" (apart from {len(results.known_failures())} known failure(s))"
    out.append(f"convspec {results.suite_version}, spec {results.spec_version}: {verdict}")
    return "\n".join(out)
