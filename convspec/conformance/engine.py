"""The conformance engine: cases in, structured results out.

For each backend and each selected op, the engine feeds catalogue cases and hypothesis-generated
cases through the check families (differential, special, property, invalid, hygiene, oracle),
compares against the float64 reference with the error model, and lets hypothesis shrink each
failure to a minimal case. Unsupported cases are recorded with the backend's reason; a backend
that raises, crashes or hangs gets that status for that case and the run goes on.
"""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from ..backends import Backend, load
from ..spec import OPS, bfloat16_available
from ..spec.features import features_of
from .cases import SPECIAL_RECIPES, Case
from .checks.differential import check_differential
from .checks.invalid import check_invalid
from .checks.oracle import check_oracle
from .clusters import merge_clusters
from .context import CheckContext, Settings, check_result
from .invoke import Invoker
from .results import (FAMILIES, NONCONFORMING, BackendRun, CheckResult, FailureCluster, Launch, Results, case_size,
                      python_path_for)

if TYPE_CHECKING:
    from .xfail import XfailEntry

Progress = Callable[[str], None]

#: Seconds per backend call under ``isolate`` when no timeout is given.
DEFAULT_TIMEOUT = 60.0

class _Stop(Exception):
    """Raised inside a hypothesis test to report a non-conforming result (and shrink it)."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result

# -- streams of generated cases ---------------------------------------------------------------------
#: Exploration of a stream ends at its first time-out: each one costs a whole --timeout, and a
#: backend that hangs on one case tends to hang on its neighbours (the cluster is still reported).
MAX_STREAM_TIMEOUTS = 1


@dataclass
class StreamOutcome:
    """What a stream did: the cases that ran (a result other than unsupported) and its clusters."""

    cases: list[Case]
    clusters: list[FailureCluster]


def run_stream(ctx: CheckContext, strategy: Any, check: Callable[[Case], list[CheckResult]],
               max_examples: int, record: Callable[[CheckResult], None], *, name: str = "") -> StreamOutcome:
    """Run ``check`` on up to ``max_examples`` drawn cases and record every distinct failure once,
    shrunk to a minimal case.

    1. *Explore*: hypothesis draws the whole budget without shrinking; each distinct case is
       checked once and its results kept; failures do not stop the search (a time-out does:
       :data:`MAX_STREAM_TIMEOUTS`). Passing and unsupported results are recorded in order.
    2. *Cluster* the non-conforming results (:func:`clusters.group_failures`): key (check, status,
       clause, exception type) and the features the failing cases share and passing ones lack.
    3. *Shrink* one representative per cluster: a second hypothesis run with the same seed draws
       the same cases, answered from the kept results without calling the backend, up to the
       first case failing like the cluster, then shrinks it under that predicate (only new shrink
       candidates call the backend; none after a time-out). Crashed and timed-out clusters are
       not re-run: their smallest case represents them. Only representatives are recorded.

    Hypothesis' own multi-bug mode tells bugs apart by exception type and raising line only, and
    would shrink every one of them, hung cases included; the engine's clusters use the spec's
    features instead, and skip what is costly to re-run.
    """
    from .clusters import NOT_RERUN, build_clusters, group_failures, matches

    explored: dict[str, tuple[Case, list[CheckResult]]] = {}
    known: dict[str, list[CheckResult]] = {}
    state = {"timeouts": 0, "calls_stopped": False}

    def checked(case: Case) -> list[CheckResult] | None:
        """The case's results: kept ones, else a new check (None once calls have stopped)."""
        descriptor = case.descriptor
        if descriptor in known:
            return known[descriptor]
        if state["calls_stopped"]:
            return None
        results = check(case)
        known[descriptor] = results
        if any(r.status == "timed_out" for r in results):
            state["timeouts"] += 1
            state["calls_stopped"] = state["timeouts"] >= MAX_STREAM_TIMEOUTS
        return results

    def explore(case: Case) -> None:
        if case.descriptor not in known:
            results = checked(case)
            if results is not None:
                explored[case.descriptor] = (case, results)

    if not _hypothesis_run(ctx, strategy, explore, max_examples, shrink=False):
        return StreamOutcome([], [])
    outcomes = [result for _, results in explored.values() for result in results]
    for result in outcomes:
        if result.status not in NONCONFORMING:
            record(result)
    ran = [case for case, results in explored.values() if any(r.status != "unsupported" for r in results)]
    groups = group_failures(outcomes)
    if not groups:
        return StreamOutcome(ran, [])
    op = groups[0].members[0].op

    def representative(group: Any) -> tuple[CheckResult, bool, str]:
        smallest = min(group.members, key=case_size)
        if group.key[1] in NOT_RERUN:
            return smallest, False, f"not shrunk: a {group.key[1].replace('_', ' ')} case is not run again"
        if not ctx.settings.shrink:
            return smallest, False, ""
        state["calls_stopped"] = False  # each shrink may call the backend until its own time-out
        state["timeouts"] = 0

        def body(case: Case) -> None:
            for result in checked(case) or ():
                if matches(result, group.key, group.conditions):
                    raise _Stop(result)

        try:
            _hypothesis_run(ctx, strategy, body, max_examples, shrink=True)
        except _Stop as stop:
            return stop.result, True, ""
        except Exception as exc:  # noqa: BLE001 - e.g. hypothesis' Flaky: keep the unshrunk case
            return smallest, False, f"not shrunk: {type(exc).__name__} on replay (is the backend deterministic?)"
        return smallest, False, "not shrunk: the replay did not reach the cluster"

    clusters = build_clusters(groups, op, len(explored), f"{op}/{name or groups[0].key[0]}", representative)
    for _, result in clusters:
        record(result)
    return StreamOutcome(ran, [cluster for cluster, _ in clusters])


def _hypothesis_run(ctx: CheckContext, strategy: Any, body: Callable[[Case], None], max_examples: int,
                    shrink: bool) -> bool:
    """Run ``body`` on drawn cases under the run's seed; False when every draw was filtered out
    (unsupported: the catalogue reports those). Exceptions of ``body`` propagate, shrunk."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, seed, settings
    from hypothesis.database import DirectoryBasedExampleDatabase
    from hypothesis.errors import Unsatisfiable

    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    database = DirectoryBasedExampleDatabase(ctx.settings.database) if ctx.settings.database and shrink else None
    test = settings(max_examples=max_examples, deadline=None, database=database, phases=phases,
                    suppress_health_check=list(HealthCheck), verbosity=Verbosity.quiet,
                    report_multiple_bugs=False, print_blob=False)(given(strategy)(body))
    try:
        seed(ctx.settings.seed)(test)()
    except Unsatisfiable:
        return False
    return True


# -- the whole run ----------------------------------------------------------------------------------
def _default_dtypes(ctx: CheckContext) -> tuple[str, ...]:
    """The declared dtypes, bfloat16 only where NumPy can hold it (DTYPE-1)."""
    preferred = ("float32", "float64", "float16") + (("bfloat16",) if bfloat16_available() else ())
    return tuple(d for d in preferred if d in ctx.caps.dtypes)


@np.errstate(all="ignore")  # NaN and inf cases are deliberate: no floating-point warning noise
def run_backend(backend: Backend, spec: str, settings: Settings, *, cases: Sequence[Case] | None = None,
                oracle: Backend | None = None, progress: Progress | None = None) -> BackendRun:
    """All selected checks of one backend."""
    from . import strategies
    from .catalogue import INVALID, catalogue_cases
    from .checks.defaults import default_cases, run_defaults
    from .coverage import pair_coverage
    from .properties import PROPERTIES

    started = time.perf_counter()
    invoker = Invoker(backend, isolate=settings.isolate, timeout=settings.timeout, memory_limit=settings.memory_limit)
    oracle_ctx = None
    if oracle is not None:
        oracle_ctx = CheckContext(oracle, oracle.name, Invoker(oracle), settings)
    ctx = CheckContext(backend, spec, invoker, settings, oracle_ctx)
    run = BackendRun(name=backend.name, spec=spec, capabilities=capabilities_json(backend))

    def record(result: CheckResult) -> None:
        """Keep the results of the selected checks (hygiene rides on the differential calls)."""
        if result.family in settings.checks or result.check in settings.checks:
            run.results.append(result)

    say = progress or (lambda message: None)
    dtypes = settings.dtypes or _default_dtypes(ctx)
    # Generated cases go to the ranks the backend runs (the others would all be unsupported).
    declared = backend.capabilities.ranks
    ranks = tuple(r for r in settings.ranks if declared is None or r in declared) or settings.ranks
    ops = [op for op in settings.ops if op in OPS]
    checks = settings.checks
    size: dict[str, Any] = {"max_batch": 1, "max_channels": 2, "max_spatial": 5, "max_kernel": 3} if backend.capabilities.speed == "slow" else {}

    def supported(case: Case) -> bool:
        return ctx.unsupported(case.op, case.params_object, case.dtype) is None

    def steer(rich: Any, plain: Any = None) -> Any:
        """Generated cases go to what the backend declares it runs (the catalogue still shows what
        it does not); plain problems keep a stream alive for a backend that declares little."""
        from hypothesis import strategies as st

        return st.one_of(rich.filter(supported), plain) if plain is not None else rich.filter(supported)

    exercised: dict[str, list[frozenset[str]]] = {}

    def streamed(op: str, outcome: StreamOutcome) -> None:
        """Keep a stream's clusters, and the features of its cases for the pairwise coverage."""
        run.clusters += outcome.clusters
        exercised.setdefault(op, []).extend(features_of(c.op, c.params_object) for c in outcome.cases)

    def run_case(case: Case, repeat: bool = False) -> None:
        if "differential" in checks or "hygiene" in checks or (
                case.data in SPECIAL_RECIPES and "special" in checks):
            family = "special" if case.data in SPECIAL_RECIPES else "differential"
            for result in check_differential(ctx, case, family, repeat=repeat):
                record(result)
        if "oracle" in checks and oracle_ctx is not None:
            for result in check_oracle(ctx, case):
                record(result)

    try:
        if cases is not None:  # explicit cases only (--case)
            for case in cases:
                run_case(case, repeat=True)
                for name in _property_names(checks):
                    if case.op in PROPERTIES[name].ops:
                        for result in PROPERTIES[name].run(ctx, case):
                            record(result)
            if "defaults" in checks:
                for result in run_defaults(ctx, cases):
                    record(result)
            return run
        if settings.catalogue:
            catalogue = [c for c in catalogue_cases(ops=ops, ranks=ranks, dtypes=dtypes)]
            say(f"{backend.name}: catalogue ({len(catalogue)} cases)")
            prefetch = getattr(backend, "prefetch", None)
            if callable(prefetch) and not settings.isolate:  # e.g. a command backend: one process per batch
                requests = []
                for case in catalogue:
                    if not ctx.unsupported(case.op, case.params_object, case.dtype):
                        requests.append((case.op, case.arrays(), case.params_object))
                prefetch(requests)
            for case in catalogue:
                run_case(case, repeat=True)
        for op in ops:
            if op not in backend.capabilities.ops:
                record(check_result(ctx, "differential", "differential", op, OPS[op].clauses[0], "unsupported", None,
                               None, f"op {op} not implemented"))
                continue
            if "differential" in checks or "oracle" in checks or "hygiene" in checks:
                say(f"{backend.name}: {op} generated cases")
                streamed(op, run_stream(
                    ctx, steer(strategies.cases(op, ranks=ranks, dtypes=dtypes, **size),
                               strategies.cases(op, ranks=ranks, dtypes=dtypes, features=False, **size)),
                    lambda case: _stream_check(ctx, case, checks, oracle_ctx), settings.max_examples, record,
                    name="differential"))
            if "special" in checks:
                say(f"{backend.name}: {op} special values")
                streamed(op, run_stream(ctx, steer(strategies.special_cases(op, ranks=ranks, dtypes=dtypes, **size)),
                                        lambda case: check_differential(ctx, case, "special"),
                                        max(settings.max_examples // 2, 1), record, name="special"))
        for name in _property_names(checks):
            prop = PROPERTIES[name]
            for op in [op for op in prop.ops if op in ops and op in backend.capabilities.ops]:
                lacking = list(filter(None, (backend.capabilities.declared_unsupported(op, f) for f in prop.needs)))
                if lacking:
                    record(check_result(ctx, "property", name, op, prop.clauses_by_op.get(op, prop.clause), "unsupported",
                                   None, None, f"{lacking[0]} (every case of this property uses it)"))
                    continue
                say(f"{backend.name}: property {name} on {op}")
                streamed(op, run_stream(ctx, steer(prop.strategy(op, ranks=ranks, dtypes=dtypes, **size)),
                                        functools.partial(prop.run, ctx), max(settings.max_examples // 2, 1), record,
                                        name=name))
        if "invalid" in checks:
            say(f"{backend.name}: invalid configurations ({len(INVALID)})")
            for entry in INVALID:
                if entry.op in ops:
                    record(check_invalid(ctx, entry))
        if "defaults" in checks:
            say(f"{backend.name}: arguments left at their defaults")
            for result in run_defaults(ctx, default_cases(ops, ranks, dtypes[0], settings.seed)):
                record(result)
        run.clusters = merge_clusters(run.clusters, run.results)
        for op, feature_sets in exercised.items():
            run.pair_coverage[op] = pair_coverage(op, feature_sets, unsupported=backend.capabilities.unsupported).to_json()
    finally:
        invoker.close()
        run.seconds = time.perf_counter() - started
        run.backend_seconds = ctx.backend_seconds
        run.harness_seconds = run.seconds - ctx.backend_seconds
    return run


def _stream_check(ctx: CheckContext, case: Case, checks: Sequence[str], oracle: CheckContext | None) -> list[CheckResult]:
    results = check_differential(ctx, case) if "differential" in checks or "hygiene" in checks else []
    if "oracle" in checks and oracle is not None:
        results += check_oracle(ctx, case)
    return results


def _property_names(checks: Sequence[str]) -> list[str]:
    from .properties import PROPERTIES

    if "property" in checks:
        return list(PROPERTIES)
    return [name for name in PROPERTIES if name in checks]


def capabilities_json(backend: Backend) -> dict[str, Any]:
    """The backend's declared capabilities as plain JSON values."""
    caps = backend.capabilities
    out: dict[str, Any] = {}
    for spec_field in fields(caps):
        value = getattr(caps, spec_field.name)
        if isinstance(value, (set, frozenset)):
            value = sorted(value)
        elif isinstance(value, Mapping):
            value = dict(value)
        out[spec_field.name] = value
    return out


def resolve_checks(checks: Iterable[str] | None, oracle: bool) -> tuple[str, ...]:
    """Expand ``checks`` (families or single property names); validate names."""
    from .properties import PROPERTIES

    if not checks:
        selected = ["differential", "special", "property", "invalid", "hygiene", "defaults"] + (
            ["oracle"] if oracle else [])
        return tuple(selected)
    known = set(FAMILIES) | set(PROPERTIES) | {"differential"}
    out = []
    for check in checks:
        name = check.split(":")[0] if check.startswith(("invalid:", "oracle:")) else check
        if name not in known:
            raise ValueError(f"unknown check {check!r}; families: {', '.join(FAMILIES)}; "
                             f"properties: {', '.join(PROPERTIES)}")
        out.append(name)
    if "oracle" in out and not oracle:
        raise ValueError("the oracle check compares against a second backend: name it with --oracle BACKEND "
                         "(run_conformance(oracle=...))")
    if oracle and "oracle" not in out:
        out.append("oracle")
    return tuple(out)


def run_conformance(
    backends: str | Backend | Sequence[str | Backend],
    *,
    ops: Iterable[str] | None = None,
    ranks: Iterable[int] = (1, 2, 3),
    dtypes: Iterable[str] | None = None,
    checks: Iterable[str] | None = None,
    max_examples: int = 20,
    seed: int = 0,
    cases: Sequence[Case | str] | None = None,
    oracle: str | Backend | None = None,
    isolate: bool = False,
    timeout: float | None = None,
    memory_limit: int | None = None,
    catalogue: bool = True,
    database: str | None = None,
    progress: Progress | None = None,
    xfail: str | os.PathLike[str] | Sequence[XfailEntry] | None = None,
) -> Results:
    """Check one or more backends against the spec; returns the structured :class:`Results`.

    ``backends`` are loader specs (``"naive"``, ``"my_pkg.mod:backend"``, ``"path/file.py:attr"``) or
    backend objects. ``cases`` (objects or descriptors) replaces catalogue and generated cases.
    Deterministic for a given ``seed``. With ``isolate``, ``timeout`` (seconds per call, default
    60) and ``memory_limit`` (bytes of address space of the child process) bound each backend call;
    a command backend (``cmd:``) honours ``timeout`` without ``isolate`` too (per run of its
    program), any other backend needs ``isolate`` for it (ValueError). ``xfail`` — an
    expected-failures file or its entries (:mod:`convspec.conformance.xfail`) — turns the failures
    it records into ``known_failure`` results and reports entries that unexpectedly passed.

    >>> results = run_conformance("naive", ops=["conv"], ranks=[1], max_examples=2, checks=["differential"])
    >>> results.exit_code
    0
    """
    from ..backends.command import CommandBackend
    from .xfail import apply_xfail, load_xfail

    items = [backends] if isinstance(backends, str) or not isinstance(backends, Sequence) else list(backends)
    entries = load_xfail(xfail) if isinstance(xfail, (str, os.PathLike)) else list(xfail or ())
    chosen_ops = tuple(ops) if ops else tuple(OPS)
    unknown = [op for op in chosen_ops if op not in OPS]
    if unknown:
        raise ValueError(f"unknown ops {unknown}; ops are {sorted(OPS)}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout={timeout!r} must be a positive number of seconds")
    checked = resolve_checks(checks, oracle is not None)
    loaded = [(item if isinstance(item, str) else getattr(item, "name", repr(item)),
               load(item) if isinstance(item, str) else item) for item in items]
    if timeout is not None and not isolate:
        deaf = [spec for spec, backend in loaded if not isinstance(backend, CommandBackend)]
        if deaf:
            raise ValueError(f"timeout={timeout!r} without isolate: {deaf[0]} runs in this process, where a call "
                             "cannot be stopped; add isolate=True (--isolate), or drop the timeout")
    for _, backend in loaded:
        if isinstance(backend, CommandBackend) and timeout is not None:
            backend.timeout = timeout  # per run of the program: killed past it, reported timed_out
    oracle_backend = load(oracle) if isinstance(oracle, str) else oracle
    settings = Settings(ops=chosen_ops, ranks=tuple(ranks), dtypes=tuple(dtypes) if dtypes else None,
                        checks=checked, max_examples=max_examples, seed=seed, catalogue=catalogue, isolate=isolate,
                        timeout=timeout if timeout is not None or not isolate else DEFAULT_TIMEOUT,
                        memory_limit=memory_limit, database=database)
    parsed = None if cases is None else [Case.parse(c) if isinstance(c, str) else c for c in cases]
    results = Results(settings={key: list(value) if isinstance(value, tuple) else value
                                for key, value in asdict(settings).items()}
                      | {"oracle": getattr(oracle_backend, "name", None), "cases": None if parsed is None else
                         [c.descriptor for c in parsed]}
                      | ({"xfail": str(xfail)} if isinstance(xfail, (str, os.PathLike)) else {}))
    oracle_spec = oracle if isinstance(oracle, str) else getattr(oracle, "name", None)
    for (spec, backend), item in zip(loaded, items):
        run = run_backend(backend, spec, settings, cases=parsed, oracle=oracle_backend, progress=progress)
        run.adopt(spec, Launch(python_path=python_path_for(spec) if isinstance(item, str) else "", oracle=oracle_spec,
                               isolate=isolate, timeout=settings.timeout if isolate or timeout is not None else None,
                               memory_limit=memory_limit))
        results.backends.append(run)
    return apply_xfail(results, entries) if entries else results


def print_progress(message: str) -> None:
    """A progress callback writing one line per stage to stderr."""
    print(f"  … {message}", file=sys.stderr, flush=True)

