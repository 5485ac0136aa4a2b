"""Special values in the convolutions: the strict term-wise reference, where a zero-extended
gradient may be NaN instead (CONV-GRAD-1, CONVT-GRAD-1, ERR-SPECIAL-1), zero weights as terms,
and which clause a wrong output shape cites.

The reference sums every output over its terms only (strict). A gradient formulation that also
multiplies zeros that are not terms (zero-stuffed dy, dy extended by zeros, col2im over the
uncropped output) gives the same values except NaN where such a zero meets a NaN or an infinity;
both are conformant. Here both are computed by literal loops and checked against the reference
and its mask, and the engine is checked to accept both, but nothing else.
"""

from __future__ import annotations

import itertools
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convspec import reference as R
from convspec.backends import FunctionBackend
from convspec.conformance import Case, run_conformance
from convspec.conformance.cases import SPECIAL_RECIPES, ZERO_WEIGHT_RECIPES
from convspec.conformance.compare import compare
from convspec.conformance.context import shape_clause
from convspec.conformance.strategies import parameters, special_cases
from convspec.reference.window import source_index
from convspec.spec import AvgPoolParams, ConvParams, ConvTransposeParams, MaxPoolParams

SPECIALS = np.array([np.nan, np.inf, -np.inf])

# -- literal loops: the strict sums and the most zero-extended ones ---------------------------------


def _with_specials(rng: np.random.Generator, shape: tuple[int, ...], odds: float) -> np.ndarray:
    """Uniform values with exact zeros, and NaN, +inf, -inf at ``odds`` each."""
    a = rng.uniform(-1, 1, shape)
    roll = rng.random(shape)
    a[roll < 0.15] = 0.0
    for i, value in enumerate(SPECIALS):
        a[(roll >= 0.15 + i * odds) & (roll < 0.15 + (i + 1) * odds)] = value
    return a


def _padded_source(params: ConvParams) -> list[np.ndarray]:
    """Per dim, the element of x that each padded coordinate j copies (−1: a padding zero)."""
    return [source_index(n, pair, params.padding_mode) for n, pair in zip(params.input_shape[2:], params.pads)]


def _conv_terms(params: ConvParams):
    """Every forward term of conv: (n, o, p, c_in, c, q, j), j the padded coordinate p·s + q·d."""
    N, C_in = params.input_shape[:2]
    C_out, C_g = params.weight_shape[:2]
    M = C_out // params.groups
    for n, o, p, c, q in itertools.product(range(N), range(C_out), np.ndindex(*params.output_shape[2:]),
                                           range(C_g), np.ndindex(*params.kernel_size)):
        j = tuple(pi * s + qi * d for pi, qi, s, d in zip(p, q, params.stride, params.dilation))
        yield n, o, p, (o // M) * C_g + c, c, q, j


def loop_conv_backward(x, w, dy, params: ConvParams, *, zero_extended: bool):
    """dx, dw by literal loops over the terms of conv; ``zero_extended`` also adds, to every dw
    element, each x̃ element no term of it reads times 0, and to every dx̃ element each w tap that
    no term brings there times 0 (dy zero-stuffed and extended without limit)."""
    sources = _padded_source(params)
    extent = [len(s) for s in sources]
    N = params.input_shape[0]
    C_out, C_g = params.weight_shape[:2]
    M = C_out // params.groups
    dx_tilde = np.zeros((N, params.input_shape[1], *extent))
    dw = np.zeros(params.weight_shape)
    read: dict[tuple, set] = {}
    reached: dict[tuple, set] = {}

    def x_tilde(n, c_in, j):
        src = tuple(s[ji] for s, ji in zip(sources, j))
        return 0.0 if min(src) < 0 else x[(n, c_in, *src)]

    for n, o, p, c_in, c, q, j in _conv_terms(params):
        dw[(o, c, *q)] += dy[(n, o, *p)] * x_tilde(n, c_in, j)
        dx_tilde[(n, c_in, *j)] += w[(o, c, *q)] * dy[(n, o, *p)]
        read.setdefault((o, c, q), set()).add((n, j))
        reached.setdefault((n, c_in, j), set()).add((o, q))
    if zero_extended:
        for o, c, q in itertools.product(range(C_out), range(C_g), np.ndindex(*params.kernel_size)):
            c_in = (o // M) * C_g + c
            for n, j in itertools.product(range(N), np.ndindex(*extent)):
                if (n, j) not in read.get((o, c, q), ()):
                    dw[(o, c, *q)] += x_tilde(n, c_in, j) * 0.0
        for n, c_in, j in itertools.product(range(N), range(params.input_shape[1]), np.ndindex(*extent)):
            g, c = divmod(c_in, C_g)
            for m, q in itertools.product(range(M), np.ndindex(*params.kernel_size)):
                if (g * M + m, q) not in reached.get((n, c_in, j), ()):
                    dx_tilde[(n, c_in, *j)] += w[(g * M + m, c, *q)] * 0.0
    dx = np.zeros(params.input_shape)
    for j in np.ndindex(*extent):  # fold: each padded copy back onto its source (PAD-MODE-1)
        src = tuple(s[ji] for s, ji in zip(sources, j))
        if min(src) >= 0:
            dx[(slice(None), slice(None), *src)] += dx_tilde[(slice(None), slice(None), *j)]
    return dx, dw


def loop_conv_transpose_backward(x, w, dy, params: ConvTransposeParams, *, zero_extended: bool):
    """dx, dw by literal loops over the terms of conv_transpose, x[p]·w[q] → y[p·s + q·d − p_b] for
    targets inside [0, o); ``zero_extended`` also multiplies every cropped target's missing dy by
    x and w (dy extended by zeros) and, for dw, every dy element no term of a tap reads by 0."""
    N, C_in = params.input_shape[:2]
    C_g, M = C_in // params.groups, params.weight_shape[1]
    size, out = params.input_shape[2:], params.output_shape[2:]
    dx, dw = np.zeros(params.input_shape), np.zeros(params.weight_shape)
    read: dict[tuple, set] = {}
    for n, c_in, p, m, q in itertools.product(range(N), range(C_in), np.ndindex(*size), range(M),
                                              np.ndindex(*params.kernel_size)):
        o = (c_in // C_g) * M + m
        t = tuple(pi * s + qi * d - b for pi, qi, s, d, (b, _) in
                  zip(p, q, params.stride, params.dilation, params.pads))
        if all(0 <= ti < oi for ti, oi in zip(t, out)):
            dx[(n, c_in, *p)] += w[(c_in, m, *q)] * dy[(n, o, *t)]
            dw[(c_in, m, *q)] += x[(n, c_in, *p)] * dy[(n, o, *t)]
            read.setdefault((c_in, m, q), set()).add((n, t))
        elif zero_extended:
            dx[(n, c_in, *p)] += w[(c_in, m, *q)] * 0.0
            dw[(c_in, m, *q)] += x[(n, c_in, *p)] * 0.0
    if zero_extended:
        for c_in, m, q in itertools.product(range(C_in), range(M), np.ndindex(*params.kernel_size)):
            o = (c_in // C_g) * M + m
            for n, t in itertools.product(range(N), np.ndindex(*out)):
                if (n, t) not in read.get((c_in, m, q), ()):
                    dw[(c_in, m, *q)] += dy[(n, o, *t)] * 0.0
    return dx, dw


def _assert_same(got: np.ndarray, expected: np.ndarray) -> None:
    """NaN where expected is NaN, the same infinities, finite values equal to rounding."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.where(np.isinf(expected), expected, 0), np.where(np.isinf(got), got, 0))
    finite = np.isfinite(expected)
    np.testing.assert_allclose(got[finite], expected[finite], rtol=1e-12, atol=1e-12)


def _arrays(seed: int, params: Any, odds: float, which: str) -> dict[str, np.ndarray]:
    """x, w, dy with specials in the arrays named in ``which``; the others finite with zeros."""
    rng = np.random.default_rng(seed)
    shapes = {"x": params.input_shape, "w": params.weight_shape, "dy": params.output_shape}
    return {name: _with_specials(rng, shape, odds if name in which else 0.0) for name, shape in shapes.items()}


_SMALL = dict(ranks=(1, 2), max_batch=2, max_channels=2, max_spatial=4, max_kernel=3)


@settings(max_examples=40, deadline=None)
@given(kwargs=parameters("conv_backward", **_SMALL), seed=st.integers(0, 2**16),
       which=st.sampled_from(["x", "w", "dy", "xwdy"]))
def test_conv_backward_is_strict_and_the_mask_is_exactly_the_zero_extension(kwargs, seed, which):
    """CONV-GRAD-1: the reference equals the strict loops; the most zero-extended loops are NaN
    exactly where the strict value is NaN or zero_extension_nan marks, and equal elsewhere."""
    params = ConvParams(**kwargs)
    arrays = _arrays(seed, params, 0.08, which)
    x, w, dy = arrays["x"], arrays["w"], arrays["dy"]
    with np.errstate(invalid="ignore"):
        dx, dw, _ = R.conv_backward(x, w, dy, params)
        strict = loop_conv_backward(x, w, dy, params, zero_extended=False)
        extended = loop_conv_backward(x, w, dy, params, zero_extended=True)
    masks = R.zero_extension_nan("conv_backward", arrays, params)
    for name, got, exact, wide in zip(("dx", "dw"), (dx, dw), strict, extended):
        _assert_same(got, exact)
        mask = np.zeros(got.shape, bool) if masks[name] is None else masks[name]
        np.testing.assert_array_equal(np.isnan(wide), np.isnan(exact) | mask, err_msg=name)
        _assert_same(np.where(mask, exact, wide), exact)


@settings(max_examples=40, deadline=None)
@given(kwargs=parameters("conv_transpose_backward", **_SMALL), seed=st.integers(0, 2**16),
       which=st.sampled_from(["x", "w", "dy", "xwdy"]))
def test_conv_transpose_backward_is_strict_and_the_mask_is_exactly_the_zero_extension(kwargs, seed, which):
    """CONVT-GRAD-1: cropped targets are no terms (strict reference); the zero extension of dy to
    the uncropped output, and of x for dw, is NaN exactly where the mask says."""
    params = ConvTransposeParams(**kwargs)
    arrays = _arrays(seed, params, 0.08, which)
    x, w, dy = arrays["x"], arrays["w"], arrays["dy"]
    with np.errstate(invalid="ignore"):
        dx, dw, _ = R.conv_transpose_backward(x, w, dy, params)
        strict = loop_conv_transpose_backward(x, w, dy, params, zero_extended=False)
        extended = loop_conv_transpose_backward(x, w, dy, params, zero_extended=True)
    masks = R.zero_extension_nan("conv_transpose_backward", arrays, params)
    for name, got, exact, wide in zip(("dx", "dw"), (dx, dw), strict, extended):
        _assert_same(got, exact)
        mask = np.zeros(got.shape, bool) if masks[name] is None else masks[name]
        np.testing.assert_array_equal(np.isnan(wide), np.isnan(exact) | mask, err_msg=name)
        _assert_same(np.where(mask, exact, wide), exact)


@settings(max_examples=30, deadline=None)
@given(kwargs=parameters("conv", **_SMALL), seed=st.integers(0, 2**16))
def test_forward_conv_and_conv_transpose_are_strict(kwargs, seed):
    """CONV-DEF-1, CONVT-DEF-1, ERR-SPECIAL-1: padding zeros and zero weights are terms (0·inf is
    NaN), cropped conv_transpose targets are not; checked against literal loops."""
    params = ConvParams(**{k: v for k, v in kwargs.items() if k != "bias_shape"})
    arrays = _arrays(seed, params, 0.08, "xw")
    x, w = arrays["x"], arrays["w"]
    sources = _padded_source(params)
    y = np.zeros(params.output_shape)
    with np.errstate(invalid="ignore"):
        for n, o, p, c_in, c, q, j in _conv_terms(params):
            src = tuple(s[ji] for s, ji in zip(sources, j))
            y[(n, o, *p)] += w[(o, c, *q)] * (0.0 if min(src) < 0 else x[(n, c_in, *src)])
        _assert_same(R.conv(x, w, None, params), y)
    # conv_transpose is conv_backward's dx (zeros padding, output_padding restoring n): strict too.
    if params.padding_mode == "zeros":
        t_params = ConvTransposeParams(
            input_shape=params.output_shape, weight_shape=params.weight_shape, stride=params.stride,
            padding=params.pads, dilation=params.dilation, groups=params.groups,
            output_padding=tuple((n + b + a - d * (k - 1) - 1) % s for n, (b, a), d, k, s in zip(
                params.input_shape[2:], params.pads, params.dilation, params.kernel_size, params.stride)))
        dy = arrays["dy"]
        with np.errstate(invalid="ignore"):
            dx, _ = loop_conv_backward(x, w, dy, params, zero_extended=False)
            _assert_same(R.conv_transpose(dy, w, None, t_params), dx)


def test_the_fast_path_is_unchanged_for_finite_inputs():
    """Finite operands skip the indicator contractions: the result is the plain contraction."""
    params = ConvTransposeParams(input_shape=(2, 2, 5), weight_shape=(2, 3, 3), stride=2, padding=1)
    rng = np.random.default_rng(0)
    x, w, dy = rng.normal(size=(2, 2, 5)), rng.normal(size=(2, 3, 3)), rng.normal(size=params.output_shape)
    masks = R.zero_extension_nan("conv_transpose_backward", {"x": x, "w": w, "dy": dy}, params)
    assert masks == {"dx": None, "dw": None, "db": None}
    dx, dw, _ = R.conv_transpose_backward(x, w, dy, params)
    assert np.isfinite(dx).all() and np.isfinite(dw).all()


# -- the engine: both outcomes, and nothing else ------------------------------------------------------


def test_compare_accepts_nan_only_where_the_zero_extension_reaches():  # ERR-SPECIAL-1
    ref = np.array([1.0, np.inf, np.nan, 2.0])
    nan_ok = np.array([True, True, True, False])
    mag = np.array([1.0, np.inf, np.nan, 2.0])
    strict = np.array([1.0, np.inf, np.nan, 2.0], np.float32)
    assert compare("dw", strict, ref, mag, k=2, dtype="float32", nan_ok=nan_ok).passed
    zero_extended = np.array([np.nan, np.nan, np.nan, 2.0], np.float32)
    assert compare("dw", zero_extended, ref, mag, k=2, dtype="float32", nan_ok=nan_ok).passed
    invented = np.array([1.0, np.inf, np.nan, np.nan], np.float32)  # NaN where no zero extension reaches
    failed = compare("dw", invented, ref, mag, k=2, dtype="float32", nan_ok=nan_ok)
    assert not failed.passed and failed.clause == "ERR-BOUND-1" and failed.worst.index == (3,)
    swallowed = np.array([1.0, np.inf, 0.0, 2.0], np.float32)  # the strict value is NaN: NaN stays mandatory
    failed = compare("dw", swallowed, ref, mag, k=2, dtype="float32", nan_ok=nan_ok)
    assert not failed.passed and failed.clause == "ERR-SPECIAL-1"
    wrong_inf = np.array([1.0, -np.inf, np.nan, 2.0], np.float32)
    assert compare("dw", wrong_inf, ref, mag, k=2, dtype="float32", nan_ok=nan_ok).clause == "ERR-SPECIAL-1"


def _reference_backend(name: str, op: str, transform: Any = None) -> FunctionBackend:
    """A backend computing ``op`` by the reference in float64, then ``transform(outputs, arrays)``."""

    def run(x, w, dy, params):
        outputs = list(R.evaluate(op, {"x": x, "w": w, "dy": dy}, params).values())
        if transform is not None:
            outputs = transform(outputs, x, w, dy, params)
        return tuple(None if a is None else np.asarray(a).astype(x.dtype) for a in outputs)

    return FunctionBackend(name, **{op: run}, dtypes={"float32", "float64"})


def _zero_extended(outputs, x, w, dy, params):
    """The strict gradients with NaN wherever the zero extension may put it."""
    masks = R.zero_extension_nan(params_op(params), {"x": x, "w": w, "dy": dy}, params)
    return [a if m is None else np.where(m, np.nan, a) for a, m in zip(outputs, masks.values())]


def params_op(params: Any) -> str:
    return "conv_backward" if isinstance(params, ConvParams) else "conv_transpose_backward"


def _special_run(backend: Any, op: str) -> Any:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return run_conformance(backend, ops=[op], checks=["special"], max_examples=20, seed=0)


@pytest.mark.parametrize("op", ["conv_backward", "conv_transpose_backward"])
def test_strict_and_zero_extended_gradients_both_conform(op):  # CONV-GRAD-1, CONVT-GRAD-1
    for transform in (None, _zero_extended):
        results = _special_run(_reference_backend(f"{op}-{transform}", op, transform), op)
        assert results.exit_code == 0, results.summary()


@pytest.mark.parametrize("op", ["conv_backward", "conv_transpose_backward"])
def test_an_oracle_may_give_either_outcome_too(op):  # CONV-GRAD-1, CONVT-GRAD-1
    """--oracle: a zero-extended oracle's NaN stands for the strict value, so a strict backend
    passes against it, and the other way round."""
    strict, extended = _reference_backend("strict", op), _reference_backend("extended", op, _zero_extended)
    case = Case.parse(ORACLE_CASES[op])
    masks = R.zero_extension_nan(op, case.arrays(), case.params_object)
    assert masks["dw"].any()  # the two outcomes differ on this case
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        for backend, oracle in ((strict, extended), (extended, strict)):
            results = run_conformance(backend, cases=[case], checks=["oracle"], oracle=oracle)
            assert results.exit_code == 0 and results.backends[0].counts()["passed"] == 1, results.summary()


ORACLE_CASES = {
    "conv_backward": "conv_backward x=2,2,5,7 w=3,2,2,2 s=2,3 p=0:0,1:0 d=1,1 g=1 dtype=float32 data=nan seed=0",
    "conv_transpose_backward":
        "conv_transpose_backward x=2,2,4 w=2,3,3 s=2 p=2:1 outpad=1 d=1 g=1 dtype=float32 data=inf seed=0",
}


def _drops_nan(outputs, x, w, dy, params):
    """nan_to_num on the gradients: a NaN that a real term carries is lost."""
    return [None if a is None else np.nan_to_num(a, nan=0.0) for a in outputs]


def _invents_nan(outputs, x, w, dy, params):
    """dx poisoned wherever x is not finite (a fused x·0): x is a factor of no dx term."""
    dx, *rest = outputs
    return [np.where(np.isfinite(x), dx, np.nan), *rest]


@pytest.mark.parametrize("op", ["conv_backward", "conv_transpose_backward"])
@pytest.mark.parametrize("transform", [_drops_nan, _invents_nan], ids=["drops-nan", "invents-nan"])
def test_a_gradient_that_drops_or_invents_nan_still_fails(op, transform):  # ERR-SPECIAL-1
    results = _special_run(_reference_backend(f"{op}-{transform.__name__}", op, transform), op)
    assert results.exit_code == 1
    assert {r.clause for r in results.failures()} <= {"ERR-SPECIAL-1", "ERR-BOUND-1"}


TORCH_CASES = [  # issue 10: both of PyTorch's outcomes, each a false alarm under a one-sided rule
    "conv_transpose_backward x=2,2,2 w=2,1,2 s=1 p=1:1 outpad=0 d=1 g=1 dtype=float32 data=nan seed=0",
    "conv_transpose_backward x=2,2,2 w=2,1,2 s=1 p=1:1 outpad=0 d=1 g=1 dtype=float16 data=inf seed=0",
    "conv_backward x=1,1,2,3 w=1,1,1,2 s=1,2 p=0:0,0:0 d=1,1 g=1 dtype=bfloat16 data=nan seed=0",
]


@pytest.mark.parametrize("backend", ["torch", "naive", "im2col", "scipy"])
def test_builtin_backends_conform_on_special_gradient_cases(backend):  # CONV-GRAD-1, CONVT-GRAD-1
    if backend == "torch":
        pytest.importorskip("torch")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        cases = [Case.parse(c) for c in TORCH_CASES]
        results = run_conformance(backend, cases=cases, checks=["special"])
        assert results.exit_code == 0, results.summary()
        for op in ("conv_backward", "conv_transpose_backward"):
            results = run_conformance(backend, ops=[op], checks=["special"], max_examples=20, seed=1)
            assert results.exit_code == 0, results.summary()


# -- zero weights are terms (ERR-SPECIAL-1) ----------------------------------------------------------


def test_zero_weight_recipes_put_zero_taps_and_channels_under_special_x():
    case = Case.parse("conv x=1,2,6 w=3,2,3 s=1 p=1:1 d=1 g=1 dtype=float32 data=inf_zero_w seed=0")
    arrays = case.arrays()
    w = arrays["w"]
    assert np.isinf(arrays["x"]).any() and np.isfinite(w).all()
    assert (w == 0).all(axis=(1, 2)).any() and (w == 0).all(axis=(0, 2)).any()  # a zero output, input channel
    assert set(ZERO_WEIGHT_RECIPES) <= set(SPECIAL_RECIPES)
    y = R.conv(arrays["x"], w, None, case.params_object)
    zero_out = int(np.flatnonzero((w == 0).all(axis=(1, 2)))[0])
    assert np.isnan(y[0, zero_out]).any()  # 0·inf terms: NaN, not 0


def test_pool_special_cases_do_not_draw_the_zero_weight_recipes():
    drawn = set()

    @settings(max_examples=30, deadline=None)
    @given(special_cases("avg_pool", ranks=(1,)))
    def collect(case):
        drawn.add(case.data)

    collect()
    assert drawn and not drawn & set(ZERO_WEIGHT_RECIPES)


def test_a_sparse_conv_skipping_zero_weights_is_caught():  # ERR-SPECIAL-1
    import mutants

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        case = Case.parse("conv x=2,3,5,5 w=4,3,3,3 s=2,1 p=1:1,0:1 d=1,1 g=1 dtype=float32 data=nan_zero_w seed=0")
        caught = run_conformance(mutants.SparseSkipsZeroWeights(), cases=[case], checks=["special"])
        control = run_conformance(mutants.TapConvControl(), cases=[case], checks=["special"])
    assert {r.clause for r in caught.failures()} == {"ERR-SPECIAL-1"}
    assert control.exit_code == 0


# -- a wrong output shape cites the clause that decides it -------------------------------------------


@pytest.mark.parametrize("op, name, params, shape, clause", [
    ("max_pool", "y", MaxPoolParams(input_shape=(1, 1, 5), kernel_size=2, ceil_mode=True), (1, 1, 2), "POOL-CEIL-1"),
    ("max_pool", "indices", MaxPoolParams(input_shape=(1, 1, 5), kernel_size=2), (1, 1, 3), "POOL-SHAPE-1"),
    ("avg_pool", "y", AvgPoolParams(input_shape=(1, 2, 5), kernel_size=2, count_include_pad=True), (1, 1, 2),
     "POOL-PARAM-1"),
    ("conv", "y", ConvParams(input_shape=(1, 1, 5), weight_shape=(1, 1, 2)), (1, 1, 5), "CONV-SHAPE-1"),
    ("conv", "y", ConvParams(input_shape=(1, 1, 5), weight_shape=(1, 1, 2), padding="same_lower"), (1, 1, 4),
     "PAD-5"),
    ("conv", "y", ConvParams(input_shape=(1, 1, 5), weight_shape=(2, 1, 2)), (1, 1, 4), "LAYOUT-2"),
    ("conv_transpose", "y", ConvTransposeParams(input_shape=(1, 1, 5), weight_shape=(1, 1, 2), stride=2),
     (1, 1, 9), "CONVT-SHAPE-1"),
    ("conv_backward", "dx", ConvParams(input_shape=(1, 1, 6), weight_shape=(1, 1, 2), stride=2), (1, 1, 5),
     "GRAD-SHAPE-1"),
    ("conv", "y", ConvParams(input_shape=(2, 1, 5), weight_shape=(1, 1, 2)), (1, 1, 4), "HYGIENE-2"),
])
def test_shape_clause(op, name, params, shape, clause):
    assert shape_clause(op, name, params, shape) == clause


@pytest.mark.parametrize("mutant, descriptor", [
    ("AvgPoolCeilModeAsFloor", "avg_pool x=1,1,5 k=2 s=2 p=0:0 d=1 ceil cip=1 dtype=float32 data=random seed=0"),
    ("MaxPoolCeilKeepsDroppedWindow", "max_pool x=1,1,5 k=1 s=3 p=0:0 d=1 ceil dtype=float32 data=random seed=0"),
])
def test_ignored_ceil_mode_is_attributed_to_pool_ceil_1(mutant, descriptor):
    """POOL-CEIL-1, not HYGIENE-2 (which is left to dtypes): the clause the matrix shows failing."""
    import mutants

    results = run_conformance(getattr(mutants, mutant)(), cases=[Case.parse(descriptor)], checks=["differential"])
    assert {r.clause for r in results.failures()} == {"POOL-CEIL-1"}
