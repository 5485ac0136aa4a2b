"""Parameter objects of convolution and transposed convolution.

A parameter object describes one whole problem: the shapes it applies to and every attribute,
normalised to one entry per spatial dim and validated when built, with the padding resolved
to explicit ``(before, after)`` pairs (``pads``) and the output shape computed. Anything
SPEC.md calls invalid raises :class:`~convspec.spec.InvalidParams` here, before any array
is touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import InvalidParams
from .padding import IntsArg, PaddingArg, check_padding_mode, normalize_padding, per_dim_ints, resolve_padding
from .shapes import (
    Pads,
    Shape,
    check_shape,
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel,
    is_int,
)


def _check_groups(groups: Any) -> int:
    if not is_int(groups) or groups < 1:
        raise InvalidParams("groups", groups, "must be a positive int", "CONV-GROUPS-1")
    return int(groups)


def _check_bias(bias_shape: Any, out_channels: int) -> Shape | None:
    if bias_shape is None:
        return None
    dims = check_shape("b.shape", bias_shape, clause="LAYOUT-4")
    if dims != (out_channels,):
        raise InvalidParams(
            "b.shape", dims, f"must be exactly (C_out,) = ({out_channels},)", "LAYOUT-4",
            "pass a 1-D bias with one entry per output channel",
        )
    return dims


def _set(obj: Any, **fields: Any) -> None:
    for name, value in fields.items():
        object.__setattr__(obj, name, value)


@dataclass(frozen=True, init=False)
class ConvParams:
    """One convolution problem: y = conv(x, w, b)  (CONV-DEF-1).

    y[n, o, p] = b[o] + Σ_c Σ_q w[o, c, q] · x̃[n, g(o)·C_g + c, p·s + q·d],
    g(o) = ⌊o / (C_out/groups)⌋, C_g = C_in/groups, x̃ the padded input (PAD-MODE-1).

    Parameters
    ----------
    input_shape : (N, C_in, *S)
    weight_shape : (C_out, C_in/groups, *K)
    bias_shape : (C_out,) or None
    stride, dilation : int or one int per spatial dim, positive.
    padding : int, per-dim ints, per-dim (before, after) pairs, 'valid', 'same', 'same_upper'
        or 'same_lower' (PAD-1).
    groups : positive int dividing C_in and C_out.
    padding_mode : 'zeros', 'reflect', 'replicate' or 'circular'.

    Attributes
    ----------
    pads : explicit ``((before, after), ...)``, one pair per spatial dim.
    output_shape : (N, C_out, *o), o = ⌊(n + p_b + p_a − d·(k−1) − 1)/s⌋ + 1 (CONV-SHAPE-1).

    Examples
    --------
    >>> p = ConvParams(input_shape=(1, 3, 224, 224), weight_shape=(64, 3, 7, 7), stride=2, padding=3)
    >>> p.output_shape, p.pads
    ((1, 64, 112, 112), ((3, 3), (3, 3)))
    """

    input_shape: Shape
    weight_shape: Shape
    bias_shape: Shape | None
    stride: Shape
    padding: str | Pads
    dilation: Shape
    groups: int
    padding_mode: str
    pads: Pads
    output_shape: Shape

    def __init__(
        self,
        *,
        input_shape: Shape,
        weight_shape: Shape,
        bias_shape: Shape | None = None,
        stride: IntsArg = 1,
        padding: PaddingArg = 0,
        dilation: IntsArg = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
    ) -> None:
        x_shape = check_shape("x.shape", input_shape, clause="LAYOUT-1")
        w_shape = check_shape("w.shape", weight_shape, clause="LAYOUT-2", ndim=len(x_shape))
        rank = len(x_shape) - 2
        groups = _check_groups(groups)
        in_channels, out_channels = x_shape[1], w_shape[0]
        if in_channels % groups or out_channels % groups:
            raise InvalidParams(
                "groups", groups, f"must divide C_in={in_channels} and C_out={out_channels}", "CONV-GROUPS-1"
            )
        if w_shape[1] != in_channels // groups:
            raise InvalidParams(
                "w.shape", w_shape, f"needs w.shape[1] == C_in/groups = {in_channels // groups}",
                "CONV-GROUPS-1", "the weight is (C_out, C_in/groups, *K)",
            )
        b_shape = _check_bias(bias_shape, out_channels)
        kernel = w_shape[2:]
        stride_t = per_dim_ints("stride", stride, rank)
        dilation_t = per_dim_ints("dilation", dilation, rank)
        padding_n = normalize_padding(padding, rank)
        spatial = x_shape[2:]
        pads = resolve_padding(padding_n, spatial, kernel, stride_t, dilation_t)
        mode = check_padding_mode(padding_mode, pads, spatial)
        for n, k, d, pair in zip(spatial, kernel, dilation_t, pads):
            if n + pair[0] + pair[1] < effective_kernel(k, d):
                raise InvalidParams(
                    "x.shape", x_shape,
                    f"padded extent {n}+{pair[0]}+{pair[1]} is smaller than the effective kernel "
                    f"d*(k-1)+1 = {effective_kernel(k, d)}", "CONV-SHAPE-2",
                    "use a smaller kernel or dilation, or more padding",
                )
        out = tuple(
            conv_output_size(n, k, s, d, pair) for n, k, s, d, pair in zip(spatial, kernel, stride_t, dilation_t, pads)
        )
        _set(
            self, input_shape=x_shape, weight_shape=w_shape, bias_shape=b_shape, stride=stride_t,
            padding=padding_n, dilation=dilation_t, groups=groups, padding_mode=mode, pads=pads,
            output_shape=(x_shape[0], out_channels) + out,
        )

    @property
    def rank(self) -> int:
        """Number of spatial dims m."""
        return len(self.input_shape) - 2

    @property
    def kernel_size(self) -> Shape:
        return self.weight_shape[2:]

    @property
    def terms_per_output(self) -> int:
        """K of the error model for y: C_in/groups · ΠK terms (the bias is exact in the bound's mag)."""
        return self.weight_shape[1] * math.prod(self.kernel_size)

    def output_padding_for_input(self) -> Shape:
        """The conv_transpose output_padding that maps ``output_shape`` back to ``input_shape``."""
        return tuple(
            n - conv_transpose_output_size(o, k, s, d, pair, 0)
            for n, o, k, s, d, pair in zip(
                self.input_shape[2:], self.output_shape[2:], self.kernel_size, self.stride, self.dilation, self.pads
            )
        )


@dataclass(frozen=True, init=False)
class ConvTransposeParams:
    """One transposed-convolution problem: the adjoint of conv with respect to its input
    (CONVT-DEF-1), plus bias.

    y[n, g·M + m, p·s + q·d − p_b] += w[g·C_g + c, m, q] · x[n, g·C_g + c, p]   (then + b),
    for every input position p and tap q whose target lies in [0, o); M = C_out/groups.

    Parameters
    ----------
    input_shape : (N, C_in, *S)
    weight_shape : (C_in, C_out/groups, *K)
    bias_shape : (C_out,) or None
    stride, dilation : positive ints per dim.
    padding : explicit pads, 'valid' (CONVT-PAD-1), or ONNX's 'same_upper' (= 'same') /
        'same_lower': o = n·s with pads from CONVT-SAME-1.
    output_padding : 0 ≤ output_padding < max(s, d) per dim (CONVT-PARAM-1).
    groups : positive int dividing C_in.
    output_size : ONNX ConvTranspose's ``output_shape`` attribute, the desired spatial output shape;
        pads (and, for a size past the full output, output_padding) follow from it (CONVT-OUTSIZE-1).
        With it, padding is 0 (ONNX NOTSET), 'same_upper' or 'same_lower' (which side gets the odd pad).

    Attributes
    ----------
    output_shape : (N, C_out, *o), o = (n−1)·s − p_b − p_a + d·(k−1) + output_padding + 1.

    Examples
    --------
    >>> ConvTransposeParams(input_shape=(1, 64, 112, 112), weight_shape=(64, 3, 7, 7), stride=2,
    ...                     padding=3, output_padding=1).output_shape
    (1, 3, 224, 224)
    """

    input_shape: Shape
    weight_shape: Shape
    bias_shape: Shape | None
    stride: Shape
    padding: str | Pads
    output_padding: Shape
    dilation: Shape
    groups: int
    output_size: Shape | None
    pads: Pads
    output_shape: Shape

    def __init__(
        self,
        *,
        input_shape: Shape,
        weight_shape: Shape,
        bias_shape: Shape | None = None,
        stride: IntsArg = 1,
        padding: PaddingArg = 0,
        output_padding: IntsArg = 0,
        dilation: IntsArg = 1,
        groups: int = 1,
        output_size: IntsArg | None = None,
    ) -> None:
        x_shape = check_shape("x.shape", input_shape, clause="LAYOUT-1")
        w_shape = check_shape("w.shape", weight_shape, clause="LAYOUT-3", ndim=len(x_shape))
        rank = len(x_shape) - 2
        groups = _check_groups(groups)
        in_channels = x_shape[1]
        if w_shape[0] != in_channels:
            raise InvalidParams(
                "w.shape", w_shape, f"needs w.shape[0] == C_in = {in_channels}", "LAYOUT-3",
                "the conv_transpose weight is (C_in, C_out/groups, *K)",
            )
        if in_channels % groups:
            raise InvalidParams("groups", groups, f"must divide C_in={in_channels}", "CONV-GROUPS-1")
        out_channels = w_shape[1] * groups
        b_shape = _check_bias(bias_shape, out_channels)
        kernel = w_shape[2:]
        stride_t = per_dim_ints("stride", stride, rank)
        dilation_t = per_dim_ints("dilation", dilation, rank)
        padding_n = normalize_padding(padding, rank)
        spatial = x_shape[2:]
        out_pad = per_dim_ints("output_padding", output_padding, rank, minimum=0, clause="CONVT-PARAM-1")
        size_t = None
        if output_size is not None:
            size_t = per_dim_ints("output_size", output_size, rank, clause="CONVT-OUTSIZE-1")
            pads, out_pad = _output_size_pads(padding, padding_n, size_t, spatial, kernel, stride_t, dilation_t,
                                              out_pad)
        elif isinstance(padding_n, str) and padding_n != "valid":
            pads = _transposed_same_pads(padding, padding_n, spatial, kernel, stride_t, dilation_t, out_pad)
        else:
            pads = resolve_padding(padding_n, spatial, kernel, stride_t, dilation_t)
        for op, s, d in zip(out_pad, stride_t, dilation_t):
            if op >= max(s, d):
                raise InvalidParams(
                    "output_padding", output_padding, f"must be < max(stride, dilation) = {max(s, d)}",
                    "CONVT-PARAM-1",
                )
        out = tuple(
            conv_transpose_output_size(n, k, s, d, pair, op)
            for n, k, s, d, pair, op in zip(spatial, kernel, stride_t, dilation_t, pads, out_pad)
        )
        if min(out) < 1:
            raise InvalidParams(
                "padding", padding, f"crops the output to size {out}; every output size must be >= 1",
                "CONVT-SHAPE-1", "use smaller pads",
            )
        _set(
            self, input_shape=x_shape, weight_shape=w_shape, bias_shape=b_shape, stride=stride_t,
            padding=padding_n, output_padding=out_pad, dilation=dilation_t, groups=groups, output_size=size_t,
            pads=pads, output_shape=(x_shape[0], out_channels) + out,
        )

    @property
    def rank(self) -> int:
        return len(self.input_shape) - 2

    @property
    def kernel_size(self) -> Shape:
        return self.weight_shape[2:]

    @property
    def terms_per_output(self) -> int:
        """Upper bound on the terms per output: C_in/groups · ΠK (every tap of every input channel)."""
        return (self.input_shape[1] // self.groups) * math.prod(self.kernel_size)


def _split(total: int, side: str) -> tuple[int, int]:
    """ONNX's split of a total pad: 'same_upper' ⌊t/2⌋ before (odd pad after), else ⌈t/2⌉ before."""
    return (total // 2, total - total // 2) if side == "same_upper" else (total - total // 2, total // 2)


def _transposed_same_pads(
    padding: Any, side: str, spatial: Shape, kernel: Shape, stride: Shape, dilation: Shape, out_pad: Shape
) -> Pads:
    """CONVT-SAME-1: o = n·s; total = s·(n−1) + output_padding + d·(k−1) + 1 − n·s, split by ``padding``."""
    pads = []
    for n, k, s, d, op in zip(spatial, kernel, stride, dilation, out_pad):
        total = s * (n - 1) + op + d * (k - 1) + 1 - n * s
        if total < 0:
            raise InvalidParams(
                "padding", padding,
                f"needs a total pad s*(n-1) + output_padding + d*(k-1) + 1 - n*s = {total} < 0 "
                f"(n={n}, kernel={k}, stride={s}, dilation={d}, output_padding={op}) to give o = n*s",
                "CONVT-SAME-1", "use explicit pads with output_padding, or a kernel with d*(k-1)+1 >= stride",
            )
        pads.append(_split(total, side))
    return tuple(pads)


def _output_size_pads(
    padding: Any, padding_n: Any, size: Shape, spatial: Shape, kernel: Shape, stride: Shape, dilation: Shape,
    out_pad: Shape,
) -> tuple[Pads, Shape]:
    """CONVT-OUTSIZE-1: pads and output_padding that give the spatial output ``size``."""
    if isinstance(padding_n, str):
        if padding_n not in ("same_upper", "same_lower"):
            raise InvalidParams("padding", padding, "must be 0, 'same_upper' or 'same_lower' with output_size",
                                "CONVT-OUTSIZE-1", "output_size determines the pads; padding only picks the odd side")
        side = padding_n
    elif any(a or b for a, b in padding_n):
        raise InvalidParams("padding", padding, "must be 0, 'same_upper' or 'same_lower' with output_size",
                            "CONVT-OUTSIZE-1", "ONNX ignores pads when output_shape is given; convspec refuses both")
    else:
        side = "same_lower"  # ONNX NOTSET: the 'Else' branch of its pad equations, odd pad before
    pads, extra = [], []
    for o, n, k, s, d, op in zip(size, spatial, kernel, stride, dilation, out_pad):
        total = s * (n - 1) + op + d * (k - 1) + 1 - o
        if total >= 0:
            pads.append(_split(total, side))
            extra.append(op)
            continue
        if op - total >= max(s, d):
            raise InvalidParams(
                "output_size", tuple(size),
                f"needs output_padding {op - total} >= max(stride, dilation) = {max(s, d)} to reach {o} "
                f"(full output {o + total})", "CONVT-OUTSIZE-1",
                f"an output_size from {o + total - op} up to {o + total - op + max(s, d) - 1} past cropping is reachable",
            )
        pads.append((0, 0))
        extra.append(op - total)
    return tuple(pads), tuple(extra)
