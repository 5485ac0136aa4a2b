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
import contextlib
import datetime
import functools
import gc
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..spec import (
    DTYPE_NAMES,
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    Params,
    init_kwargs,
    to_dtype,
)

#: Environment variables that steer the BLAS and thread pools; shown in the header.
BLAS_ENVIRONMENT = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS")
DIRECTIONS = ("forward", "backward")
MATMUL = "matmul"
REFERENCE = "reference"
TORCH = "torch"

Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# Layers and the work they take
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gemm:
    """The matrix product of a layer: ``groups`` products (m×k)@(k×n) of equal work (MACs = g·m·n·k)."""

    groups: int
    m: int
    n: int
    k: int

    @property
    def macs(self) -> int:
        return self.groups * self.m * self.n * self.k


@dataclass(frozen=True)
class Layer:
    """One problem of a suite: a name and the spec's parameter object (any of the four op kinds).

    >>> from convspec.spec import ConvParams
    >>> layer = Layer("1x1", ConvParams(input_shape=(2, 8, 5, 5), weight_shape=(4, 8, 1, 1)))
    >>> layer.kind, layer.macs, layer.gemm
    ('conv', 1600, Gemm(groups=1, m=50, n=4, k=8))
    """

    name: str
    params: Params
    suite: str = "custom"

    @property
    def kind(self) -> str:
        """The forward op: conv, conv_transpose, max_pool or avg_pool."""
        return {ConvParams: "conv", ConvTransposeParams: "conv_transpose", MaxPoolParams: "max_pool",
                AvgPoolParams: "avg_pool"}[type(self.params)]

    def op(self, direction: str) -> str:
        """The op timed in ``direction``: the forward op, or its gradient op (``OPS[op].backward``)."""
        if direction not in DIRECTIONS:
            raise ValueError(f"direction={direction!r} must be one of {DIRECTIONS}")
        forward = self.kind
        return forward if direction == "forward" else str(OPS[forward].backward)

    @property
    def gemm(self) -> Gemm | None:
        """conv: M = N·Πo, K = (C_in/g)·ΠK, N' = C_out/g; conv_transpose: M = N·Πi, K = C_in/g,
        N' = (C_out/g)·ΠK; pools: None."""
        p = self.params
        if isinstance(p, ConvParams):
            batch, out_channels, *out = p.output_shape
            return Gemm(p.groups, batch * math.prod(out), out_channels // p.groups,
                        p.weight_shape[1] * math.prod(p.kernel_size))
        if isinstance(p, ConvTransposeParams):
            batch, in_channels, *size = p.input_shape
            return Gemm(p.groups, batch * math.prod(size), p.weight_shape[1] * math.prod(p.kernel_size),
                        in_channels // p.groups)
        return None

    @property
    def macs(self) -> int:
        """Multiply-adds of the forward conv (g·M·N'·K); for a pool, its taps N·C·Πo·ΠK."""
        gemm = self.gemm
        if gemm is not None:
            return gemm.macs
        return math.prod(self.params.output_shape) * math.prod(self.params.kernel_size)

    def flops(self, direction: str) -> int:
        """conv/conv_transpose: 2·MACs forward, 4·MACs backward (dx and dw); pools: taps either way."""
        self.op(direction)  # validates direction
        if self.gemm is None:
            return self.macs
        return (2 if direction == "forward" else 4) * self.macs

    def describe(self) -> str:
        """A one-line summary: input, weight or kernel, stride, groups."""
        p = self.params
        parts = [f"x{p.input_shape}"]
        if isinstance(p, (ConvParams, ConvTransposeParams)):
            parts.append(f"w{p.weight_shape}")
            if p.groups > 1:
                parts.append(f"g={p.groups}")
        else:
            parts.append(f"k{p.kernel_size}")
        if any(s > 1 for s in p.stride):
            parts.append(f"s{p.stride}")
        return " ".join(parts)

    def to_json(self) -> dict[str, Any]:
        gemm = self.gemm
        return {"suite": self.suite, "name": self.name, "kind": self.kind, "params": _jsonable(init_kwargs(self.params)),
                "macs": self.macs, "flops": {d: self.flops(d) for d in DIRECTIONS},
                "gemm": None if gemm is None else {"groups": gemm.groups, "m": gemm.m, "n": gemm.n, "k": gemm.k}}


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        return [_jsonable(item) for item in value]
    return value


# -- suite builders ----------------------------------------------------------------------------


def _conv(suite: str, name: str, batch: int, in_channels: int, size: Sequence[int], out_channels: int,
          kernel: int, *, stride: int = 1, padding: int = 0, groups: int = 1, bias: bool = False) -> Layer:
    """A conv layer with a square (cubic...) kernel; the weight is (C_out, C_in/g, K, ..., K)."""
    rank = len(size)
    params = ConvParams(input_shape=(batch, in_channels, *size),
                        weight_shape=(out_channels, in_channels // groups) + (kernel,) * rank,
                        bias_shape=(out_channels,) if bias else None, stride=stride, padding=padding, groups=groups)
    return Layer(name, params, suite)


def resnet50(batch: int = 1) -> list[Layer]:
    """ResNet-50's distinct conv layers for 224×224 images (He et al. 2016; torchvision's v1.5,
    stride in the 3×3 of a bottleneck): the 7×7/2 stem, per stage the bottleneck's 1×1 reduce,
    3×3 and 1×1 expand, the first block's strided 3×3 and reduce on the larger input, and the
    1×1 projections (strided from stage 2 on). No bias (batch norm follows every conv)."""
    layers = [_conv("resnet50", "stem 7x7/2 3>64 @224", batch, 3, (224, 224), 64, 7, stride=2, padding=3)]
    stages = [  # (width, size, previous stage's output channels, previous size, stride of the first block)
        (64, 56, 64, 56, 1), (128, 28, 256, 56, 2), (256, 14, 512, 28, 2), (512, 7, 1024, 14, 2)]
    for stage, (width, size, previous, previous_size, stride) in enumerate(stages, start=1):
        expanded = 4 * width

        def add(name: str, c_in: int, at: int, c_out: int, kernel: int, s: int = 1, stage: int = stage) -> None:
            layers.append(_conv("resnet50", f"s{stage} {name} {c_in}>{c_out} @{at}", batch, c_in, (at, at), c_out,
                                kernel, stride=s, padding=kernel // 2))

        add("1x1 reduce first", previous, previous_size, width, 1)
        if stride > 1:
            add("3x3/2", width, previous_size, width, 3, stride)
        add("3x3", width, size, width, 3)
        add("1x1 expand", width, size, expanded, 1)
        add("1x1 project" + ("/2" if stride > 1 else ""), previous, previous_size, expanded, 1, stride)
        add("1x1 reduce", expanded, size, width, 1)
    return layers


def mobilenetv2(batch: int = 1) -> list[Layer]:
    """MobileNetV2's distinct depthwise 3×3 layers (groups = channels, stride 1 and 2) and a set of
    its pointwise 1×1 expand / project layers, for 224×224 images (Sandler et al. 2018, Table 2),
    plus the 3×3/2 stem and the final 1×1 320→1280. No bias."""
    suite = "mobilenetv2"
    layers = [_conv(suite, "stem 3x3/2 3>32 @224", batch, 3, (224, 224), 32, 3, stride=2, padding=1)]
    depthwise = [(32, 112, 1), (96, 112, 2), (144, 56, 1), (144, 56, 2), (192, 28, 1), (192, 28, 2),
                 (384, 14, 1), (576, 14, 1), (576, 14, 2), (960, 7, 1)]
    for channels, size, stride in depthwise:
        layers.append(_conv(suite, f"dw 3x3{'/2' if stride > 1 else ''} {channels} @{size}", batch, channels,
                            (size, size), channels, 3, stride=stride, padding=1, groups=channels))
    pointwise = [(32, 16, 112), (16, 96, 112), (96, 24, 56), (24, 144, 56), (144, 24, 56), (32, 192, 28),
                 (192, 32, 28), (64, 384, 14), (384, 64, 14), (576, 96, 14), (160, 960, 7), (960, 160, 7),
                 (960, 320, 7), (320, 1280, 7)]
    for c_in, c_out, size in pointwise:
        layers.append(_conv(suite, f"pw 1x1 {c_in}>{c_out} @{size}", batch, c_in, (size, size), c_out, 1))
    return layers


def audio1d(batch: int = 1) -> list[Layer]:
    """wav2vec 2.0's feature encoder (Baevski et al. 2020): seven 1-D convs of 512 channels,
    kernels 10,3,3,3,3,2,2 and strides 5,2,2,2,2,2,2, no padding, no bias, on 1 s of 16 kHz audio
    (16000 samples → 3199, 1599, 799, 399, 199, 99, 49 frames)."""
    layers = []
    length, channels = 16000, 1
    for kernel, stride in zip((10, 3, 3, 3, 3, 2, 2), (5, 2, 2, 2, 2, 2, 2)):
        layer = _conv("audio1d", f"k{kernel}/{stride} {channels}>512 @{length}", batch, channels, (length,), 512,
                      kernel, stride=stride)
        layers.append(layer)
        length, channels = layer.params.output_shape[2], 512
    return layers


def unet3d(batch: int = 1) -> list[Layer]:
    """A small 3-D U-Net (Çiçek et al. 2016, halved widths) on a 1×32³ volume: the encoder's
    3×3×3 convs (padding 1, bias) at 32³, 16³ and 8³, the decoder's 2×2×2/2 transposed conv
    (up-convolution) 128→128 from 8³ to 16³, its 3×3×3 conv on the concatenation 192→64, and the
    1×1×1 output conv 32→2. The 2×2×2 max pools are in the ``pools`` suite."""
    suite = "unet3d"
    layers = [
        _conv(suite, "3x3x3 1>16 @32", batch, 1, (32,) * 3, 16, 3, padding=1, bias=True),
        _conv(suite, "3x3x3 16>32 @32", batch, 16, (32,) * 3, 32, 3, padding=1, bias=True),
        _conv(suite, "3x3x3 32>32 @16", batch, 32, (16,) * 3, 32, 3, padding=1, bias=True),
        _conv(suite, "3x3x3 32>64 @16", batch, 32, (16,) * 3, 64, 3, padding=1, bias=True),
        _conv(suite, "3x3x3 64>64 @8", batch, 64, (8,) * 3, 64, 3, padding=1, bias=True),
        _conv(suite, "3x3x3 64>128 @8", batch, 64, (8,) * 3, 128, 3, padding=1, bias=True),
        Layer("up 2x2x2/2 128>128 @8", ConvTransposeParams(
            input_shape=(batch, 128, 8, 8, 8), weight_shape=(128, 128, 2, 2, 2), bias_shape=(128,), stride=2), suite),
        _conv(suite, "3x3x3 192>64 @16", batch, 192, (16,) * 3, 64, 3, padding=1, bias=True),
        _conv(suite, "1x1x1 32>2 @32", batch, 32, (32,) * 3, 2, 1, bias=True),
    ]
    return layers


def pools(batch: int = 1) -> list[Layer]:
    """The pooling layers of the suites above: ResNet-50's 3×3/2 max pool after the stem and its
    global 7×7 average pool, MobileNetV2's global average pool, the U-Net's 2×2×2 max pools."""
    suite = "pools"
    return [
        Layer("resnet50 max 3x3/2 64 @112", MaxPoolParams(input_shape=(batch, 64, 112, 112), kernel_size=3, stride=2,
                                                          padding=1), suite),
        Layer("resnet50 avg 7x7 2048 @7", AvgPoolParams(input_shape=(batch, 2048, 7, 7), kernel_size=7,
                                                        count_include_pad=True), suite),
        Layer("mobilenetv2 avg 7x7 1280 @7", AvgPoolParams(input_shape=(batch, 1280, 7, 7), kernel_size=7,
                                                           count_include_pad=True), suite),
        Layer("unet3d max 2x2x2 32 @32", MaxPoolParams(input_shape=(batch, 32, 32, 32, 32), kernel_size=2), suite),
        Layer("unet3d max 2x2x2 64 @16", MaxPoolParams(input_shape=(batch, 64, 16, 16, 16), kernel_size=2), suite),
    ]


#: Suite name -> (builder taking the batch size, default batch size). Batch sizes are chosen so
#: that one suite, forward and backward, of im2col + torch + matmul runs in about a minute on
#: 2 cores: N=1 everywhere (ResNet-50 at N=1 is 4.1 GMAC forward; float64 reference included).
SUITES: dict[str, tuple[Callable[[int], list[Layer]], int]] = {
    "resnet50": (resnet50, 1),
    "mobilenetv2": (mobilenetv2, 1),
    "audio1d": (audio1d, 1),
    "unet3d": (unet3d, 1),
    "pools": (pools, 1),
}


def suite_layers(name: str, batch: int | None = None) -> list[Layer]:
    """The layers of suite ``name`` (``SUITES``) at ``batch`` images (default: the suite's own)."""
    if name not in SUITES:
        raise ValueError(f"suite={name!r} is not one of {sorted(SUITES)}")
    builder, default = SUITES[name]
    return builder(default if batch is None else batch)


# --------------------------------------------------------------------------------------------
# Backends: the loader's, the reference, the matmul
# --------------------------------------------------------------------------------------------


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
        return {"format": "convspec-bench", "version": 1, "machine": self.machine, "settings": self.settings,
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


# --------------------------------------------------------------------------------------------
# The machine: which BLAS ran, with which settings
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def blas_info() -> tuple[str, list[dict[str, Any]]]:
    """(source, libraries): threadpoolctl's view of the loaded BLAS and OpenMP libraries when
    threadpoolctl is importable (it sees the core type OpenBLAS picked), else numpy's build config."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        pass
    else:
        libraries = [{"user_api": info.get("user_api"), "internal_api": info.get("internal_api"),
                      "version": info.get("version"), "architecture": info.get("architecture"),
                      "num_threads": info.get("num_threads"), "threading_layer": info.get("threading_layer"),
                      "library": os.path.basename(str(info.get("filepath", "")))}
                     for info in threadpool_info()]
        return "threadpoolctl", libraries
    try:
        config = np.show_config(mode="dicts")  # type: ignore[func-returns-value]
        blas = config["Build Dependencies"]["blas"]
        return "numpy config", [{"user_api": "blas", "internal_api": blas.get("name"), "version": blas.get("version"),
                                 "architecture": None, "num_threads": None, "threading_layer": None,
                                 "library": blas.get("lib directory")}]
    except Exception:  # noqa: BLE001 - older numpy: no mode="dicts"
        return "numpy config", []


def _git_commit() -> str | None:
    """The checkout's commit (``+changes`` when convspec/ differs from it); None outside a checkout."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", "convspec"], cwd=root, capture_output=True,
                               timeout=5, check=False).returncode != 0
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if dirty else "") if commit else None


def machine_info() -> dict[str, Any]:
    """Date, platform, CPU, versions, BLAS libraries and the BLAS environment variables."""
    from .. import __version__

    source, libraries = blas_info()
    info: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "convspec": __version__, "git_commit": _git_commit(),
        "platform": platform.platform(), "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "python": platform.python_version(), "numpy": np.__version__, "torch": None, "torch_threads": None,
        "blas": libraries, "blas_source": source,
        "environment": {name: os.environ.get(name) for name in BLAS_ENVIRONMENT},
    }
    torch = sys.modules.get("torch")  # only when a torch backend was loaded: never import it here
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def header_lines(machine: Mapping[str, Any]) -> list[str]:
    torch = f" · torch {machine['torch']} ({machine['torch_threads']} threads)" if machine.get("torch") else ""
    commit = f" (commit {machine['git_commit']})" if machine.get("git_commit") else ""
    lines = [(f"convspec bench {machine.get('convspec', '')}{commit} · {machine['date']} · {machine['cpu']} · "
              f"{machine['cpu_count']} CPUs · Python {machine['python']} · numpy {machine['numpy']}{torch}")]
    blas = "; ".join(
        f"{lib['internal_api']} {lib['version'] or ''}".strip()
        + (f" core {lib['architecture']}" if lib.get("architecture") else "")
        + (f", {lib['num_threads']} threads" if lib.get("num_threads") else "")
        + (f" ({lib['library']})" if lib.get("library") else "")
        for lib in machine["blas"]) or "unknown"
    lines.append(f"BLAS ({machine['blas_source']}): {blas}")
    lines.append("env: " + " ".join(f"{key}={'<unset>' if value is None else value}"
                                    for key, value in machine["environment"].items()))
    load = machine.get("load_average")
    if load and load.get("before"):
        lines.append(f"load average (1, 5, 15 min): before {load['before']}, after {load.get('after')} "
                     f"on {machine['cpu_count']} CPUs — a load above the CPU count skews every timing")
    return lines


# --------------------------------------------------------------------------------------------
# The command line (wired by cli.py as ``convspec bench``)
# --------------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``convspec bench``; ``main(args)`` runs it."""
    parser.add_argument("backends", nargs="*", default=["im2col"],
                        help="backends to time (loader specs, or 'reference'); default im2col. torch is always "
                             "timed as the baseline when it loads")
    parser.add_argument("--suite", nargs="+", default=["resnet50"], choices=[*SUITES, "all"], metavar="NAME",
                        help=f"layer suites: {', '.join(SUITES)}, or all (default resnet50)")
    parser.add_argument("--dtype", nargs="+", default=["float32"], choices=list(DTYPE_NAMES), metavar="DTYPE",
                        help="float16 bfloat16 float32 float64 (default float32)")
    parser.add_argument("--repeat", type=_positive, default=5, help="timed runs per layer; the median is shown (5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs first (1)")
    parser.add_argument("--batch", type=_positive, help="batch size for every suite (default: each suite's own, 1)")
    parser.add_argument("--ops", nargs="+", choices=list(DIRECTIONS), default=list(DIRECTIONS), metavar="DIRECTION",
                        help="forward and/or backward (default both)")
    parser.add_argument("--baseline", default=TORCH, help="backend the ×torch ratio divides by (default torch); "
                                                          "'none' for none")
    parser.add_argument("--threads", type=_positive, help="limit BLAS, OpenMP and torch threads to N for the run")
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


def _standalone(argv: Sequence[str] | None = None) -> int:
    """``python -m convspec.bench ...`` until (and after) cli.py wires ``convspec bench``."""
    parser = argparse.ArgumentParser(prog="convspec bench", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    from ..spec import ConvSpecError

    try:
        return main(parser.parse_args(argv))
    except ConvSpecError as exc:
        print(f"convspec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_standalone())
