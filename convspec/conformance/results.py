"""The results of a conformance run: one object, one versioned JSON schema, every report rendered
from it.

Statuses of a check result:

- ``passed`` — the backend met the clause on that case;
- ``failed`` — it did not (non-conformance);
- ``unsupported`` — the backend declared it cannot run the case (never a failure);
- ``unsupported_raised`` — shown as "unsupported (raised)": the backend did not declare it, but
  raised ``NotImplementedError`` (what Python code raises for a missing feature) or
  :class:`~convspec.spec.Unsupported` when called; the message says what it raised. Counted
  apart from the declared ones, and never a failure;
- ``errored`` — the backend raised any other exception on a valid input it declared supported;
- ``crashed`` / ``timed_out`` — under ``--isolate``, the backend's process died or hung (a
  command backend past ``--timeout`` too);
- ``known_failure`` — a non-conformance an expected-failures file (``--xfail``) records, with its
  reason (:mod:`convspec.conformance.xfail`); not counted as non-conforming;
- ``validated_by_adapter`` — an invalid configuration that convspec's own adapter code (the
  command backend, ``FunctionBackend``) refused before the implementation ran: the
  implementation's own validation was not exercised.

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
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..spec import OPS, SPEC_VERSION, clause_title
from .cases import Case
from .compare import Comparison, Worst

SCHEMA_VERSION = "1.2"
STATUSES = ("passed", "failed", "unsupported", "unsupported_raised", "errored", "crashed", "timed_out",
            "known_failure", "validated_by_adapter")
NONCONFORMING = ("failed", "errored", "crashed", "timed_out")
#: Statuses of checks that did not run: "n/a" in reports, skips in the pytest plugin.
NOT_APPLICABLE = ("unsupported", "unsupported_raised")
#: How a status reads in reports (the others read as themselves).
_LABELS = {"unsupported_raised": "unsupported (raised)", "known_failure": "known failure",
          "validated_by_adapter": "validated by the adapter"}


def status_label(status: str) -> str:
    """How reports write ``status``: ``"unsupported (raised)"`` for ``unsupported_raised``..."""
    return _LABELS.get(status, status)


FAMILIES = ("differential", "special", "property", "invalid", "hygiene", "defaults", "oracle")


@dataclass(frozen=True)
class Launch:
    """What a command line must repeat for a printed reproducer to reproduce (set by the engine).

    Attributes
    ----------
    python_path : the ``PYTHONPATH`` a fresh shell needs to import a module-form backend (``"."``
        when the run found the module in the current folder); ``""`` when none is needed.
    oracle : the loader spec of ``--oracle`` (oracle failures re-run only with it).
    isolate, timeout, memory_limit : ``--isolate`` and its limits (crashed and timed-out cases
        re-run only under them; a command backend honours ``--timeout`` without ``--isolate``).
    """

    python_path: str = ""
    oracle: str | None = None
    isolate: bool = False
    timeout: float | None = None
    memory_limit: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any] | None) -> Launch:
        return cls(**{key: value for key, value in (obj or {}).items() if key in cls.__dataclass_fields__})


def python_path_for(spec: str) -> str:
    """The ``PYTHONPATH`` a fresh ``convspec`` command needs to import the module that a
    module-form ``spec`` (``package.module:attr``) names, as this process found it: the entry of
    ``$PYTHONPATH`` or the current folder (``"."``) it was imported from; ``""`` for built-ins,
    ``cmd:``, ``file.py`` forms and modules installed where Python finds them anyway.
    """
    import os
    from pathlib import Path

    from ..backends.loader import BUILTIN_BACKENDS

    module_name = spec.partition(":")[0]
    if (spec in BUILTIN_BACKENDS or spec.startswith("cmd:") or module_name.endswith(".py")
            or not all(part.isidentifier() for part in module_name.split("."))):
        return ""
    module = sys.modules.get(module_name.split(".")[0])
    origin = getattr(module, "__file__", None) or next(iter(getattr(module, "__path__", ())), None)
    if not origin:
        return ""
    root = Path(origin).resolve().parent  # the folder holding the module, or the package folder
    if Path(origin).name == "__init__.py":
        root = root.parent
    cwd = Path.cwd().resolve()
    for entry in [e for e in os.environ.get("PYTHONPATH", "").split(os.pathsep) if e] + ["."]:
        if Path(entry).resolve() != root:
            continue
        try:
            return str(root.relative_to(cwd)) if root != cwd else "."
        except ValueError:
            return str(root)
    return ""


@dataclass
class CheckResult:
    """One check of one backend on one case (or one named configuration).

    ``expected`` is set on a ``known_failure``: the reason, link and strictness of the
    expected-failures entry it matched, and the status it had (``failed``, ``errored``...).
    """

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
    launch: Launch = field(default_factory=Launch)
    expected: dict[str, Any] | None = None
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

    @property
    def observed_status(self) -> str:
        """The status the backend earned: a known failure's own (``failed``, ``crashed``...)."""
        return str(self.expected["status"]) if self.status == "known_failure" and self.expected else self.status

    def reproducer(self) -> dict[str, str]:
        """A one-line CLI command and a short Python snippet that re-run this check alone, with
        what the run needed to reach it: ``PYTHONPATH`` for a module found there, ``--oracle`` for
        an oracle check, ``--isolate --timeout`` for a crash or a hang (:class:`Launch`)."""
        target = self.backend_spec or self.backend
        launch = self.launch
        options: list[str] = []  # CLI words
        keywords: list[str] = []  # run_conformance keyword arguments
        if self.family == "oracle" and launch.oracle:
            options += ["--oracle", shlex.quote(launch.oracle)]
            keywords.append(f"oracle={launch.oracle!r}")
        if self.observed_status in ("crashed", "timed_out"):
            if launch.isolate:
                options.append("--isolate")
                keywords.append("isolate=True")
            if launch.timeout is not None:
                options += ["--timeout", f"{launch.timeout:g}"]
                keywords.append(f"timeout={launch.timeout:g}")
            if launch.isolate and launch.memory_limit:
                options += ["--memory-limit", str(launch.memory_limit)]
                keywords.append(f"memory_limit={launch.memory_limit}")
        env = f"PYTHONPATH={shlex.quote(launch.python_path)} " if launch.python_path else ""
        path_line = (f"import sys\nsys.path.insert(0, {launch.python_path!r})  # where the run found the backend's "
                     "module\n") if launch.python_path else ""
        extra = "".join(" " + word for word in options)
        arguments = "".join(", " + word for word in keywords)
        if self.case is None:
            cli = f"{env}convspec check {shlex.quote(target)} --ops {self.op} --checks {self.check}{extra}"
            python = (f"{path_line}import convspec\nresults = convspec.run_conformance({target!r}, ops=[{self.op!r}], "
                      f"checks=[{self.check!r}]{arguments})\nprint(results.summary())")
            return {"cli": cli, "python": python}
        descriptor = self.case.descriptor
        cli = f"{env}convspec check {shlex.quote(target)} --case {shlex.quote(descriptor)} --checks {self.check}{extra}"
        python = (
            f"{path_line}import convspec\n"
            f"case = convspec.Case.parse({descriptor!r})\n"
            f"results = convspec.run_conformance({target!r}, cases=[case], checks=[{self.check!r}]{arguments})\n"
            "print(results.summary())"
        )
        return {"cli": cli, "python": python}

    def to_json(self, compact: bool = False) -> dict[str, Any]:
        """The result as JSON. With ``compact``, a *passed* result keeps only what reports read:
        its identity, the case as descriptor and catalogue label, features, and per output the
        count, exact count, largest error / bound and the error / bound histogram."""
        if compact and self.status == "passed":
            short: dict[str, Any] = {
                "backend": self.backend, "family": self.family, "check": self.check, "op": self.op,
                "clause": self.clause, "status": self.status,
                "case": {"descriptor": self.case.descriptor, "label": self.case.label} if self.case else None,
                "features": list(self.features), "max_ratio": self.max_ratio,
                "comparisons": [{key: value for key, value in c.to_json().items()
                                 if key in ("output", "count", "exact", "max_ratio", "histogram")
                                 or (key == "statistics" and value is not None)}
                                for c in self.comparisons]}
            if self.message:
                short["message"] = self.message
            return short
        out = {
            "backend": self.backend, "family": self.family, "check": self.check, "op": self.op,
            "clause": self.clause, "clause_text": _clause_text(self.clause), "status": self.status,
            "case": self.case.to_json() if self.case else None, "features": list(self.features),
            "message": self.message, "max_ratio": self.max_ratio, "seconds": round(self.seconds, 6),
            "comparisons": [c.to_json() for c in self.comparisons],
            "reproducer": self.reproducer() if self.observed_status in NONCONFORMING else None,
            "cluster": self.cluster or None,
        }
        if self.expected is not None:
            out["expected_failure"] = dict(self.expected)
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any], backend_spec: str = "", launch: Launch | None = None) -> CheckResult:
        return cls(
            backend=obj["backend"], family=obj["family"], check=obj["check"], op=obj["op"], clause=obj["clause"],
            status=obj["status"], case=_case_from_json(obj["case"]) if obj.get("case") else None,
            features=tuple(obj.get("features", ())), message=obj.get("message", ""),
            comparisons=[_comparison_from_json(c) for c in obj.get("comparisons", ())],
            seconds=float(obj.get("seconds", 0.0)), backend_spec=backend_spec, launch=launch or Launch(),
            expected=dict(obj["expected_failure"]) if obj.get("expected_failure") else None,
            cluster=obj.get("cluster") or "",
        )


def _case_from_json(obj: Mapping[str, Any]) -> Case:
    """A case in full, or as a compact passed result keeps it: descriptor and catalogue label."""
    if "params" in obj:
        return Case.from_json(obj)
    return replace(Case.parse(obj["descriptor"]), label=obj.get("label", ""))


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
        output=obj["output"], count=obj["count"], violations=obj.get("violations", 0), clause=obj.get("clause", ""),
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
    launch: Launch = field(default_factory=Launch)
    #: One outcome per expected-failures entry that applies to this backend (see
    #: :func:`convspec.conformance.xfail.apply_xfail`): its keys, reason, link, strict, and
    #: ``outcome`` "known failure", "unexpectedly passed" or "not run", with ``matched`` results.
    expected_failures: list[dict[str, Any]] = field(default_factory=list)
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

    def adopt(self, spec: str, launch: Launch | None = None) -> None:
        """Record how the backend was named (``spec``) and launched, on the run and every result,
        so that their reproducers name it the same way."""
        self.spec = spec
        self.launch = launch or self.launch
        for result in self.results:
            result.backend_spec = spec
            result.launch = self.launch

    @property
    def unexpected_passes(self) -> list[dict[str, Any]]:
        """Expected-failures entries whose scope ran without the failure they record."""
        return [entry for entry in self.expected_failures if entry["outcome"] == "unexpectedly passed"]

    @property
    def conformant(self) -> bool:
        """No non-conforming result, and no strict expected failure that passed."""
        return (self.load_error is None and not any(r.status in NONCONFORMING for r in self.results)
                and not any(entry.get("strict") for entry in self.unexpected_passes))

    @property
    def verdict(self) -> str:
        if self.load_error:
            return "not loaded"
        return "conformant" if self.conformant else "non-conformant"

    def to_json(self, compact: bool = False) -> dict[str, Any]:
        return {"name": self.name, "spec": self.spec, "capabilities": self.capabilities, "verdict": self.verdict,
                "counts": dict(self.counts()), "seconds": round(self.seconds, 3),
                "harness_seconds": round(self.harness_seconds, 3), "backend_seconds": round(self.backend_seconds, 3),
                "load_error": self.load_error, "launch": self.launch.to_json(),
                "expected_failures": [dict(entry) for entry in self.expected_failures],
                "results": [r.to_json(compact) for r in self.results],
                "clusters": [c.to_json() for c in self.clusters], "pair_coverage": self.pair_coverage}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> BackendRun:
        launch = Launch.from_json(obj.get("launch"))
        return cls(name=obj["name"], spec=obj.get("spec", obj["name"]), capabilities=obj.get("capabilities", {}),
                   results=[CheckResult.from_json(r, obj.get("spec", ""), launch) for r in obj.get("results", ())],
                   seconds=obj.get("seconds", 0.0), harness_seconds=obj.get("harness_seconds", 0.0),
                   backend_seconds=obj.get("backend_seconds", 0.0), load_error=obj.get("load_error"), launch=launch,
                   expected_failures=[dict(entry) for entry in obj.get("expected_failures", ())],
                   clusters=[FailureCluster.from_json(c) for c in obj.get("clusters", ())],
                   pair_coverage={op: dict(value) for op, value in obj.get("pair_coverage", {}).items()})


def environment() -> dict[str, str]:
    """Versions and machine facts recorded with every run."""
    import numpy

    env = {"python": sys.version.split()[0], "numpy": numpy.__version__, "platform": platform.platform(),
           "machine": platform.machine(), "processor": platform.processor() or platform.machine()}
    for module in ("scipy", "torch", "onnx", "onnxruntime", "jax"):
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

    def known_failures(self) -> list[CheckResult]:
        """Non-conformances an expected-failures file records (``--xfail``)."""
        return [r for run in self.backends for r in run.results if r.status == "known_failure"]

    def all_results(self) -> Iterable[CheckResult]:
        for run in self.backends:
            yield from run.results

    def summary(self) -> str:
        """The terminal summary (see :mod:`convspec.conformance.render.terminal`)."""
        from .render.terminal import terminal_summary

        return terminal_summary(self)

    def to_json(self, compact: bool = False) -> dict[str, Any]:
        """The whole run as JSON; ``compact`` keeps passed results short (:meth:`CheckResult.to_json`)."""
        return {"schema_version": SCHEMA_VERSION, "suite_version": self.suite_version,
                "spec_version": self.spec_version, "created": self.created, "environment": self.environment,
                "settings": self.settings, "conformant": self.conformant,
                "backends": [run.to_json(compact) for run in self.backends]}

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


def clauses_met(result: CheckResult) -> tuple[str, ...]:
    """The clauses a result speaks for: its own, and for a passed comparison against the
    reference every clause of the op's definition and of the error model it was held to (so that
    the matrix counts them, and an expected-failure entry for ERR-BOUND-1 sees the passing cases
    of its scope)."""
    if result.status != "passed" or result.family not in ("differential", "special", "oracle") \
            or result.op not in OPS:
        return (result.clause,)
    info = OPS[result.op]
    implied = info.clauses + (("ERR-BOUND-1",) if info.linear else ("ERR-EXACT-1",))
    if result.family == "special":
        implied += ("ERR-SPECIAL-1",)
    return tuple(dict.fromkeys((result.clause, *implied)))
