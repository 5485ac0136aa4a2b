"""The reference's max and average pooling, without PyTorch: hand-computed windows (ceil-mode
overhang, ties, NaN, −inf against padding), adjoints, finite differences, a brute-force window scan,
rank 4 against rank 3, magnitudes and hygiene."""

from __future__ import annotations

import importlib
import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convspec.reference as R
from convspec.spec import AvgPoolParams, InvalidParams, MaxPoolParams, to_dtype

pool_module = importlib.import_module("convspec.reference.pool")


def row(*values):
    return np.array([[values]], dtype=np.float64)


# ------------------------------------------------------------------------------------------
# hand-computed windows


def test_avg_pool_ceil_mode_overhang_counts_padding_but_not_the_overhang():  # AVGPOOL-DEF-1, POOL-CEIL-1
    x = row(1, 2, 3, 4, 5, 6)
    kwargs = dict(input_shape=x.shape, kernel_size=3, stride=2, padding=1, ceil_mode=True)
    # windows: {-1,0,1} {1,2,3} {3,4,5} {5,6,7}; 6 is right padding, 7 overhangs it
    assert AvgPoolParams(**kwargs, count_include_pad=True).output_shape == (1, 1, 4)
    np.testing.assert_array_equal(R.avg_pool(x, AvgPoolParams(**kwargs, count_include_pad=True)), row(1, 3, 5, 3))
    np.testing.assert_array_equal(R.avg_pool(x, AvgPoolParams(**kwargs, count_include_pad=False)), row(1.5, 3, 5, 6))
    np.testing.assert_array_equal(R.avg_pool(x, AvgPoolParams(**kwargs, count_include_pad=False, divisor_override=4)),
                                  row(0.75, 2.25, 3.75, 1.5))


def test_avg_pool_2d_divisor_is_the_product_of_per_dim_counts():  # AVGPOOL-DEF-1
    x = np.ones((1, 1, 3, 3))
    y = R.avg_pool(x, AvgPoolParams(input_shape=x.shape, kernel_size=2, stride=2, padding=1, count_include_pad=False))
    np.testing.assert_array_equal(y, np.ones((1, 1, 2, 2)))
    y = R.avg_pool(x, AvgPoolParams(input_shape=x.shape, kernel_size=2, stride=2, padding=1, count_include_pad=True))
    # every window has 4 taps inside [-1, 4); they hold 1, 2, 2 and 4 real elements
    np.testing.assert_array_equal(y, [[[[0.25, 0.5], [0.5, 1.0]]]])


def test_avg_pool_dilation_by_hand():  # AVGPOOL-DEF-1, POOL-PARAM-1: dilation as an extension
    x = row(1, 2, 3, 4, 5)
    y = R.avg_pool(x, AvgPoolParams(input_shape=x.shape, kernel_size=2, stride=1, dilation=3, count_include_pad=False))
    np.testing.assert_array_equal(y, row(2.5, 3.5))


def test_avg_pool_nan_and_inf_propagate():  # AVGPOOL-DEF-1
    x = row(1, np.nan, 3, np.inf, 5, 6)
    y = R.avg_pool(x, AvgPoolParams(input_shape=x.shape, kernel_size=2, count_include_pad=False))
    np.testing.assert_array_equal(y, row(np.nan, np.inf, 5.5))


def test_max_pool_ties_pick_the_first_in_row_major_window_order():  # MAXPOOL-TIE-1, MAXPOOL-INDEX-1
    x = np.array([[[[0.0, 7, 7], [7, 1, 2], [7, 7, 0]]]])
    y, indices = R.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=2, stride=1))
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 7.0))
    np.testing.assert_array_equal(indices, [[[[1, 1], [3, 7]]]])  # flat into the 3x3 plane


def test_max_pool_nan_window_gives_nan_and_a_nan_index():  # MAXPOOL-NAN-1
    x = row(5, np.nan, 9, np.nan, np.nan, 1)
    y, indices = R.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=3, stride=1))
    assert np.isnan(y).all()
    np.testing.assert_array_equal(indices, [[[1, 1, 3, 3]]])  # the first NaN of each window


def test_max_pool_padding_never_wins_even_against_minus_infinity():  # MAXPOOL-DEF-1
    x = row(-np.inf, -np.inf, -5, -np.inf)
    y, indices = R.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=3, stride=2, padding=1, ceil_mode=True))
    # windows {-1,0,1} {1,2,3} {3,4,5}: 4 is padding, 5 overhangs
    np.testing.assert_array_equal(y, row(-np.inf, -5, -np.inf))
    np.testing.assert_array_equal(indices, [[[0, 2, 3]]])
    y, indices = R.max_pool(row(-3, -4), MaxPoolParams(input_shape=(1, 1, 2), kernel_size=2, padding=1))
    np.testing.assert_array_equal(y, row(-3, -4))
    np.testing.assert_array_equal(indices, [[[0, 1]]])


def test_max_pool_dilation_and_3d_index_by_hand():  # MAXPOOL-INDEX-1
    x = np.zeros((1, 1, 2, 3, 4))
    x[0, 0, 1, 2, 3] = 1.0
    y, indices = R.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=2, stride=1, dilation=(1, 2, 3)))
    assert y.shape == (1, 1, 1, 1, 1) and y.item() == 1.0
    assert indices.item() == 1 * 12 + 2 * 4 + 3


def test_max_pool_backward_routes_and_accumulates():  # MAXPOOL-GRAD-1
    x = row(1, 9, 2, 2, 0)
    params = MaxPoolParams(input_shape=x.shape, kernel_size=3, stride=1, padding=1)
    _, indices = R.max_pool(x, params)
    np.testing.assert_array_equal(indices, [[[1, 1, 1, 2, 3]]])  # {2, 2, 0}: the first 2
    dx = R.max_pool_backward(x, row(1, 10, 100, 1000, 10000), params)
    np.testing.assert_array_equal(dx, row(0, 111, 1000, 10000, 0))


def test_avg_pool_backward_by_hand():  # AVGPOOL-GRAD-1
    x = np.zeros((1, 1, 6))
    params = AvgPoolParams(input_shape=x.shape, kernel_size=3, stride=2, padding=1, ceil_mode=True,
                           count_include_pad=False)
    dx = R.avg_pool_backward(x, row(2, 3, 6, 4), params)  # divisors 2 3 3 1
    np.testing.assert_array_equal(dx, row(1, 2, 1, 3, 2, 6))


# ------------------------------------------------------------------------------------------
# random configurations, valid by construction


@st.composite
def pool_problems(draw, *, max_rank=3, max_taps=27):
    """(kwargs of the pool params, rng). n ≥ d and pads ≤ d·(k−1) keep every window non-empty
    (POOL-WINDOW-1) in floor and ceil mode alike; n + pads ≥ d·(k−1) + 1 gives o ≥ 1."""
    rank = draw(st.integers(1, max_rank), label="rank")
    kernel, stride, dilation, pads, size = [], [], [], [], []
    budget = max_taps
    for _ in range(rank):
        k = draw(st.integers(1, max(1, min(4, budget))), label="k")
        budget //= k
        s, d = draw(st.integers(1, 3), label="s"), draw(st.integers(1, 2), label="d")
        before = draw(st.integers(0, d * (k - 1)), label="p_b")
        after = draw(st.integers(0, d * (k - 1)), label="p_a")
        n_min = max(d, d * (k - 1) + 1 - before - after, 1)
        kernel.append(k)
        stride.append(s)
        dilation.append(d)
        pads.append((before, after))
        size.append(n_min + draw(st.integers(0, 4), label="n extra"))
    shape = (draw(st.integers(1, 2), label="N"), draw(st.integers(1, 3), label="C"), *size)
    kwargs = dict(input_shape=shape, kernel_size=tuple(kernel), stride=tuple(stride), padding=tuple(pads),
                  dilation=tuple(dilation), ceil_mode=draw(st.booleans(), label="ceil_mode"))
    return kwargs, np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))


avg_extras = st.fixed_dictionaries(
    {"count_include_pad": st.booleans(), "divisor_override": st.one_of(st.none(), st.integers(1, 9))}
)


def windows(params):
    """Brute force: for each window p (row-major), the flat input indices of its taps inside the input,
    in row-major tap order, and its count_include_pad tap count per dim product."""
    spatial = params.input_shape[2:]
    for p in itertools.product(*(range(o) for o in params.output_shape[2:])):
        taps = []
        for q in itertools.product(*(range(k) for k in params.kernel_size)):
            u = [p_i * s - pair[0] + q_i * d
                 for p_i, q_i, s, d, pair in zip(p, q, params.stride, params.dilation, params.pads)]
            if all(0 <= u_i < n for u_i, n in zip(u, spatial)):
                taps.append(int(np.ravel_multi_index(u, spatial)))
        padded = 1
        for p_i, k, s, d, pair, n in zip(p, params.kernel_size, params.stride, params.dilation, params.pads, spatial):
            padded *= sum(-pair[0] <= p_i * s - pair[0] + j * d < n + pair[1] for j in range(k))
        yield p, taps, padded


def integer_data(rng, shape, *, nan=False, inf=False):
    """Small integers (many ties), optionally with NaNs and ±inf sprinkled in."""
    x = rng.integers(-3, 4, size=shape).astype(np.float64)
    if nan:
        x[rng.random(shape) < 0.1] = np.nan
    if inf:
        x[rng.random(shape) < 0.1] = -np.inf
        x[rng.random(shape) < 0.05] = np.inf
    return x


@settings(max_examples=60, deadline=None)
@given(pool_problems(), st.booleans(), st.booleans())
def test_max_pool_matches_a_brute_force_window_scan(problem, nan, inf):
    # MAXPOOL-DEF-1, MAXPOOL-NAN-1, MAXPOOL-TIE-1, MAXPOOL-INDEX-1, POOL-CEIL-1, ERR-EXACT-1
    kwargs, rng = problem
    params = MaxPoolParams(**kwargs)
    x = integer_data(rng, params.input_shape, nan=nan, inf=inf)
    y, indices = R.max_pool(x, params)
    assert y.dtype == np.float64 and indices.dtype == np.int64 and y.shape == params.output_shape
    planes = x.reshape(*x.shape[:2], -1)
    for p, taps, _ in windows(params):
        values = planes[:, :, taps]  # (N, C, taps)
        has_nan = np.isnan(values).any(axis=-1)
        first_nan = np.array(taps)[np.argmax(np.isnan(values), axis=-1)]
        numbers = np.where(np.isnan(values), -np.inf, values)
        largest = numbers.max(axis=-1)
        first_max = np.array(taps)[np.argmax(numbers == largest[..., None], axis=-1)]
        np.testing.assert_array_equal(y[(..., *p)], np.where(has_nan, np.nan, largest))
        np.testing.assert_array_equal(indices[(..., *p)], np.where(has_nan, first_nan, first_max))


@settings(max_examples=60, deadline=None)
@given(pool_problems(), avg_extras, st.booleans())
def test_avg_pool_matches_a_brute_force_window_scan(problem, extras, nan):  # AVGPOOL-DEF-1, POOL-CEIL-1
    kwargs, rng = problem
    params = AvgPoolParams(**kwargs, **extras)
    x = integer_data(rng, params.input_shape, nan=nan)
    y = R.avg_pool(x, params)
    assert y.dtype == np.float64 and y.shape == params.output_shape
    planes = x.reshape(*x.shape[:2], -1)
    for p, taps, padded in windows(params):
        divisor = params.divisor_override or (padded if params.count_include_pad else len(taps))
        # integer data: the sums are exact, so the result is one correctly rounded division
        np.testing.assert_array_equal(y[(..., *p)], planes[:, :, taps].sum(axis=-1) / divisor)


@settings(max_examples=40, deadline=None)
@given(pool_problems(max_rank=4, max_taps=24), avg_extras)
def test_pool_backwards_are_adjoints(problem, extras):  # AVGPOOL-GRAD-1, MAXPOOL-GRAD-1
    """⟨avg_pool(x), g⟩ = ⟨x, avg_pool_backward(g)⟩; with distinct values max pool is y = x[index],
    so ⟨max_pool(x), g⟩ = ⟨x, max_pool_backward(x, g)⟩ too."""
    kwargs, rng = problem
    avg = AvgPoolParams(**kwargs, **extras)
    x, g = rng.standard_normal(avg.input_shape), rng.standard_normal(avg.output_shape)
    lhs, rhs = np.vdot(R.avg_pool(x, avg), g), np.vdot(x, R.avg_pool_backward(x, g, avg))
    mag = R.magnitude("avg_pool", {"x": x}, avg)["y"]
    assert abs(lhs - rhs) <= 1e-12 * float(np.vdot(mag, np.abs(g))) + 1e-300
    maxp = MaxPoolParams(**kwargs)
    x = rng.permutation(x.size).reshape(x.shape).astype(np.float64)  # distinct values
    y, _ = R.max_pool(x, maxp)
    dx = R.max_pool_backward(x, g, maxp)
    assert abs(np.vdot(y, g) - np.vdot(x, dx)) <= 1e-12 * float(np.vdot(np.abs(y), np.abs(g))) + 1e-300


@settings(max_examples=30, deadline=None)
@given(pool_problems(max_taps=12), avg_extras)
def test_pool_gradients_by_finite_differences(problem, extras):  # AVGPOOL-GRAD-1, MAXPOOL-GRAD-1
    kwargs, rng = problem
    for params, forward, backward in (
        (AvgPoolParams(**kwargs, **extras), R.avg_pool, R.avg_pool_backward),
        (MaxPoolParams(**kwargs), lambda a, p: R.max_pool(a, p)[0], R.max_pool_backward),
    ):
        # values spaced by ≥ 1, so a step of 1e-3 never changes which element a window selects
        x = rng.permutation(int(np.prod(params.input_shape))).reshape(params.input_shape).astype(np.float64)
        dy = rng.standard_normal(params.output_shape)
        dx = backward(x, dy, params)
        for _ in range(2):
            v, h = rng.standard_normal(x.shape), 1e-3
            numeric = (np.vdot(forward(x + h * v, params), dy) - np.vdot(forward(x - h * v, params), dy)) / (2 * h)
            allowance = 1e-8 * (1 + float(np.vdot(np.abs(dx), np.abs(v))) + x.size * float(np.abs(dy).sum()))
            assert abs(numeric - np.vdot(dx, v)) <= allowance


@settings(max_examples=25, deadline=None)
@given(pool_problems(max_rank=3, max_taps=12), avg_extras, st.integers(1, 3), st.integers(1, 3),
       st.integers(1, 2), st.integers(1, 3))
def test_rank_4_pools_are_rank_3_pools_combined_over_the_first_axis(problem, extras, k1, s1, d1, o1):
    # MAXPOOL-DEF-1, MAXPOOL-TIE-1, MAXPOOL-INDEX-1, AVGPOOL-DEF-1
    """The first axis unpadded and exactly covered (no ceil-mode overhang there):
    y4[:, :, p1] = max / mean over q1 of the rank-3 pool of x[:, :, p1·s1 + q1·d1]."""
    kwargs, rng = problem
    lift = 3 - len(kwargs["kernel_size"])
    kwargs = {**kwargs, "input_shape": kwargs["input_shape"] + (1,) * lift,
              "kernel_size": kwargs["kernel_size"] + (1,) * lift, "stride": kwargs["stride"] + (1,) * lift,
              "dilation": kwargs["dilation"] + (1,) * lift, "padding": kwargs["padding"] + ((0, 0),) * lift}
    n1 = (o1 - 1) * s1 + d1 * (k1 - 1) + 1
    batch, channels, *size3 = kwargs["input_shape"]
    kwargs4 = {**kwargs, "input_shape": (batch, channels, n1, *size3), "kernel_size": (k1, *kwargs["kernel_size"]),
               "stride": (s1, *kwargs["stride"]), "dilation": (d1, *kwargs["dilation"]),
               "padding": ((0, 0), *kwargs["padding"])}
    x = integer_data(rng, kwargs4["input_shape"], nan=True)
    y4, indices4 = R.max_pool(x, MaxPoolParams(**kwargs4))
    avg4 = R.avg_pool(x, AvgPoolParams(**kwargs4, **extras))
    plane = int(np.prod(size3))
    mag4 = R.magnitude("avg_pool", {"x": x}, AvgPoolParams(**kwargs4, **extras))["y"]
    taps3 = int(np.prod(kwargs["kernel_size"]))
    for p1 in range(o1):
        best = index = None
        total = 0.0
        for q1 in range(k1):
            u1 = p1 * s1 + q1 * d1
            y3, indices3 = R.max_pool(x[:, :, u1], MaxPoolParams(**kwargs))
            total = total + R.avg_pool(x[:, :, u1], AvgPoolParams(**kwargs, **extras))
            if best is None:
                best, index = y3, indices3 + u1 * plane
                continue
            take = (y3 > best) | (np.isnan(y3) & ~np.isnan(best))
            best, index = np.where(take, y3, best), np.where(take, indices3 + u1 * plane, index)
        np.testing.assert_array_equal(y4[:, :, p1], best)
        np.testing.assert_array_equal(indices4[:, :, p1], index)
        # the rank-3 means each divide by their own divisor: with an override both divide by it
        mean = total if extras["divisor_override"] else total / k1
        np.testing.assert_array_equal(np.isnan(avg4[:, :, p1]), np.isnan(mean))
        with np.errstate(invalid="ignore"):
            assert np.all(np.abs(avg4[:, :, p1] - mean)[~np.isnan(mean)] <= 8 * k1 * taps3 * 2.0**-53 *
                          mag4[:, :, p1][~np.isnan(mean)])


# ------------------------------------------------------------------------------------------
# magnitude, dtypes and hygiene


@settings(max_examples=30, deadline=None)
@given(pool_problems(max_taps=12), avg_extras)
def test_magnitudes(problem, extras):  # ERR-BOUND-1, ERR-EXACT-1
    kwargs, rng = problem
    avg, maxp = AvgPoolParams(**kwargs, **extras), MaxPoolParams(**kwargs)
    x, dy = rng.standard_normal(avg.input_shape), rng.standard_normal(avg.output_shape)
    mag = R.magnitude("avg_pool", {"x": x}, avg)
    np.testing.assert_array_equal(mag["y"], R.avg_pool(np.abs(x), avg))
    assert np.all(mag["y"] >= np.abs(R.avg_pool(x, avg)))
    mag = R.magnitude("avg_pool_backward", {"x": x, "dy": dy}, avg)
    np.testing.assert_array_equal(mag["dx"], R.avg_pool_backward(x, np.abs(dy), avg))
    assert np.all(mag["dx"] >= np.abs(R.avg_pool_backward(x, dy, avg)))
    y, indices = R.max_pool(x, maxp)
    mag = R.magnitude("max_pool", {"x": x}, maxp)
    np.testing.assert_array_equal(mag["y"], np.abs(y))
    np.testing.assert_array_equal(mag["indices"], np.zeros(indices.shape))  # indices are exact
    mag = R.magnitude("max_pool_backward", {"x": x, "dy": dy}, maxp)
    np.testing.assert_array_equal(mag["dx"], R.max_pool_backward(x, np.abs(dy), maxp))
    assert np.all(mag["dx"] >= np.abs(R.max_pool_backward(x, dy, maxp)))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_any_spec_dtype_in_float64_out_and_inputs_untouched(dtype):  # DTYPE-1
    rng = np.random.default_rng(3)
    dt = to_dtype(dtype)
    kwargs = dict(input_shape=(2, 3, 7, 6), kernel_size=(3, 2), stride=(2, 1), padding=((1, 1), (0, 1)),
                  ceil_mode=True)
    avg, maxp = AvgPoolParams(**kwargs, count_include_pad=True), MaxPoolParams(**kwargs)
    x, dy = rng.standard_normal(avg.input_shape).astype(dt), rng.standard_normal(avg.output_shape).astype(dt)
    copies = (x.copy(), dy.copy())
    outputs = [R.avg_pool(x, avg), R.avg_pool_backward(x, dy, avg), R.max_pool(x, maxp)[0],
               R.max_pool_backward(x, dy, maxp)]
    assert all(out.dtype == np.float64 for out in outputs)
    assert R.max_pool(x, maxp)[1].dtype == np.int64
    for a, copy in zip((x, dy), copies):
        np.testing.assert_array_equal(a, copy)
        assert a.dtype == dt
    np.testing.assert_array_equal(outputs[0], R.avg_pool(x.astype(np.float64), avg))
    for op, params, arrays in (("avg_pool_backward", avg, {"x": x, "dy": dy}), ("max_pool", maxp, {"x": x}),
                               ("max_pool_backward", maxp, {"x": x, "dy": dy})):
        mags = R.magnitude(op, arrays, params)
        assert all(m.dtype == np.float64 for m in mags.values()), op
        wide = {name: a.astype(np.float64) for name, a in arrays.items()}
        for name, m in R.magnitude(op, wide, params).items():
            np.testing.assert_array_equal(mags[name], m)


class _Computed(Exception):
    pass


@pytest.mark.parametrize("op", ["max_pool", "max_pool_backward", "avg_pool", "avg_pool_backward"])
@pytest.mark.parametrize(
    "x_shape, dy_shape, clause",
    [((1, 2, 6), (1, 2, 2), "LAYOUT-1"), ((1, 2, 5), (1, 2, 3), "GRAD-SHAPE-1")],
    ids=["x shape", "dy shape"],
)
def test_array_checks_raise_before_any_computation(monkeypatch, op, x_shape, dy_shape, clause):
    # LAYOUT-1, GRAD-SHAPE-1
    if clause == "GRAD-SHAPE-1" and not op.endswith("backward"):
        x_shape = (2, 2, 5)  # forward ops take no dy: test x instead
        clause = "LAYOUT-1"
    kwargs = dict(input_shape=(1, 2, 5), kernel_size=2)
    params = MaxPoolParams(**kwargs) if op.startswith("max") else AvgPoolParams(**kwargs, count_include_pad=False)

    def computed(*args, **kwargs):
        raise _Computed

    monkeypatch.setattr(pool_module, "pad", computed)
    arrays = {"x": np.zeros(x_shape), "dy": np.zeros(dy_shape)} if op.endswith("backward") else {"x": np.zeros(x_shape)}
    with pytest.raises(InvalidParams, match=rf"\({clause}\)"):
        R.FUNCTIONS[op](*arrays.values(), params)
    with pytest.raises(InvalidParams, match=rf"\({clause}\)"):
        R.magnitude(op, arrays, params)
    with pytest.raises(TypeError, match="MaxPoolParams|AvgPoolParams"):
        R.FUNCTIONS[op](*arrays.values(), ConvParamsLike())


class ConvParamsLike:
    """Not a pool parameter object."""
