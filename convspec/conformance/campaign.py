"""Campaigns: a conformance run split into deterministic shards, run on every core or a cluster.

A *shard* is one backend, one op, one unit of checks and one seed. The units of an op are
``cases`` (the catalogue, generated and special-value cases with their hygiene checks, invalid
configurations, the defaults check, and the oracle when one is named) and one unit per
oracle-free property. Every stream of generated cases is seeded by the run's seed alone, so a
shard computes exactly the results that the same op and checks compute inside a whole run; the
merged report of a campaign is the same whether its shards ran one after the other
(``jobs=1``), in a pool of processes, or on Dask workers: shards are merged in shard order, never
in completion order.

Execution: ``jobs=1`` runs in this process; ``jobs > 1`` in a pool of that many processes;
``scheduler="tcp://HOST:8786"`` on an existing Dask distributed cluster, ``scheduler="local"``
on an embedded Dask ``LocalCluster`` of ``jobs`` single-threaded worker processes (Dask is
optional: ``pip install "dask[distributed]"``). Workers import convspec and the backend by its
loader spec, so backends are named by spec (``"naive"``, ``"pkg.mod:obj"``, ``"file.py:obj"``),
not passed as objects.

Resumable: with ``cache``, each finished shard is stored as ``<cache>/<key>.json`` (its results
JSON); the key hashes the shard, the run settings, the convspec and spec versions and, for a
backend defined in a file, that file's contents. A rerun loads cached shards instead of running
them. A time ``budget`` makes a deep run: seeds ``seed, seed + 1, …`` are queued until the budget
is spent (shards already started finish); the report names the seeds completed.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from ..spec import OPS, SPEC_VERSION
from .clusters import merge_clusters
from .coverage import PairCoverage
from .results import BackendRun, Results

__all__ = ["Campaign", "Shard", "ShardProgress", "merge_shards", "parse_budget", "run_campaign", "run_shard",
           "shard_results", "shards"]

#: The checks of the ``cases`` unit of an op (everything but the oracle-free properties).
CASE_FAMILIES = ("differential", "special", "invalid", "hygiene", "defaults", "oracle")


@dataclass(frozen=True)
class Shard:
    """One unit of work: ``backend`` (a loader spec) on ``op``, checks ``unit`` (``"cases"`` or a
    property name), with ``seed``."""

    backend: str
    op: str
    unit: str
    seed: int

    @property
    def label(self) -> str:
        return f"{self.backend} {self.op} {self.unit} seed={self.seed}"


@dataclass(frozen=True)
class Campaign:
    """The settings every shard of a campaign shares (those of :func:`run_conformance`)."""

    ranks: tuple[int, ...] = (1, 2, 3)
    dtypes: tuple[str, ...] | None = None
    checks: tuple[str, ...] = ()
    max_examples: int = 20
    oracle: str | None = None
    isolate: bool = False
    timeout: float | None = None
    memory_limit: int | None = None
    catalogue: bool = True
    database: str | None = None

    def checks_of(self, unit: str) -> list[str]:
        """The ``checks`` argument of a shard of ``unit``."""
        if unit != "cases":
            return [unit]
        return [check for check in self.checks if check in CASE_FAMILIES]


def parse_budget(text: str) -> float:
    """Seconds of a budget written ``90``, ``90s``, ``10m`` or ``2h``.

    >>> parse_budget("10m"), parse_budget("1.5h"), parse_budget("45")
    (600.0, 5400.0, 45.0)
    """
    scale = {"s": 1.0, "m": 60.0, "h": 3600.0}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in scale else (text, "s")
    try:
        seconds = float(number) * scale[unit]
    except ValueError:
        raise ValueError(f"budget {text!r}: expected seconds, or a number with s, m or h (e.g. 10m)") from None
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"budget {text!r} must be a positive duration")
    return seconds


def shards(backends: Sequence[str], ops: Sequence[str], campaign: Campaign, seeds: Iterable[int]) -> Iterator[Shard]:
    """Shards in their canonical order: seed, backend, op, then the ``cases`` unit and the
    properties in the order of the property table. ``campaign.checks`` must be resolved
    (:func:`~convspec.conformance.engine.resolve_checks`)."""
    from .properties import PROPERTIES

    properties = [name for name in PROPERTIES if name in campaign.checks or "property" in campaign.checks]
    has_cases = any(check in CASE_FAMILIES for check in campaign.checks)
    for seed in seeds:
        for backend in backends:
            for op in ops:
                if has_cases:
                    yield Shard(backend, op, "cases", seed)
                for name in properties:
                    if op in PROPERTIES[name].ops:
                        yield Shard(backend, op, name, seed)


def run_shard(shard: Shard, campaign: Campaign) -> dict[str, Any]:
    """Run one shard; returns its results as JSON (what travels back from a worker)."""
    with warnings.catch_warnings():
        # A Dask worker's own threads draw from `random` while hypothesis generates; hypothesis
        # then warns that a strategy used `random`, which none does.
        warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies")
        results = shard_results(shard, campaign)
    return results.to_json()


def shard_results(shard: Shard, campaign: Campaign, backend: Any = None, oracle: Any = None) -> Results:
    """Run one shard in this process. ``backend`` and ``oracle`` (objects already loaded, e.g.
    by the pytest plugin) default to the shard's spec and the campaign's oracle spec."""
    from .engine import run_conformance

    checks = campaign.checks_of(shard.unit)
    return run_conformance(
        shard.backend if backend is None else backend, ops=[shard.op], ranks=campaign.ranks, dtypes=campaign.dtypes,
        checks=checks, max_examples=campaign.max_examples, seed=shard.seed,
        oracle=(campaign.oracle if oracle is None else oracle) if "oracle" in checks else None,
        isolate=campaign.isolate, timeout=campaign.timeout, memory_limit=campaign.memory_limit,
        catalogue=campaign.catalogue and shard.unit == "cases", database=campaign.database)


def _file_digest(spec: str) -> str:
    """For a ``file.py:attr`` backend, a digest of the file (a cached shard of an edited file is stale)."""
    path = spec.partition(":")[0]
    if path.endswith(".py") and os.path.isfile(path):
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    return ""


def shard_key(shard: Shard, campaign: Campaign) -> str:
    """The cache key of a shard: what could change its results."""
    from .. import __version__

    text = json.dumps({"shard": asdict(shard), "campaign": asdict(campaign), "convspec": __version__,
                       "spec": SPEC_VERSION, "file": _file_digest(shard.backend)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class _Executor:
    """Submit shards and yield (shard, results JSON) as they complete, on one of three engines."""

    def __init__(self, jobs: int, scheduler: str | None) -> None:
        self.jobs, self.scheduler = jobs, scheduler
        self._pool: Any = None
        self._client: Any = None
        self._cluster: Any = None
        if scheduler is not None:
            try:
                from distributed import Client, LocalCluster
            except ImportError as exc:
                raise ValueError('a Dask scheduler needs dask distributed: pip install "dask[distributed]"') from exc
            if scheduler == "local":
                self._cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                             dashboard_address=None)
                self._client = Client(self._cluster)
            else:
                self._client = Client(scheduler)
        elif jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            # spawn: a forked copy of a process that loaded torch or XLA is not safe to run in.
            self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))

    @property
    def serial(self) -> bool:
        return self._pool is None and self._client is None

    @property
    def engine(self) -> str:
        if self._client is not None:
            return "dask local cluster" if self._cluster is not None else f"dask {self.scheduler}"
        return f"{self.jobs} processes" if self._pool is not None else "this process"

    def submit(self, shard: Shard, campaign: Campaign) -> Any:
        if self._client is not None:
            return self._client.submit(run_shard, shard, campaign, pure=False)
        return self._pool.submit(run_shard, shard, campaign)

    def done(self, futures: Sequence[Any], timeout: float | None) -> list[Any]:
        """Futures of ``futures`` that are finished (waiting up to ``timeout`` for one)."""
        if self._client is not None:
            from distributed import wait

            try:
                wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
            except TimeoutError:  # none finished within the timeout: report none
                pass
            return [f for f in futures if f.done()]
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as pool_wait

        finished, _ = pool_wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        return list(finished)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()


def run_campaign(
    backends: str | Sequence[str],
    *,
    ops: Sequence[str] | None = None,
    ranks: Sequence[int] = (1, 2, 3),
    dtypes: Sequence[str] | None = None,
    checks: Sequence[str] | None = None,
    max_examples: int = 20,
    seeds: Sequence[int] | None = None,
    seed: int = 0,
    budget: float | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    cache: str | os.PathLike[str] | None = None,
    oracle: str | None = None,
    isolate: bool = False,
    timeout: float | None = None,
    memory_limit: int | None = None,
    catalogue: bool = True,
    database: str | None = None,
    progress: Callable[[int, int, int, str], None] | None = None,
) -> Results:
    """Run a campaign and merge its shards into one :class:`Results`, in shard order.

    ``seeds`` (default ``[seed]``) are run in full; with ``budget`` (seconds) seeds ``seed, seed +
    1, …`` are queued until the budget is spent instead. ``jobs`` defaults to every core
    (``os.cpu_count()``). ``progress(done, total, cached, label)`` is called as shards finish.

    >>> results = run_campaign("naive", ops=["max_pool"], ranks=[1], checks=["differential"], max_examples=2, jobs=1)
    >>> results.exit_code, results.settings["campaign"]["shards"]
    (0, 1)
    """
    from ..backends import load
    from .engine import resolve_checks

    specs = [backends] if isinstance(backends, str) else list(backends)
    for spec in specs + ([oracle] if oracle else []):
        load(spec)  # fail fast, here, with the loader's one-line error
    chosen_ops = tuple(ops) if ops else tuple(OPS)
    unknown = [op for op in chosen_ops if op not in OPS]
    if unknown:
        raise ValueError(f"unknown ops {unknown}; ops are {sorted(OPS)}")
    jobs = jobs or os.cpu_count() or 1
    if jobs < 1:
        raise ValueError(f"jobs={jobs!r} must be at least 1")
    campaign = Campaign(ranks=tuple(ranks), dtypes=tuple(dtypes) if dtypes else None,
                        checks=resolve_checks(checks, oracle is not None), max_examples=max_examples, oracle=oracle,
                        isolate=isolate, timeout=timeout, memory_limit=memory_limit, catalogue=catalogue,
                        database=database)
    cache_dir = Path(cache) if cache is not None else None
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
    deadline = None if budget is None else time.monotonic() + budget
    seed_list: Iterable[int] = seeds if seeds is not None else ([seed] if budget is None else itertools.count(seed))
    pending: Iterator[Shard] = shards(specs, chosen_ops, campaign, seed_list)
    per_seed = sum(1 for _ in shards(specs, chosen_ops, campaign, [0]))
    total = per_seed * (len(seeds) if seeds is not None else 1)
    started = time.perf_counter()
    done: dict[int, dict[str, Any]] = {}  # shard number -> results JSON
    order: list[Shard] = []
    cached = 0
    executor = _Executor(jobs, scheduler)
    running: dict[Any, int] = {}

    def finish(number: int, obj: dict[str, Any]) -> None:
        done[number] = obj
        shard = order[number]
        if cache_dir is not None:
            target = cache_dir / f"{shard_key(shard, campaign)}.json"
            temporary = target.with_suffix(".tmp")
            temporary.write_text(json.dumps(obj), encoding="utf-8")
            temporary.replace(target)  # atomic: an interrupted run leaves no half shard
        if progress:
            progress(len(done), total, cached, shard.label)

    def within_budget() -> bool:
        return deadline is None or time.monotonic() < deadline

    exhausted = False
    try:
        while True:
            # Keep every worker busy (two shards queued per worker), in canonical shard order.
            while not exhausted and len(running) < 2 * jobs and within_budget():
                shard = next(pending, None)
                if shard is None:
                    exhausted = True
                    break
                number = len(order)
                order.append(shard)
                if number >= total:  # a budgeted run has queued another seed
                    total += per_seed
                path = cache_dir / f"{shard_key(shard, campaign)}.json" if cache_dir is not None else None
                if path is not None and path.is_file():
                    cached += 1
                    done[number] = json.loads(path.read_text(encoding="utf-8"))
                    if progress:
                        progress(len(done), total, cached, f"{shard.label} (cached)")
                elif executor.serial:
                    finish(number, run_shard(shard, campaign))
                else:
                    running[executor.submit(shard, campaign)] = number
            if not running:
                break  # nothing in flight: every shard is queued, or the budget is spent
            for future in executor.done(list(running), timeout=1.0):
                finish(running.pop(future), future.result())
    finally:
        executor.close()
    # With a budget only whole seeds count: a seed some of whose shards never ran is dropped.
    complete = _complete_seeds(order, done)
    kept = [(order[n], done[n]) for n in sorted(done) if order[n].seed in complete]
    results = merge_shards(kept, specs)
    results.settings.update({key: list(value) if isinstance(value, tuple) else value
                             for key, value in asdict(campaign).items()})
    results.settings.update(ops=list(chosen_ops), seed=min(complete) if complete else seed, campaign={
        "seeds": sorted(complete), "shards": len(kept), "cached": cached, "jobs": jobs, "engine": executor.engine,
        "budget": budget, "seconds": round(time.perf_counter() - started, 3)})
    return results


def _complete_seeds(order: Sequence[Shard], done: dict[int, Any]) -> set[int]:
    seeds: dict[int, bool] = {}
    for number, shard in enumerate(order):
        seeds[shard.seed] = seeds.get(shard.seed, True) and number in done
    return {seed for seed, complete in seeds.items() if complete}


def merge_shards(finished: Sequence[tuple[Shard, dict[str, Any]]], specs: Sequence[str]) -> Results:
    """One :class:`Results` from the shards' results, backends in ``specs`` order and each
    backend's results in shard order: failure clusters are merged again across shards, pairwise
    coverage of an op is the union of its shards' (a pair is missing only if every shard missed it)."""
    merged = Results()
    runs: dict[str, BackendRun] = {}
    coverage: dict[tuple[str, str], PairCoverage] = {}
    for number, (shard, obj) in enumerate(finished):
        part = Results.from_json(obj)
        merged.environment = part.environment
        for run in part.backends:
            target = runs.get(shard.backend)
            if target is None:
                target = runs[shard.backend] = replace(run, results=[], clusters=[], pair_coverage={},
                                                       seconds=0.0, harness_seconds=0.0, backend_seconds=0.0)
            prefix = f"s{number}:"  # shard-local cluster ids (conv#1) are unique once prefixed
            for result in run.results:
                if result.cluster:
                    result.cluster = prefix + result.cluster
                target.results.append(result)
            target.clusters += [replace(cluster, id=prefix + cluster.id) for cluster in run.clusters]
            target.seconds += run.seconds
            target.harness_seconds += run.harness_seconds
            target.backend_seconds += run.backend_seconds
            for op, value in run.pair_coverage.items():
                part_coverage = PairCoverage.from_json(op, value)
                previous = coverage.get((shard.backend, op))
                coverage[(shard.backend, op)] = part_coverage if previous is None else _union(previous, part_coverage)
    for spec in specs:
        if spec not in runs:
            continue
        whole = runs[spec]
        whole.clusters = merge_clusters(whole.clusters, whole.results)
        whole.pair_coverage = {op: value.to_json() for (backend, op), value in coverage.items() if backend == spec}
        merged.backends.append(whole)
    return merged


def _union(a: PairCoverage, b: PairCoverage) -> PairCoverage:
    missing = [pair for pair in a.missing if pair in set(b.missing)]
    feasible = max(a.feasible, b.feasible)
    return PairCoverage(op=a.op, cases=a.cases + b.cases, feasible=feasible, covered=feasible - len(missing),
                        missing=missing)


class ShardProgress:
    """Progress of a campaign on ``stream``: one live line on a terminal (rich: shards done of
    total, cached, elapsed, ETA), or, when the stream is not a terminal, a plain line at most every
    ``interval`` seconds and one at the end. Call it as ``progress(done, total, cached, label)``;
    :meth:`close` ends the live line."""

    def __init__(self, stream: Any = None, interval: float = 10.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self.last = -interval
        self._live: Any = None
        self._task: Any = None
        if getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn

            self._live = Progress(TextColumn("  shards"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[cached]} cached"), TimeElapsedColumn(),
                                  TextColumn("ETA"), TimeRemainingColumn(), TextColumn("{task.fields[label]}"),
                                  console=Console(file=self.stream), transient=False)
            self._task = self._live.add_task("campaign", total=None, cached=0, label="")
            self._live.start()

    def __call__(self, done: int, total: int, cached: int, label: str) -> None:
        if self._live is not None:
            self._live.update(self._task, completed=done, total=total, cached=cached, label=label[:60])
            return
        now = time.monotonic()
        if now - self.last < self.interval and done < total:
            return
        self.last = now
        elapsed = now - self.started
        rate = (done - cached) / elapsed if done > cached and elapsed > 0 else 0.0
        eta = f", ETA {(total - done) / rate:.0f} s" if rate > 0 and done < total else ""
        print(f"  … {done}/{total} shards ({cached} cached), {elapsed:.0f} s{eta}: {label}", file=self.stream,
              flush=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
