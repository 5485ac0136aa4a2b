"""Hypothesis strategies for :class:`~convspec.conformance.cases.Case`: every op, every parameter.

Each strategy draws the *parameters* first — rank, groups, kernel, dilation, stride, padding
form, pads, padding mode, ceil mode — and then derives the spatial sizes from them, so every case
is valid by construction: ``case.build()`` never raises and no draw is thrown away
Choices are ordered so that shrinking moves towards the plainest problem:
stride 1, no dilation, zero padding, groups 1, ``'zeros'`` mode, no bias, floor mode, and the
first data recipe (``"impulse"`` by default, a single 1 in ``x``).

The bounds that keep a problem valid, per spatial dim (k kernel, d dilation, e = d·(k−1) + 1
the effective kernel, n the input size, p_b / p_a the pads):

* conv (CONV-SHAPE-2, PAD-MODE-2): n + p_b + p_a ≥ e; reflect pads ≤ n − 1, circular pads ≤ n.
  The 'same*' pads never exceed ⌈(e − 1)/2⌉ (PAD-4, PAD-5), so n ≥ ⌈(e − 1)/2⌉ + 1 suffices.
* conv_transpose (CONVT-PARAM-1, CONVT-SHAPE-1): 0 ≤ output_padding < max(s, d) and
  o = (n − 1)·s − p_b − p_a + e + output_padding ≥ 1.
* pools (POOL-SHAPE-1, POOL-WINDOW-1): n + p_b + p_a ≥ e, pads ≤ (k − 1)·d per side and, when
  k > 1, n ≥ d. Then the first window's last tap −p_b + (k−1)·d is ≥ 0, every window starts
  before n (the floor formula, or POOL-CEIL-1's correction in ceil mode), and taps d ≤ n apart
  cannot step over the input: every window holds an input element.

Sizes stay small: a spatial dim is at most ``max_spatial`` (for rank ≥ 3 at most the c with
c^rank ≤ 2·max_spatial², so a 3-D input holds ≤ 5³ positions by default), channels at most
``max_channels`` and the batch at most ``max_batch``: by default every array of a case holds at
most about 2000 elements.

>>> from hypothesis import given, settings
>>> @settings(max_examples=10)
... @given(cases("conv", ranks=(2,)))
... def check(case):
...     assert case.build().rank == 2
>>> check()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

from hypothesis import note
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from ..spec import (
    DTYPE_NAMES,
    OPS,
    ConvParams,
    ConvTransposeParams,
    LpPoolParams,
    MaxPoolParams,
    ceil_div,
    effective_kernel,
)
from .cases import RECIPES, SPECIAL_RECIPES, ZERO_WEIGHT_RECIPES, Case

__all__ = ["DEFAULT_RECIPES", "cases", "special_cases", "parameters"]

#: The data recipes of :func:`cases`, simplest first (shrinking moves towards the first).
DEFAULT_RECIPES = ("impulse", "integers", "random", "wide", "cancel", "zeros")

MAX_SEED = 2**16
MAX_STRIDE = 3
MAX_DILATION = 3
#: One case in EMPTY_BATCH_ODDS draws an empty batch (N = 0, LAYOUT-1): rare, it checks little.
EMPTY_BATCH_ODDS = 10

#: Padding forms, simplest first (PAD-1). Conv_transpose takes no 'same*' form (CONVT-PAD-1).
PADDING_FORMS = ("zero", "pairs", "int", "per_dim", "valid", "same", "same_upper", "same_lower")
EXPLICIT_FORMS = ("zero", "pairs", "int", "per_dim", "valid")
#: Conv padding modes, simplest first (PAD-MODE-1).
MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass(frozen=True)
class _Bounds:
    ranks: tuple[int, ...]
    max_batch: int
    max_channels: int
    max_spatial: int
    max_kernel: int
    features: bool

    def spatial_cap(self, rank: int) -> int:
        """Largest size of one spatial dim: max_spatial, shrunk for rank ≥ 3 so c^rank ≤ 2·max_spatial²."""
        budget = 2 * self.max_spatial**2
        cap = self.max_spatial
        while rank >= 3 and cap > 1 and cap**rank > budget:
            cap -= 1
        return cap


class _Labelled:
    """``draw`` that remembers a name for every draw and notes them all at once.

    A composite's ``draw`` takes an internal integer span label in this Hypothesis version, not a
    name, so the names go into one ``note`` shown with a falsifying example.
    """

    def __init__(self, draw: Callable[..., Any]) -> None:
        self._draw = draw
        self.choices: dict[str, Any] = {}

    def __call__(self, strategy: st.SearchStrategy[Any], label: str) -> Any:
        value = self._draw(strategy)
        self.choices[label] = value
        return value

    def per_dim(self, label: str, strategies: Sequence[st.SearchStrategy[int]]) -> tuple[int, ...]:
        return tuple(self(strategy, f"{label}[{i}]") for i, strategy in enumerate(strategies))

    def note(self) -> None:
        note("drawn: " + ", ".join(f"{key}={value!r}" for key, value in self.choices.items()))


# -- argument validation (eager, one exception type, name=value in every message) -----------

def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidArgument(f"{name}={value!r} must be a positive int")
    return value


def _subset(name: str, values: Any, allowed: Sequence[str]) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise InvalidArgument(f"{name}={values!r} must be a tuple of names from {tuple(allowed)}")
    values = tuple(values)
    if not values:
        raise InvalidArgument(f"{name}={values!r} must name at least one of {tuple(allowed)}")
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise InvalidArgument(f"{name}={values!r} holds {unknown}, not among {tuple(allowed)}")
    return values


def _validate(
    op: Any, ranks: Any, dtypes: Any, recipes: Any, allowed_recipes: Sequence[str], max_batch: Any,
    max_channels: Any, max_spatial: Any, max_kernel: Any, features: Any,
) -> tuple[tuple[str, ...], tuple[str, ...], _Bounds]:
    if op not in OPS:
        raise InvalidArgument(f"op={op!r} is not an op of the spec; ops are {sorted(OPS)}")
    if isinstance(ranks, str) or not isinstance(ranks, Sequence) or not ranks:
        raise InvalidArgument(f"ranks={ranks!r} must be a non-empty tuple of spatial ranks >= 1")
    for rank in ranks:
        _positive_int("ranks entry", rank)
    if not isinstance(features, bool):
        raise InvalidArgument(f"features={features!r} must be True or False")
    bounds = _Bounds(
        ranks=tuple(ranks),
        max_batch=_positive_int("max_batch", max_batch),
        max_channels=_positive_int("max_channels", max_channels),
        max_spatial=_positive_int("max_spatial", max_spatial),
        max_kernel=_positive_int("max_kernel", max_kernel),
        features=features,
    )
    return _subset("dtypes", dtypes, DTYPE_NAMES), _subset("recipes", recipes, allowed_recipes), bounds


# -- public strategies ----------------------------------------------------------------------

def cases(
    op: str,
    *,
    ranks: Sequence[int] = (1, 2, 3),
    dtypes: Sequence[str] = ("float32",),
    recipes: Sequence[str] = DEFAULT_RECIPES,
    max_batch: int = 2,
    max_channels: int = 4,
    max_spatial: int = 8,
    max_kernel: int = 4,
    features: bool = True,
) -> st.SearchStrategy[Case]:
    """Valid cases of ``op`` (any op of ``convspec.spec.OPS``, gradient ops included).

    A gradient op draws the parameter object of its forward op. ``features=False`` draws only
    the plainest form of the op — no feature of ``convspec.spec.features.FEATURES``: stride 1,
    no padding, dilation 1, groups 1, no bias, floor mode, N ≥ 1. Recipes are drawn in the
    order given (the first is the shrinking target); ``seed`` from [0, 2¹⁶]. Average-pool cases
    always give ``count_include_pad`` (AVGPOOL-PARAM-1). The simplest case, where shrinking
    ends, is ``conv x=1,1,1 w=1,1,1 s=1 p=0:0 d=1 g=1 dtype=float32 data=impulse seed=0``.
    """
    dtypes_t, recipes_t, bounds = _validate(
        op, ranks, dtypes, recipes, tuple(RECIPES), max_batch, max_channels, max_spatial, max_kernel, features
    )
    return _cases(op, bounds, dtypes_t, recipes_t)


def special_cases(
    op: str,
    *,
    ranks: Sequence[int] = (1, 2, 3),
    dtypes: Sequence[str] = ("float32",),
    recipes: Sequence[str] = SPECIAL_RECIPES,
    max_batch: int = 2,
    max_channels: int = 4,
    max_spatial: int = 8,
    max_kernel: int = 4,
    features: bool = True,
) -> st.SearchStrategy[Case]:
    """Like :func:`cases`, with the special-value recipes ("nan", "inf", "neg_inf", "neg_zero", and
    for the convolutions "nan_zero_w", "inf_zero_w": exact zero weight taps and channels meeting
    them, ERR-SPECIAL-1). Pools have no weight: they draw the zero-weight recipes as "nan" / "inf".

    Max pooling keeps windows small (k ≤ 2), so windows full of −inf, of ±0 ties and of NaNs
    among finite values are common (MAXPOOL-DEF-1, MAXPOOL-TIE-1, MAXPOOL-NAN-1). Which NaN
    ``max_pool_backward`` routes to is implementation-defined; the engine handles that.
    """
    dtypes_t, recipes_t, bounds = _validate(
        op, ranks, dtypes, recipes, SPECIAL_RECIPES, max_batch, max_channels, max_spatial, max_kernel, features
    )
    if OPS[op].params_type not in (ConvParams, ConvTransposeParams):
        recipes_t = tuple(r for r in recipes_t if r not in ZERO_WEIGHT_RECIPES) or recipes_t
    if OPS[op].params_type is MaxPoolParams:
        bounds = _Bounds(bounds.ranks, bounds.max_batch, bounds.max_channels, bounds.max_spatial,
                         min(bounds.max_kernel, 2), bounds.features)
    return _cases(op, bounds, dtypes_t, recipes_t)


def parameters(
    op: str,
    *,
    ranks: Sequence[int] = (1, 2, 3),
    max_batch: int = 2,
    max_channels: int = 4,
    max_spatial: int = 8,
    max_kernel: int = 4,
    features: bool = True,
) -> st.SearchStrategy[dict[str, Any]]:
    """Constructor arguments of ``op``'s parameter object (what ``Case.params`` holds)."""
    _, _, bounds = _validate(op, ranks, ("float32",), ("random",), tuple(RECIPES), max_batch, max_channels,
                             max_spatial, max_kernel, features)
    return _kwargs_strategy(op, bounds)


def _kwargs_strategy(op: str, bounds: _Bounds) -> st.SearchStrategy[dict[str, Any]]:
    params_type = OPS[op].params_type
    if params_type is ConvParams:
        return _conv_kwargs(bounds)
    if params_type is ConvTransposeParams:
        return _conv_transpose_kwargs(bounds)
    if params_type is LpPoolParams:  # LPPOOL-PARAM-1: the pool windows plus p
        return _pool_kwargs(bounds, average=False, lp=True)
    return _pool_kwargs(bounds, average=params_type is not MaxPoolParams)


def _cases(op: str, bounds: _Bounds, dtypes: tuple[str, ...], recipes: tuple[str, ...]) -> st.SearchStrategy[Case]:
    return st.builds(
        Case, st.just(op), _kwargs_strategy(op, bounds),
        dtype=st.sampled_from(dtypes), data=st.sampled_from(recipes), seed=st.integers(0, MAX_SEED),
    )


# -- shared draws -----------------------------------------------------------------------------

def _batch(draw: _Labelled, bounds: _Bounds) -> int:
    """N in [1, max_batch], and rarely N = 0 (LAYOUT-1); shrinks towards N = 1."""
    empty = bounds.features and draw(st.integers(0, EMPTY_BATCH_ODDS - 1), "empty_batch_roll") == EMPTY_BATCH_ODDS - 1
    # N is drawn either way: an empty batch must not be a shorter choice sequence, which
    # hypothesis' shortlex order would take for the simpler case.
    batch = draw(st.integers(1, bounds.max_batch), "batch")
    return 0 if empty else batch


def _kernel_and_dilation(draw: _Labelled, bounds: _Bounds, rank: int, cap: int) -> tuple[tuple[int, ...], ...]:
    """Kernel sizes k ≤ min(max_kernel, cap), then dilations keeping e = d·(k−1) + 1 ≤ cap."""
    kernel = draw.per_dim("kernel", [st.integers(1, min(bounds.max_kernel, cap))] * rank)
    # Undilated in half the cases: drawn per dim, all-ones would be rare at rank 2-3 and the
    # pairs "no dilation + feature" seldom reached (coverage.py).
    if not bounds.features or not draw(st.booleans(), "dilated"):
        return kernel, (1,) * rank
    # A 1-tap kernel takes any dilation (e = 1); dilation 2 there checks it is ignored.
    limits = [2 if k == 1 else min(MAX_DILATION, (cap - 1) // (k - 1)) for k in kernel]
    dilation = draw.per_dim("dilation", [st.integers(1, limit) for limit in limits])
    return kernel, dilation


def _strides(draw: _Labelled, bounds: _Bounds, rank: int) -> tuple[int, ...]:
    """Strides in [1, 3]: stride > kernel (skipped input) is reachable with small kernels.
    Stride 1 in every dim in half the cases, so that stride-1-only paths ('same' with a padding
    mode, ceil mode at stride 1) meet the other features (coverage.py)."""
    if not bounds.features or not draw(st.booleans(), "strided"):
        return (1,) * rank
    return draw.per_dim("stride", [st.integers(1, MAX_STRIDE)] * rank)


def _padding(draw: _Labelled, forms: Sequence[str], limits: Sequence[int]) -> tuple[Any, tuple[tuple[int, int], ...] | None]:
    """A padding argument of one of ``forms`` with explicit pads ≤ ``limits`` per side (PAD-1, PAD-2).

    Returns the argument as the caller would pass it and its explicit pairs (None for 'same*',
    whose pads follow from the input size: PAD-4, PAD-5).
    """
    rank = len(limits)
    form = draw(st.sampled_from(tuple(forms)), "padding_form")
    if form == "zero":
        pairs = ((0, 0),) * rank
        return pairs, pairs
    if form == "valid":
        return "valid", ((0, 0),) * rank
    if form.startswith("same"):
        return form, None
    if form == "int":
        pad = draw(st.integers(0, min(limits)), "padding")
        return pad, ((pad, pad),) * rank
    if form == "per_dim":
        pads = draw.per_dim("padding", [st.integers(0, limit) for limit in limits])
        return pads, tuple((p, p) for p in pads)
    pairs = tuple(
        (draw(st.integers(0, limit), f"pad_before[{i}]"), draw(st.integers(0, limit), f"pad_after[{i}]"))
        for i, limit in enumerate(limits)
    )
    return pairs, pairs


def _sizes(draw: _Labelled, minima: Sequence[int], maxima: Sequence[int]) -> tuple[int, ...]:
    """Spatial sizes n in [minimum, max(minimum, maximum)], shrinking towards the minimum."""
    return draw.per_dim("size", [st.integers(lo, max(lo, hi)) for lo, hi in zip(minima, maxima)])


def _channels(draw: _Labelled, bounds: _Bounds) -> tuple[int, int, int]:
    """groups, channels per group C_g = C_in/groups, and M = C_out/groups (CONV-GROUPS-1).

    groups = C_in is depthwise; M > 1 is a channel multiplier.
    """
    if not bounds.features:
        return 1, draw(st.integers(1, bounds.max_channels), "in_channels"), \
            draw(st.integers(1, bounds.max_channels), "out_channels")
    # groups = 1 in half the cases (drawn uniformly it would be a quarter): "no groups" pairs (coverage.py).
    groups = draw(st.integers(2, bounds.max_channels), "groups") if bounds.max_channels > 1 and draw(
        st.booleans(), "grouped") else 1
    per_group = bounds.max_channels // groups
    return groups, draw(st.integers(1, per_group), "in_channels_per_group"), \
        draw(st.integers(1, per_group), "out_channels_per_group")


# -- one composite per parameter family -------------------------------------------------------

@st.composite
def _conv_kwargs(draw_: Callable[..., Any], bounds: _Bounds) -> dict[str, Any]:
    """ConvParams arguments: x (N, g·C_g, *n), w (g·M, C_g, *k), any padding form and mode."""
    draw = _Labelled(draw_)
    rank = draw(st.sampled_from(bounds.ranks), "rank")
    cap = bounds.spatial_cap(rank)
    groups, per_group, multiplier = _channels(draw, bounds)
    batch = _batch(draw, bounds)
    kernel, dilation = _kernel_and_dilation(draw, bounds, rank, cap)
    stride = _strides(draw, bounds, rank)
    mode = draw(st.sampled_from(MODES), "padding_mode") if bounds.features else "zeros"
    extent = [effective_kernel(k, d) for k, d in zip(kernel, dilation)]
    # Pads up to e: a pad of e puts a whole output position in the padding.
    forms: tuple[str, ...] = PADDING_FORMS if bounds.features else ("zero", "valid")
    limits = [min(e, cap - 1) for e in extent]
    if mode != "zeros":  # a mode acts on padding only: draw forms that can pad (coverage.py)
        forms = tuple(f for f in forms if f not in ("zero", "valid"))
        # reflect needs n ≥ p + 1 (PAD-MODE-2), so o = n + 2p − e + 1 ≥ 3p + 2 − e: p ≤ (cap + e − 2)/3
        # keeps o ≤ cap, and the arrays within the size budget.
        limits = [min(limit, (cap + e - 2) // 3) for limit, e in zip(limits, extent)]
    padding, pairs = _padding(draw, forms, limits)
    if pairs is None:  # 'same*': pads ≤ ⌈(e−1)/2⌉ whatever n is (PAD-4, PAD-5)
        widest = [(ceil_div(e - 1, 2),) * 2 for e in extent]
        minima, maxima = [1] * rank, [cap] * rank
    else:
        widest = list(pairs)
        minima = [e - before - after for e, (before, after) in zip(extent, pairs)]  # CONV-SHAPE-2
        # o = ⌊(n + p_b + p_a − e)/s⌋ + 1 ≤ cap as well, so dy stays as small as x.
        maxima = [min(cap, (cap - 1) * s + lo) for s, lo in zip(stride, minima)]
    if mode == "reflect":  # PAD-MODE-2
        minima = [max(lo, max(pair) + 1) for lo, pair in zip(minima, widest)]
    elif mode == "circular":
        minima = [max(lo, max(pair)) for lo, pair in zip(minima, widest)]
    sizes = _sizes(draw, [max(lo, 1) for lo in minima], maxima)
    out_channels = groups * multiplier
    bias = bounds.features and draw(st.booleans(), "bias")
    draw.note()
    kwargs: dict[str, Any] = dict(
        input_shape=(batch, groups * per_group) + sizes,
        weight_shape=(out_channels, per_group) + kernel,
        stride=stride, padding=padding, dilation=dilation, groups=groups,
    )
    if bias:
        kwargs["bias_shape"] = (out_channels,)
    if mode != "zeros":
        kwargs["padding_mode"] = mode
    return kwargs


@st.composite
def _conv_transpose_kwargs(draw_: Callable[..., Any], bounds: _Bounds) -> dict[str, Any]:
    """ConvTransposeParams arguments: x (N, g·C_g, *n), w (g·C_g, M, *k), explicit pads, output_padding.

    n ≤ cap is derived so that o = (n − 1)·s − p_b − p_a + e + output_padding lies in [1, cap]
    where it can (CONVT-SHAPE-1).
    """
    draw = _Labelled(draw_)
    rank = draw(st.sampled_from(bounds.ranks), "rank")
    cap = bounds.spatial_cap(rank)
    groups, per_group, multiplier = _channels(draw, bounds)
    batch = _batch(draw, bounds)
    kernel, dilation = _kernel_and_dilation(draw, bounds, rank, cap)
    stride = _strides(draw, bounds, rank)
    extent = [effective_kernel(k, d) for k, d in zip(kernel, dilation)]
    forms = EXPLICIT_FORMS if bounds.features else ("zero", "valid")  # CONVT-PAD-1
    # Pads ≤ e − 1 per side keep the smallest input that reaches o ≥ 1 within e ≤ cap.
    padding, pairs = _padding(draw, forms, [e - 1 for e in extent])
    assert pairs is not None  # explicit forms only
    if bounds.features:  # CONVT-PARAM-1
        output_padding = draw.per_dim(
            "output_padding", [st.integers(0, max(s, d) - 1) for s, d in zip(stride, dilation)])
    else:
        output_padding = (0,) * rank
    minima, maxima = [], []
    for e, s, (before, after), extra in zip(extent, stride, pairs, output_padding):
        fixed = e - before - after + extra  # o = (n − 1)·s + fixed
        minima.append(1 + max(ceil_div(1 - fixed, s), 0))
        maxima.append(min(cap, (cap - fixed) // s + 1))
    sizes = _sizes(draw, minima, maxima)
    out_channels = groups * multiplier
    bias = bounds.features and draw(st.booleans(), "bias")
    draw.note()
    kwargs: dict[str, Any] = dict(
        input_shape=(batch, groups * per_group) + sizes,
        weight_shape=(groups * per_group, multiplier) + kernel,
        stride=stride, padding=padding, output_padding=output_padding, dilation=dilation, groups=groups,
    )
    if bias:
        kwargs["bias_shape"] = (out_channels,)
    return kwargs


@st.composite
def _pool_kwargs(draw_: Callable[..., Any], bounds: _Bounds, average: bool, lp: bool = False) -> dict[str, Any]:
    """MaxPoolParams / AvgPoolParams / LpPoolParams arguments with every window non-empty (POOL-WINDOW-1).

    Pads ≤ (k − 1)·d per side and n ≥ d (for k > 1) keep every window non-empty, in floor and
    ceil mode alike (see the module docstring); pads above ⌊k/2⌋ are reachable.
    """
    draw = _Labelled(draw_)
    rank = draw(st.sampled_from(bounds.ranks), "rank")
    cap = bounds.spatial_cap(rank)
    channels = draw(st.integers(1, bounds.max_channels), "channels")
    batch = _batch(draw, bounds)
    kernel, dilation = _kernel_and_dilation(draw, bounds, rank, cap)
    stride = _strides(draw, bounds, rank)
    ceil_mode = bounds.features and draw(st.booleans(), "ceil_mode")
    forms = PADDING_FORMS if bounds.features else ("zero", "valid")
    reach = [(k - 1) * d for k, d in zip(kernel, dilation)]  # e − 1
    padding, pairs = _padding(draw, forms, reach)
    minima = []
    for i, (k, d, e) in enumerate(zip(kernel, dilation, reach)):
        lowest = 1 if pairs is None else e + 1 - sum(pairs[i])  # POOL-SHAPE-1 ('same*' pads cover it)
        minima.append(max(lowest, d if k > 1 else 1, 1))
    sizes = _sizes(draw, minima, [cap] * rank)
    kwargs: dict[str, Any] = dict(
        input_shape=(batch, channels) + sizes, kernel_size=kernel, stride=stride, padding=padding,
        dilation=dilation,
    )
    if ceil_mode:
        kwargs["ceil_mode"] = True
    if average:  # AVGPOOL-PARAM-1: count_include_pad is always given
        kwargs["count_include_pad"] = draw(st.booleans(), "count_include_pad")
        if bounds.features and draw(st.booleans(), "divisor_override?"):
            taps = 1
            for k in kernel:
                taps *= k
            kwargs["divisor_override"] = draw(st.integers(1, taps + 1), "divisor_override")
    if lp:
        kwargs["p"] = draw(st.integers(1, 4), "p")
    draw.note()
    return kwargs
