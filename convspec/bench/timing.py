"""Timing: backends (the loader's, the reference, the plain matmul), the median of repeated calls
per layer, op, dtype and direction, ratios to torch and to matmul, and the BenchResult that holds
them (with its JSON, terminal and Markdown forms).
"""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec import DTYPE_NAMES, OPS, to_dtype
from .machine import header_lines, machine_info
from .render import BENCH_FORMAT, BENCH_VERSION
from .suites import DIRECTIONS, Gemm, Layer, suite_layers

MATMUL = "matmul"
REFERENCE = "reference"
TORCH = "torch"

Progress = Callable[[str], None]


class ReferenceBackend:
    """convspec.reference's module functions as a backend named ``reference`` (float64 results)."""

    name = REFERENCE

    def __init__(self) -> None:
        from .. import reference
        from ..backends import Capabilities

        self.capabilities = Capabilities(dtypes=frozenset(DTYPE_NAMES))
        for op, function in reference.FUNCTIONS.items():
            setattr(self, op, function)


def load_backend(spec: Any) -> Any:
    """A backend from a loader spec, a backend object, or ``"reference"``."""
    if spec == REFERENCE:
        return ReferenceBackend()
    if not isinstance(spec, str):
        return spec
    from ..backends import load

    return load(spec)


def _matmul_call(gemm: Gemm, direction: str, dtype: np.dtype[Any], rng: np.random.Generator) -> Callable[[], None]:
    """A function computing the layer's matrix products (forward: one, backward: two) into
    preallocated outputs; operands of shape (g, rows, cols) so ``np.matmul`` batches the groups."""
    g, m, n, k = gemm.groups, gemm.m, gemm.n, gemm.k

    def operand(rows: int, cols: int) -> np.ndarray:
        return rng.standard_normal((g, rows, cols), dtype=np.float32).astype(dtype)

    shapes = [((m, k), (k, n))] if direction == "forward" else [((m, n), (n, k)), ((n, m), (m, k))]
    products = []
    for (a_rows, inner), (_, b_cols) in shapes:
        a, b = operand(a_rows, inner), operand(inner, b_cols)
        products.append((a, b, np.empty((g, a_rows, b_cols), dtype=dtype)))

    def call() -> None:
        for a, b, out in products:
            np.matmul(a, b, out=out)

    return call


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    """One (layer, dtype, direction, backend) measurement. Ratios are None when not measurable."""

    suite: str
    layer: str
    dtype: str
    direction: str
    op: str
    backend: str
    status: str = "ok"
    message: str = ""
    times_s: list[float] = field(default_factory=list)
    flops: int = 0
    ratio_torch: float | None = None
    ratio_matmul: float | None = None

    @property
    def median_s(self) -> float | None:
        return statistics.median(self.times_s) if self.status == "ok" and self.times_s else None

    @property
    def gflops(self) -> float | None:
        median = self.median_s
        return None if median is None or median <= 0 else self.flops / median / 1e9

    def to_json(self) -> dict[str, Any]:
        return {"suite": self.suite, "layer": self.layer, "dtype": self.dtype, "direction": self.direction,
                "op": self.op, "backend": self.backend, "status": self.status, "message": self.message,
                "median_s": self.median_s, "min_s": min(self.times_s) if self.times_s else None,
                "times_s": list(self.times_s), "gflops": self.gflops, "ratio_torch": self.ratio_torch,
                "ratio_matmul": self.ratio_matmul}


@dataclass
class Summary:
    """Geometric means over the layers of one (suite, dtype, direction, backend)."""

    suite: str
    dtype: str
    direction: str
    backend: str
    layers: int
    total_s: float
    geomean_ratio_torch: float | None
    geomean_ratio_matmul: float | None
    geomean_gflops: float | None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def geometric_mean(values: Iterable[float]) -> float | None:
    """(Π v)^(1/L) over the positive values, None when there are none."""
    logs = [math.log(v) for v in values if v is not None and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


@dataclass
class BenchResult:
    """Everything one bench run measured; render with :meth:`format_text`, :meth:`format_markdown`
    or :meth:`to_json` (format in the module docstring)."""

    machine: dict[str, Any]
    settings: dict[str, Any]
    layers: list[Layer]
    rows: list[Row]
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> list[Summary]:
        out = []
        keys = dict.fromkeys((r.suite, r.dtype, r.direction, r.backend) for r in self.rows)
        for suite, dtype, direction, backend in keys:
            rows = [r for r in self.rows if (r.suite, r.dtype, r.direction, r.backend) == (suite, dtype, direction,
                                                                                              backend)]
            ok = [r for r in rows if r.status == "ok"]
            out.append(Summary(
                suite, dtype, direction, backend, len(ok), sum(r.median_s or 0.0 for r in ok),
                geometric_mean(r.ratio_torch for r in ok if r.ratio_torch is not None),
                geometric_mean(r.ratio_matmul for r in ok if r.ratio_matmul is not None),
                geometric_mean(r.gflops for r in ok if r.gflops is not None)))
        return out

    def to_json(self) -> dict[str, Any]:
        return {"format": BENCH_FORMAT, "version": BENCH_VERSION, "machine": self.machine, "settings": self.settings,
                "notes": list(self.notes), "layers": [layer.to_json() for layer in self.layers],
                "rows": [row.to_json() for row in self.rows], "summary": [s.to_json() for s in self.summary]}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1, allow_nan=False)

    # -- rendering -----------------------------------------------------------------------------
    def _groups(self) -> list[tuple[str, str, str]]:
        return list(dict.fromkeys((r.suite, r.dtype, r.direction) for r in self.rows))

    def format_text(self) -> str:
        """The terminal form: a header (machine, BLAS, environment), one table per suite, dtype and
        direction with one line per layer and backend, and a geometric-mean line per backend."""
        lines = header_lines(self.machine)
        lines.append(f"median of {self.settings['repeat']} runs after {self.settings['warmup']} warm-up; "
                     "GFLOP/s = FLOPs/time (conv: 2·MACs forward, 4·MACs backward; pools: taps)")
        lines += [f"note: {note}" for note in self.notes]
        width = max([len(layer.name) for layer in self.layers] + [8])
        backends = list(dict.fromkeys(r.backend for r in self.rows))
        bwidth = max([len(b) for b in backends] + [7])
        for suite, dtype, direction in self._groups():
            rows = [r for r in self.rows if (r.suite, r.dtype, r.direction) == (suite, dtype, direction)]
            lines.append("")
            lines.append(f"{suite} · {dtype} · {direction}")
            lines.append(f"{'layer':<{width}}  {'backend':<{bwidth}}  {'ms':>9}  {'GFLOP/s':>8}  {'×torch':>7}  "
                         f"{'×matmul':>7}")
            previous = None
            for row in rows:
                name = row.layer if row.layer != previous else ""
                previous = row.layer
                if row.status != "ok":
                    lines.append(f"{name:<{width}}  {row.backend:<{bwidth}}  {row.status}: {row.message}")
                    continue
                lines.append(f"{name:<{width}}  {row.backend:<{bwidth}}  {_num(row.median_s, 1e3, 9, 3)}  "
                             f"{_num(row.gflops, 1, 8, 2)}  {_num(row.ratio_torch, 1, 7, 2)}  "
                             f"{_num(row.ratio_matmul, 1, 7, 2)}")
            for s in self.summary:
                if (s.suite, s.dtype, s.direction) == (suite, dtype, direction):
                    lines.append(f"{'geomean (' + str(s.layers) + ' layers)':<{width}}  {s.backend:<{bwidth}}  "
                                 f"{_num(s.total_s, 1e3, 9, 1)}  {_num(s.geomean_gflops, 1, 8, 2)}  "
                                 f"{_num(s.geomean_ratio_torch, 1, 7, 2)}  {_num(s.geomean_ratio_matmul, 1, 7, 2)}")
        lines.append("")
        lines.append("geomean line: ms = total of the medians; GFLOP/s and ratios = geometric means over the layers")
        return "\n".join(lines)

    def format_markdown(self, *, layers: bool = True) -> str:
        """Markdown tables: the geometric-mean summary, then (``layers``) one table per suite, dtype
        and direction with a column per backend (median ms and ×torch)."""
        out = [("| suite | dtype | direction | backend | layers | total ms | geomean GFLOP/s | geomean ×torch "
                "| geomean ×matmul |"), "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: |"]
        for s in self.summary:
            out.append(f"| {s.suite} | {s.dtype} | {s.direction} | {s.backend} | {s.layers} | "
                       f"{_md(s.total_s, 1e3, 1)} | {_md(s.geomean_gflops, 1, 2)} | {_md(s.geomean_ratio_torch, 1, 2)} | "
                       f"{_md(s.geomean_ratio_matmul, 1, 2)} |")
        if not layers:
            return "\n".join(out)
        for suite, dtype, direction in self._groups():
            rows = [r for r in self.rows if (r.suite, r.dtype, r.direction) == (suite, dtype, direction)]
            backends = list(dict.fromkeys(r.backend for r in rows))
            out += ["", f"**{suite} · {dtype} · {direction}** — median ms (×torch, ×matmul)", "",
                    "| layer | GFLOP | " + " | ".join(backends) + " |",
                    "| --- | ---: | " + " | ".join("---:" for _ in backends) + " |"]
            for layer in dict.fromkeys(r.layer for r in rows):
                cells = []
                flops = 0
                for backend in backends:
                    row = next((r for r in rows if r.layer == layer and r.backend == backend), None)
                    if row is None or row.status != "ok":
                        cells.append("—" if row is None else row.status)
                        continue
                    flops = row.flops
                    ratios = ", ".join(_md(v, 1, 2) + suffix for v, suffix in
                                       ((row.ratio_torch, "×t"), (row.ratio_matmul, "×mm")) if v is not None)
                    cells.append(f"{_md(row.median_s, 1e3, 2)}" + (f" ({ratios})" if ratios else ""))
                out.append(f"| {layer} | {flops / 1e9:.3f} | " + " | ".join(cells) + " |")
        return "\n".join(out)


def _num(value: float | None, scale: float, width: int, digits: int) -> str:
    return f"{'—':>{width}}" if value is None else f"{value * scale:>{width}.{digits}f}"


def _md(value: float | None, scale: float, digits: int) -> str:
    return "—" if value is None else f"{value * scale:.{digits}f}"


def _inputs(layer: Layer, direction: str, dtype: np.dtype[Any], rng: np.random.Generator) -> list[np.ndarray | None]:
    """Standard-normal arrays for the op's inputs (``OPS[op].inputs``), absent bias None; dy has the
    forward output's shape."""
    p = layer.params
    shapes = {"x": p.input_shape, "dy": p.output_shape, "w": getattr(p, "weight_shape", None),
              "b": getattr(p, "bias_shape", None)}
    arrays: list[np.ndarray | None] = []
    for name in OPS[layer.op(direction)].inputs:
        shape = shapes[name]
        arrays.append(None if shape is None else rng.standard_normal(shape, dtype=np.float32).astype(dtype))
    return arrays


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:200]


def run_bench(
    backends: Sequence[Any],
    *,
    suites: Sequence[str] = ("resnet50",),
    layers: Sequence[Layer] | None = None,
    dtypes: Sequence[str] = ("float32",),
    directions: Sequence[str] = DIRECTIONS,
    repeat: int = 5,
    warmup: int = 1,
    batch: int | None = None,
    baseline: Any = TORCH,
    matmul: bool = True,
    seed: int = 0,
    threads: int | None = None,
    progress: Progress | None = None,
) -> BenchResult:
    """Time ``backends`` on the layers of ``suites`` (or on ``layers``, e.g. a tiny custom suite).

    Per layer, dtype and direction every backend (and the ``baseline``, torch, unless None, and
    the layer's matmul) gets ``warmup`` untimed calls, then ``repeat`` timed calls taken round-robin
    across backends, so slow drifts of the machine hit all of them alike. A backend that declares
    the case unsupported, or raises, gets a row with that status and the run goes on. A baseline
    that cannot be loaded is left out with a note; its ratios are None. ``threads`` limits the BLAS
    and OpenMP pools (threadpoolctl) and torch's intra-op threads for the run. Never asserts a time.
    """
    if repeat < 1 or warmup < 0:
        raise ValueError(f"repeat={repeat} must be ≥ 1 and warmup={warmup} ≥ 0")
    unknown = [d for d in directions if d not in DIRECTIONS]
    if unknown:
        raise ValueError(f"directions {unknown} are not in {DIRECTIONS}")
    say = progress or (lambda message: None)
    notes: list[str] = []
    loaded = [(str(spec) if isinstance(spec, str) else getattr(spec, "name", repr(spec)), load_backend(spec))
              for spec in backends]
    base_name: str | None = None
    if baseline is not None:
        base_name = baseline if isinstance(baseline, str) else getattr(baseline, "name", repr(baseline))
        if all(name != base_name for name, _ in loaded):
            try:
                loaded.append((base_name, load_backend(baseline)))
            except Exception as exc:  # noqa: BLE001 - ImportError, BackendLoadError: report, do not fail the bench
                notes.append(f"{base_name} unavailable ({_one_line(exc)}): ratios to {base_name} skipped")
                base_name = None
    if any(name == REFERENCE for name, _ in loaded) and any(d != "float64" for d in dtypes):
        notes.append("reference computes in float64 whatever the input dtype")
    chosen = list(layers) if layers is not None else [layer for suite in suites for layer in suite_layers(suite, batch)]
    rows: list[Row] = []
    rng = np.random.default_rng(seed)
    load_before = _load_average()
    with _thread_limit(threads, notes):
        machine = machine_info()
        for dtype_text in dtypes:
            dtype = to_dtype(dtype_text)
            for layer in chosen:
                for direction in directions:
                    say(f"{layer.suite} {layer.name} {dtype_text} {direction}")
                    rows += _time_layer(layer, direction, dtype_text, dtype, loaded, base_name, matmul, repeat, warmup,
                                        rng)
    machine["load_average"] = {"before": load_before, "after": _load_average()}
    settings = {"backends": [name for name, _ in loaded], "baseline": base_name, "dtypes": list(dtypes),
                "repeat": repeat, "warmup": warmup, "directions": list(directions),
                "suites": list(dict.fromkeys(layer.suite for layer in chosen)), "batch": batch, "seed": seed,
                "threads": threads}
    return BenchResult(machine, settings, chosen, rows, notes)


@contextlib.contextmanager
def _thread_limit(threads: int | None, notes: list[str]) -> Iterator[None]:
    """BLAS/OpenMP pools (threadpoolctl) and torch's intra-op pool at ``threads`` for the block."""
    if threads is None:
        yield
        return
    torch = sys.modules.get("torch")
    saved = torch.get_num_threads() if torch is not None else None
    from threadpoolctl import threadpool_limits  # a dependency: without it OpenBLAS keeps every core

    limiter = threadpool_limits(limits=threads)
    try:
        if torch is not None:
            torch.set_num_threads(threads)
        with limiter:
            yield
    finally:
        if torch is not None and saved is not None:
            torch.set_num_threads(saved)


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other jobs sharing the cores skew every timing)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def _time_layer(layer: Layer, direction: str, dtype_text: str, dtype: np.dtype[Any], loaded: list[tuple[str, Any]],
                base_name: str | None, matmul: bool, repeat: int, warmup: int,
                rng: np.random.Generator) -> list[Row]:
    op = layer.op(direction)
    flops = layer.flops(direction)
    arrays = _inputs(layer, direction, dtype, rng)
    rows: list[Row] = []
    calls: list[tuple[Row, Callable[[], Any]]] = []
    for name, backend in loaded:
        row = Row(layer.suite, layer.name, dtype_text, direction, op, name, flops=flops)
        rows.append(row)
        reason = backend.capabilities.unsupported_reason(op, layer.params, dtype_text)
        method = getattr(backend, op, None)
        if reason is not None or method is None:
            row.status, row.message = "unsupported", reason or f"no method {op}"
            continue
        calls.append((row, functools.partial(method, *arrays, layer.params)))
    gemm = layer.gemm
    if matmul and gemm is not None:
        row = Row(layer.suite, layer.name, dtype_text, direction, op, MATMUL, flops=flops)
        rows.append(row)
        try:
            calls.append((row, _matmul_call(gemm, direction, dtype, rng)))
        except Exception as exc:  # noqa: BLE001 - e.g. a matmul too large for memory
            row.status, row.message = "error", _one_line(exc)
    live = []
    for row, call in calls:
        try:
            for _ in range(warmup):
                call()
            live.append((row, call))
        except Exception as exc:  # noqa: BLE001 - a backend bug is reported, not fatal to the bench
            row.status, row.message = "error", _one_line(exc)
    gc.collect()
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            for row, call in list(live):
                started = time.perf_counter()
                try:
                    call()
                except Exception as exc:  # noqa: BLE001 - as in the warm-up
                    row.status, row.message = "error", _one_line(exc)
                    live.remove((row, call))
                    continue
                row.times_s.append(time.perf_counter() - started)
    finally:
        if gc_was_enabled:
            gc.enable()
    by_backend = {row.backend: row for row in rows}
    base = by_backend.get(base_name) if base_name is not None else None
    mm = by_backend.get(MATMUL)
    for row in rows:
        if row.status != "ok":
            row.times_s = []
            continue
        median = row.median_s
        if base is not None and base.median_s:
            row.ratio_torch = median / base.median_s if median is not None else None
        if mm is not None and mm.median_s:
            row.ratio_matmul = median / mm.median_s if median is not None else None
    return rows
