"""Parameter objects of max and average pooling (POOL-*, MAXPOOL-*, AVGPOOL-*).

Pooling applies one window per channel: output channels = input channels. Like the conv
parameter objects, these are bound to an input shape, validated when built, and carry explicit
``pads`` and the ``output_shape``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

from .errors import InvalidParams
from .padding import IntsArg, PaddingArg, normalize_padding, per_dim_ints, resolve_padding
from .shapes import Pads, Shape, check_shape, effective_kernel, is_int, pool_output_size, window_is_empty, window_starts


@dataclass(frozen=True, init=False)
class PoolParams:
    """What max and average pooling share: the windows.

    Window p of a spatial dim covers input coordinates p·s − p_b + j·d, 0 ≤ j < k.
    o = ⌊(n + p_b + p_a − d·(k−1) − 1)/s⌋ + 1 (POOL-SHAPE-1), or the ceil-mode size of POOL-CEIL-1.
    """

    input_shape: Shape
    kernel_size: Shape
    stride: Shape
    padding: str | Pads
    dilation: Shape
    ceil_mode: bool
    pads: Pads
    output_shape: Shape

    def __init__(
        self,
        *,
        input_shape: Shape,
        kernel_size: IntsArg,
        stride: IntsArg | None = None,
        padding: PaddingArg = 0,
        dilation: IntsArg = 1,
        ceil_mode: bool = False,
    ) -> None:
        x_shape = check_shape("x.shape", input_shape, clause="LAYOUT-1")
        rank = len(x_shape) - 2
        kernel = per_dim_ints("kernel_size", kernel_size, rank, clause="POOL-PARAM-1")
        # POOL-PARAM-1: stride defaults to the kernel size (non-overlapping windows).
        stride_t = kernel if stride is None else per_dim_ints("stride", stride, rank, clause="POOL-PARAM-1")
        dilation_t = per_dim_ints("dilation", dilation, rank, clause="POOL-PARAM-1")
        if not isinstance(ceil_mode, (bool,)):
            raise InvalidParams("ceil_mode", ceil_mode, "must be a bool", "POOL-CEIL-1")
        padding_n = normalize_padding(padding, rank)
        spatial = x_shape[2:]
        pads = resolve_padding(padding_n, spatial, kernel, stride_t, dilation_t)
        out = []
        for n, k, s, d, pair in zip(spatial, kernel, stride_t, dilation_t, pads):
            if n + pair[0] + pair[1] < effective_kernel(k, d):
                raise InvalidParams(
                    "x.shape", x_shape,
                    f"padded extent {n}+{pair[0]}+{pair[1]} is smaller than the window d*(k-1)+1 = "
                    f"{effective_kernel(k, d)}", "POOL-SHAPE-1", "use a smaller kernel or more padding",
                )
            o = pool_output_size(n, k, s, d, pair, ceil_mode)
            for start in window_starts(o, s, pair[0]):
                if window_is_empty(start, n, k, d):
                    raise InvalidParams(
                        "padding", padding,
                        f"gives a window starting at {start} that holds no input element "
                        f"(n={n}, kernel_size={k}, stride={s}, dilation={d}, pads={pair})", "POOL-WINDOW-1",
                        "use less padding (at most (kernel_size-1)*dilation per side keeps windows non-empty)",
                    )
            out.append(o)
        object.__setattr__(self, "input_shape", x_shape)
        object.__setattr__(self, "kernel_size", kernel)
        object.__setattr__(self, "stride", stride_t)
        object.__setattr__(self, "padding", padding_n)
        object.__setattr__(self, "dilation", dilation_t)
        object.__setattr__(self, "ceil_mode", ceil_mode)
        object.__setattr__(self, "pads", pads)
        object.__setattr__(self, "output_shape", x_shape[:2] + tuple(out))

    @property
    def rank(self) -> int:
        return len(self.input_shape) - 2

    @property
    def terms_per_output(self) -> int:
        """K of the error model: the number of taps of one window, Πk."""
        return math.prod(self.kernel_size)


@dataclass(frozen=True, init=False)
class MaxPoolParams(PoolParams):
    """y[n, c, p] = max over the window's taps inside the input (MAXPOOL-DEF-1).

    Padding never wins; NaN propagates (MAXPOOL-NAN-1); ties go to the first maximum in row-major
    window order (MAXPOOL-TIE-1); the index is flat into the unpadded spatial plane (MAXPOOL-INDEX-1).

    >>> MaxPoolParams(input_shape=(1, 1, 5, 5), kernel_size=2, ceil_mode=True).output_shape
    (1, 1, 3, 3)
    """


@dataclass(frozen=True, init=False)
class AvgPoolParams(PoolParams):
    """y[n, c, p] = Σ_{taps inside the input} x / divisor  (AVGPOOL-DEF-1).

    divisor = divisor_override if given; else, if count_include_pad, the number of taps inside
    [−p_b, n + p_a) (padding counts, a ceil-mode overhang does not); else the taps inside [0, n).
    ``count_include_pad`` has no default (AVGPOOL-PARAM-1).

    >>> AvgPoolParams(input_shape=(1, 1, 4), kernel_size=3, stride=1, padding=1, count_include_pad=False).output_shape
    (1, 1, 4)
    """

    count_include_pad: bool
    divisor_override: int | None

    def __init__(
        self,
        *,
        input_shape: Shape,
        kernel_size: IntsArg,
        stride: IntsArg | None = None,
        padding: PaddingArg = 0,
        dilation: IntsArg = 1,
        ceil_mode: bool = False,
        count_include_pad: bool | None = None,
        divisor_override: int | None = None,
    ) -> None:
        if not isinstance(count_include_pad, bool):
            raise InvalidParams(
                "count_include_pad", count_include_pad, "must be given explicitly as True or False",
                "AVGPOOL-PARAM-1", "frameworks disagree on its default (PyTorch True, ONNX False)",
            )
        if divisor_override is not None and (not is_int(divisor_override) or divisor_override < 1):
            raise InvalidParams(
                "divisor_override", divisor_override, "must be None or a positive int", "AVGPOOL-PARAM-1"
            )
        super().__init__(
            input_shape=input_shape, kernel_size=kernel_size, stride=stride, padding=padding,
            dilation=dilation, ceil_mode=ceil_mode,
        )
        object.__setattr__(self, "count_include_pad", count_include_pad)
        object.__setattr__(
            self, "divisor_override", None if divisor_override is None else int(divisor_override)
        )



@dataclass(frozen=True, init=False)
class LpPoolParams(PoolParams):
    """y[n, c, p] = (Σ_{taps inside the input} |x|^p)^(1/p)  (LPPOOL-DEF-1, ONNX LpPool).

    ``p`` is ONNX's attribute (an int, default 2, LPPOOL-PARAM-1); padding taps contribute 0.
    Windows, strides, padding strings and ceil mode are those of every pool (POOL-*).

    >>> LpPoolParams(input_shape=(1, 1, 5), kernel_size=2, stride=1).output_shape
    (1, 1, 4)
    """

    p: int

    def __init__(
        self,
        *,
        input_shape: Shape,
        kernel_size: IntsArg,
        stride: IntsArg | None = None,
        padding: PaddingArg = 0,
        dilation: IntsArg = 1,
        ceil_mode: bool = False,
        p: int = 2,
    ) -> None:
        if not is_int(p) or isinstance(p, bool) or p < 1:
            raise InvalidParams("p", p, "must be a positive int", "LPPOOL-PARAM-1",
                                "ONNX LpPool's p is an int attribute, default 2")
        super().__init__(
            input_shape=input_shape, kernel_size=kernel_size, stride=stride, padding=padding,
            dilation=dilation, ceil_mode=ceil_mode,
        )
        object.__setattr__(self, "p", int(p))


GlobalPoolParams = Union[MaxPoolParams, AvgPoolParams]


def global_pool_params(op: str, input_shape: Shape) -> GlobalPoolParams:
    """ONNX GlobalMaxPool / GlobalAveragePool as the spec's pool over the whole spatial extent.

    ``op`` is ``"max_pool"`` (GLOBALPOOL-MAX-1) or ``"avg_pool"`` (GLOBALPOOL-AVG-1): kernel_size =
    the spatial shape of x, stride 1, no padding, dilation 1, floor mode, so every spatial dim of y
    is 1; the average divides by Πn (count_include_pad is moot without padding; False is given).

    >>> global_pool_params("avg_pool", (2, 3, 4, 5)).output_shape
    (2, 3, 1, 1)
    """
    x_shape = check_shape("x.shape", input_shape, clause="LAYOUT-1")
    spatial = x_shape[2:]
    if op == "max_pool":
        return MaxPoolParams(input_shape=x_shape, kernel_size=spatial, stride=1)
    if op == "avg_pool":
        return AvgPoolParams(input_shape=x_shape, kernel_size=spatial, stride=1, count_include_pad=False)
    raise InvalidParams("op", op, "must be 'max_pool' or 'avg_pool' for a global pool", "GLOBALPOOL-AVG-1")
