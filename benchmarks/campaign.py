"""Campaign throughput: checked cases per second, serial vs ``--jobs N``, and a Dask local cluster.

    cases/s = results of the merged report / wall time of run_campaign

Each engine runs the same campaign (backends, ops, seeds) ``--repeat`` times, interleaved
(serial, jobs, dask, serial, ...) so that load on a shared machine hits all of them alike; the
median is reported, with the ratio to serial measured in the same run. Every engine's merged
report must have the same content as the serial one (the script exits 1 otherwise).

    python benchmarks/campaign.py                                  # naive im2col, seeds 0-3, 2 jobs
    python benchmarks/campaign.py torch --seeds 0-1 --jobs 2 --repeat 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

from convspec.conformance.campaign import run_campaign


def content(results: Any) -> list[Any]:
    """Every result of every backend, without timings."""
    return [sorted((r.op, r.family, r.check, r.clause, r.status, r.case.descriptor if r.case else "", r.message)
                   for r in run.results) for run in results.backends]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backends", nargs="*", default=["naive", "im2col"])
    parser.add_argument("--seeds", default="0-3", help="seed range A-B (default 0-3)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-dask", action="store_true", help="skip the Dask local cluster")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    first, _, last = args.seeds.partition("-")
    seeds = list(range(int(first), int(last or first) + 1))
    engines: dict[str, dict[str, Any]] = {"serial": {"jobs": 1}, f"jobs={args.jobs}": {"jobs": args.jobs}}
    if not args.no_dask:
        try:
            import distributed  # noqa: F401
        except ImportError:
            print("dask distributed not installed: no Dask row", file=sys.stderr)
        else:
            engines[f"dask local cluster, {args.jobs} workers"] = {"jobs": args.jobs, "scheduler": "local"}
    times: dict[str, list[float]] = {name: [] for name in engines}
    counts: dict[str, int] = {}
    reference: list[Any] | None = None
    same = True
    for _ in range(args.repeat):
        for name, options in engines.items():
            started = time.perf_counter()
            results = run_campaign(args.backends, seeds=seeds, **options)
            times[name].append(time.perf_counter() - started)
            counts[name] = sum(len(run.results) for run in results.backends)
            observed = content(results)
            reference = observed if reference is None else reference
            if observed != reference:
                same = False
                print(f"{name}: the merged report differs from the serial one", file=sys.stderr)
    serial = statistics.median(times["serial"])
    rows = []
    print(f"campaign: {' '.join(args.backends)}, seeds {args.seeds}, median of {args.repeat}")
    print(f"{'engine':<34} {'wall s':>8} {'cases/s':>9} {'× serial':>9}  same report")
    for name in engines:
        wall = statistics.median(times[name])
        rows.append({"engine": name, "seconds": times[name], "median_seconds": wall, "results": counts[name],
                     "cases_per_second": counts[name] / wall, "speedup": serial / wall})
        print(f"{name:<34} {wall:>8.1f} {counts[name] / wall:>9.0f} {serial / wall:>9.2f}  {'yes' if same else 'NO'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"backends": args.backends, "seeds": seeds, "repeat": args.repeat, "rows": rows,
                       "same_report": same}, handle, indent=1)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
