"""The reference's convolution and transposed convolution, without PyTorch: hand-computed answers,
the adjoint identities, finite differences, rank 4 against rank 3, magnitudes and hygiene."""

from __future__ import annotations

import doctest
import importlib
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convspec.reference as R
from convspec.reference.window import fold, pad
from convspec.spec import ConvParams, ConvTransposeParams, InvalidParams, to_dtype

U = 2.0**-53
# the module, not the function that the package re-exports under the same name
conv_module = importlib.import_module("convspec.reference.conv")


@pytest.mark.parametrize("name", ["window", "conv", "pool", "__init__"])
def test_docstring_examples_run(name):  # the examples are part of the contract
    module = importlib.import_module("convspec.reference" + ("" if name == "__init__" else f".{name}"))
    result = doctest.testmod(module)
    assert result.failed == 0 and result.attempted > 0


# ------------------------------------------------------------------------------------------
# hand-computed answers


def test_seed_notes_1d_example():  # CONV-DEF-1: cross-correlation, no kernel flip
    x, w = np.array([[[1.0, 2, 3, 4, 5]]]), np.array([[[1.0, 0, -1]]])
    y = R.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    np.testing.assert_array_equal(y, [[[-2.0, -2.0, -2.0]]])


def test_2d_two_channels_in_and_out_with_bias_by_hand():  # CONV-DEF-1, LAYOUT-2, LAYOUT-4
    x = np.array([[[[1.0, 2, 3], [4, 5, 6], [7, 8, 9]], [[1.0, 0, 1], [0, 1, 0], [1, 0, 1]]]])
    w = np.zeros((2, 2, 2, 2))
    w[0, 0] = [[1, 0], [0, 0]]  # y0 += x0[p]
    w[0, 1] = [[0, 0], [0, 1]]  # y0 += x1[p + (1, 1)]
    w[1, 0] = 1.0  # y1 = sum of the x0 window
    b = np.array([10.0, -1.0])
    y = R.conv(x, w, b, ConvParams(input_shape=x.shape, weight_shape=w.shape, bias_shape=b.shape))
    np.testing.assert_array_equal(y, [[[[12.0, 12], [14, 16]], [[11.0, 15], [23, 27]]]])


def test_groups_by_hand():  # CONV-GROUPS-1: group g sees only its own channels
    x = np.array([[[1.0, 2, 3], [10, 20, 30]]])
    w = np.array([[[1.0, 1]], [[1.0, -1]]])  # (C_out=2, C_in/g=1, k=2)
    y = R.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, groups=2))
    np.testing.assert_array_equal(y, [[[3.0, 5], [-10, -10]]])


def test_stride_and_dilation_by_hand():  # CONV-DEF-1, CONV-SHAPE-1
    x, w = np.arange(1.0, 8.0)[None, None], np.array([[[1.0, -1]]])
    params = ConvParams(input_shape=x.shape, weight_shape=w.shape, stride=3, dilation=2)
    assert params.output_shape == (1, 1, 2)  # floor((7 - 3) / 3) + 1
    np.testing.assert_array_equal(R.conv(x, w, None, params), [[[1.0 - 3, 4 - 6]]])


@pytest.mark.parametrize(
    "mode, expected",
    [("zeros", [3, 6, 5]), ("reflect", [5, 6, 7]), ("replicate", [4, 6, 8]), ("circular", [6, 6, 6])],
)
def test_padding_modes_by_hand(mode, expected):  # PAD-MODE-1: x~ = [0|2|1|3|3], 1 2 3, [0|2|3|1]
    x, w = np.array([[[1.0, 2, 3]]]), np.ones((1, 1, 3))
    params = ConvParams(input_shape=x.shape, weight_shape=w.shape, padding=1, padding_mode=mode)
    np.testing.assert_array_equal(R.conv(x, w, None, params), [[expected]])


def test_asymmetric_and_same_lower_padding_by_hand():  # PAD-5: ceil(total/2) before
    x, w = np.array([[[1.0, 2, 3, 4]]]), np.array([[[1.0, 10]]])
    y = R.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding="same_lower"))
    np.testing.assert_array_equal(y, [[[10.0, 21, 32, 43]]])  # x~ = 0 1 2 3 4
    y = R.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding=((0, 1),)))
    np.testing.assert_array_equal(y, [[[21.0, 32, 43, 4]]])  # x~ = 1 2 3 4 0


def test_conv_transpose_by_hand_with_padding_and_output_padding():  # CONVT-DEF-1, CONVT-SHAPE-1
    x, w = np.array([[[1.0, 2]]]), np.array([[[1.0, 10, 100]]])
    full = R.conv_transpose(x, w, None, ConvTransposeParams(input_shape=x.shape, weight_shape=w.shape, stride=2))
    np.testing.assert_array_equal(full, [[[1.0, 10, 102, 20, 200]]])
    cropped = ConvTransposeParams(input_shape=x.shape, weight_shape=w.shape, stride=2, padding=1)
    np.testing.assert_array_equal(R.conv_transpose(x, w, None, cropped), [[[10.0, 102, 20]]])
    longer = ConvTransposeParams(input_shape=x.shape, weight_shape=w.shape, stride=2, padding=((1, 2),),
                                 output_padding=1)
    assert longer.output_shape == (1, 1, 3)
    np.testing.assert_array_equal(R.conv_transpose(x, w, None, longer), [[[10.0, 102, 20]]])
    # output_padding past the last written element gives zeros there, plus the bias
    past = ConvTransposeParams(input_shape=x.shape, weight_shape=w.shape, bias_shape=(1,), stride=3,
                               output_padding=2)
    np.testing.assert_array_equal(R.conv_transpose(x, w, np.array([0.5]), past),
                                  [[[1.5, 10.5, 100.5, 2.5, 20.5, 200.5, 0.5, 0.5]]])


def test_conv_transpose_groups_by_hand():  # CONVT-DEF-1, LAYOUT-3: w is (C_in, C_out/g, *K)
    x = np.array([[[1.0], [2.0]]])
    w = np.array([[[1.0, 2], [3, 4]], [[5.0, 6], [7, 8]]])  # 2 groups, 2 outputs per group
    params = ConvTransposeParams(input_shape=x.shape, weight_shape=w.shape, groups=2)
    np.testing.assert_array_equal(R.conv_transpose(x, w, None, params),
                                  [[[1.0, 2], [3, 4], [10, 12], [14, 16]]])


def test_conv_backward_by_hand():  # CONV-GRAD-1
    x, w = np.array([[[1.0, 2, 3, 4, 5]]]), np.array([[[1.0, 0, -1]]])
    params = ConvParams(input_shape=x.shape, weight_shape=w.shape, bias_shape=(1,), padding=1, padding_mode="replicate")
    dx, dw, db = R.conv_backward(x, w, np.ones((1, 1, 5)), params)
    # x~ = 1 1 2 3 4 5 5: d y / d x~ = [1, 1, 0, 0, 0, -1, -1]; fold adds x~[0] onto x[0], x~[6] onto x[4]
    np.testing.assert_array_equal(dx, [[[2.0, 0, 0, 0, -2]]])
    np.testing.assert_array_equal(dw, [[[1.0 + 1 + 2 + 3 + 4, 15, 2 + 3 + 4 + 5 + 5]]])
    np.testing.assert_array_equal(db, [5.0])


def test_fold_is_the_adjoint_of_pad_for_every_mode():  # PAD-MODE-1
    rng = np.random.default_rng(0)
    a = rng.standard_normal((2, 3, 4, 5))
    pads = ((3, 1), (2, 4))
    for mode in ("zeros", "reflect", "replicate", "circular"):
        g = rng.standard_normal(pad(a, pads, mode).shape)
        lhs, rhs = np.vdot(pad(a, pads, mode), g), np.vdot(a, fold(g, pads, mode))
        assert abs(lhs - rhs) <= 1e-12 * np.vdot(np.abs(pad(a, pads, mode)), np.abs(g)), mode


# ------------------------------------------------------------------------------------------
# random configurations, valid by construction

MODES = ("zeros", "reflect", "replicate", "circular")


@st.composite
def conv_problems(draw, *, max_rank=3, modes=MODES, max_taps=27):
    """(ConvParams, rng): parameters drawn first, sizes derived so every problem is valid."""
    rank = draw(st.integers(1, max_rank), label="rank")
    groups = draw(st.integers(1, 3), label="groups")
    in_per_group = draw(st.integers(1, 3), label="C_in/groups")
    out_per_group = draw(st.integers(1, 3), label="C_out/groups")
    mode = draw(st.sampled_from(modes), label="padding_mode")
    kernel, stride, dilation, pads, size = [], [], [], [], []
    budget = max_taps
    for _ in range(rank):
        k = draw(st.integers(1, max(1, min(4, budget))), label="k")
        budget //= k
        s, d = draw(st.integers(1, 3), label="s"), draw(st.integers(1, 3), label="d")
        before, after = draw(st.integers(0, 3), label="p_b"), draw(st.integers(0, 3), label="p_a")
        # CONV-SHAPE-2 and PAD-MODE-2: n + pads >= d(k-1)+1, reflect pads <= n-1
        n_min = max(1, d * (k - 1) + 1 - before - after, max(before, after) + 1)
        kernel.append(k)
        stride.append(s)
        dilation.append(d)
        pads.append((before, after))
        size.append(n_min + draw(st.integers(0, 3), label="n extra"))
    batch = draw(st.integers(0, 2), label="N")
    bias = draw(st.booleans(), label="bias")
    params = ConvParams(
        input_shape=(batch, groups * in_per_group, *size), weight_shape=(groups * out_per_group, in_per_group, *kernel),
        bias_shape=(groups * out_per_group,) if bias else None, stride=tuple(stride), padding=tuple(pads),
        dilation=tuple(dilation), groups=groups, padding_mode=mode,
    )
    return params, np.random.default_rng(draw(st.integers(0, 2**32 - 1), label="seed"))


def transpose_of(params: ConvParams) -> ConvTransposeParams:
    """The conv_transpose that is the adjoint of ``params`` and restores n (CONVT-DEF-1)."""
    return ConvTransposeParams(
        input_shape=params.output_shape, weight_shape=params.weight_shape,
        bias_shape=None if params.bias_shape is None else (params.input_shape[1],), stride=params.stride,
        padding=params.pads, output_padding=params.output_padding_for_input(), dilation=params.dilation,
        groups=params.groups,
    )


def inner_bound(*pairs: tuple[np.ndarray, np.ndarray]) -> float:
    """Allowance for ⟨a, b⟩ identities: 1e-10·Σ⟨|a|, |b|⟩ over the pairs (a magnitude and its
    partner) — far above float64 rounding on these small problems, far below any indexing error."""
    return 1e-10 * sum(float(np.vdot(np.abs(a), np.abs(b))) for a, b in pairs) + 1e-300


def randn(rng, shape):
    return rng.standard_normal(shape)


def _conv_kwargs(params: ConvParams, **changes) -> dict:
    kwargs = dict(input_shape=params.input_shape, weight_shape=params.weight_shape, bias_shape=params.bias_shape,
                  stride=params.stride, padding=params.pads, dilation=params.dilation, groups=params.groups,
                  padding_mode=params.padding_mode)
    return {**kwargs, **changes}


def _transpose_kwargs(params: ConvTransposeParams, **changes) -> dict:
    kwargs = dict(input_shape=params.input_shape, weight_shape=params.weight_shape, bias_shape=params.bias_shape,
                  stride=params.stride, padding=params.pads, output_padding=params.output_padding,
                  dilation=params.dilation, groups=params.groups)
    return {**kwargs, **changes}


@settings(max_examples=60, deadline=None)
@given(conv_problems(max_rank=4, max_taps=24, modes=("zeros",)))
def test_conv_transpose_is_the_adjoint_of_conv(problem):  # CONVT-DEF-1, CONVT-SHAPE-1, CONVT-PARAM-1
    """⟨conv(x), y⟩ = ⟨x, conv_transpose(y)⟩, output_padding restoring n."""
    params, rng = problem
    params = ConvParams(**_conv_kwargs(params, bias_shape=None))
    t_params = transpose_of(params)
    assert t_params.output_shape == params.input_shape
    x, w, y = randn(rng, params.input_shape), randn(rng, params.weight_shape), randn(rng, params.output_shape)
    lhs = np.vdot(R.conv(x, w, None, params), y)
    rhs = np.vdot(x, R.conv_transpose(y, w, None, t_params))
    mag_conv = R.magnitude("conv", {"x": x, "w": w}, params)["y"]
    mag_transpose = R.magnitude("conv_transpose", {"x": y, "w": w}, t_params)["y"]
    assert abs(lhs - rhs) <= inner_bound((mag_conv, y), (x, mag_transpose))


@settings(max_examples=60, deadline=None)
@given(conv_problems(max_rank=4, max_taps=24))
def test_conv_backward_is_the_adjoint_of_conv_in_x_w_and_b(problem):  # CONV-GRAD-1, PAD-MODE-1
    """⟨conv(x, w, b), dy⟩ = ⟨x, dx⟩ = ⟨w, dw⟩ (linear in each) and the bias part is ⟨b, db⟩,
    for every padding mode: the fold of padded copies included."""
    params, rng = problem
    x, w, dy = randn(rng, params.input_shape), randn(rng, params.weight_shape), randn(rng, params.output_shape)
    b = None if params.bias_shape is None else randn(rng, params.bias_shape)
    dx, dw, db = R.conv_backward(x, w, dy, params)
    assert (db is None) == (b is None)
    no_bias = ConvParams(**_conv_kwargs(params, bias_shape=None))
    y = R.conv(x, w, None, no_bias)
    mag_y = R.magnitude("conv", {"x": x, "w": w}, no_bias)["y"]
    mags = R.magnitude("conv_backward", {"x": x, "w": w, "dy": dy}, params)
    assert abs(np.vdot(y, dy) - np.vdot(x, dx)) <= inner_bound((mag_y, dy), (x, mags["dx"]))
    assert abs(np.vdot(y, dy) - np.vdot(w, dw)) <= inner_bound((mag_y, dy), (w, mags["dw"]))
    if b is not None:  # conv(x, w, b) − conv(x, w, 0) is b broadcast
        shift = R.conv(x, w, b, params) - y
        assert abs(np.vdot(shift, dy) - np.vdot(b, db)) <= inner_bound((mag_y + np.abs(shift), dy), (b, db))


@settings(max_examples=40, deadline=None)
@given(conv_problems(modes=("zeros",), max_taps=16))
def test_conv_transpose_backward_is_its_adjoint(problem):  # CONVT-GRAD-1
    params, rng = problem
    t_params = transpose_of(params)
    x, w = randn(rng, t_params.input_shape), randn(rng, t_params.weight_shape)
    dy = randn(rng, t_params.output_shape)
    dx, dw, db = R.conv_transpose_backward(x, w, dy, t_params)
    assert (db is None) == (t_params.bias_shape is None)
    no_bias = ConvTransposeParams(**_transpose_kwargs(t_params, bias_shape=None))
    y = R.conv_transpose(x, w, None, no_bias)
    mag_y = R.magnitude("conv_transpose", {"x": x, "w": w}, no_bias)["y"]
    mags = R.magnitude("conv_transpose_backward", {"x": x, "w": w, "dy": dy}, t_params)
    assert abs(np.vdot(y, dy) - np.vdot(x, dx)) <= inner_bound((mag_y, dy), (x, mags["dx"]))
    assert abs(np.vdot(y, dy) - np.vdot(w, dw)) <= inner_bound((mag_y, dy), (w, mags["dw"]))
    # its dx is conv(dy) with the same weight and the forward conv's parameters (CONVT-GRAD-1)
    conv_dx = R.conv(dy, w, None, ConvParams(**_conv_kwargs(params, bias_shape=None)))
    assert np.all(np.abs(dx - conv_dx) <= 1e-12 * mags["dx"] + 1e-300)
    if t_params.bias_shape is not None:
        np.testing.assert_allclose(db, dy.sum(axis=(0, *range(2, dy.ndim))), rtol=1e-12, atol=1e-300)


def _directional_derivative(loss, a, v, h=1e-3):
    """Central difference (L(a + h·v) − L(a − h·v)) / 2h."""
    return (loss(a + h * v) - loss(a - h * v)) / (2 * h)


def _check_gradients(forward, arrays, grads, dy, mag_y, rng):
    """Each gradient against central differences of L = ⟨forward(x, w, b), dy⟩ along 2 random
    directions; allowance 1e-8 of the magnitudes involved (L is linear: only rounding remains)."""
    names = list(arrays)
    for name, grad in zip(names, grads):
        if arrays[name] is None:
            assert grad is None
            continue
        for _ in range(2):
            v = randn(rng, arrays[name].shape)

            def loss(a, name=name):
                return float(np.vdot(forward(*({**arrays, name: a}).values()), dy))

            allowance = 1e-8 * (1 + float(np.vdot(np.abs(grad), np.abs(v))) + float(np.vdot(mag_y, np.abs(dy))))
            assert abs(_directional_derivative(loss, arrays[name], v) - np.vdot(grad, v)) <= allowance, name


@settings(max_examples=25, deadline=None)
@given(conv_problems(max_taps=12))
def test_conv_gradients_by_finite_differences(problem):  # CONV-GRAD-1
    params, rng = problem
    x, w, dy = randn(rng, params.input_shape), randn(rng, params.weight_shape), randn(rng, params.output_shape)
    b = None if params.bias_shape is None else randn(rng, params.bias_shape)
    mag_y = R.magnitude("conv", {"x": x, "w": w, "b": b}, params)["y"]
    _check_gradients(lambda x_, w_, b_: R.conv(x_, w_, b_, params), {"x": x, "w": w, "b": b},
                     R.conv_backward(x, w, dy, params), dy, mag_y, rng)


@settings(max_examples=25, deadline=None)
@given(conv_problems(modes=("zeros",), max_taps=12))
def test_conv_transpose_gradients_by_finite_differences(problem):  # CONVT-GRAD-1
    params, rng = problem
    t_params = transpose_of(params)
    x, w = randn(rng, t_params.input_shape), randn(rng, t_params.weight_shape)
    dy = randn(rng, t_params.output_shape)
    b = None if t_params.bias_shape is None else randn(rng, t_params.bias_shape)
    mag_y = R.magnitude("conv_transpose", {"x": x, "w": w, "b": b}, t_params)["y"]
    _check_gradients(lambda x_, w_, b_: R.conv_transpose(x_, w_, b_, t_params), {"x": x, "w": w, "b": b},
                     R.conv_transpose_backward(x, w, dy, t_params), dy, mag_y, rng)


# ------------------------------------------------------------------------------------------
# rank 4 is rank 3 looped over the first spatial axis


@settings(max_examples=25, deadline=None)
@given(conv_problems(max_rank=3, max_taps=12), st.integers(1, 3), st.integers(1, 2), st.integers(1, 2),
       st.integers(0, 2), st.integers(0, 2))
def test_rank_4_conv_is_a_sum_of_rank_3_convs(problem, k1, s1, d1, extra, p1):  # CONV-DEF-1, PAD-MODE-1
    """y4[:, :, p1] = Σ_q1 conv3(x̃4[:, :, p1·s1 + q1·d1], w[:, :, q1]): the axis is padded by hand."""
    params3, rng = problem
    lift = 3 - params3.rank  # a rank < 3 problem gets size-1 axes
    params3 = ConvParams(**_conv_kwargs(
        params3, input_shape=params3.input_shape + (1,) * lift, weight_shape=params3.weight_shape + (1,) * lift,
        stride=params3.stride + (1,) * lift, dilation=params3.dilation + (1,) * lift,
        padding=params3.pads + ((0, 0),) * lift))
    n1 = max(d1 * (k1 - 1) + 1 - 2 * p1, p1 + 1) + extra
    batch, channels = params3.input_shape[:2]
    params4 = ConvParams(**_conv_kwargs(
        params3, input_shape=(batch, channels, n1, *params3.input_shape[2:]),
        weight_shape=params3.weight_shape[:2] + (k1,) + params3.weight_shape[2:], stride=(s1, *params3.stride),
        dilation=(d1, *params3.dilation), padding=((p1, p1), *params3.pads)))
    x, w = randn(rng, params4.input_shape), randn(rng, params4.weight_shape)
    b = None if params4.bias_shape is None else randn(rng, params4.bias_shape)
    y4 = R.conv(x, w, b, params4)
    numpy_mode = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
    x_tilde = np.pad(x, ((0, 0), (0, 0), (p1, p1), (0, 0), (0, 0), (0, 0)), mode=numpy_mode[params4.padding_mode])
    slice_params = ConvParams(**_conv_kwargs(params3, bias_shape=None))
    expected = np.zeros(y4.shape)
    for p in range(y4.shape[2]):
        for q1 in range(k1):
            expected[:, :, p] += R.conv(x_tilde[:, :, p * s1 + q1 * d1], w[:, :, q1], None, slice_params)
    if b is not None:
        expected += b.reshape(-1, 1, 1, 1, 1)
    mag = R.magnitude("conv", {"x": x, "w": w, "b": b}, params4)["y"]
    assert np.all(np.abs(y4 - expected) <= 8 * params4.terms_per_output * U * mag + 1e-300)


# ------------------------------------------------------------------------------------------
# magnitude, dtypes and hygiene


@settings(max_examples=30, deadline=None)
@given(conv_problems(max_taps=12))
def test_magnitude_is_the_op_on_absolute_values(problem):  # ERR-BOUND-1
    params, rng = problem
    x, w, dy = randn(rng, params.input_shape), randn(rng, params.weight_shape), randn(rng, params.output_shape)
    b = None if params.bias_shape is None else randn(rng, params.bias_shape)
    mag = R.magnitude("conv", {"x": x, "w": w, "b": b}, params)
    np.testing.assert_array_equal(mag["y"], R.conv(np.abs(x), np.abs(w), None if b is None else np.abs(b), params))
    assert np.all(mag["y"] >= np.abs(R.conv(x, w, b, params)) * (1 - 1e-12))
    grads = R.conv_backward(x, w, dy, params)
    mags = R.magnitude("conv_backward", {"x": x, "w": w, "dy": dy}, params)
    for name, grad, expected in zip(("dx", "dw", "db"), grads, R.conv_backward(np.abs(x), np.abs(w), np.abs(dy), params)):
        if grad is None:
            assert mags[name] is None
            continue
        np.testing.assert_array_equal(mags[name], expected)
        assert np.all(mags[name] >= np.abs(grad) * (1 - 1e-12))
    t_params = transpose_of(ConvParams(**_conv_kwargs(params, padding_mode="zeros")))
    xt, wt = randn(rng, t_params.input_shape), randn(rng, t_params.weight_shape)
    bt = None if t_params.bias_shape is None else randn(rng, t_params.bias_shape)
    mag_t = R.magnitude("conv_transpose", {"x": xt, "w": wt, "b": bt}, t_params)["y"]
    assert np.all(mag_t >= np.abs(R.conv_transpose(xt, wt, bt, t_params)) * (1 - 1e-12))
    np.testing.assert_array_equal(
        mag_t, R.conv_transpose(np.abs(xt), np.abs(wt), None if bt is None else np.abs(bt), t_params))


def test_evaluate_dispatches_by_op_name():  # CONV-DEF-1, CONVT-GRAD-1
    x, w = np.arange(5.0)[None, None], np.array([[[1.0, -1]]])
    params = ConvParams(input_shape=x.shape, weight_shape=w.shape)
    out = R.evaluate("conv", {"x": x, "w": w, "b": None}, params)
    assert list(out) == ["y"]
    np.testing.assert_array_equal(out["y"], R.conv(x, w, None, params))
    grads = R.evaluate("conv_backward", {"x": x, "w": w, "dy": np.ones((1, 1, 4))}, params)
    assert list(grads) == ["dx", "dw", "db"] and grads["db"] is None
    with pytest.raises(KeyError, match="unknown op"):
        R.evaluate("conv3x3", {}, params)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_any_spec_dtype_in_float64_out_and_inputs_untouched(dtype):  # DTYPE-1
    rng = np.random.default_rng(1)
    dt = to_dtype(dtype)
    params = ConvParams(input_shape=(2, 4, 5, 6), weight_shape=(6, 2, 3, 2), bias_shape=(6,), stride=(2, 1),
                        padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2, padding_mode="reflect")
    x, w = randn(rng, params.input_shape).astype(dt), randn(rng, params.weight_shape).astype(dt)
    b, dy = randn(rng, (6,)).astype(dt), randn(rng, params.output_shape).astype(dt)
    copies = [a.copy() for a in (x, w, b, dy)]
    y = R.conv(x, w, b, params)
    grads = R.conv_backward(x, w, dy, params)
    for a, copy in zip((x, w, b, dy), copies):
        np.testing.assert_array_equal(a, copy)
        assert a.dtype == dt
    assert y.dtype == np.float64 and all(g.dtype == np.float64 for g in grads)
    # computed on the exactly widened inputs
    f64 = [a.astype(np.float64) for a in (x, w, b, dy)]
    np.testing.assert_array_equal(y, R.conv(f64[0], f64[1], f64[2], params))
    mags = R.magnitude("conv_backward", {"x": x, "w": w, "dy": dy}, params)
    assert all(m.dtype == np.float64 for m in mags.values())
    np.testing.assert_array_equal(mags["dw"], R.magnitude("conv_backward", {"x": f64[0], "w": f64[1], "dy": f64[3]},
                                                          params)["dw"])
    t_params = ConvTransposeParams(input_shape=(2, 4, 3, 3), weight_shape=(4, 3, 2, 2), bias_shape=(6,), groups=2,
                                   stride=2, output_padding=1)
    xt, wt = randn(rng, t_params.input_shape).astype(dt), randn(rng, t_params.weight_shape).astype(dt)
    dyt = randn(rng, t_params.output_shape).astype(dt)
    copies = [a.copy() for a in (xt, wt, b, dyt)]
    assert R.conv_transpose(xt, wt, b, t_params).dtype == np.float64
    assert all(g.dtype == np.float64 for g in R.conv_transpose_backward(xt, wt, dyt, t_params))
    for a, copy in zip((xt, wt, b, dyt), copies):
        np.testing.assert_array_equal(a, copy)


def test_empty_batch():  # LAYOUT-1: N = 0 is valid
    params = ConvParams(input_shape=(0, 2, 5), weight_shape=(3, 2, 2), bias_shape=(3,), padding=1,
                        padding_mode="circular")
    x, w, b = np.zeros((0, 2, 5)), np.ones((3, 2, 2)), np.ones(3)
    assert R.conv(x, w, b, params).shape == (0, 3, 6)
    dx, dw, db = R.conv_backward(x, w, np.zeros((0, 3, 6)), params)
    assert dx.shape == (0, 2, 5)
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)


class _Computed(Exception):
    pass


@pytest.mark.parametrize(
    "op, arrays, clause",
    [
        ("conv", {"x": np.zeros((1, 2, 6)), "w": np.zeros((3, 2, 3)), "b": None}, "LAYOUT-1"),
        ("conv", {"x": np.zeros((1, 2, 5)), "w": np.zeros((3, 1, 3)), "b": None}, "LAYOUT-2"),
        ("conv", {"x": np.zeros((1, 2, 5)), "w": np.zeros((3, 2, 3)), "b": np.zeros(3)}, "LAYOUT-4"),
        ("conv_backward", {"x": np.zeros((1, 2, 5)), "w": np.zeros((3, 2, 3)), "dy": np.zeros((1, 3, 4))},
         "GRAD-SHAPE-1"),
        ("conv", {"x": np.zeros((1, 2, 5), np.float32), "w": np.zeros((3, 2, 3)), "b": None}, "DTYPE-1"),
    ],
    ids=["x shape", "w shape", "unexpected bias", "dy shape", "mixed dtypes"],
)
def test_array_checks_raise_before_any_computation(monkeypatch, op, arrays, clause):  # LAYOUT-1, GRAD-SHAPE-1
    params = ConvParams(input_shape=(1, 2, 5), weight_shape=(3, 2, 3))

    def computed(*args, **kwargs):
        raise _Computed

    monkeypatch.setattr(conv_module, "pad", computed)
    monkeypatch.setattr(conv_module, "_gather", computed)
    monkeypatch.setattr(conv_module, "_scatter", computed)
    with pytest.raises(InvalidParams, match=rf"\({clause}\)"):
        R.FUNCTIONS[op](*arrays.values(), params)
    with pytest.raises(InvalidParams, match=rf"\({clause}\)"):
        R.magnitude(op, arrays, params)


def test_conv_transpose_array_checks():  # LAYOUT-3, GRAD-SHAPE-1
    params = ConvTransposeParams(input_shape=(1, 2, 5), weight_shape=(2, 3, 3))
    with pytest.raises(InvalidParams, match=r"\(LAYOUT-3\)"):
        R.conv_transpose(np.zeros((1, 2, 5)), np.zeros((3, 2, 3)), None, params)
    with pytest.raises(InvalidParams, match=r"\(GRAD-SHAPE-1\)"):
        R.conv_transpose_backward(np.zeros((1, 2, 5)), np.zeros((2, 3, 3)), np.zeros((1, 3, 8)), params)
    with pytest.raises(TypeError, match="ConvTransposeParams"):
        R.conv_transpose(np.zeros((1, 2, 5)), np.zeros((2, 3, 3)), None,
                         ConvParams(input_shape=(1, 2, 5), weight_shape=(2, 2, 3)))


def _as_tuple(result):
    return result if isinstance(result, tuple) else (result,)


def test_column_budget_bounds_memory_and_keeps_the_answer(monkeypatch):
    """The oracle stays usable on realistic sizes: with the column budget at one tap's columns,
    peak memory stays below 8× the larger of x and y (the full column matrix alone would be 25×),
    and every op gives the answer of one block of all taps (only the summation order differs)."""
    import tracemalloc

    params = ConvParams(input_shape=(2, 16, 20, 20), weight_shape=(16, 16, 5, 5), padding=2)
    t_params = transpose_of(params)
    rng = np.random.default_rng(2)
    x, w, dy = randn(rng, params.input_shape), randn(rng, params.weight_shape), randn(rng, params.output_shape)
    largest = 8 * max(x.size, dy.size)
    runs = (lambda: R.conv(x, w, None, params), lambda: R.conv_backward(x, w, dy, params),
            lambda: R.conv_transpose(dy, w, None, t_params), lambda: R.conv_transpose_backward(dy, w, x, t_params))
    whole = [run() for run in runs]
    monkeypatch.setattr(conv_module, "COLUMN_BUDGET_BYTES", largest)  # one tap's columns
    for run, expected in zip(runs, whole):
        tracemalloc.start()
        got = run()
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak < 8 * largest
        arrays = [(a, b) for a, b in zip(_as_tuple(got), _as_tuple(expected)) if b is not None]
        for a, b in arrays:
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("taps_per_block", [2, 4])
@pytest.mark.parametrize("kernel_size", [(3, 3), (3, 3, 3)])
def test_blocks_starting_mid_kernel_give_the_whole_answer(monkeypatch, taps_per_block, kernel_size):
    """Blocks of 2 or 4 taps of a 3×3 or 3×3×3 kernel start mid-row (and mid-plane): each block's
    weights and columns must be the same taps. Groups, stride, dilation and uneven pads included."""
    rank = len(kernel_size)
    params = ConvParams(input_shape=(2, 4) + (7,) * rank, weight_shape=(6, 2) + kernel_size, groups=2,
                        stride=(2,) + (1,) * (rank - 1), dilation=(1,) * (rank - 1) + (2,),
                        padding=((1, 2),) * rank, bias_shape=(6,))
    t_params = transpose_of(params)
    rng = np.random.default_rng(4)
    x, w, dy = randn(rng, params.input_shape), randn(rng, params.weight_shape), randn(rng, params.output_shape)
    b, t_b = randn(rng, (6,)), randn(rng, (4,))
    runs = (lambda: R.conv(x, w, b, params), lambda: R.conv_backward(x, w, dy, params),
            lambda: R.conv_transpose(dy, w, t_b, t_params), lambda: R.conv_transpose_backward(dy, w, x, t_params))
    whole = [run() for run in runs]
    # every contraction here has N·G·(channels per group) = 8 rows of the conv's output positions per tap
    bytes_per_tap = 8 * 8 * math.prod(params.output_shape[2:])
    monkeypatch.setattr(conv_module, "COLUMN_BUDGET_BYTES", taps_per_block * bytes_per_tap)
    blocks = list(conv_module._tap_blocks(kernel_size, bytes_per_tap))
    assert [len(block) for block in blocks[:-1]] == [taps_per_block] * (len(blocks) - 1)
    for run, expected in zip(runs, whole):
        for a, b_ in zip(_as_tuple(run()), _as_tuple(expected)):
            if b_ is not None:
                np.testing.assert_allclose(a, b_, rtol=1e-12, atol=1e-12)


def test_weight_gradient_memory_does_not_grow_with_the_batch():
    """dw sums over the images one at a time: 32 images of a weight-heavy layer (w is 2× x) need
    the columns and a few weight-sized arrays, not 32 weight-sized products at once (11.7 MB)."""
    import tracemalloc

    params = ConvParams(input_shape=(32, 64, 3, 3), weight_shape=(64, 64, 3, 3), padding=1)
    rng = np.random.default_rng(3)
    x, w, dy = randn(rng, params.input_shape), randn(rng, params.weight_shape), randn(rng, params.output_shape)
    columns = 8 * 32 * 64 * 9 * 9  # N · C · ΠK · Πo float64s
    tracemalloc.start()
    R.conv_backward(x, w, dy, params)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 2 * columns + 4 * w.nbytes


def test_conv_transpose_weight_gradient_is_strict_and_zero_extension_may_be_nan():  # CONVT-GRAD-1, ERR-SPECIAL-1
    """dw sums over the targets that survive the crop only: an infinite x whose target is cropped is
    no term, so it adds nothing (strict). A formulation over dy zero-extended to the uncropped
    output would meet it with a zero (inf · 0 = NaN): zero_extension_nan marks exactly there."""
    from convspec.spec import ConvTransposeParams

    params = ConvTransposeParams(input_shape=(1, 1, 3), weight_shape=(1, 1, 2), padding=((1, 1),))
    # o = 2; with q = 0, x[0] targets -1 (cropped); with q = 1, x[2] targets 2 (cropped).
    x = np.array([[[np.inf, 1.0, 2.0]]])
    dy = np.array([[[0.5, 0.25]]])
    arrays = {"x": x, "w": np.ones((1, 1, 2)), "dy": dy}
    _, dw, _ = R.conv_transpose_backward(x, arrays["w"], dy, params)
    # q = 0: 1·dy[0] + 2·dy[1] = 1 (x[0] is no term); q = 1: inf·dy[0] + 1·dy[1] = inf (x[2] is no term)
    assert dw[0, 0, 0] == 1.0 and dw[0, 0, 1] == np.inf
    masks = R.zero_extension_nan("conv_transpose_backward", arrays, params)
    assert masks["dx"] is None and masks["db"] is None
    np.testing.assert_array_equal(masks["dw"], [[[True, False]]])  # x[0] is a term of q = 1 only
