"""Failure clusters: every distinct bug a stream of generated cases finds, not only the first.

A stream (one op, one check family or property) explores its whole example budget and keeps
every case's results. Its non-conforming results are then grouped in two steps:

1. by **key**: check, status, clause and exception type. ERR-BOUND-1, ERR-EXACT-1 and ERR-STAT-1
   are one key: the same wrong value, judged exactly or within the bound or statistically
   according to the data recipe (SPEC.md, Error model), not a different bug;
2. within a key, by **conditions**: greedily, the conjunction of at most two attributes that
   covers the most remaining failing cases while (almost) no passing case of the same check has
   it — "fails whenever groups > 1". Attributes are the case's features
   (``convspec/spec/features.py``), and only where no feature separates, its dtype, rank or data
   recipe. Passing cases on all-zero data are not counter-evidence: they exercise no arithmetic.

Each cluster then gets one representative, shrunk by the engine (a hypothesis search restricted
to the cluster's key and conditions), so that a backend with two independent bugs in one op
reports both, each with its own minimal reproducer.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..spec import OPS
from ..spec.features import FEATURES, features_of
from .results import NONCONFORMING, CheckResult, FailureCluster, case_size

__all__ = ["Group", "attributes", "build_clusters", "cause_text", "group_failures", "key_of", "matches",
           "merge_clusters"]

#: Clauses that name one wrong value at different strictness (ERR-BOUND-1, ERR-EXACT-1, ERR-STAT-1).
VALUE_CLAUSES = frozenset({"ERR-BOUND-1", "ERR-EXACT-1", "ERR-STAT-1"})
#: Statuses whose cases are never run again to shrink them: a hang costs a whole --timeout and a
#: crash a new process per try; the smallest case of the cluster represents it instead.
NOT_RERUN = frozenset({"crashed", "timed_out"})
#: A condition explains a cluster when at least this share of the (informative) cases having it
#: failed that way; below it, the failing cases stay together as "no common feature".
MIN_PRECISION = 0.75
#: Failing cases a dtype, rank or data condition needs before it counts as an explanation.
MIN_SUPPORT = 3
#: Recipes whose passing cases say nothing about a value bug (all zeros: every output is 0).
UNINFORMATIVE_RECIPES = ("zeros",)

_EXCEPTION = re.compile(r"\b([A-Z][A-Za-z0-9_]*(?:Error|Exception|Unsupported|Exit|Interrupt|Warning))\b")


def exception_of(result: CheckResult) -> str:
    """The exception type a failing backend call raised ("" for a wrong result or a hang)."""
    if result.status in ("failed", "passed", "timed_out"):
        return ""
    match = _EXCEPTION.search(result.message)
    return match.group(1) if match else ""


def key_of(result: CheckResult) -> tuple[str, str, str, str]:
    """(check, status, clause, exception type), with the value clauses as one."""
    clause = "ERR-VALUE" if result.clause in VALUE_CLAUSES else result.clause
    return result.check, result.status, clause, exception_of(result)


def attributes(result: CheckResult) -> tuple[frozenset[str], frozenset[str]]:
    """The case's features, and its other attributes (``dtype=``, ``rank=``, ``data=``)."""
    case = result.case
    if case is None:
        return frozenset(), frozenset()
    features = frozenset(result.features) or features_of(case.op, case.params_object)
    rank = len(case.params.get("input_shape", ())) - 2
    return features, frozenset({f"dtype={case.dtype}", f"rank={rank}", f"data={case.data}"})


def matches(result: CheckResult, key: tuple[str, str, str, str], conditions: Sequence[str]) -> bool:
    """Whether ``result`` fails with ``key`` on a case having every condition."""
    if result.status not in NONCONFORMING or key_of(result) != key:
        return False
    features, other = attributes(result)
    return set(conditions) <= features | other


@dataclass
class Group:
    """Failing results of one key that one condition explains (before shrinking)."""

    key: tuple[str, str, str, str]
    conditions: tuple[str, ...]
    members: list[CheckResult]
    passing_with: int = 0
    shared: tuple[str, ...] = ()
    clauses: tuple[str, ...] = field(default_factory=tuple)


def _informative(result: CheckResult) -> bool:
    return result.case is not None and result.case.data not in UNINFORMATIVE_RECIPES


def _candidates(members: Sequence[CheckResult]) -> list[tuple[int, tuple[str, ...]]]:
    """(tier, conjunction) of one or two attributes found among ``members``: features first."""
    features: set[str] = set()
    others: set[str] = set()
    for member in members:
        f, o = attributes(member)
        features |= f
        others |= o
    ordered_f = sorted(features, key=lambda name: (list(FEATURES).index(name) if name in FEATURES else 99, name))
    ordered_o = sorted(o for o in others if o.removeprefix("data=") not in UNINFORMATIVE_RECIPES)
    out: list[tuple[int, tuple[str, ...]]] = [(0, (f,)) for f in ordered_f]
    out += [(1, pair) for pair in itertools.combinations(ordered_f, 2)]
    out += [(2, (o,)) for o in ordered_o]
    out += [(3, (f, o)) for f in ordered_f for o in ordered_o]
    return out


def _precision(conjunction: Sequence[str], members: Sequence[frozenset[str]],
               passing: Sequence[frozenset[str]]) -> tuple[int, int]:
    """(failing members, passing cases) having every attribute of ``conjunction``."""
    wanted = set(conjunction)
    return sum(1 for m in members if wanted <= m), sum(1 for p in passing if wanted <= p)


def group_failures(outcomes: Sequence[CheckResult]) -> list[Group]:
    """Group the non-conforming results among ``outcomes`` (every result of a stream, passing ones
    included: they are the counter-evidence) by key, then by explaining conditions.

    Per key: if a conjunction of attributes that every failing case has is (almost) absent from
    passing cases, it explains them all: one group. Otherwise the failing cases are split
    greedily by feature conjunctions that each explain at least two of them; what is left is
    one group, described by the shared feature with the fewest passing cases. Groups come
    largest first; members keep the stream's order.
    """
    by_key: dict[tuple[str, str, str, str], list[CheckResult]] = {}
    for result in outcomes:
        if result.status in NONCONFORMING and result.case is not None:
            by_key.setdefault(key_of(result), []).append(result)
    groups: list[Group] = []
    for key, failing in by_key.items():
        check = key[0]
        passing = [frozenset().union(*attributes(r)) for r in outcomes
                   if r.check == check and r.status == "passed" and _informative(r)]
        having = {id(m): frozenset().union(*attributes(m)) for m in failing}

        def best_shared(members: list[CheckResult], *, features_only: bool = False
                        ) -> tuple[tuple[str, ...], int, float] | None:
            """The shared conjunction with the best precision: (conjunction, passing with it, precision)."""
            sets = [having[id(m)] for m in members]
            best = None
            for tier, conjunction in _candidates(members):
                if features_only and tier > 1:
                    continue
                covered, against = _precision(conjunction, sets, passing)
                if covered < len(members):
                    continue
                precision = covered / (covered + against)
                # Features explain before dtype, rank or data do; those need MIN_SUPPORT cases.
                if tier > 1 and covered < MIN_SUPPORT:
                    continue
                score = (precision >= MIN_PRECISION, tier <= 1, precision, -len(conjunction))
                if best is None or score > best[0]:
                    best = (score, conjunction, against, precision)
            return None if best is None else best[1:]

        whole = best_shared(failing)
        if whole is not None and whole[2] >= MIN_PRECISION:
            groups.append(Group(key, whole[0], failing, whole[1]))
            continue
        remaining = list(failing)
        while len(remaining) >= 2:
            sets = [having[id(m)] for m in remaining]
            split = None
            for tier, conjunction in _candidates(remaining):
                if tier > 1:
                    continue
                covered, against = _precision(conjunction, sets, passing)
                if covered < 2 or covered / (covered + against) < MIN_PRECISION:
                    continue
                score = (covered - 3 * against, -len(conjunction))
                if split is None or score > split[0]:
                    split = (score, conjunction, against)
            if split is None:
                break
            _, conjunction, against = split
            members = [m for m in remaining if set(conjunction) <= having[id(m)]]
            groups.append(Group(key, conjunction, members, against))
            remaining = [m for m in remaining if not set(conjunction) <= having[id(m)]]
        if remaining:
            rest = best_shared(remaining, features_only=True)
            groups.append(Group(key, rest[0], remaining, rest[1]) if rest else Group(key, (), remaining))
    for group in groups:
        shared = frozenset.intersection(*(attributes(m)[0] for m in group.members))
        group.shared = tuple(f for f in FEATURES if f in shared)
        group.clauses = tuple(dict.fromkeys(m.clause for m in group.members))
    groups.sort(key=lambda g: -len(g.members))
    return groups


def _phrase(attribute: str) -> str:
    """A feature or attribute in words: ``groups`` -> ``groups > 1``."""
    if attribute == "bias":  # "a bias is added" reads wrongly after "with"
        return "a bias"
    if attribute in FEATURES:
        text = FEATURES[attribute].split(" [")[0].split(", ")[0]
        for prefix in ("avg pool with ", "pooling with ", "avg pool "):
            text = text.removeprefix(prefix)
        return text
    name, _, value = attribute.partition("=")
    return {"dtype": f"dtype {value}", "rank": f"spatial rank {value}", "data": f"data '{value}'"}.get(name, attribute)


def cause_text(op: str, status: str, exception: str, conditions: Sequence[str], count: int, passing_with: int,
               shared: Sequence[str]) -> str:
    """The likely cause in words, with the evidence: "fails whenever groups > 1 with conv (7 cases,
    no passing case has it)"."""
    verb = {"failed": "fails", "errored": f"raises {exception or 'an exception'}", "crashed": "crashes",
            "timed_out": "hangs"}.get(status, status.replace("_", " "))
    cases = f"{count} generated case{'s' * (count != 1)}"
    if conditions and count == 1:
        return f"{verb} on one generated case of {op}, with {' and '.join(_phrase(c) for c in conditions)}"
    if conditions:
        when = " and ".join(_phrase(c) for c in conditions)
        if passing_with:
            have = "passing case has" if passing_with == 1 else "passing cases have"
            return f"{verb} with {when} in {op} ({cases}; {passing_with} {have} it too)"
        return f"{verb} whenever {when} with {op} ({cases}; no passing case has it)"
    common = f"; they share {', '.join(shared)}, as passing cases do" if shared else ""
    return f"{verb} on {op} with no feature in common that passing cases lack ({cases}{common})"


def build_clusters(groups: Sequence[Group], op: str, explored: int, stream: str,
                   representative: Callable[[Group], tuple[CheckResult, bool, str]]) -> list[tuple[FailureCluster, CheckResult]]:
    """A FailureCluster per group, with the representative ``representative(group)`` returns
    (result, shrunk, note); ids are ``{stream}#{n}``."""
    out = []
    for number, group in enumerate(groups, 1):
        check, status, _, exception = group.key
        result, shrunk, note = representative(group)
        cluster = FailureCluster(
            id=f"{stream}#{number}", op=op, check=check, status=status, clauses=group.clauses, exception=exception,
            conditions=group.conditions, shared=group.shared,
            cause=cause_text(op, status, exception, group.conditions,
                             len(group.members), group.passing_with, group.shared),
            count=len(group.members), passing_with=group.passing_with, explored=explored,
            representative=result.case.descriptor if result.case else "", shrunk=shrunk,
            examples=tuple(m.case.descriptor for m in group.members[:3] if m.case), note=note, checks=(check,))
        result.cluster = cluster.id
        out.append((cluster, result))
    return out


def merge_clusters(clusters: Sequence[FailureCluster], results: Sequence[CheckResult]) -> list[FailureCluster]:
    """One cluster per op and signature across the streams (differential, special, each property)
    that found it: status, clause (value clauses as one), exception type and conditions. Counts
    add up; the representative is the smallest shrunk one. Results' ``cluster`` ids are renamed
    to the merged ids (``{op}#{n}``, numbered per op, largest cluster first)."""
    merged: dict[tuple[object, ...], list[FailureCluster]] = {}
    for cluster in clusters:
        clause = "ERR-VALUE" if set(cluster.clauses) <= VALUE_CLAUSES else cluster.clauses[0]
        # Failing whenever the same conditions hold is one bug, whichever clause each check cites;
        # without such an explanation (passing cases have them too, or one case only), the
        # conditions are incidental and the clause tells bugs apart.
        clean = cluster.conditions and not cluster.passing_with and cluster.count > 1
        key = (cluster.op, cluster.status, cluster.exception, cluster.conditions if clean else (clause,))
        merged.setdefault(key, []).append(cluster)
    by_result = {r.cluster: r for r in results if r.cluster}
    out: list[FailureCluster] = []
    renamed: dict[str, str] = {}
    per_op: dict[str, int] = {}
    ops = list(OPS)
    for parts in sorted(merged.values(), key=lambda p: (ops.index(p[0].op) if p[0].op in ops else len(ops),
                                                        -sum(c.count for c in p))):
        def size(cluster: FailureCluster) -> tuple[bool, int, bool]:
            result = by_result.get(cluster.id)
            return (not cluster.shrunk, case_size(result) if result else 0, cluster.check != "differential")

        chosen = min(parts, key=size)
        op = chosen.op
        per_op[op] = per_op.get(op, 0) + 1
        count, passing_with = sum(c.count for c in parts), sum(c.passing_with for c in parts)
        conditions = chosen.conditions if all(c.conditions == chosen.conditions for c in parts) else ()
        cluster = FailureCluster(
            id=f"{op}#{per_op[op]}", op=op, check=chosen.check, status=chosen.status,
            clauses=tuple(dict.fromkeys(clause for c in parts for clause in c.clauses)), exception=chosen.exception,
            conditions=conditions, shared=tuple(f for f in FEATURES if all(f in c.shared for c in parts)),
            cause=cause_text(op, chosen.status, chosen.exception, conditions, count, passing_with,
                             [f for f in FEATURES if all(f in c.shared for c in parts)]),
            count=count, passing_with=passing_with, explored=sum(c.explored for c in parts),
            representative=chosen.representative, shrunk=chosen.shrunk,
            examples=tuple(dict.fromkeys(e for c in parts for e in c.examples))[:3], note=chosen.note,
            checks=tuple(dict.fromkeys([chosen.check] + [c.check for c in parts])))
        for part in parts:
            renamed[part.id] = cluster.id
        out.append(cluster)
    for result in results:
        if result.cluster in renamed:
            result.cluster = renamed[result.cluster]
    return out
