"""Peak memory of the im2col backend on a layer whose full column matrix would exceed 2 GiB.

    expected peak  ≤  inputs + outputs + memory_budget_bytes          (over the process baseline)

The layer: conv 3×3, padding 1, N=16, C_in=256, 128×128, C_out=16, float32. Its column matrix
X̂ has M = N·Πo = 262144 columns and K = C_in·ΠK = 2304 rows: 604 M elements, 2.25 GiB — what a
one-shot im2col would allocate. Each measurement runs in a fresh subprocess:

* ``rss``: peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``, a high-water
  mark) after the call, minus the high-water mark just before it, with the inputs already
  allocated and written and a small warm-up conv already run (so BLAS's own buffers exist).
* ``tracemalloc``: the peak of NumPy's traced allocations during the call
  (``tracemalloc.reset_peak()`` before it), which sees array buffers only, not BLAS's.

Both are compared with ``outputs + budget`` (the inputs exist before the call).

    python benchmarks/memory_peak.py                     # im2col at 64 MiB and 256 MiB budgets, torch
    python benchmarks/memory_peak.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing
MiB = 2**20
LAYER = {"input_shape": (16, 256, 128, 128), "weight_shape": (16, 256, 3, 3), "padding": 1}

CHILD = r"""
import json, resource, sys, time, tracemalloc
import numpy as np
from convspec.backends import load
from convspec.backends.im2col import Im2colBackend
from convspec.spec import ConvParams

backend_name, budget, op, mode, layer = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
backend = Im2colBackend(memory_budget_bytes=budget) if backend_name == "im2col" else load(backend_name)
params = ConvParams(**layer)
small = ConvParams(input_shape=(1, 8, 9, 9), weight_shape=(4, 8, 3, 3), padding=1)
rng = np.random.default_rng(0)
warm = [rng.standard_normal(s, dtype=np.float32) for s in (small.input_shape, small.weight_shape, small.output_shape)]
backend.conv(warm[0], warm[1], None, small)
backend.conv_backward(warm[0], warm[1], warm[2], small)
x = rng.standard_normal(params.input_shape, dtype=np.float32)
w = rng.standard_normal(params.weight_shape, dtype=np.float32)
dy = rng.standard_normal(params.output_shape, dtype=np.float32) if op == "conv_backward" else None
def maxrss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
if mode == "tracemalloc":
    tracemalloc.start()
before = maxrss()
if mode == "tracemalloc":
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
started = time.perf_counter()
out = backend.conv(x, w, None, params) if op == "conv" else backend.conv_backward(x, w, dy, params)
seconds = time.perf_counter() - started
outputs = [o for o in (out if isinstance(out, tuple) else (out,)) if o is not None]
peak = (tracemalloc.get_traced_memory()[1] - base) if mode == "tracemalloc" else maxrss() - before
inputs = x.nbytes + w.nbytes + (dy.nbytes if dy is not None else 0)
print(json.dumps({"peak": peak, "inputs": inputs, "outputs": sum(o.nbytes for o in outputs), "baseline_rss": before,
                  "seconds": seconds}))
"""


def measure(backend: str, budget: int, op: str, mode: str) -> dict[str, float]:
    """One measurement in a fresh interpreter (so earlier peaks do not hide this one)."""
    done = subprocess.run([sys.executable, "-c", CHILD, backend, str(budget), op, mode, json.dumps(LAYER)],
                          capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode:
        raise RuntimeError(f"{backend} {op} {mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budgets", nargs="+", type=int, default=[64, 256], help="im2col budgets in MiB")
    parser.add_argument("--ops", nargs="+", default=["conv", "conv_backward"], choices=["conv", "conv_backward"])
    parser.add_argument("--no-torch", action="store_true", help="skip the torch rows (for comparison only)")
    parser.add_argument("--json", help="write the measurements here")
    args = parser.parse_args(argv)

    from convspec.spec import ConvParams

    params = ConvParams(**LAYER)  # type: ignore[arg-type]
    columns = math.prod(params.output_shape[:1] + params.output_shape[2:]) * params.weight_shape[1] \
        * math.prod(params.kernel_size) * 4
    print(f"layer: conv x{params.input_shape} w{params.weight_shape} pad 1 float32 -> y{params.output_shape}; "
          f"full column matrix {columns / 2**30:.2f} GiB")
    runs = [("im2col", budget * MiB) for budget in args.budgets] + ([] if args.no_torch else [("torch", 0)])
    rows = []
    header = (f"{'backend':<8} {'budget':>8} {'op':<14} {'mode':<12} {'inputs':>8} {'outputs':>8} "
              f"{'peak':>8} {'out+budget':>10} {'peak/(out+budget)':>17} {'seconds':>8}")
    print(header)
    for backend, budget in runs:
        for op in args.ops:
            for mode in ("rss", "tracemalloc"):
                m = measure(backend, budget or 1, op, mode)
                limit = m["outputs"] + budget
                row = {"backend": backend, "budget": budget if backend == "im2col" else None, "op": op, "mode": mode,
                       **m, "outputs_plus_budget": limit, "column_matrix": columns}
                rows.append(row)
                ratio = f"{m['peak'] / limit:.2f}" if backend == "im2col" else "—"
                budget_text = f"{budget // MiB} MiB" if backend == "im2col" else "—"
                limit_text = f"{limit / MiB:.0f}Mi" if backend == "im2col" else "—"
                print(f"{backend:<8} {budget_text:>8} {op:<14} {mode:<12} {m['inputs'] / MiB:>6.0f}Mi "
                      f"{m['outputs'] / MiB:>6.0f}Mi {m['peak'] / MiB:>6.0f}Mi {limit_text:>10} {ratio:>17} "
                      f"{m['seconds']:>8.2f}", flush=True)
    print("peak = high-water mark over the one before the call (inputs already allocated); MiB = 2^20 bytes")
    if args.json:
        Path(args.json).write_text(json.dumps({"layer": {k: list(v) if isinstance(v, tuple) else v
                                                         for k, v in LAYER.items()}, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
