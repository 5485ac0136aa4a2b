"""What every report format shares: the op × clause/feature matrix and its cell counts, the
accuracy profile, and the small formatting helpers (escaping, numbers, verdict symbols).
"""

from __future__ import annotations

import html
import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...spec import CLAUSES, OPS
from ...spec.features import FEATURES
from ..compare import PROFILE_EDGES
from ..results import (NONCONFORMING, NOT_APPLICABLE, STATUSES, BackendRun, CheckResult, Results, clauses_met,
                       status_label)

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


def op_order(op: str) -> int:
    return list(OPS).index(op) if op in OPS else len(OPS)


def clause_order(clause: str) -> int:
    return list(CLAUSES).index(clause) if clause in CLAUSES else len(CLAUSES)


def feature_order(feature: str) -> int:
    return -1 if feature == PLAIN else list(FEATURES).index(feature) if feature in FEATURES else len(FEATURES)


def matrix(results: Results) -> tuple[list[Row], dict[tuple[Row, str], Counter[str]]]:
    """Rows op × (total, clause, feature) and status counts per (row, backend name).

    A result counts in its op's total, under its clause (a passed comparison with the reference
    under every clause it was held to, see :func:`clauses_met`), and under every feature its
    case uses (a case with none under ``(plain)``); results without a case (invalid
    configurations) count in the total and under their clause only.
    """
    cells: dict[tuple[Row, str], Counter[str]] = {}
    rows: set[Row] = set()
    for run in results.backends:
        for result in run.results:
            keys = [Row(result.op, "op", result.op)]
            keys += [Row(result.op, "clause", clause) for clause in clauses_met(result)]
            if result.case is not None:
                keys += [Row(result.op, "feature", f) for f in (result.features or (PLAIN,))]
            for row in keys:
                rows.add(row)
                cells.setdefault((row, run.name), Counter())[result.status] += 1
    kind_order = {"op": 0, "clause": 1, "feature": 2}
    ordered = sorted(rows, key=lambda r: (op_order(r.op), r.op, kind_order[r.kind],
                                          clause_order(r.name) if r.kind == "clause" else feature_order(r.name),
                                          r.name))
    return ordered, cells


def cell_state(counts: Counter[str] | None) -> str:
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


def count_not_applicable(counts: Counter[str]) -> int:
    """Checks that did not run: declared unsupported, or raised NotImplementedError / Unsupported."""
    return sum(counts[s] for s in NOT_APPLICABLE)


def count_nonconforming(counts: Counter[str]) -> int:
    return sum(counts[s] for s in NONCONFORMING)


def count_ran(counts: Counter[str]) -> int:
    return counts["passed"] + count_nonconforming(counts)


def counts_title(counts: Counter[str]) -> str:
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
    return Profile(histogram, exact, top, dict(sorted(per_op.items(), key=lambda item: op_order(item[0]))))


def bin_label(index: int) -> str:
    if index == 0:
        return f"≤ 1e{PROFILE_EDGES[0]:g}"
    if index == len(PROFILE_EDGES):
        return f"> 1e{PROFILE_EDGES[-1]:g}"
    return f"1e{PROFILE_EDGES[index - 1]:g} – 1e{PROFILE_EDGES[index]:g}"


# -- helpers --------------------------------------------------------------------------------------------

def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def ratio_text(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def number_text(value: float, output: str = "") -> str:
    """A value as it is: the shortest repr that round-trips (indices as integers)."""
    if output == "indices" and math.isfinite(value):
        return str(int(value))
    return repr(float(value))


def verdict_symbol(run: BackendRun) -> str:
    return {"conformant": "✅", "non-conformant": "❌"}.get(run.verdict, "⚠️")


def catalogue_classes() -> dict[str, str]:
    """Catalogue entry name -> equivalence class (empty when the catalogue cannot be imported)."""
    try:
        from ..catalogue import CATALOGUE
    except Exception:  # noqa: BLE001 - a report of saved results must render without the engine
        return {}
    return {entry.name: entry.equivalence_class for entry in CATALOGUE}


def failures_first(run: BackendRun) -> list[CheckResult]:
    """Non-conforming results, the minimal case of each failure cluster first (BackendRun.failures)."""
    return run.failures()


def known_groups(run: BackendRun) -> list[tuple[dict[str, Any], list[CheckResult]]]:
    """A backend's known failures grouped by the expected-failures entry they matched."""
    groups: dict[str, tuple[dict[str, Any], list[CheckResult]]] = {}
    for result in run.results:
        if result.status == "known_failure" and result.expected:
            groups.setdefault(str(result.expected.get("source", "")), (result.expected, []))[1].append(result)
    return list(groups.values())


def scope_text(entry: Mapping[str, Any]) -> str:
    return " ".join(f"{key}={','.join(map(str, values))}" for key, values in entry.get("match", {}).items())
