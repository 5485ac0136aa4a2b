"""Harness overhead of ``convspec check``: everything but the backend's own compute, and what dominates it.

    harness = wall time of run_conformance − Σ time inside the backend's methods
    per call = harness / number of backend calls

``run_conformance`` records both in each ``BackendRun`` (``harness_seconds``, ``backend_seconds``);
the backend is wrapped in a proxy that counts its calls. With ``--profile`` the same run is repeated
under cProfile and its time is split by where it is spent: each function's own time goes to the
component of its file (convspec.reference, convspec.conformance.compare, hypothesis, ...); time in
NumPy's C functions and other libraries goes to the component that called them, in proportion
to each caller's share (cProfile's caller table).

    python benchmarks/harness_overhead.py                       # im2col, default settings
    python benchmarks/harness_overhead.py im2col torch --profile
    python benchmarks/harness_overhead.py im2col --profile --pyinstrument   # also a call tree
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import json
import pstats
import sys
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

#: (component, path fragment) in order: the first fragment found in a function's file names its component.
COMPONENTS = [
    ("backend (its own compute)", "convspec/backends/"),
    ("reference: oracle outputs and magnitudes", "convspec/reference/"),
    ("compare: bounds, statistics", "convspec/conformance/compare.py"),
    ("invoke: input copies, mutation check", "convspec/conformance/invoke.py"),
    ("properties (oracle-free checks)", "convspec/conformance/properties.py"),
    ("case data and strategies", "convspec/conformance/cases.py"),
    ("case data and strategies", "convspec/conformance/strategies.py"),
    ("catalogue", "convspec/conformance/catalogue.py"),
    ("runner", "convspec/conformance/runner.py"),
    ("results", "convspec/conformance/results.py"),
    ("spec: validation, error bounds", "convspec/spec/"),
    ("hypothesis engine", "/hypothesis/"),
]


class Counting:
    """A backend proxy that counts calls per op and otherwise behaves as the backend."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.calls: collections.Counter[str] = collections.Counter()

    def __getattr__(self, attribute: str) -> Any:
        from convspec.spec import OPS

        value = getattr(self._inner, attribute)
        if attribute not in OPS:
            return value

        def counted(*args: Any) -> Any:
            self.calls[attribute] += 1
            return value(*args)

        return counted


def run(specs: list[str], max_examples: int, seed: int) -> list[dict[str, Any]]:
    """run_conformance on each backend (default settings but max_examples/seed); timings per backend."""
    from convspec.backends import load
    from convspec.conformance import run_conformance

    rows = []
    for spec in specs:
        backend = Counting(load(spec))
        started = time.perf_counter()
        results = run_conformance([backend], max_examples=max_examples, seed=seed)
        wall = time.perf_counter() - started
        backend_run = results.backends[0]
        calls = sum(backend.calls.values())
        rows.append({"backend": spec, "wall_s": wall, "seconds": backend_run.seconds,
                     "backend_seconds": backend_run.backend_seconds, "harness_seconds": backend_run.harness_seconds,
                     "calls": calls, "results": len(backend_run.results),
                     "harness_ms_per_call": 1e3 * backend_run.harness_seconds / max(calls, 1),
                     "backend_ms_per_call": 1e3 * backend_run.backend_seconds / max(calls, 1),
                     "calls_by_op": dict(backend.calls), "verdict": backend_run.verdict})
    return rows


def _component(filename: str) -> str | None:
    normalised = filename.replace("\\", "/")
    for name, fragment in COMPONENTS:
        if fragment in normalised:
            return name
    return None


def breakdown(stats: pstats.Stats) -> dict[str, float]:
    """Own time per component; foreign functions' own time follows their callers (see module doc)."""
    table = stats.stats  # type: ignore[attr-defined]
    memo: dict[Any, dict[str, float]] = {}

    def shares(func: Any, depth: int = 0) -> dict[str, float]:
        """How one second of ``func``'s own time splits over components."""
        component = _component(func[0])
        if component is not None:
            return {component: 1.0}
        if func in memo:
            return memo[func]
        memo[func] = {"other (interpreter, unattributed)": 1.0}  # breaks cycles
        callers = table[func][4]
        total = sum(entry[2] for entry in callers.values())
        if depth > 30 or not callers or total <= 0:
            return memo[func]
        out: dict[str, float] = collections.defaultdict(float)
        for caller, entry in callers.items():
            for name, part in shares(caller, depth + 1).items():
                out[name] += part * entry[2] / total
        memo[func] = dict(out)
        return memo[func]

    totals: dict[str, float] = collections.defaultdict(float)
    for func, (_, _, own, _, _) in table.items():
        for name, part in shares(func).items():
            totals[name] += own * part
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def profile(specs: list[str], max_examples: int, seed: int, top: int, tree: bool) -> dict[str, Any]:
    profiler = cProfile.Profile()
    profiler.enable()
    rows = run(specs, max_examples, seed)
    profiler.disable()
    stats = pstats.Stats(profiler)
    parts = breakdown(stats)
    total = sum(parts.values())
    print(f"\nprofile (cProfile) of run_conformance({specs}): {total:.1f} s of own time")
    for name, seconds in parts.items():
        print(f"  {name:<45} {seconds:8.2f} s  {100 * seconds / total:5.1f} %")
    print(f"\ntop {top} functions by own time (NumPy's C functions listed on their own):")
    stats.sort_stats("tottime").print_stats(top)
    print(f"\ntop {top} functions by cumulative time:")
    stats.sort_stats("cumulative").print_stats(top)
    if tree:
        try:
            from pyinstrument import Profiler
        except ImportError:
            print("pyinstrument is not installed (pip install pyinstrument): no call tree")
        else:
            with Profiler(interval=0.001) as pyinstrument_profiler:
                run(specs, max_examples, seed)
            print(pyinstrument_profiler.output_text(unicode=True, color=False, show_all=False))
    return {"components_s": parts, "profiled_runs": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backends", nargs="*", default=["im2col"])
    parser.add_argument("--max-examples", type=int, default=20, help="as convspec check (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", action="store_true", help="also profile the run and print the breakdown")
    parser.add_argument("--pyinstrument", action="store_true", help="with --profile: also a pyinstrument call tree")
    parser.add_argument("--top", type=int, default=30, help="functions listed by cumulative time")
    parser.add_argument("--json", help="write the numbers here")
    args = parser.parse_args(argv)
    # special-value cases make NumPy warn (overflow, invalid value); the warnings are not what is measured
    warnings.simplefilter("ignore", RuntimeWarning)
    rows = run(args.backends, args.max_examples, args.seed)
    print(f"{'backend':<10} {'wall s':>8} {'backend s':>10} {'harness s':>10} {'calls':>7} {'results':>8} "
          f"{'harness ms/call':>16} {'backend ms/call':>16}")
    for row in rows:
        print(f"{row['backend']:<10} {row['wall_s']:>8.1f} {row['backend_seconds']:>10.2f} "
              f"{row['harness_seconds']:>10.2f} {row['calls']:>7} {row['results']:>8} "
              f"{row['harness_ms_per_call']:>16.2f} {row['backend_ms_per_call']:>16.2f}")
    output: dict[str, Any] = {"runs": rows}
    if args.profile:
        output["profile"] = profile(args.backends, args.max_examples, args.seed, args.top, args.pyinstrument)
    if args.json:
        Path(args.json).write_text(json.dumps(output, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
