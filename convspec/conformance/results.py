"""The results of a conformance run: one object, one versioned JSON schema, every report rendered
from it.

Statuses of a check result:

- ``passed`` — the backend met the clause on that case;
- ``failed`` — it did not (non-conformance);
- ``unsupported`` — the backend declared it cannot run the case (never a failure);
- ``errored`` — the backend raised on a valid input it declared supported;
- ``crashed`` / ``timed_out`` — under ``--isolate``, the backend's process died or hung.

A stream of generated cases explores its whole budget and groups its non-conforming results into
*failure clusters* (:class:`FailureCluster`, built by :mod:`convspec.conformance.clusters`): one
per distinct signature, each with a likely cause and one shrunk representative, which is the
stream's only recorded result for that cluster (``CheckResult.cluster`` names it). ``BackendRun``
also carries the pairwise feature coverage of its generated cases (:mod:`convspec.conformance.coverage`).
"""

from __future__ import annotations

import json
import math
import platform
import shlex
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..spec import OPS, SPEC_VERSION, clause_title
from .cases import Case
from .compare import Comparison, Worst

SCHEMA_VERSION = "1.1"
STATUSES = ("passed", "failed", "unsupported", "errored", "crashed", "timed_out")
NONCONFORMING = ("failed", "errored", "crashed", "timed_out")
FAMILIES = ("differential", "special", "property", "invalid", "hygiene", "oracle")


@dataclass
class CheckResult:
    """One check of one backend on one case (or one named configuration)."""

    backend: str
    family: str
    check: str
    op: str
    clause: str
    status: str
    case: Case | None = None
    features: tuple[str, ...] = ()
    message: str = ""
    comparisons: list[Comparison] = field(default_factory=list)
    seconds: float = 0.0
    backend_spec: str = ""
    #: id of the failure cluster this result represents ("" for none; see FailureCluster).
    cluster: str = ""

    @property
    def worst(self) -> Comparison | None:
        """The comparison with the largest error / bound (a failing one first)."""
        if not self.comparisons:
            return None
        return max(self.comparisons, key=lambda c: (not c.passed, c.max_ratio))

    @property
    def max_ratio(self) -> float:
        return max((c.max_ratio for c in self.comparisons), default=0.0)

    def reproducer(self) -> dict[str, str]:
        """A one-line CLI command and a short Python snippet that re-run this check alone."""
        target = self.backend_spec or self.backend
        quoted = shlex.quote(target)
        if self.case is None:
            cli = f"convspec check {quoted} --ops {self.op} --checks {self.check}"
            python = (f"import convspec\nresults = convspec.run_conformance({target!r}, ops=[{self.op!r}], "
                      f"checks=[{self.check!r}])\nprint(results.summary())")
            return {"cli": cli, "python": python}
        descriptor = self.case.descriptor
        cli = f"convspec check {quoted} --case '{descriptor}' --checks {self.check}"
        python = (
            "import convspec\n"
            f"case = convspec.Case.parse({descriptor!r})\n"
            f"results = convspec.run_conformance({target!r}, cases=[case], checks=[{self.check!r}])\n"
            "print(results.summary())"
        )
        return {"cli": cli, "python": python}

    def to_json(self) -> dict[str, Any]:
        return {
            "backend": self.backend, "family": self.family, "check": self.check, "op": self.op,
            "clause": self.clause, "clause_text": _clause_text(self.clause), "status": self.status,
            "case": self.case.to_json() if self.case else None, "features": list(self.features),
            "message": self.message, "max_ratio": self.max_ratio, "seconds": round(self.seconds, 6),
            "comparisons": [c.to_json() for c in self.comparisons],
            "reproducer": self.reproducer() if self.status in NONCONFORMING else None,
            "cluster": self.cluster or None,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], backend_spec: str = "") -> CheckResult:
        return cls(
            backend=obj["backend"], family=obj["family"], check=obj["check"], op=obj["op"], clause=obj["clause"],
            status=obj["status"], case=Case.from_json(obj["case"]) if obj.get("case") else None,
            features=tuple(obj.get("features", ())), message=obj.get("message", ""),
            comparisons=[_comparison_from_json(c) for c in obj.get("comparisons", ())],
            seconds=float(obj.get("seconds", 0.0)), backend_spec=backend_spec, cluster=obj.get("cluster") or "",
        )


def _clause_text(clause: str) -> str:
    try:
        return clause_title(clause)
    except KeyError:
        return ""


def _float(value: Any) -> float:
    return float(value)  # "inf" / "nan" strings parse too


def _comparison_from_json(obj: Mapping[str, Any]) -> Comparison:
    worst = obj.get("worst")
    return Comparison(
        output=obj["output"], count=obj["count"], violations=obj["violations"], clause=obj.get("clause", ""),
        rule=obj.get("rule", ""), max_ratio=_float(obj.get("max_ratio", 0.0)),
        worst=Worst(tuple(worst["index"]), _float(worst["out"]), _float(worst["ref"]), _float(worst["error"]),
                    _float(worst["bound"])) if worst else None,
        exact=obj.get("exact", 0), histogram=list(obj.get("histogram", ())), statistics=obj.get("statistics"),
    )


@dataclass
class FailureCluster:
    """One distinct way a stream of generated cases failed: its signature, its likely cause in
    words, how many cases failed that way, and the minimal case that represents it.

    The signature is the stream's op and check, the status, the clause (ERR-BOUND-1, ERR-EXACT-1
    and ERR-STAT-1 count as one: the same wrong value, judged at the strictness the data allows),
    the exception type of an ``errored`` or ``crashed`` case, and ``conditions``: the features
    (``convspec/spec/features.py``, or ``dtype=``/``rank=``/``data=`` when no feature does) that
    the cluster's failing cases all have and passing cases do not.
    """

    id: str
    op: str
    check: str
    status: str
    clauses: tuple[str, ...]
    exception: str = ""
    conditions: tuple[str, ...] = ()
    shared: tuple[str, ...] = ()
    cause: str = ""
    count: int = 0
    passing_with: int = 0
    explored: int = 0
    representative: str = ""
    shrunk: bool = False
    examples: tuple[str, ...] = ()
    note: str = ""
    #: every check that found it (``check`` is the representative's)
    checks: tuple[str, ...] = ()

    def is_representative(self, result: CheckResult) -> bool:
        return (result.cluster == self.id and result.check == self.check and result.case is not None
                and result.case.descriptor == self.representative)

    @property
    def signature(self) -> str:
        """E.g. ``conv differential failed ERR-EXACT-1 | groups``."""
        parts = [self.op, self.check, self.status, "/".join(self.clauses)]
        if self.exception:
            parts.append(self.exception)
        return " ".join(parts) + (" | " + " + ".join(self.conditions) if self.conditions else "")

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "op": self.op, "check": self.check, "status": self.status,
                "clauses": list(self.clauses), "exception": self.exception, "conditions": list(self.conditions),
                "shared": list(self.shared), "cause": self.cause, "count": self.count,
                "passing_with": self.passing_with, "explored": self.explored,
                "representative": self.representative, "shrunk": self.shrunk, "examples": list(self.examples),
                "note": self.note, "checks": list(self.checks), "signature": self.signature}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> FailureCluster:
        return cls(id=obj["id"], op=obj["op"], check=obj["check"], status=obj["status"],
                   clauses=tuple(obj.get("clauses", ())), exception=obj.get("exception", ""),
                   conditions=tuple(obj.get("conditions", ())), shared=tuple(obj.get("shared", ())),
                   cause=obj.get("cause", ""), count=int(obj.get("count", 0)),
                   passing_with=int(obj.get("passing_with", 0)), explored=int(obj.get("explored", 0)),
                   representative=obj.get("representative", ""), shrunk=bool(obj.get("shrunk", False)),
                   examples=tuple(obj.get("examples", ())), note=obj.get("note", ""),
                   checks=tuple(obj.get("checks", ())))


def case_size(result: CheckResult) -> int:
    """Elements of the case's input and weight (0 without a case): smaller reproducers first."""
    if result.case is None:
        return 0
    params = result.case.params
    return sum(math.prod(params.get(key) or ()) for key in ("input_shape", "weight_shape") if params.get(key))


@dataclass
class BackendRun:
    """Everything one backend did in a run."""

    name: str
    spec: str
    capabilities: dict[str, Any]
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0
    harness_seconds: float = 0.0
    backend_seconds: float = 0.0
    load_error: str | None = None
    clusters: list[FailureCluster] = field(default_factory=list)
    #: op -> pairwise feature coverage of the generated cases that ran (coverage.PairCoverage.to_json)
    pair_coverage: dict[str, dict[str, Any]] = field(default_factory=dict)

    def failures(self) -> list[CheckResult]:
        """The non-conforming results, per op (in the op table's order) the minimal cases of its
        failure clusters first (largest cluster first), then the others from the smallest case up."""
        ops = list(OPS)
        bad = [r for r in self.results if r.status in NONCONFORMING]
        order = {id(r): i for i, r in enumerate(bad)}
        rank = {id(r): n for r in bad for n, c in enumerate(self.clusters) if c.is_representative(r)}
        return sorted(bad, key=lambda r: (ops.index(r.op) if r.op in ops else len(ops), rank.get(id(r), len(rank)),
                                          case_size(r), order[id(r)]))

    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    @property
    def conformant(self) -> bool:
        return self.load_error is None and not any(r.status in NONCONFORMING for r in self.results)

    @property
    def verdict(self) -> str:
        if self.load_error:
            return "not loaded"
        return "conformant" if self.conformant else "non-conformant"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "capabilities": self.capabilities, "verdict": self.verdict,
                "counts": dict(self.counts()), "seconds": round(self.seconds, 3),
                "harness_seconds": round(self.harness_seconds, 3), "backend_seconds": round(self.backend_seconds, 3),
                "load_error": self.load_error, "results": [r.to_json() for r in self.results],
                "clusters": [c.to_json() for c in self.clusters], "pair_coverage": self.pair_coverage}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BackendRun:
        return cls(name=obj["name"], spec=obj.get("spec", obj["name"]), capabilities=obj.get("capabilities", {}),
                   results=[CheckResult.from_json(r, obj.get("spec", "")) for r in obj.get("results", ())],
                   seconds=obj.get("seconds", 0.0), harness_seconds=obj.get("harness_seconds", 0.0),
                   backend_seconds=obj.get("backend_seconds", 0.0), load_error=obj.get("load_error"),
                   clusters=[FailureCluster.from_json(c) for c in obj.get("clusters", ())],
                   pair_coverage={op: dict(value) for op, value in obj.get("pair_coverage", {}).items()})


def environment() -> dict[str, str]:
    """Versions and machine facts recorded with every run."""
    import numpy

    env = {"python": sys.version.split()[0], "numpy": numpy.__version__, "platform": platform.platform(),
           "machine": platform.machine(), "processor": platform.processor() or platform.machine()}
    for module in ("scipy", "torch"):
        loaded = sys.modules.get(module)
        if loaded is not None:
            env[module] = getattr(loaded, "__version__", "?")
    return env


@dataclass
class Results:
    """A whole run: settings, environment and one BackendRun per backend."""

    backends: list[BackendRun] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, str] = field(default_factory=environment)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    suite_version: str = ""
    spec_version: str = SPEC_VERSION

    def __post_init__(self) -> None:
        if not self.suite_version:
            from .. import __version__

            self.suite_version = __version__

    @property
    def conformant(self) -> bool:
        return all(run.conformant for run in self.backends)

    @property
    def exit_code(self) -> int:
        """0 every supported check passed; 1 some non-conformance (2 is the CLI's usage error)."""
        if any(run.load_error for run in self.backends):
            return 2
        return 0 if self.conformant else 1

    def failures(self) -> list[CheckResult]:
        """Every backend's non-conforming results, in :meth:`BackendRun.failures` order."""
        return [r for run in self.backends for r in run.failures()]

    def all_results(self) -> Iterable[CheckResult]:
        for run in self.backends:
            yield from run.results

    def summary(self) -> str:
        """The terminal summary (see :mod:`convspec.conformance.report`)."""
        from .report import terminal_summary

        return terminal_summary(self)

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "suite_version": self.suite_version,
                "spec_version": self.spec_version, "created": self.created, "environment": self.environment,
                "settings": self.settings, "conformant": self.conformant,
                "backends": [run.to_json() for run in self.backends]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, allow_nan=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Results:
        if str(obj.get("schema_version", "")).split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(f"results schema {obj.get('schema_version')!r} is not {SCHEMA_VERSION}")
        return cls(backends=[BackendRun.from_json(b) for b in obj["backends"]], settings=dict(obj.get("settings", {})),
                   environment=dict(obj.get("environment", {})), created=obj.get("created", ""),
                   suite_version=obj.get("suite_version", ""), spec_version=obj.get("spec_version", SPEC_VERSION))

    @classmethod
    def merge(cls, runs: Iterable[Results]) -> Results:
        """Several saved runs as one (several backends, or one backend on two machines)."""
        runs = list(runs)
        merged = cls(settings={"merged": [r.settings for r in runs]},
                     environment=runs[0].environment if runs else environment())
        for run in runs:
            for backend in run.backends:
                copy = BackendRun.from_json(backend.to_json())
                if any(b.name == copy.name for b in merged.backends):
                    copy.name = f"{copy.name} ({run.environment.get('platform', run.created)})"
                merged.backends.append(copy)
        return merged
