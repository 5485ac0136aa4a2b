"""The layer suites of ``convspec bench`` (resnet50, mobilenetv2, audio1d, unet3d, pools) and the
work of each layer: MACs, FLOPs per direction, and the GEMM it corresponds to (see the package
docstring for the formulas).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..spec import OPS, AvgPoolParams, ConvParams, ConvTransposeParams, MaxPoolParams, Params, init_kwargs

DIRECTIONS = ("forward", "backward")


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
