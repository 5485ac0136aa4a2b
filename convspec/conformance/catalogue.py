"""Named edge cases that random search rarely hits, and the forged invalid configurations.

:data:`CATALOGUE` holds valid forward problems chosen to expose one known class of bug each (the
ONNX ``auto_pad`` bug lived in exactly such a corner: even kernels with 'same_lower'). Every entry
cites the SPEC.md clauses it exercises, and :func:`catalogue_cases` expands it to its forward op
and its gradient op, once per dtype.

:data:`INVALID` holds one or more invalid configurations per invalid-configuration clause: a valid
base case plus the parameter fields (``overrides``) or arrays (``array_changes``) to forge.
:func:`forge` builds them; ``convspec.spec.check_arrays`` must refuse each citing exactly its
clause — the engine checks that before it asks a backend to refuse it too.

>>> entry = next(e for e in CATALOGUE if e.name == "conv-same-lower-even-kernel-1d")
>>> entry.case.build().pads  # PAD-5: the odd pad goes before
((2, 1),)
>>> [case.op for case in catalogue_cases(ops=("conv", "conv_backward"), ranks=(1,))][:2]
['conv', 'conv_backward']
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import Any

import numpy as np

from ..spec import CLAUSES, DTYPE_NAMES, OPS, Params, to_dtype
from .cases import Case

__all__ = ["CATALOGUE", "INVALID", "INVALID_CLAUSES", "Entry", "InvalidEntry", "catalogue_cases", "forge"]


@dataclass(frozen=True)
class Entry:
    """One named edge case: a valid *forward* case and the clauses it targets.

    ``equivalence_class`` groups entries that probe the same rule (reports show one row per class).
    """

    name: str
    case: Case
    clauses: tuple[str, ...]
    description: str
    equivalence_class: str

    def __post_init__(self) -> None:
        if OPS[self.case.op].is_gradient:
            raise ValueError(f"catalogue entry {self.name!r} must hold a forward op, not {self.case.op!r}")
        unknown = [c for c in self.clauses if c not in CLAUSES]
        if unknown:
            raise ValueError(f"catalogue entry {self.name!r} cites unknown clauses {unknown}")


def _entry(name: str, op: str, clauses: str, description: str, equivalence_class: str, *,
           data: str = "integers", seed: int = 0, **params: Any) -> Entry:
    case = Case(op, _spelled_out(op, params), data=data, seed=seed, label=name)
    return Entry(name, case, tuple(clauses.split()), description, equivalence_class)


def _spelled_out(op: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with per-dim arguments as tuples, groups and explicit pads as pairs: the form a
    case descriptor reads back, so every entry round-trips exactly."""
    built = OPS[op].params_type(**params)
    names = {f.name for f in fields(built)}
    out = dict(params)
    for key in ("kernel_size", "stride", "dilation", "output_padding", "groups"):
        if key in names:
            out[key] = getattr(built, key)
    if not isinstance(params.get("padding", 0), str):
        out["padding"] = built.padding
    return out


# Shorthands for the shapes below: (N, C, *S) inputs, conv weights (C_out, C_in/g, *K),
# conv_transpose weights (C_in, C_out/g, *K).
CATALOGUE: tuple[Entry, ...] = (
    # -- 'same' padding: the ONNX auto_pad corner (PAD-4, PAD-5) ------------------------------
    _entry("conv-same-upper-even-kernel-1d", "conv", "PAD-4 CONV-DEF-1",
           "even kernel with 'same_upper': the odd pad goes after (1 before, 2 after)", "padding.same_even",
           input_shape=(1, 2, 7), weight_shape=(3, 2, 4), padding="same_upper"),
    _entry("conv-same-lower-even-kernel-1d", "conv", "PAD-5 CONV-DEF-1",
           "even kernel with 'same_lower': the odd pad goes before (2 before, 1 after)", "padding.same_even",
           input_shape=(1, 2, 7), weight_shape=(3, 2, 4), padding="same_lower"),
    _entry("conv-same-upper-even-kernel-2d", "conv", "PAD-4 CONV-DEF-1",
           "'same_upper' with kernels 2 and 4 on a non-square input", "padding.same_even",
           input_shape=(1, 2, 6, 5), weight_shape=(2, 2, 2, 4), padding="same_upper"),
    _entry("conv-same-lower-even-kernel-2d", "conv", "PAD-5 CONV-DEF-1",
           "'same_lower' with kernels 2 and 4: pads computed per spatial dim, never from N or C",
           "padding.same_even", input_shape=(2, 2, 6, 5), weight_shape=(2, 2, 2, 4), padding="same_lower"),
    _entry("conv-same-strided-dilated", "conv", "PAD-4 CONV-SHAPE-1",
           "'same' with stride > 1 and dilation: o = ceil(n/s), total pad from the effective kernel",
           "padding.same_strided", input_shape=(1, 1, 8, 7), weight_shape=(2, 1, 3, 2), stride=(2, 3),
           dilation=(2, 1), padding="same"),
    _entry("conv-same-lower-reflect", "conv", "PAD-5 PAD-MODE-1",
           "'same_lower' resolved before reflect padding (2 before, 1 after, reflected)", "padding.same_mode",
           input_shape=(1, 2, 5), weight_shape=(2, 2, 4), padding="same_lower", padding_mode="reflect"),
    _entry("max-pool-same-lower-even-kernel", "max_pool", "PAD-5 MAXPOOL-DEF-1",
           "pooling with 'same_lower' and even kernels: padding never wins", "padding.same_even",
           data="random", input_shape=(1, 2, 6, 5), kernel_size=(2, 4), stride=(1, 1), padding="same_lower",
           dilation=(1, 1)),
    _entry("avg-pool-same-upper-strided", "avg_pool", "PAD-4 AVGPOOL-DEF-1",
           "'same_upper' avg pool with stride 2, padding excluded from the divisor", "padding.same_strided",
           data="random", input_shape=(1, 1, 7, 6), kernel_size=(3, 2), stride=(2, 2), padding="same_upper",
           dilation=(1, 1), count_include_pad=False),
    # -- shapes: stride > kernel, single output, pads reaching past the kernel ------------------
    _entry("conv-stride-over-kernel", "conv", "CONV-SHAPE-1 CONV-DEF-1",
           "stride 3 > kernel 2: input elements 2, 5, 8 are never read", "shape.stride_over_kernel",
           input_shape=(1, 2, 10), weight_shape=(2, 2, 2), stride=(3,)),
    _entry("conv-1x1-stride-2", "conv", "CONV-SHAPE-1 CONV-DEF-1",
           "1x1 kernel with stride 2 skips every other row and column", "shape.stride_over_kernel",
           input_shape=(1, 3, 5, 4), weight_shape=(2, 3, 1, 1), stride=(2, 2)),
    _entry("max-pool-stride-over-kernel", "max_pool", "POOL-SHAPE-1 MAXPOOL-DEF-1",
           "stride 3 > kernel 2: gaps between windows", "shape.stride_over_kernel", data="random",
           input_shape=(1, 1, 9, 9), kernel_size=(2, 2), stride=(3, 3), padding=((0, 0), (0, 0)), dilation=(1, 1)),
    _entry("avg-pool-stride-over-kernel", "avg_pool", "POOL-SHAPE-1 AVGPOOL-DEF-1",
           "stride 3 > kernel 2 with padding excluded from the divisor", "shape.stride_over_kernel",
           data="random", input_shape=(1, 2, 8), kernel_size=(2,), stride=(3,), padding=((1, 0),), dilation=(1,),
           count_include_pad=False),
    _entry("conv-kernel-fills-padded-input", "conv", "CONV-SHAPE-1 CONV-SHAPE-2",
           "effective kernel (5, 5) == padded input (5, 5): a single output position", "shape.single_output",
           input_shape=(1, 2, 3, 4), weight_shape=(3, 2, 3, 3), dilation=(2, 2), padding=((1, 1), (1, 0))),
    _entry("avg-pool-single-window-dilated", "avg_pool", "POOL-SHAPE-1 AVGPOOL-DEF-1",
           "dilated window (2, 2) x3 spans the whole 4x4 input: one output", "shape.single_output",
           data="random", input_shape=(1, 1, 4, 4), kernel_size=(2, 2), stride=(1, 1), padding=((0, 0), (0, 0)),
           dilation=(3, 3), count_include_pad=False),
    _entry("conv-pad-beyond-kernel", "conv", "CONV-SHAPE-1 LAYOUT-4",
           "pads 3 > kernel 2: edge outputs see only padding and equal the bias", "shape.pad_beyond_kernel",
           input_shape=(1, 1, 3), weight_shape=(2, 1, 2), padding=((3, 3),), bias_shape=(2,)),
    _entry("conv-asymmetric-pads", "conv", "PAD-1 CONV-SHAPE-1",
           "explicit asymmetric pads ((2, 0), (0, 1))", "padding.asymmetric",
           input_shape=(1, 2, 5, 6), weight_shape=(2, 2, 3, 2), padding=((2, 0), (0, 1))),
    _entry("conv-valid-string", "conv", "PAD-3 CONV-SHAPE-1",
           "'valid' means zero pads", "padding.valid",
           input_shape=(2, 3, 6, 5), weight_shape=(4, 3, 3, 2), stride=(2, 1), padding="valid"),
    # -- ceil mode (POOL-CEIL-1) and the divisor of overhanging windows (AVGPOOL-DEF-1) ---------
    _entry("max-pool-ceil-partial-last-window", "max_pool", "POOL-CEIL-1 MAXPOOL-DEF-1",
           "ceil mode: the last window covers 5, the right pad 6 and overhangs to 7", "pool.ceil_overhang",
           data="random", input_shape=(1, 1, 6), kernel_size=(3,), stride=(2,), padding=((1, 1),),
           dilation=(1,), ceil_mode=True),
    _entry("max-pool-ceil-overhang-dilated", "max_pool", "POOL-CEIL-1 MAXPOOL-DEF-1",
           "ceil mode with dilation 2: the last window's second tap (8) lies past the input", "pool.ceil_overhang",
           data="random", input_shape=(1, 1, 8), kernel_size=(2,), stride=(2,), padding=((0, 0),),
           dilation=(2,), ceil_mode=True),
    _entry("max-pool-ceil-drops-window-no-pad", "max_pool", "POOL-CEIL-1 POOL-WINDOW-1",
           "n=5, k=1, s=3: ceil gives 3 windows but the third would start at 6 >= 5 and is dropped",
           "pool.ceil_drop", data="random", input_shape=(1, 1, 5), kernel_size=(1,), stride=(3,),
           padding=((0, 0),), dilation=(1,), ceil_mode=True),
    _entry("avg-pool-ceil-drops-window-padded", "avg_pool", "POOL-CEIL-1 AVGPOOL-DEF-1",
           "n=4 (and 5), k=2, s=3, p=1: the third window would start at 6 >= n + p_b and is dropped",
           "pool.ceil_drop", data="random", input_shape=(1, 1, 4, 5), kernel_size=(2, 2), stride=(3, 3),
           padding=((1, 1), (1, 1)), dilation=(1, 1), ceil_mode=True, count_include_pad=True),
    _entry("avg-pool-ceil-overhang-count-pad", "avg_pool", "POOL-CEIL-1 AVGPOOL-DEF-1",
           "ceil overhang with count_include_pad: the right pad counts, the overhang past it does not",
           "pool.avg_divisor", data="random", input_shape=(1, 2, 6), kernel_size=(3,), stride=(2,),
           padding=((1, 1),), dilation=(1,), ceil_mode=True, count_include_pad=True),
    _entry("avg-pool-ceil-overhang-exclude-pad", "avg_pool", "POOL-CEIL-1 AVGPOOL-DEF-1",
           "ceil overhang without count_include_pad: only taps inside [0, n) count", "pool.avg_divisor",
           data="random", input_shape=(1, 2, 6, 5), kernel_size=(3, 2), stride=(2, 2),
           padding=((1, 1), (0, 1)), dilation=(1, 1), ceil_mode=True, count_include_pad=False),
    _entry("avg-pool-divisor-override", "avg_pool", "AVGPOOL-DEF-1 AVGPOOL-PARAM-1 POOL-CEIL-1",
           "divisor_override=4 replaces every divisor, partial and overhanging windows included",
           "pool.avg_divisor", data="random", input_shape=(1, 2, 5, 5), kernel_size=(3, 3), stride=(2, 2),
           padding=((1, 1), (1, 1)), dilation=(1, 1), ceil_mode=True, count_include_pad=True, divisor_override=4),
    _entry("avg-pool-pad-over-half-kernel", "avg_pool", "POOL-WINDOW-1 AVGPOOL-DEF-1",
           "pad 2 > k//2 = 1 (PyTorch refuses) keeps every window non-empty: valid", "pool.window",
           data="random", input_shape=(1, 1, 5), kernel_size=(3,), stride=(1,), padding=((2, 2),), dilation=(1,),
           count_include_pad=True),
    _entry("max-pool-dilation-over-input", "max_pool", "POOL-WINDOW-1 MAXPOOL-INDEX-1",
           "dilation 3 > n = 2 with pad 2 before: the single window taps -2 and 1", "pool.window",
           data="random", input_shape=(1, 2, 2), kernel_size=(2,), stride=(1,), padding=((2, 0),), dilation=(3,)),
    # -- dilation with padding in pools -----------------------------------------------------------
    _entry("max-pool-dilation-padding", "max_pool", "MAXPOOL-DEF-1 MAXPOOL-INDEX-1 POOL-SHAPE-1",
           "dilation 2 with pad 2: taps on the padding are skipped, indices stay in the unpadded plane",
           "pool.dilation", data="random", input_shape=(1, 2, 7, 7), kernel_size=(3, 3), stride=(1, 2),
           padding=((2, 2), (2, 1)), dilation=(2, 2)),
    _entry("avg-pool-dilation-padding-count-pad", "avg_pool", "AVGPOOL-DEF-1 POOL-SHAPE-1",
           "dilated taps with count_include_pad: the divisor counts dilated taps inside [-p_b, n + p_a)",
           "pool.dilation", data="random", input_shape=(1, 1, 7, 6), kernel_size=(3, 2), stride=(2, 1),
           padding=((2, 2), (1, 1)), dilation=(2, 3), count_include_pad=True),
    _entry("avg-pool-dilation-padding-exclude-pad", "avg_pool", "AVGPOOL-DEF-1 POOL-SHAPE-1",
           "dilated taps without count_include_pad: the divisor counts dilated taps inside [0, n)",
           "pool.dilation", data="random", input_shape=(1, 1, 7, 6), kernel_size=(3, 2), stride=(2, 1),
           padding=((2, 2), (1, 1)), dilation=(2, 3), count_include_pad=False),
    # -- ties, NaN, -inf, -0.0 (MAXPOOL-TIE-1, MAXPOOL-NAN-1, ERR-SPECIAL-1) --------------------
    _entry("max-pool-ties-overlapping", "max_pool", "MAXPOOL-TIE-1 MAXPOOL-INDEX-1",
           "values in {-1, 0, 1} under overlapping 3x3 windows: ties first, middle, last and all equal",
           "special.ties", data="ties", input_shape=(2, 2, 6, 6), kernel_size=(3, 3), stride=(1, 1),
           padding=((1, 1), (1, 1)), dilation=(1, 1)),
    _entry("max-pool-ties-whole-input", "max_pool", "MAXPOOL-TIE-1 MAXPOOL-INDEX-1",
           "one 3x3 window over the whole tie-laden input: the first maximum in row-major order wins",
           "special.ties", data="ties", seed=3, input_shape=(1, 4, 3, 3), kernel_size=(3, 3), stride=(1, 1),
           padding=((0, 0), (0, 0)), dilation=(1, 1)),
    _entry("max-pool-ties-1d-ceil", "max_pool", "MAXPOOL-TIE-1 MAXPOOL-GRAD-1 POOL-CEIL-1",
           "1-D ties with stride 1 and kernel 4: overlapping windows pick, and gradients pile on, one index",
           "special.ties", data="ties", input_shape=(1, 2, 8), kernel_size=(4,), stride=(1,), padding=((1, 2),),
           dilation=(1,), ceil_mode=True),
    _entry("max-pool-nan", "max_pool", "MAXPOOL-NAN-1 ERR-SPECIAL-1",
           "NaNs among finite values: a window with a NaN yields NaN and a NaN's index", "special.nan",
           data="nan", input_shape=(1, 2, 6, 6), kernel_size=(2, 2), stride=(1, 1), padding=((0, 0), (0, 0)),
           dilation=(1, 1)),
    _entry("avg-pool-nan", "avg_pool", "AVGPOOL-DEF-1 ERR-SPECIAL-1",
           "NaN propagates through the average", "special.nan", data="nan", input_shape=(1, 2, 7),
           kernel_size=(3,), stride=(2,), padding=((1, 1),), dilation=(1,), count_include_pad=False),
    _entry("avg-pool-inf-beside-padding", "avg_pool", "AVGPOOL-DEF-1 ERR-SPECIAL-1",
           "+-inf next to padding: a padding tap adds nothing (no 0 * inf = NaN from a masked read)",
           "special.inf", data="inf", input_shape=(1, 2, 7), kernel_size=(3,), stride=(2,),
           padding=((1, 1),), dilation=(1,), count_include_pad=False),
    _entry("avg-pool-inf-beside-padding-2d", "avg_pool", "AVGPOOL-DEF-1 ERR-SPECIAL-1",
           "+-inf at the border of a 2-D input with counted padding", "special.inf", data="inf",
           input_shape=(1, 2, 5, 5), kernel_size=(3, 3), stride=(2, 2), padding=((1, 1), (1, 1)),
           dilation=(1, 1), count_include_pad=True),
    _entry("conv-nan", "conv", "CONV-DEF-1 ERR-SPECIAL-1",
           "NaN in x poisons every output that reads it", "special.nan", data="nan",
           input_shape=(1, 2, 5, 5), weight_shape=(2, 2, 3, 3), padding=((1, 1), (1, 1))),
    _entry("conv-nan-zero-weights", "conv", "CONV-DEF-1 CONV-GRAD-1 ERR-SPECIAL-1",
           "NaN in x under exact zero weight taps and a zero channel: 0 * NaN is a NaN term, never skipped",
           "special.zero_weights", data="nan_zero_w", input_shape=(2, 3, 5, 5), weight_shape=(4, 3, 3, 3),
           stride=(2, 1), padding=((1, 1), (0, 1))),
    _entry("conv-inf-zero-weights-grouped", "conv", "CONV-DEF-1 CONV-GROUPS-1 ERR-SPECIAL-1",
           "+-inf in x under zero taps and a zero output channel, groups 2: 0 * inf is NaN", "special.zero_weights",
           data="inf_zero_w", seed=1, input_shape=(1, 4, 7), weight_shape=(4, 2, 3), groups=2, padding=((1, 1),)),
    _entry("conv-transpose-inf-zero-weights", "conv_transpose", "CONVT-DEF-1 CONVT-GRAD-1 ERR-SPECIAL-1",
           "+-inf in x scattered through zero taps and a zero channel, targets cropped: 0 * inf is NaN where kept",
           "special.zero_weights", data="inf_zero_w", input_shape=(1, 3, 4, 3), weight_shape=(3, 2, 3, 2),
           stride=(2, 1), padding=((1, 1), (1, 0)), output_padding=(1, 0)),
    _entry("max-pool-neg-inf-padded", "max_pool", "MAXPOOL-DEF-1 ERR-SPECIAL-1",
           "windows of only -inf (and padding): padding never wins, the result is -inf", "special.neg_inf",
           data="neg_inf", input_shape=(1, 2, 5, 5), kernel_size=(3, 3), stride=(2, 2),
           padding=((1, 1), (1, 1)), dilation=(1, 1)),
    _entry("avg-pool-neg-inf", "avg_pool", "AVGPOOL-DEF-1 ERR-SPECIAL-1",
           "-inf in a window makes the average -inf", "special.neg_inf", data="neg_inf",
           input_shape=(1, 1, 6), kernel_size=(2,), stride=(2,), padding=((0, 0),), dilation=(1,),
           count_include_pad=True),
    _entry("conv-inf", "conv", "CONV-DEF-1 ERR-SPECIAL-1",
           "+inf and -inf in one window of a signed kernel: inf - inf = NaN", "special.inf", data="inf",
           input_shape=(1, 2, 9), weight_shape=(2, 2, 3), padding=((1, 1),)),
    _entry("max-pool-neg-zero", "max_pool", "MAXPOOL-TIE-1 MAXPOOL-DEF-1",
           "-0.0 and +0.0 compare equal: the first in window order is returned, sign included", "special.neg_zero",
           data="neg_zero", input_shape=(1, 2, 4, 4), kernel_size=(2, 2), stride=(1, 1),
           padding=((0, 0), (0, 0)), dilation=(1, 1)),
    _entry("conv-neg-zero", "conv", "CONV-DEF-1 ERR-SPECIAL-1",
           "signed zeros in x: exact products, sums must match exactly", "special.neg_zero", data="neg_zero",
           input_shape=(1, 1, 6), weight_shape=(1, 1, 2)),
    # -- groups (CONV-GROUPS-1) -------------------------------------------------------------------
    _entry("conv-depthwise-multiplier", "conv", "CONV-GROUPS-1 CONV-DEF-1 LAYOUT-4",
           "depthwise (groups = C_in = 3) with channel multiplier 2 and a bias", "groups.depthwise",
           input_shape=(2, 3, 6, 6), weight_shape=(6, 1, 3, 3), groups=3, bias_shape=(6,), padding=((1, 1), (1, 1))),
    _entry("conv-groups-multi-output", "conv", "CONV-GROUPS-1 CONV-DEF-1",
           "groups 2 with C_out/groups = 3 and C_in/groups = 2: g(o) = o // 3", "groups.general",
           input_shape=(1, 4, 7), weight_shape=(6, 2, 3), groups=2, stride=(2,)),
    _entry("conv-groups-circular", "conv", "CONV-GROUPS-1 PAD-MODE-1",
           "groups with circular padding", "groups.general",
           input_shape=(1, 4, 5, 5), weight_shape=(4, 2, 3, 3), groups=2, padding=((1, 1), (1, 1)),
           padding_mode="circular"),
    # -- conv padding modes at their limits (PAD-MODE-1, PAD-MODE-2) ------------------------------
    _entry("conv-reflect-max-pad", "conv", "PAD-MODE-1 PAD-MODE-2",
           "reflect at its limit: pads n-1 = 3 and 4 (no edge repeat)", "padding.mode_limit",
           input_shape=(1, 2, 4, 5), weight_shape=(2, 2, 3, 3), padding=((3, 3), (4, 4)), padding_mode="reflect"),
    _entry("conv-reflect-max-pad-1d", "conv", "PAD-MODE-1 PAD-MODE-2",
           "1-D reflect with asymmetric pads (4, 2) on n = 5", "padding.mode_limit",
           input_shape=(1, 1, 5), weight_shape=(2, 1, 2), padding=((4, 2),), padding_mode="reflect"),
    _entry("conv-replicate-large-pad", "conv", "PAD-MODE-1 PAD-MODE-2",
           "replicate accepts any pad: 5 > n = 2 repeats the edge", "padding.mode_limit",
           input_shape=(1, 2, 2, 3), weight_shape=(2, 2, 2, 2), padding=((5, 5), (2, 3)), padding_mode="replicate"),
    _entry("conv-circular-max-pad", "conv", "PAD-MODE-1 PAD-MODE-2",
           "circular at its limit: pads n = 4 and 3 wrap exactly once", "padding.mode_limit",
           input_shape=(1, 2, 4, 3), weight_shape=(3, 2, 3, 2), padding=((4, 4), (3, 3)), padding_mode="circular"),
    # -- conv_transpose (CONVT-*) -----------------------------------------------------------------
    _entry("conv-transpose-output-padding", "conv_transpose", "CONVT-SHAPE-1 CONVT-PARAM-1 CONVT-DEF-1",
           "stride 2, pad 1, output_padding 1: the extra row and column are reached by no tap of some inputs",
           "convt.output_padding", input_shape=(1, 2, 4, 4), weight_shape=(2, 3, 3, 3), stride=(2, 2),
           padding=((1, 1), (1, 1)), output_padding=(1, 1)),
    _entry("conv-transpose-output-padding-from-dilation", "conv_transpose", "CONVT-PARAM-1 CONVT-SHAPE-1",
           "stride 1 and dilation 3: output_padding 2 < max(s, d) = 3 is valid", "convt.output_padding",
           input_shape=(1, 2, 5), weight_shape=(2, 2, 3), stride=(1,), dilation=(3,), output_padding=(2,)),
    _entry("conv-transpose-groups-dilation", "conv_transpose", "CONVT-DEF-1 CONV-GROUPS-1 CONVT-SHAPE-1",
           "groups 2 (C_out = 2*3), dilation (2, 1), stride (2, 1), asymmetric pads", "convt.groups",
           input_shape=(1, 4, 4, 3), weight_shape=(4, 3, 2, 3), groups=2, dilation=(2, 1), stride=(2, 1),
           padding=((1, 0), (0, 2)), output_padding=(1, 0), bias_shape=(6,)),
    _entry("conv-transpose-depthwise", "conv_transpose", "CONVT-DEF-1 CONV-GROUPS-1",
           "depthwise transpose: groups = C_in = 3, one output channel per group", "convt.groups",
           input_shape=(2, 3, 5), weight_shape=(3, 1, 3), groups=3, stride=(2,), output_padding=(1,)),
    _entry("conv-transpose-stride-over-kernel", "conv_transpose", "CONVT-DEF-1 CONVT-SHAPE-1",
           "stride 3 > kernel 2: outputs between the scattered copies get only the bias", "convt.stride",
           input_shape=(1, 2, 4), weight_shape=(2, 1, 2), stride=(3,), bias_shape=(1,)),
    _entry("conv-transpose-crop", "conv_transpose", "CONVT-SHAPE-1 CONVT-DEF-1",
           "pads (2, 1) crop the output to (n-1)s - 3 + k = 4", "convt.crop",
           input_shape=(1, 2, 3), weight_shape=(2, 2, 3), stride=(2,), padding=((2, 1),)),
    # -- empty batch, 1x1, bias, single pixel -----------------------------------------------------
    _entry("conv-empty-batch", "conv", "LAYOUT-1 CONV-SHAPE-1",
           "N = 0: empty outputs of the right shape; db is zeros", "layout.empty_batch",
           input_shape=(0, 2, 5, 5), weight_shape=(3, 2, 3, 3), bias_shape=(3,), padding=((1, 1), (1, 1))),
    _entry("conv-transpose-empty-batch", "conv_transpose", "LAYOUT-1 CONVT-SHAPE-1",
           "N = 0 through conv_transpose", "layout.empty_batch",
           input_shape=(0, 2, 4), weight_shape=(2, 2, 3), stride=(2,), output_padding=(1,)),
    _entry("max-pool-empty-batch", "max_pool", "LAYOUT-1 POOL-SHAPE-1",
           "N = 0 through max pooling", "layout.empty_batch", data="random",
           input_shape=(0, 3, 4, 4), kernel_size=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1)),
    _entry("avg-pool-empty-batch", "avg_pool", "LAYOUT-1 POOL-SHAPE-1",
           "N = 0 through average pooling", "layout.empty_batch", data="random",
           input_shape=(0, 1, 5), kernel_size=(2,), stride=(1,), padding=((1, 1),), dilation=(1,),
           count_include_pad=True),
    _entry("conv-1x1-bias", "conv", "CONV-DEF-1 LAYOUT-4",
           "1x1 kernel: a per-position channel mix, plus a bias", "shape.one_by_one",
           input_shape=(2, 3, 4, 4), weight_shape=(5, 3, 1, 1), bias_shape=(5,)),
    _entry("conv-bias-random", "conv", "LAYOUT-4 CONV-DEF-1",
           "a bias added to every output position, random data (rounding)", "layout.bias", data="random",
           input_shape=(2, 3, 7), weight_shape=(4, 3, 3), bias_shape=(4,), stride=(2,), padding=((1, 1),)),
    _entry("conv-transpose-bias", "conv_transpose", "LAYOUT-4 CONVT-DEF-1",
           "a bias in conv_transpose (shape (C_out,) = (groups * w.shape[1],))", "layout.bias", data="random",
           input_shape=(1, 4, 3, 3), weight_shape=(4, 2, 2, 2), groups=2, bias_shape=(4,), stride=(2, 2)),
    _entry("conv-single-pixel", "conv", "LAYOUT-1 LAYOUT-4 CONV-SHAPE-1",
           "one channel, one pixel, a 1x1 kernel and a bias: y = w*x + b", "shape.single_pixel",
           input_shape=(1, 1, 1, 1), weight_shape=(1, 1, 1, 1), bias_shape=(1,)),
    _entry("max-pool-single-pixel", "max_pool", "LAYOUT-1 POOL-SHAPE-1",
           "one channel, one pixel, kernel 1", "shape.single_pixel", data="random",
           input_shape=(1, 1, 1), kernel_size=(1,), stride=(1,), padding=((0, 0),), dilation=(1,)),
    # -- accuracy-oriented data -------------------------------------------------------------------
    _entry("conv-cancellation", "conv", "ERR-BOUND-1 CONV-DEF-1",
           "small values with a few large ones of both signs: cancellation in the sum", "accuracy.cancel",
           data="cancel", input_shape=(1, 4, 8, 8), weight_shape=(4, 4, 3, 3), padding=((1, 1), (1, 1))),
    _entry("conv-wide-exponents", "conv", "ERR-BOUND-1 CONV-DEF-1",
           "signed powers of two over a wide exponent range", "accuracy.wide", data="wide",
           input_shape=(1, 3, 6, 6), weight_shape=(2, 3, 3, 3)),
    # -- spatial ranks 1 to 4 ---------------------------------------------------------------------
    _entry("conv-rank-1", "conv", "LAYOUT-1 CONV-DEF-1",
           "1-D convolution with stride, dilation and padding", "rank.1", data="random",
           input_shape=(2, 3, 11), weight_shape=(4, 3, 3), stride=(2,), dilation=(2,), padding=((2, 1),)),
    _entry("conv-rank-3", "conv", "LAYOUT-1 CONV-DEF-1",
           "3-D convolution with mixed stride and dilation per dim", "rank.3", data="random",
           input_shape=(1, 2, 4, 5, 4), weight_shape=(2, 2, 2, 3, 2), stride=(2, 1, 1), dilation=(1, 1, 2),
           padding=((1, 0), (1, 1), (0, 1))),
    _entry("conv-rank-4", "conv", "LAYOUT-1 CONV-DEF-1",
           "4-D convolution: the reference and backends must not stop at 3 spatial dims", "rank.4",
           data="random", input_shape=(1, 2, 3, 3, 3, 3), weight_shape=(2, 2, 2, 2, 2, 2), stride=(1, 2, 1, 1),
           padding=((0, 0), (1, 0), (0, 0), (0, 1))),
    _entry("conv-transpose-rank-3", "conv_transpose", "LAYOUT-1 CONVT-DEF-1",
           "3-D transposed convolution", "rank.3", data="random",
           input_shape=(1, 2, 3, 2, 3), weight_shape=(2, 2, 2, 2, 2), stride=(2, 1, 2), output_padding=(1, 0, 0)),
    _entry("conv-transpose-rank-4", "conv_transpose", "LAYOUT-1 CONVT-DEF-1",
           "4-D transposed convolution", "rank.4", data="random",
           input_shape=(1, 2, 2, 3, 2, 2), weight_shape=(2, 1, 2, 2, 1, 2), stride=(2, 1, 1, 2)),
    _entry("max-pool-rank-3", "max_pool", "LAYOUT-1 MAXPOOL-DEF-1 MAXPOOL-INDEX-1",
           "3-D max pool: flat indices over a 3-D plane", "rank.3", data="random",
           input_shape=(1, 2, 4, 5, 3), kernel_size=(2, 2, 2), stride=(2, 2, 1), padding=((0, 0), (1, 0), (0, 0)),
           dilation=(1, 1, 1)),
    _entry("max-pool-rank-4", "max_pool", "LAYOUT-1 MAXPOOL-DEF-1 MAXPOOL-INDEX-1",
           "4-D max pool: flat indices over a 4-D plane", "rank.4", data="random",
           input_shape=(1, 2, 3, 3, 3, 3), kernel_size=(2, 2, 2, 2), stride=(1, 1, 1, 1),
           padding=((0, 0), (0, 0), (0, 0), (0, 0)), dilation=(1, 1, 1, 1)),
    _entry("avg-pool-rank-3", "avg_pool", "LAYOUT-1 AVGPOOL-DEF-1",
           "3-D avg pool with padding counted", "rank.3", data="random",
           input_shape=(1, 1, 4, 4, 4), kernel_size=(3, 2, 2), stride=(2, 2, 2),
           padding=((1, 1), (0, 0), (1, 0)), dilation=(1, 1, 1), count_include_pad=True),
    _entry("avg-pool-rank-4", "avg_pool", "LAYOUT-1 AVGPOOL-DEF-1 POOL-CEIL-1",
           "4-D avg pool in ceil mode, padding excluded", "rank.4", data="random",
           input_shape=(1, 1, 4, 3, 3, 3), kernel_size=(2, 2, 2, 2), stride=(2, 2, 2, 2),
           padding=((0, 0), (0, 0), (0, 0), (0, 0)), dilation=(1, 1, 1, 1), ceil_mode=True,
           count_include_pad=False),
    # -- ONNX extension op lp_pool (LPPOOL-*): run only for backends that claim it ----------------
    _entry("lp-pool-rank-1", "lp_pool", "LAYOUT-1 LPPOOL-DEF-1 POOL-CEIL-1",
           "1-D L3 pool with padding and a ceil-mode overhang: both contribute 0", "lp.rank.1", data="random",
           input_shape=(2, 2, 7), kernel_size=(3,), stride=(2,), padding=((1, 1),), dilation=(1,), ceil_mode=True,
           p=3),
    _entry("lp-pool-rank-2", "lp_pool", "LAYOUT-1 LPPOOL-DEF-1 PAD-4",
           "2-D L2 pool with 'same_upper' (ONNX auto_pad SAME_UPPER)", "lp.rank.2", data="random",
           input_shape=(1, 2, 6, 5), kernel_size=(3, 2), stride=(2, 2), padding="same_upper", dilation=(1, 1)),
    _entry("lp-pool-rank-3", "lp_pool", "LAYOUT-1 LPPOOL-DEF-1",
           "3-D L1 pool with dilation", "lp.rank.3", data="random",
           input_shape=(1, 1, 5, 4, 4), kernel_size=(2, 2, 2), stride=(1, 2, 2), padding=((0, 0), (1, 0), (0, 0)),
           dilation=(2, 1, 1), p=1),
    _entry("lp-pool-rank-4", "lp_pool", "LAYOUT-1 LPPOOL-DEF-1",
           "4-D L4 pool", "lp.rank.4", data="random",
           input_shape=(1, 1, 3, 3, 3, 3), kernel_size=(2, 2, 2, 2), stride=(1, 1, 1, 1),
           padding=((0, 0), (0, 0), (0, 0), (0, 0)), dilation=(1, 1, 1, 1), p=4),
    _entry("lp-pool-empty-batch", "lp_pool", "LAYOUT-1 LPPOOL-DEF-1",
           "N = 0: an empty output of the right shape", "lp.empty_batch", data="random",
           input_shape=(0, 2, 4, 4), kernel_size=(2, 2), stride=(2, 2), padding=((0, 0), (0, 0)), dilation=(1, 1)),
)


def catalogue_cases(
    *,
    ops: Iterable[str] | None = None,
    ranks: Iterable[int] | None = None,
    dtypes: Iterable[str] = ("float32",),
) -> list[Case]:
    """The catalogue as cases: each entry's forward op and its gradient op, once per dtype.

    ``ops`` and ``ranks`` restrict the result (None: all); every case is labelled with its entry's
    name. Raises ValueError for an unknown op or dtype.
    """
    wanted_ops = set(OPS) if ops is None else set(ops)
    unknown = sorted(wanted_ops - set(OPS)) + [d for d in dtypes if d not in DTYPE_NAMES]
    if unknown:
        raise ValueError(f"unknown ops or dtypes {unknown}; ops are {sorted(OPS)}, dtypes {DTYPE_NAMES}")
    wanted_ranks = None if ranks is None else set(ranks)
    out = []
    for entry in CATALOGUE:
        if wanted_ranks is not None and len(entry.case.params["input_shape"]) - 2 not in wanted_ranks:
            continue
        for op in (entry.case.op, OPS[entry.case.op].backward):
            if op is None or op not in wanted_ops:
                continue
            for dtype in dtypes:
                out.append(entry.case.with_(op=op, dtype=dtype, label=entry.name))
    return out


# -- invalid configurations ----------------------------------------------------------------------

@dataclass(frozen=True)
class InvalidEntry:
    """A forged invalid configuration: a valid ``base`` case, then parameter fields and arrays changed.

    ``overrides`` maps fields of the parameter object to the values to forge (constructor fields,
    so ``convspec.spec.revalidate`` sees them); ``array_changes`` maps an input name to a new
    shape (a tuple: zeros of that shape), a dtype name (the array cast to it) or None (omitted).
    ``check_arrays(op, *forge(entry))`` must raise InvalidParams citing exactly ``clause``.
    ``description`` defaults to the forged changes, e.g. ``"stride=(0, 1); b.shape=(5,)"``.
    """

    name: str
    clause: str
    op: str
    base: Case
    overrides: Mapping[str, Any] = field(default_factory=dict)
    array_changes: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if self.clause not in CLAUSES:
            raise ValueError(f"invalid entry {self.name!r} cites unknown clause {self.clause!r}")
        if OPS[self.op].params_type is not OPS[self.base.op].params_type:
            raise ValueError(f"invalid entry {self.name!r}: op {self.op!r} does not take {self.base.op!r} params")
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))
        object.__setattr__(self, "array_changes", MappingProxyType(dict(self.array_changes)))
        if not self.description:
            changes = [f"{key}={value!r}" for key, value in self.overrides.items()]
            for key, change in self.array_changes.items():
                if change is None:
                    changes.append(f"{key} omitted")
                else:
                    changes.append(f"{key}.{'dtype' if isinstance(change, str) else 'shape'}={change!r}")
            object.__setattr__(self, "description", "; ".join(changes))


def forge(entry: InvalidEntry) -> tuple[Params, dict[str, np.ndarray | None]]:
    """The forged parameter object and arrays of ``entry``.

    The base parameters are built (valid), copied, and the overridden fields set with
    ``object.__setattr__``; explicit pads given as ``padding`` are mirrored into ``pads`` so the
    derived field stays consistent. Arrays are the base case's, with ``array_changes`` applied.
    """
    case = entry.base.with_(op=entry.op)
    params = copy.copy(case.build())
    overrides = dict(entry.overrides)
    padding = overrides.get("padding")
    if "pads" not in overrides and isinstance(padding, tuple) and all(
            isinstance(pair, tuple) and len(pair) == 2 for pair in padding):
        overrides["pads"] = padding
    for name, value in overrides.items():
        if not hasattr(params, name):
            raise ValueError(f"invalid entry {entry.name!r}: {type(params).__name__} has no field {name!r}")
        object.__setattr__(params, name, value)
    arrays: dict[str, np.ndarray | None] = dict(case.arrays())
    for name, change in entry.array_changes.items():
        if change is None:
            arrays[name] = None
        elif isinstance(change, str):
            arrays[name] = np.asarray(arrays[name]).astype(to_dtype(change))
        else:
            arrays[name] = np.zeros(tuple(change), dtype=to_dtype(case.dtype))
    return params, arrays


def _invalid(name: str, clause: str, base: Entry | Case, *, op: str | None = None,
             overrides: Mapping[str, Any] | None = None, array_changes: Mapping[str, Any] | None = None) -> InvalidEntry:
    case = base.case if isinstance(base, Entry) else base
    return InvalidEntry(name, clause, op or case.op, case, dict(overrides or {}), dict(array_changes or {}))


_CONV2 = Case("conv", dict(input_shape=(1, 4, 6, 6), weight_shape=(6, 4, 3, 3), stride=(1, 1),
                           padding=((1, 1), (1, 1)), dilation=(1, 1), groups=1), data="integers")
_CONV2_BIAS = _CONV2.with_(params=dict(bias_shape=(6,)))
_CONV_REFLECT = _CONV2.with_(params=dict(padding_mode="reflect"))
_CONV_TIGHT = Case("conv", dict(input_shape=(1, 1, 2, 2), weight_shape=(1, 1, 3, 3), padding=((1, 1), (1, 1))),
                   data="integers")
_CONVT2 = Case("conv_transpose", dict(input_shape=(1, 4, 3, 3), weight_shape=(4, 2, 3, 3), stride=(2, 2),
                                      padding=((1, 1), (1, 1)), output_padding=(1, 1), dilation=(1, 1), groups=2),
               data="integers")
_CONVT_SMALL = Case("conv_transpose", dict(input_shape=(1, 2, 1, 1), weight_shape=(2, 2, 3, 3)), data="integers")
_MAXPOOL2 = Case("max_pool", dict(input_shape=(1, 2, 6, 6), kernel_size=(2, 2), stride=(2, 2),
                                  padding=((0, 0), (0, 0)), dilation=(1, 1)), data="random")
_LPPOOL2 = Case("lp_pool", dict(input_shape=(1, 2, 6, 6), kernel_size=(2, 2), stride=(2, 2),
                                padding=((0, 0), (0, 0)), dilation=(1, 1), p=2), data="random")
_AVGPOOL2 = Case("avg_pool", dict(input_shape=(1, 2, 6, 6), kernel_size=(3, 3), stride=(2, 2),
                                  padding=((1, 1), (1, 1)), dilation=(1, 1), count_include_pad=True), data="random")

INVALID: tuple[InvalidEntry, ...] = (
    _invalid("stride-three-entries-for-two-dims", "PARAM-1", _CONV2, overrides={"stride": (1, 1, 1)}),
    _invalid("pool-kernel-three-entries", "PARAM-1", _MAXPOOL2, overrides={"kernel_size": (2, 2, 2)}),
    _invalid("stride-zero", "PARAM-2", _CONV2, overrides={"stride": (0, 1)}),
    _invalid("dilation-zero", "PARAM-2", _CONVT2, overrides={"dilation": (1, 0)}),
    _invalid("padding-unknown-string", "PAD-1", _CONV2, overrides={"padding": "full"}),
    _invalid("padding-triples", "PAD-1", _MAXPOOL2, overrides={"padding": ((1, 1, 1), (0, 0))}),
    _invalid("padding-negative", "PAD-2", _CONV2, overrides={"padding": ((-1, -1), (1, 1))}),
    _invalid("pool-padding-negative", "PAD-2", _AVGPOOL2, overrides={"padding": ((1, 1), (0, -1))}),
    _invalid("padding-mode-unknown", "PAD-MODE-1", _CONV2, overrides={"padding_mode": "mirror"}),
    _invalid("reflect-pad-over-n-minus-1", "PAD-MODE-2", _CONV_REFLECT, overrides={"padding": ((6, 6), (1, 1))}),
    _invalid("circular-pad-over-n", "PAD-MODE-2", _CONV2.with_(params=dict(padding_mode="circular")),
             overrides={"padding": ((1, 1), (7, 0))}),
    _invalid("groups-not-dividing", "CONV-GROUPS-1", _CONV2, overrides={"groups": 3}),
    _invalid("groups-zero", "CONV-GROUPS-1", _CONV2, overrides={"groups": 0}),
    _invalid("groups-weight-channels", "CONV-GROUPS-1", _CONV2, overrides={"groups": 2}),
    _invalid("convt-groups-not-dividing", "CONV-GROUPS-1", _CONVT2, overrides={"groups": 3}),
    _invalid("kernel-over-unpadded-input", "CONV-SHAPE-2", _CONV_TIGHT, overrides={"padding": ((0, 0), (0, 0))}),
    _invalid("dilated-kernel-over-input", "CONV-SHAPE-2", _CONV2, overrides={"dilation": (4, 1)}),
    _invalid("convt-output-padding-at-stride", "CONVT-PARAM-1", _CONVT2, overrides={"output_padding": (2, 1)}),
    _invalid("convt-output-padding-negative", "CONVT-PARAM-1", _CONVT2, overrides={"output_padding": (-1, 0)}),
    # 'same*' are valid for conv_transpose (CONVT-SAME-1) unless the taps cannot reach n*s outputs
    _invalid("convt-same", "CONVT-SAME-1", _CONVT2, overrides={"padding": "same", "stride": (4, 4), "output_padding": 0}),
    _invalid("convt-same-lower", "CONVT-SAME-1", _CONVT2,
             overrides={"padding": "same_lower", "stride": (4, 4), "output_padding": 0}),
    _invalid("convt-output-size-unreachable", "CONVT-OUTSIZE-1", _CONVT2,
             overrides={"output_size": (9, 9), "padding": 0}),
    _invalid("convt-output-size-with-pads", "CONVT-OUTSIZE-1", _CONVT2, overrides={"output_size": (6, 6)}),
    _invalid("lp-pool-p-zero", "LPPOOL-PARAM-1", _LPPOOL2, op="lp_pool", overrides={"p": 0}),
    _invalid("convt-crops-everything", "CONVT-SHAPE-1", _CONVT_SMALL, overrides={"padding": ((2, 2), (2, 2))}),
    _invalid("pool-stride-zero", "POOL-PARAM-1", _MAXPOOL2, overrides={"stride": (1, 0)}),
    _invalid("pool-kernel-zero", "POOL-PARAM-1", _AVGPOOL2, overrides={"kernel_size": (0, 3)}),
    _invalid("pool-dilation-zero", "POOL-PARAM-1", _MAXPOOL2, overrides={"dilation": (0, 1)}),
    _invalid("pool-ceil-mode-int", "POOL-CEIL-1", _MAXPOOL2, overrides={"ceil_mode": 1}),
    _invalid("pool-ceil-mode-string", "POOL-CEIL-1", _AVGPOOL2, overrides={"ceil_mode": "true"}),
    _invalid("pool-window-only-padding", "POOL-WINDOW-1", _MAXPOOL2, overrides={"padding": ((2, 2), (0, 0))}),
    _invalid("pool-dilated-window-misses-input", "POOL-WINDOW-1",
             Case("max_pool", dict(input_shape=(1, 1, 1), kernel_size=(2,), stride=(1,), padding=((2, 0),),
                                   dilation=(2,)), data="random"),
             overrides={"padding": ((1, 2),), "dilation": (3,)}),
    _invalid("pool-window-over-padded-input", "POOL-SHAPE-1", _MAXPOOL2, overrides={"kernel_size": (7, 2)}),
    _invalid("avg-pool-count-include-pad-missing", "AVGPOOL-PARAM-1", _AVGPOOL2,
             overrides={"count_include_pad": None}),
    _invalid("avg-pool-divisor-zero", "AVGPOOL-PARAM-1", _AVGPOOL2, overrides={"divisor_override": 0}),
    _invalid("x-shape-mismatch", "LAYOUT-1", _CONV2, array_changes={"x": (1, 4, 6, 5)}),
    _invalid("pool-x-rank-mismatch", "LAYOUT-1", _MAXPOOL2, array_changes={"x": (1, 2, 6, 6, 1)}),
    _invalid("x-zero-channels-params", "LAYOUT-1", _CONV2, overrides={"input_shape": (1, 0, 6, 6)}),
    _invalid("w-shape-mismatch", "LAYOUT-2", _CONV2, array_changes={"w": (6, 4, 3, 2)}),
    _invalid("convt-w-shape-mismatch", "LAYOUT-3", _CONVT2, array_changes={"w": (4, 4, 3, 3)}),
    _invalid("bias-wrong-length", "LAYOUT-4", _CONV2_BIAS, array_changes={"b": (5,)}),
    _invalid("bias-missing", "LAYOUT-4", _CONV2_BIAS, array_changes={"b": None}),
    _invalid("bias-undeclared", "LAYOUT-4", _CONV2, array_changes={"b": (6,)}),
    _invalid("dy-shape-mismatch", "GRAD-SHAPE-1", _CONV2, op="conv_backward", array_changes={"dy": (1, 6, 6, 5)}),
    _invalid("pool-dy-shape-mismatch", "GRAD-SHAPE-1", _AVGPOOL2, op="avg_pool_backward",
             array_changes={"dy": (1, 2, 3, 4)}),
    _invalid("w-other-dtype", "DTYPE-1", _CONV2, array_changes={"w": "float64"}),
    _invalid("dy-other-dtype", "DTYPE-1", _MAXPOOL2, op="max_pool_backward", array_changes={"dy": "float16"}),
)

#: The invalid-configuration clauses of SPEC.md: each has at least one INVALID entry.
INVALID_CLAUSES = (
    "PARAM-1", "PARAM-2", "PAD-1", "PAD-2", "PAD-MODE-1", "PAD-MODE-2", "CONV-GROUPS-1", "CONV-SHAPE-2",
    "CONVT-PARAM-1", "CONVT-SAME-1", "CONVT-OUTSIZE-1", "CONVT-SHAPE-1", "POOL-PARAM-1", "POOL-CEIL-1",
    "POOL-WINDOW-1", "POOL-SHAPE-1", "AVGPOOL-PARAM-1", "LPPOOL-PARAM-1", "LAYOUT-1", "LAYOUT-2", "LAYOUT-3",
    "LAYOUT-4", "GRAD-SHAPE-1", "DTYPE-1",
)
