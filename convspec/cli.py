"""The ``convspec`` command.

    convspec shape conv --input 1,3,224,224 --weight 64,3,7,7 --stride 2 --padding 3
    convspec check naive im2col scipy torch --report report.html
    convspec backends
    convspec vectors export vectors/ && convspec vectors check vectors/ my-outputs/

Exit codes: 0 success / every supported check passed; 1 non-conformance found; 2 usage error,
invalid parameters, or a backend that could not be loaded. Errors are one line, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NoReturn

from .spec import (
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvSpecError,
    ConvTransposeParams,
    MaxPoolParams,
    effective_kernel,
)


class UsageError(Exception):
    """A command-line mistake: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line (``convspec check: error: ...``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def positive_int(text: str) -> int:
    """argparse type of every count option (bench's too): an int >= 1, else one line naming the value."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed_range(text: str) -> list[int]:
    first, dash, last = text.partition("-")
    try:
        seeds = list(range(int(first), int(last) + 1)) if dash else [int(first)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds A-B (e.g. 0-99), got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"expected seeds A-B with A <= B, got {text!r}")
    return seeds


def _duration(text: str) -> float:
    from .conformance.campaign import parse_budget

    try:
        return parse_budget(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}") from exc
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _ints(text: str) -> tuple[int, ...] | int:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from exc
    return values[0] if len(values) == 1 else values


def _shape(text: str) -> tuple[int, ...]:
    value = _ints(text)
    return value if isinstance(value, tuple) else (value,)


def _bytes(text: str) -> int:
    """'512M', '8G', or a number of bytes."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    try:
        if text[-1:].upper() in units:
            size = int(float(text[:-1]) * units[text[-1].upper()])
        else:
            size = int(text)
    except (ValueError, OverflowError) as exc:
        raise argparse.ArgumentTypeError(f"cannot read a size from {text!r}: use e.g. 512M or 8G") from exc
    if size < 1:
        raise argparse.ArgumentTypeError(f"a size must be positive, got {text!r}: use e.g. 512M or 8G")
    return size


def _accumulation(text: str) -> str | dict[str, str]:
    """float32 (every dtype) or float16=float32,bfloat16=float32 (per input dtype)."""
    if "=" not in text:
        return text
    try:
        return dict(pair.split("=", 1) for pair in text.split(","))  # type: ignore[misc]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected DTYPE or IN=ACC,IN=ACC..., got {text!r}") from exc


def _padding(text: str) -> Any:
    """'3', '1,2', '1:2,0:0' (before:after per dim) or a padding string."""
    if text[:1].isalpha():
        return text
    try:
        if ":" in text:
            return tuple(tuple(int(v) for v in pair.split(":")) for pair in text.split(","))
        return _ints(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"cannot read padding {text!r}: use 3, 1,2, 1:2,0:0 or same") from exc


def _build_params(args: argparse.Namespace) -> Any:
    op = args.op
    common: dict[str, Any] = {"input_shape": args.input}
    if args.padding is not None:
        common["padding"] = args.padding
    if args.dilation is not None:
        common["dilation"] = args.dilation
    if op in ("conv", "conv_transpose"):
        if args.weight is None:
            raise UsageError(f"convspec shape {op} needs --weight")
        common["weight_shape"] = args.weight
        common["stride"] = 1 if args.stride is None else args.stride
        common["groups"] = args.groups
        if args.bias:
            out_channels = args.weight[0] if op == "conv" else args.weight[1] * args.groups
            common["bias_shape"] = (out_channels,)
        if op == "conv":
            return ConvParams(padding_mode=args.padding_mode, **common)
        return ConvTransposeParams(output_padding=args.output_padding, **common)
    if args.kernel is None:
        raise UsageError(f"convspec shape {op} needs --kernel")
    common.update(kernel_size=args.kernel, stride=args.stride, ceil_mode=args.ceil_mode)
    if op == "max_pool":
        return MaxPoolParams(**common)
    if args.count_include_pad is None:
        raise UsageError("avg_pool needs --count-include-pad or --no-count-include-pad (AVGPOOL-PARAM-1)")
    return AvgPoolParams(count_include_pad=args.count_include_pad, divisor_override=args.divisor_override, **common)


def _shape_report(op: str, params: Any) -> str:
    lines = [f"{op}: input {params.input_shape}"
             + (f", weight {params.weight_shape}" if hasattr(params, "weight_shape") else "")
             + f" -> output {params.output_shape}"]
    requested = params.padding if isinstance(params.padding, str) else "explicit"
    lines.append("pads (before, after) per spatial dim: "
                 + ", ".join(str(pair) for pair in params.pads) + f"   [padding: {requested}]")
    kernel = params.kernel_size
    if isinstance(params, ConvTransposeParams):
        lines.append("formula (CONVT-SHAPE-1): o = (n - 1)*s - p_b - p_a + d*(k - 1) + output_padding + 1")
        for i, (n, o) in enumerate(zip(params.input_shape[2:], params.output_shape[2:])):
            k, s, d, (pb, pa), op_ = kernel[i], params.stride[i], params.dilation[i], params.pads[i], \
                params.output_padding[i]
            lines.append(f"  dim {i}: ({n} - 1)*{s} - {pb} - {pa} + {d}*({k} - 1) + {op_} + 1 = {o}")
        return "\n".join(lines)
    ceil = getattr(params, "ceil_mode", False)
    clause = "POOL-CEIL-1" if ceil else ("CONV-SHAPE-1" if isinstance(params, ConvParams) else "POOL-SHAPE-1")
    rounding = "ceil" if ceil else "floor"
    lines.append(f"formula ({clause}): o = {rounding}((n + p_b + p_a - d*(k - 1) - 1) / s) + 1"
                 + (", then o -= 1 if (o - 1)*s >= n + p_b" if ceil else ""))
    for i, (n, o) in enumerate(zip(params.input_shape[2:], params.output_shape[2:])):
        k, s, d, (pb, pa) = kernel[i], params.stride[i], params.dilation[i], params.pads[i]
        lines.append(f"  dim {i}: {rounding}(({n} + {pb} + {pa} - {effective_kernel(k, d) - 1} - 1) / {s}) + 1"
                     f" -> {o}")
    return "\n".join(lines)


def cmd_shape(args: argparse.Namespace) -> int:
    params = _build_params(args)
    print(_shape_report(args.op, params))
    return 0


def cmd_backends(args: argparse.Namespace) -> int:
    from .backends import available_backends, capability_table

    print(capability_table(available_backends()))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .backends import load
    from .backends.command import CommandBackend
    from .conformance import Case, run_conformance
    from .conformance.results import python_path_for
    from .conformance.engine import print_progress, resolve_checks
    from .conformance.xfail import apply_xfail, load_xfail

    from .conformance.render import report_format

    for path in args.report or ():
        try:
            report_format(path)  # a bad suffix is a usage error before the run, not after it
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    try:
        checks = resolve_checks(args.checks, oracle=bool(args.oracle))
    except ValueError as exc:
        if args.checks and "oracle" in [c.split(":")[0] for c in args.checks] and not args.oracle:
            raise UsageError("--checks oracle compares against a second backend: name it with --oracle BACKEND "
                             "(e.g. --oracle naive)") from exc
        raise UsageError(f"--checks: {exc}") from exc
    entries = load_xfail(args.xfail) if args.xfail else None  # a bad file fails before the run
    backends = [load(spec) for spec in args.backends]  # fail fast, one line each
    if args.timeout is not None and not args.isolate:
        deaf = [spec for spec, backend in zip(args.backends, backends) if not isinstance(backend, CommandBackend)]
        if deaf:
            raise UsageError(f"--timeout {args.timeout:g} needs --isolate: {deaf[0]} runs in this process, where a "
                             "call cannot be stopped (only cmd: backends honour --timeout alone)")
    oracle = load(args.oracle) if args.oracle else None
    cases = None
    if args.case:
        try:
            cases = [Case.parse(text) for text in args.case]
            for case in cases:
                case.build()
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
    if cases is None:  # a campaign: shards on --jobs processes (serial with --jobs 1) or a Dask cluster
        from .conformance.campaign import ShardProgress, run_campaign

        progress = None if args.quiet else ShardProgress()
        try:
            results = run_campaign(
                args.backends, ops=args.ops, ranks=args.ranks, dtypes=args.dtypes, checks=checks,
                max_examples=args.max_examples, seeds=args.seeds, seed=args.seed, budget=args.budget,
                jobs=args.jobs or os.cpu_count() or 1, scheduler=args.scheduler, cache=args.cache, oracle=args.oracle,
                isolate=args.isolate, timeout=args.timeout, memory_limit=args.memory_limit,
                catalogue=not args.no_catalogue, database=args.database, progress=progress)
        except ValueError as exc:
            raise UsageError(str(exc)) from exc
        finally:
            if progress is not None:
                progress.close()
    elif args.seeds or args.budget or args.scheduler or args.cache:
        raise UsageError("--case runs the named cases in this process: drop --seeds, --budget, --scheduler and "
                         "--cache")
    else:
        results = run_conformance(
            backends, ops=args.ops, ranks=args.ranks, dtypes=args.dtypes,
            checks=checks, max_examples=args.max_examples, seed=args.seed, cases=cases, oracle=oracle,
            isolate=args.isolate, timeout=args.timeout, memory_limit=args.memory_limit,
            catalogue=not args.no_catalogue, database=args.database,
            progress=None if args.quiet else print_progress,
        )
    for run, spec in zip(results.backends, args.backends):
        # Reproducers name the backend, the oracle and the PYTHONPATH as this command line did.
        run.adopt(spec, replace(run.launch, python_path=python_path_for(spec), oracle=args.oracle))
    if entries is not None:
        results.settings["xfail"] = args.xfail
        apply_xfail(results, entries)
    print(results.summary())
    for path in args.report or ():
        from .conformance.render import write_report

        write_report(results, path, full=args.full_results)
        print(f"report written: {path}", file=sys.stderr)
    return results.exit_code


def cmd_survey(args: argparse.Namespace) -> int:
    from .conformance.campaign import ShardProgress
    from .conformance.render import write_report
    from .conformance.survey import RUNTIMES, run_survey, write_survey

    runtimes = RUNTIMES
    if args.runtimes:
        known = {runtime.spec: runtime for runtime in RUNTIMES}
        unknown = [spec for spec in args.runtimes if spec not in known]
        if unknown:
            raise UsageError(f"--runtimes: {unknown[0]!r} is not a runtime of the survey ({', '.join(known)})")
        runtimes = tuple(known[spec] for spec in args.runtimes)
    progress = None if args.quiet else ShardProgress()
    try:
        results, rows = run_survey(runtimes, seed=args.seed, max_examples=args.max_examples, timeout=args.timeout,
                                   jobs=args.jobs, progress=progress)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    finally:
        if progress is not None:
            progress.close()
    print(results.summary())
    command = " ".join(["convspec survey", *sys.argv[2:]]) if sys.argv[1:2] == ["survey"] else "convspec survey"
    for path in write_survey(results, rows, args.markdown, args.html, command=command):
        print(f"written: {path}", file=sys.stderr)
    if args.json:
        write_report(results, args.json)
        print(f"written: {args.json}", file=sys.stderr)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    import json

    from .bench.render import BENCH_FORMAT
    from .conformance.render import write_report
    from .conformance.results import Results

    runs, bench = [], []
    for path in args.results:
        try:
            with open(path, encoding="utf-8") as handle:
                obj = json.load(handle)
            if isinstance(obj, dict) and obj.get("format") == BENCH_FORMAT:
                bench.append(obj)
            else:
                runs.append(Results.from_json(obj))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"cannot read results {path}: {exc}") from exc
    merged = None if not runs else runs[0] if len(runs) == 1 else Results.merge(runs)
    try:
        write_report(merged, args.output, bench)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a malformed file, a bad suffix
        raise UsageError(f"cannot write {args.output}: {exc}") from exc
    print(f"report written: {args.output}", file=sys.stderr)
    return 0


def cmd_vectors_export(args: argparse.Namespace) -> int:
    from .conformance.vectors import export_vectors

    try:
        manifest = export_vectors(args.directory, ops=args.ops, ranks=args.ranks, dtypes=args.dtypes or ("float32",),
                                  count=args.count, seed=args.seed, include_catalogue=not args.no_catalogue,
                                  accumulation=args.accumulation)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"cannot write vectors to {args.directory!r}: {exc.strerror or exc}") from exc
    excluded = len(manifest.get("excluded", ()))
    print(f"wrote {len(manifest['cases'])} cases to {args.directory}"
          + (f" ({excluded} excluded, see manifest.json)" if excluded else ""))
    return 0


def cmd_vectors_check(args: argparse.Namespace) -> int:
    from .conformance.render import report_format, write_report
    from .conformance.vectors import check_vectors

    try:
        for path in args.report or ():
            report_format(path)
        results = check_vectors(args.directory, args.results_dir, name=args.name or "external",
                                accumulation=args.accumulation, program=args.program)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    print(results.summary())
    for path in args.report or ():
        write_report(results, path)
        print(f"report written: {path}", file=sys.stderr)
    return results.exit_code


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .spec import SPEC_VERSION

    parser = _Parser(prog="convspec", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"convspec {__version__} (spec {SPEC_VERSION})")
    sub = parser.add_subparsers(dest="command", required=True)

    shape = sub.add_parser("shape", help="output shape, resolved pads and the formula of one op")
    shape.add_argument("op", choices=[op for op in OPS if not OPS[op].is_gradient])
    shape.add_argument("--input", type=_shape, required=True, help="N,C,S1,...")
    shape.add_argument("--weight", type=_shape, help="conv: C_out,C_in/groups,K1,...; conv_transpose: C_in,C_out/groups,K1,...")
    shape.add_argument("--kernel", type=_ints, help="pool kernel size (int or per dim)")
    shape.add_argument("--stride", type=_ints)
    shape.add_argument("--padding", type=_padding, help="3 | 1,2 | 1:2,0:0 | valid | same | same_upper | same_lower")
    shape.add_argument("--dilation", type=_ints)
    shape.add_argument("--groups", type=int, default=1)
    shape.add_argument("--padding-mode", default="zeros", help="zeros | reflect | replicate | circular")
    shape.add_argument("--output-padding", type=_ints, default=0)
    shape.add_argument("--bias", action="store_true")
    shape.add_argument("--ceil-mode", action="store_true")
    shape.add_argument("--count-include-pad", action=argparse.BooleanOptionalAction, default=None)
    shape.add_argument("--divisor-override", type=int)
    shape.set_defaults(func=cmd_shape)

    check = sub.add_parser("check", help="check backends against the spec")
    check.add_argument("backends", nargs="+", help="naive, im2col, scipy, torch, torch:cuda, onnx:reference, onnx:onnxruntime[:EP], jax, module:attr, file.py:attr, cmd:PROGRAM")
    check.add_argument("--ops", nargs="+", choices=list(OPS), metavar="OP")
    check.add_argument("--ranks", nargs="+", type=positive_int, default=[1, 2, 3], metavar="M",
                       help="spatial ranks of generated cases (default 1 2 3)")
    check.add_argument("--dtypes", nargs="+", choices=["float16", "bfloat16", "float32", "float64"])
    check.add_argument("--checks", nargs="+", metavar="CHECK",
                       help="families (differential special property invalid hygiene defaults oracle) or property names")
    check.add_argument("--max-examples", type=positive_int, default=20,
                       help="generated cases per op and check (default 20)")
    check.add_argument("--seed", type=int, default=0)
    check.add_argument("--case", action="append", metavar="DESCRIPTOR", help="run only this case (repeatable)")
    check.add_argument("--oracle", metavar="BACKEND", help="also compare against this backend")
    check.add_argument("--isolate", action="store_true", help="run each backend call in a child process")
    check.add_argument("--timeout", type=_seconds, metavar="S",
                       help="seconds per call under --isolate (default 60), or per program run of a cmd: backend")
    check.add_argument("--memory-limit", type=_bytes, metavar="SIZE",
                       help="address-space limit of the --isolate child, e.g. 8G (a runaway allocation is 'crashed')")
    check.add_argument("--report", nargs="+", metavar="FILE", help="write .json, .md or .html reports")
    check.add_argument("--full-results", action="store_true",
                       help="a .json report keeps every field of passed results (default: compact)")
    check.add_argument("--xfail", metavar="FILE",
                       help="expected failures (TOML or JSON): reported as known failures, not counted")
    check.add_argument("--no-catalogue", action="store_true", help="skip the named edge cases")
    check.add_argument("--database", metavar="DIR", help="keep hypothesis' example database here to replay failures")
    check.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                       help="worker processes (default: every core); 1 runs in this process")
    check.add_argument("--seeds", type=_seed_range, metavar="A-B",
                       help="a campaign over seeds A..B (inclusive), e.g. 0-99, instead of --seed")
    check.add_argument("--budget", type=_duration, metavar="TIME",
                       help="a deep run: seeds --seed, --seed + 1, ... until TIME is spent (90s, 10m, 2h)")
    check.add_argument("--scheduler", metavar="ADDRESS",
                       help="run shards on a Dask distributed cluster (tcp://HOST:8786), or 'local' for an "
                            "embedded one of --jobs workers")
    check.add_argument("--cache", metavar="DIR",
                       help="keep finished shards here; a rerun with the same settings skips them (resumable)")
    check.add_argument("--quiet", action="store_true", help="no progress lines")
    check.set_defaults(func=cmd_check)

    backends = sub.add_parser("backends", help="list the backends the loader finds and their capabilities")
    backends.set_defaults(func=cmd_backends)

    vectors = sub.add_parser("vectors", help="golden vectors for implementations in any language")
    vectors_sub = vectors.add_subparsers(dest="vectors_command", required=True)
    export = vectors_sub.add_parser("export", help="write inputs, reference outputs and bounds as .npy + manifest.json")
    export.add_argument("directory")
    export.add_argument("--ops", nargs="+", choices=list(OPS), metavar="OP")
    export.add_argument("--ranks", nargs="+", type=positive_int, default=[1, 2, 3], metavar="M")
    export.add_argument("--dtypes", nargs="+", choices=["float16", "bfloat16", "float32", "float64"])
    export.add_argument("--count", type=positive_int, default=10, help="generated cases per op (default 10)")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--no-catalogue", action="store_true")
    export.add_argument("--accumulation", type=_accumulation, metavar="DTYPE|IN=ACC,...",
                        help="dtype the implementation accumulates in, or per input dtype: "
                             "float16=float32,bfloat16=float32 (the bound files use it)")
    export.set_defaults(func=cmd_vectors_export)
    vcheck = vectors_sub.add_parser("check", help="check outputs an external program wrote for a vector set")
    vcheck.add_argument("directory", help="the exported vector set")
    vcheck.add_argument("results_dir", help="where the program wrote <case>.<output>.npy")
    vcheck.add_argument("--name", help="the implementation's name in reports")
    vcheck.add_argument("--program", help="the program's command line, for the reproducers "
                                          "(convspec check cmd:PROGRAM --case ...)")
    vcheck.add_argument("--accumulation", type=_accumulation, metavar="DTYPE|IN=ACC,...",
                        help="dtype the implementation accumulates in, or per input dtype: float16=float32,...")
    vcheck.add_argument("--report", nargs="+", metavar="FILE", help="write .json, .md or .html reports")
    vcheck.set_defaults(func=cmd_vectors_check)

    from . import bench

    bench_parser = sub.add_parser("bench", help="time forward and backward on standard layer suites")
    bench.add_arguments(bench_parser)
    bench_parser.set_defaults(func=bench.main)

    survey = sub.add_parser("survey", help="check every installed runtime (torch, onnx, onnxruntime, jax, scipy) and "
                                           "write the conformance matrix of the field")
    survey.add_argument("--markdown", default="docs/conformance-matrix.md", metavar="FILE",
                        help="Markdown page (default docs/conformance-matrix.md)")
    survey.add_argument("--html", default="docs/conformance-matrix.html", metavar="FILE",
                        help="HTML page (default docs/conformance-matrix.html)")
    survey.add_argument("--json", metavar="FILE", help="also the results as JSON")
    survey.add_argument("--runtimes", nargs="+", metavar="SPEC", help="only these runtimes of the survey")
    survey.add_argument("--seed", type=int, default=0)
    survey.add_argument("--max-examples", type=positive_int, default=20,
                        help="generated cases per op and check (default 20)")
    survey.add_argument("--timeout", type=_seconds, default=None, metavar="S",
                        help="seconds per backend call before it counts as timed out (default 60)")
    survey.add_argument("--jobs", type=positive_int, default=None, metavar="N",
                        help="worker processes (default: every core)")
    survey.add_argument("--quiet", action="store_true", help="no progress lines")
    survey.set_defaults(func=cmd_survey)

    report = sub.add_parser("report", help="render or merge saved results (and bench results) into one report")
    report.add_argument("results", nargs="+",
                        help="results .json files from check --report; convspec bench --json files add a Speed section")
    report.add_argument("-o", "--output", required=True, help="report file: .json, .md or .html")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConvSpecError, UsageError) as exc:
        print(f"convspec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("convspec: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
