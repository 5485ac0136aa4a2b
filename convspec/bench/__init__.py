"""``convspec bench``: time backends on standard layer suites, next to torch and to a plain matmul.

    t          = median of ``repeat`` timed calls, after ``warmup`` untimed ones
    GFLOP/s    = FLOPs / t / 10⁹
    ×torch     = t / t_torch        (the ``torch`` backend, same layer, op and dtype, same run)
    ×matmul    = t / t_matmul       (np.matmul of the same M×N×K, same dtype, same run)
    geomean    = (Π ratio)^(1/L) over the L layers where both times exist

Work counted per op (MACs = multiply-adds; FLOPs = 2·MACs for the linear ops)
----------------------------------------------------------------------------------
* conv, forward: MACs = N·Πo·C_out·(C_in/g)·ΠK (CONV-DEF-1); FLOPs = 2·MACs.
* conv, backward (``conv_backward``): dx and dw each take MACs multiply-adds (CONV-GRAD-1);
  FLOPs = 4·MACs (db's N·Πo·C_out additions are not counted).
* conv_transpose: MACs = N·Πi·C_in·(C_out/g)·ΠK, i the input positions (CONVT-DEF-1);
  forward 2·MACs, backward 4·MACs.
* max_pool / avg_pool and their backward: FLOPs = taps = N·C·Πo·ΠK, one comparison or addition
  per tap read (POOL-WINDOW-1); a backward is counted like its forward. Pools have no matmul.

The matmul of a layer (the practical limit for a GEMM-based method)
-------------------------------------------------------------------
conv: M = N·Πo, K = (C_in/g)·ΠK, N' = C_out/g, one product per group (``np.matmul`` batched
over g): forward (M×K)@(K×N'); backward the two products of dx and dw, (M×N')@(N'×K) and
(N'×M)@(M×K), timed together. conv_transpose is conv's adjoint: M = N·Πi, K = C_in/g,
N' = (C_out/g)·ΠK, same three products. Operands are C-contiguous arrays of the bench dtype,
the output preallocated (``out=``); so g·M·N'·K = MACs and ×matmul is t / t_matmul at equal work.

Backends
--------
Any loader spec (``im2col``, ``torch``, ``my_pkg.mod:backend``...) and the pseudo-backend
``reference`` (convspec.reference's functions; float64 whatever the input dtype). ``torch`` is
always timed as the baseline when it can be loaded; when it cannot, the ×torch column is left
out with a note. The torch backend's ``conv_backward`` is ``torch.autograd.grad`` of a forward it
computes in the same call, so torch's backward time includes one forward; every backend's time
includes its own argument checks and, for torch, the NumPy ↔ tensor copies.

JSON (``--json FILE``; :meth:`BenchResult.to_json`)
-------------------------------------------------------
::

    {"format": "convspec-bench", "version": 1,
     "machine": {"date", "convspec", "git_commit" | null, "platform", "cpu", "cpu_count", "python",
                 "numpy", "torch" | null, "torch_threads" | null,
                 "blas": [{"user_api", "internal_api", "version", "architecture", "num_threads",
                           "threading_layer", "library"}],     # threadpoolctl, else numpy's config
                 "blas_source": "threadpoolctl" | "numpy config",
                 "environment": {"OPENBLAS_CORETYPE": str | null, "OPENBLAS_L2_SIZE": ..., ...},
                 "load_average": {"before": [1, 5, 15 min], "after": [...]} | null},
     "settings": {"backends": [...], "baseline": "torch" | null, "dtypes": [...], "repeat", "warmup",
                  "directions": ["forward", "backward"], "suites": [...], "batch": int | null, "seed",
                  "threads": int | null},
     "notes": [str, ...],
     "layers": [{"suite", "name", "kind", "params": {constructor arguments}, "macs", "flops":
                 {"forward", "backward"}, "gemm": {"groups", "m", "n", "k"} | null}],
     "rows": [{"suite", "layer", "dtype", "direction", "op", "backend", "status": "ok" | "unsupported"
               | "error", "message", "median_s", "min_s", "times_s": [...], "gflops",
               "ratio_torch" | null, "ratio_matmul" | null}],
     "summary": [{"suite", "dtype", "direction", "backend", "layers", "total_s",
                  "geomean_ratio_torch" | null, "geomean_ratio_matmul" | null, "geomean_gflops"}]}

The matmul rows have ``backend = "matmul"``; times are seconds. ``convspec report BENCH.json ...``
renders these files as a Speed section of the HTML or Markdown report, or as a page of their own
(:func:`convspec.conformance.render.render_speed`).

Modules
-------
``suites`` (the layers and their work), ``timing`` (backends, medians, ratios, BenchResult),
``machine`` (CPU, BLAS, environment, git commit), ``render`` (the JSON format BENCH_FORMAT,
:func:`check_bench`, the Speed sections of a report); this module: the command line.

Examples
--------
>>> from convspec.spec import ConvParams
>>> tiny = [Layer("tiny", ConvParams(input_shape=(1, 2, 8, 8), weight_shape=(3, 2, 3, 3)))]
>>> result = run_bench(["im2col"], layers=tiny, repeat=1, warmup=0, baseline=None)
>>> [(row.backend, row.status) for row in result.rows if row.direction == "forward"]
[('im2col', 'ok'), ('matmul', 'ok')]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..cli import positive_int
from ..spec import DTYPE_NAMES
from .machine import BLAS_ENVIRONMENT, blas_info, header_lines, machine_info
from .render import BENCH_FORMAT, BENCH_VERSION, check_bench
from .suites import DIRECTIONS, SUITES, Gemm, Layer, audio1d, mobilenetv2, pools, resnet50, suite_layers, unet3d
from .timing import (MATMUL, REFERENCE, TORCH, BenchResult, ReferenceBackend, Row, Summary, geometric_mean,
                     load_backend, run_bench)

__all__ = ["BENCH_FORMAT", "BENCH_VERSION", "BLAS_ENVIRONMENT", "DIRECTIONS", "MATMUL", "REFERENCE", "SUITES", "TORCH",
           "BenchResult", "Gemm", "Layer", "ReferenceBackend", "Row", "Summary", "add_arguments", "audio1d",
           "blas_info", "check_bench", "geometric_mean", "header_lines", "load_backend", "machine_info", "main",
           "mobilenetv2", "pools", "resnet50", "run_bench", "standalone", "suite_layers", "unet3d"]


# --------------------------------------------------------------------------------------------
# The command line (wired by cli.py as ``convspec bench``)
# --------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``convspec bench``; ``main(args)`` runs it."""
    parser.add_argument("backends", nargs="*", default=["im2col"],
                        help="backends to time (loader specs, or 'reference'); default im2col. torch is always "
                             "timed as the baseline when it loads")
    parser.add_argument("--suite", nargs="+", default=["resnet50"], choices=[*SUITES, "all"], metavar="NAME",
                        help=f"layer suites: {', '.join(SUITES)}, or all (default resnet50)")
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=list(DTYPE_NAMES), metavar="DTYPE",
                        help="float16 bfloat16 float32 float64 (default float32)")
    parser.add_argument("--repeat", type=positive_int, default=5, help="timed runs per layer; the median is shown (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (1)")
    parser.add_argument("--batch", type=positive_int, help="batch size for every suite (default: each suite's own, 1)")
    parser.add_argument("--ops", nargs="+", choices=list(DIRECTIONS), default=list(DIRECTIONS), metavar="DIRECTION",
                        help="forward and/or backward (default both)")
    parser.add_argument("--baseline", default=TORCH, help="backend the ×torch ratio divides by (default torch); "
                                                          "'none' for none")
    parser.add_argument("--threads", type=positive_int, help="limit BLAS, OpenMP and torch threads to N for the run")
    parser.add_argument("--no-matmul", action="store_true", help="do not time the matmul of each layer")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON (format: convspec.bench docstring); "
                        "convspec report FILE -o speed.html renders it, or adds it to a conformance report")
    parser.add_argument("--markdown", metavar="FILE", help="write the results as Markdown tables")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")


def main(args: argparse.Namespace) -> int:
    """Run ``convspec bench`` from parsed arguments: print the tables, write --json/--markdown. 0 on success."""
    suites = list(SUITES) if "all" in args.suite else list(dict.fromkeys(args.suite))
    if args.warmup < 0:
        print(f"convspec: error: --warmup={args.warmup} must be ≥ 0", file=sys.stderr)
        return 2
    baseline = None if str(args.baseline).lower() == "none" else args.baseline

    def progress(message: str) -> None:
        print(f"  … {message}", file=sys.stderr, flush=True)

    result = run_bench(args.backends, suites=suites, dtypes=args.dtype, directions=args.ops, repeat=args.repeat,
                       warmup=args.warmup, batch=args.batch, baseline=baseline, matmul=not args.no_matmul, threads=args.threads,
                       progress=None if args.quiet else progress)
    print(result.format_text())
    for path, text in ((args.json, result.dumps), (args.markdown, result.format_markdown)):
        if path:
            try:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(text() + "\n")
            except OSError as exc:
                print(f"convspec: error: cannot write {path}: {exc}", file=sys.stderr)
                return 2
            print(f"written: {path}", file=sys.stderr)
    return 0


def standalone(argv: Sequence[str] | None = None) -> int:
    """``python -m convspec.bench ...`` until (and after) cli.py wires ``convspec bench``."""
    parser = argparse.ArgumentParser(prog="convspec bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    from ..spec import ConvSpecError

    try:
        return main(parser.parse_args(argv))
    except ConvSpecError as exc:
        print(f"convspec: error: {exc}", file=sys.stderr)
        return 2
