"""ONNX extension ops and global pools in the spec and the reference: LpPool (forward and gradient)
against hand-computed values, a literal loop and finite differences; GlobalMaxPool and
GlobalAveragePool as the whole-plane max_pool / avg_pool; extension ops stay out of CORE_OPS."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import convspec.reference as R
from convspec.backends.base import Capabilities
from convspec.spec import (
    CORE_OPS,
    OPS,
    AvgPoolParams,
    InvalidParams,
    LpPoolParams,
    MaxPoolParams,
    expected_shapes,
    global_pool_params,
)


def row(*values):
    return np.array([[values]], dtype=np.float64)


# ------------------------------------------------------------------------------------------
# op table


def test_lp_pool_ops_are_onnx_extensions_not_core():  # LPPOOL-DEF-1, LPPOOL-GRAD-1
    assert OPS["lp_pool"].extension == "onnx" and OPS["lp_pool_backward"].extension == "onnx"
    assert OPS["lp_pool"].backward == "lp_pool_backward" and OPS["lp_pool_backward"].forward == "lp_pool"
    assert "lp_pool" not in CORE_OPS and "lp_pool_backward" not in CORE_OPS
    assert CORE_OPS == {name for name, info in OPS.items() if info.extension is None}
    assert "conv" in CORE_OPS and len(CORE_OPS) == 8


def test_default_capabilities_claim_core_ops_only():
    assert Capabilities().ops == CORE_OPS
    assert "lp_pool" in Capabilities(ops=frozenset({"lp_pool", "lp_pool_backward"})).ops


def test_every_op_has_a_reference_function():
    assert set(R.FUNCTIONS) == set(OPS)


# ------------------------------------------------------------------------------------------
# LpPool parameters and shapes


def test_lp_pool_p_defaults_to_2_and_must_be_a_positive_int():  # LPPOOL-PARAM-1
    assert LpPoolParams(input_shape=(1, 1, 4), kernel_size=2).p == 2
    for bad in (0, -1, 2.5, True, "2"):
        with pytest.raises(InvalidParams, match="LPPOOL-PARAM-1") as info:
            LpPoolParams(input_shape=(1, 1, 4), kernel_size=2, p=bad)
        assert info.value.param == "p"


def test_lp_pool_shapes_follow_the_pool_formulas():  # LPPOOL-PARAM-1, POOL-SHAPE-1, POOL-CEIL-1
    for kwargs in (dict(kernel_size=3, stride=2, padding=1), dict(kernel_size=2, ceil_mode=True),
                   dict(kernel_size=3, stride=2, padding="same_upper"), dict(kernel_size=3, stride=2, padding="same_lower"),
                   dict(kernel_size=2, dilation=2, padding="valid")):
        lp = LpPoolParams(input_shape=(2, 3, 7, 6), **kwargs)
        mx = MaxPoolParams(input_shape=(2, 3, 7, 6), **kwargs)
        assert lp.output_shape == mx.output_shape and lp.pads == mx.pads
        assert expected_shapes("lp_pool", lp) == {"x": (2, 3, 7, 6), "y": lp.output_shape}
    # ONNX test_lppool_2d_default: 32x32, kernel 2, stride 1 -> 31x31
    assert LpPoolParams(input_shape=(1, 3, 32, 32), kernel_size=2, stride=1, p=4).output_shape == (1, 3, 31, 31)
    with pytest.raises(InvalidParams, match="POOL-WINDOW-1"):
        LpPoolParams(input_shape=(1, 1, 4), kernel_size=2, padding=2)


# ------------------------------------------------------------------------------------------
# LpPool forward


def test_lp_pool_hand_values():  # LPPOOL-DEF-1
    x = row(3, -4, 0, 1, 2, -2)
    np.testing.assert_array_equal(R.lp_pool(x, LpPoolParams(input_shape=x.shape, kernel_size=2)), row(5, 1, np.sqrt(8)))
    np.testing.assert_array_equal(R.lp_pool(x, LpPoolParams(input_shape=x.shape, kernel_size=2, p=1)), row(7, 1, 4))
    # padding contributes 0: windows {-1,0} {1,2} {3,4} {5,6}
    got = R.lp_pool(x, LpPoolParams(input_shape=x.shape, kernel_size=2, padding=1, p=1))
    np.testing.assert_array_equal(got, row(3, 4, 3, 2))
    # p = 3, ceil-mode overhang contributes 0: windows {0,1,2} {2,3,4} {4,5,(6)}; |x|^3 sums 91, 9, 16
    got = R.lp_pool(x, LpPoolParams(input_shape=x.shape, kernel_size=3, stride=2, ceil_mode=True, p=3))
    np.testing.assert_allclose(got, row(91 ** (1 / 3), 9 ** (1 / 3), 16 ** (1 / 3)), rtol=1e-15)


def test_lp_pool_special_values():  # LPPOOL-DEF-1
    x = row(np.nan, 1, -np.inf, 1, 0, 0)
    np.testing.assert_array_equal(R.lp_pool(x, LpPoolParams(input_shape=x.shape, kernel_size=2)), row(np.nan, np.inf, 0))


def literal_lp_pool(x, params):
    """A literal loop over windows and taps of LPPOOL-DEF-1."""
    y = np.zeros(params.output_shape)
    spatial = params.input_shape[2:]
    for n, c in itertools.product(*map(range, params.input_shape[:2])):
        for p in itertools.product(*map(range, params.output_shape[2:])):
            total = 0.0
            for q in itertools.product(*map(range, params.kernel_size)):
                u = tuple(pi * s - pb + qi * d for pi, s, (pb, _), qi, d in
                          zip(p, params.stride, params.pads, q, params.dilation))
                if all(0 <= ui < ni for ui, ni in zip(u, spatial)):
                    total += abs(x[(n, c) + u]) ** params.p
            y[(n, c) + p] = total ** (1 / params.p)
    return y


@pytest.mark.parametrize("kwargs", [
    dict(input_shape=(2, 2, 7), kernel_size=3, stride=2, padding=1, p=3),
    dict(input_shape=(1, 2, 6, 5), kernel_size=(3, 2), stride=(2, 1), padding=((1, 0), (1, 1)), dilation=(1, 2), p=2),
    dict(input_shape=(1, 1, 5, 5, 4), kernel_size=2, ceil_mode=True, p=1),
    dict(input_shape=(1, 1, 9, 7), kernel_size=3, stride=2, padding="same_lower", p=4),
])
def test_lp_pool_matches_a_literal_loop(kwargs):  # LPPOOL-DEF-1
    params = LpPoolParams(**kwargs)
    x = np.random.default_rng(0).normal(size=params.input_shape)
    np.testing.assert_allclose(R.lp_pool(x, params), literal_lp_pool(x, params), rtol=1e-13)


# ------------------------------------------------------------------------------------------
# LpPool gradient


def test_lp_pool_backward_hand_values():  # LPPOOL-GRAD-1
    x = row(3, -4, 0, 0)
    params = LpPoolParams(input_shape=x.shape, kernel_size=2)
    # window 0: y = 5, g = x / 5; window 1: y = 0 -> gradient 0
    np.testing.assert_array_equal(R.lp_pool_backward(x, row(10, 1), params), row(6, -8, 0, 0))
    # p = 1: g = sign(x), sign(0) = 0
    x = row(2, -1, 0, 5)
    params = LpPoolParams(input_shape=x.shape, kernel_size=2, p=1)
    np.testing.assert_array_equal(R.lp_pool_backward(x, row(3, 7), params), row(3, -3, 0, 7))
    # overlapping windows accumulate: {0,1} {1,2}, p = 2, y = 5 and 4/... -> x1 gets from both
    x = row(3, 4, 0)
    params = LpPoolParams(input_shape=x.shape, kernel_size=2, stride=1)
    np.testing.assert_allclose(R.lp_pool_backward(x, row(1, 1), params), row(3 / 5, 4 / 5 + 1, 0), rtol=1e-15)


@pytest.mark.parametrize("kwargs", [
    dict(input_shape=(1, 2, 7), kernel_size=3, stride=2, padding=1, p=3),
    dict(input_shape=(1, 1, 5, 4), kernel_size=2, stride=1, padding=1, p=2),
    dict(input_shape=(2, 1, 6), kernel_size=2, ceil_mode=True, dilation=2, p=4),
])
def test_lp_pool_backward_matches_finite_differences(kwargs):  # LPPOOL-GRAD-1
    params = LpPoolParams(**kwargs)
    rng = np.random.default_rng(1)
    x = rng.normal(size=params.input_shape) + 0.5
    dy = rng.normal(size=params.output_shape)
    dx = R.lp_pool_backward(x, dy, params)
    h = 1e-6
    fd = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[index] = h
        fd[index] = np.sum(dy * (R.lp_pool(x + e, params) - R.lp_pool(x - e, params))) / (2 * h)
    np.testing.assert_allclose(dx, fd, rtol=1e-5, atol=1e-7)


def test_lp_pool_evaluate_and_magnitude():  # LPPOOL-DEF-1, LPPOOL-GRAD-1
    x = row(-3, 4, 1)
    params = LpPoolParams(input_shape=x.shape, kernel_size=2, stride=1)
    out = R.evaluate("lp_pool", {"x": x}, params)
    np.testing.assert_allclose(out["y"], row(5, np.sqrt(17)))
    np.testing.assert_allclose(R.magnitude("lp_pool", {"x": x}, params)["y"], out["y"])  # mag = y
    grad = R.evaluate("lp_pool_backward", {"x": x, "dy": row(1, 1)}, params)
    assert set(grad) == {"dx"}
    assert R.zero_extension_nan("lp_pool_backward", {"x": x, "dy": row(1, 1)}, params) == {"dx": None}


def test_lp_pool_does_not_modify_inputs():  # HYGIENE-1
    x = row(1, -2, 3, 4)
    dy = row(1, 2)
    params = LpPoolParams(input_shape=x.shape, kernel_size=2)
    x0, dy0 = x.copy(), dy.copy()
    R.lp_pool(x, params)
    R.lp_pool_backward(x, dy, params)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(dy, dy0)


# ------------------------------------------------------------------------------------------
# global pools


def test_global_pool_params_cover_the_whole_plane():  # GLOBALPOOL-MAX-1, GLOBALPOOL-AVG-1
    mx = global_pool_params("max_pool", (2, 3, 4, 5))
    av = global_pool_params("avg_pool", (2, 3, 4, 5, 6))
    assert isinstance(mx, MaxPoolParams) and isinstance(av, AvgPoolParams)
    assert mx.kernel_size == (4, 5) and mx.stride == (1, 1) and mx.pads == ((0, 0), (0, 0))
    assert mx.output_shape == (2, 3, 1, 1) and av.output_shape == (2, 3, 1, 1, 1)
    assert av.count_include_pad is False and av.divisor_override is None
    with pytest.raises(InvalidParams, match="GLOBALPOOL-AVG-1"):
        global_pool_params("lp_pool", (1, 1, 3))
    with pytest.raises(InvalidParams, match="LAYOUT-1"):
        global_pool_params("max_pool", (1, 1))


def test_global_max_pool_values_nan_and_index():  # GLOBALPOOL-MAX-1, MAXPOOL-NAN-1, MAXPOOL-TIE-1
    x = np.array([[[[1.0, 7, 2], [7, 0, 3]], [[-np.inf, -np.inf, -np.inf], [-np.inf, -np.inf, -np.inf]]],
                  [[[1.0, np.nan, 2], [np.nan, 9, 3]], [[0.0, 0, 0], [0, 0, -1]]]])
    y, indices = R.max_pool(x, global_pool_params("max_pool", x.shape))
    np.testing.assert_array_equal(y[..., 0, 0], [[7, -np.inf], [np.nan, 0]])
    np.testing.assert_array_equal(indices[..., 0, 0], [[1, 0], [1, 0]])


def test_global_average_pool_is_the_plane_mean():  # GLOBALPOOL-AVG-1
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5))
    y = R.avg_pool(x, global_pool_params("avg_pool", x.shape))
    np.testing.assert_allclose(y, x.mean(axis=(2, 3), keepdims=True), rtol=1e-14)
    x = np.array([[[1.0, np.inf, 2]], [[np.inf, -np.inf, 0]]])
    with np.errstate(invalid="ignore"):
        y = R.avg_pool(x, global_pool_params("avg_pool", x.shape))
    np.testing.assert_array_equal(y, [[[np.inf]], [[np.nan]]])


# ------------------------------------------------------------------------------------------
# conformance wiring: a backend that claims lp_pool gets cases


def test_lp_pool_strategy_and_defaults_build_valid_params():  # LPPOOL-PARAM-1
    from hypothesis import given, settings

    from convspec.conformance.checks.defaults import default_cases
    from convspec.conformance.strategies import parameters

    assert [c.op for c in default_cases(["lp_pool", "lp_pool_backward"], [1, 2], "float32")] == ["lp_pool"] * 2

    @settings(max_examples=15, deadline=None, database=None)
    @given(parameters("lp_pool", ranks=(1, 2)))
    def check(kwargs):
        params = LpPoolParams(**kwargs)
        assert 1 <= params.p <= 4

    check()


# ------------------------------------------------------------------------------------------
# ConvTranspose auto_pad and output_shape (ONNX)


def convt(**kw):
    from convspec.spec import ConvTransposeParams

    return ConvTransposeParams(**kw)


def test_convt_same_gives_n_times_s_with_the_odd_pad_after_for_upper():  # CONVT-SAME-1, CONVT-PAD-1
    # n=3, k=3, s=2, op=0: total = 2*2 + 0 + 3 - 6 = 1
    upper = convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2, padding="same_upper")
    lower = convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2, padding="same_lower")
    same = convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2, padding="same")
    assert upper.pads == same.pads == ((0, 1),) and lower.pads == ((1, 0),)
    assert upper.output_shape == lower.output_shape == (1, 1, 6)
    # output_padding enters the total: o stays n*s (onnx/onnx#4299), total = 2 -> (1, 1)
    with_op = convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2, padding="same_upper", output_padding=1)
    assert with_op.pads == ((1, 1),) and with_op.output_shape == (1, 1, 6)
    # ONNX test_convtranspose_autopad_same: x 3x3, W 3x3, strides 2, SAME_UPPER -> 6x6
    p = convt(input_shape=(1, 1, 3, 3), weight_shape=(1, 2, 3, 3), stride=2, padding="same_upper")
    assert p.output_shape == (1, 2, 6, 6) and p.pads == ((0, 1), (0, 1))
    # dilation and even totals
    p = convt(input_shape=(1, 1, 4, 5), weight_shape=(1, 1, 3, 2), stride=(1, 3), dilation=(2, 2), padding="same_lower")
    # dim 0: total = 3 + 0 + 5 - 4 = 4 -> (2, 2); dim 1: total = 12 + 3 - 15 = 0
    assert p.pads == ((2, 2), (0, 0)) and p.output_shape == (1, 1, 4, 15)


def test_convt_same_values_are_the_full_output_cropped():  # CONVT-SAME-1, CONVT-DEF-1
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(1, 2, 3, 4)), rng.normal(size=(2, 3, 3, 2))
    full = R.conv_transpose(x, w, None, convt(input_shape=x.shape, weight_shape=w.shape, stride=2))  # 7 x 8
    upper = R.conv_transpose(x, w, None, convt(input_shape=x.shape, weight_shape=w.shape, stride=2,
                                               padding="same_upper"))
    lower = R.conv_transpose(x, w, None, convt(input_shape=x.shape, weight_shape=w.shape, stride=2,
                                               padding="same_lower"))
    # dim 0: total 1 (upper (0,1), lower (1,0)); dim 1: total 2*3 + 2 - 8 = 0
    np.testing.assert_array_equal(upper, full[:, :, 0:6, :])
    np.testing.assert_array_equal(lower, full[:, :, 1:7, :])


def test_convt_same_unreachable_is_invalid():  # CONVT-SAME-1
    with pytest.raises(InvalidParams, match="CONVT-SAME-1") as info:
        convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 1), stride=2, padding="same")
    assert info.value.param == "padding" and info.value.value == "same"
    assert "-1 < 0" in str(info.value)


def test_convt_output_size_pads():  # CONVT-OUTSIZE-1
    # total = 2*2 + 0 + 3 - 5 = 2 -> (1, 1) in every split
    assert convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2, output_size=5).pads == ((1, 1),)
    # total 1: padding 0 (ONNX NOTSET) = same_lower: the odd pad before; same_upper: after
    assert convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2, output_size=6).pads == ((1, 0),)
    assert convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2, output_size=6,
                 padding="same_upper").pads == ((0, 1),)
    # ONNX test_convtranspose_output_shape: x 3x3, W 3x3, strides (3, 2), output_shape (10, 8):
    # totals -1, -1 -> pads 0 and output_padding 1 in each dim
    p = convt(input_shape=(1, 1, 3, 3), weight_shape=(1, 2, 3, 3), stride=(3, 2), output_size=(10, 8))
    assert p.pads == ((0, 0), (0, 0)) and p.output_padding == (1, 1) and p.output_shape == (1, 2, 10, 8)
    from convspec.spec import init_kwargs, revalidate

    assert revalidate(p) == p and init_kwargs(p)["output_size"] == (10, 8)
    assert "output_size" not in init_kwargs(convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3)))
    ref = convt(input_shape=(1, 1, 3, 3), weight_shape=(1, 2, 3, 3), stride=(3, 2), output_padding=1)
    x, w = np.arange(9.0).reshape(1, 1, 3, 3), np.ones((1, 2, 3, 3))
    np.testing.assert_array_equal(R.conv_transpose(x, w, None, p), R.conv_transpose(x, w, None, ref))


def test_convt_output_size_invalid():  # CONVT-OUTSIZE-1
    base = dict(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2)
    with pytest.raises(InvalidParams, match="CONVT-OUTSIZE-1") as info:
        convt(**base, output_size=9)  # full 7: needs output_padding 2 >= 2
    assert info.value.param == "output_size"
    for padding in (1, "valid"):
        with pytest.raises(InvalidParams, match="CONVT-OUTSIZE-1"):
            convt(**base, output_size=5, padding=padding)
    with pytest.raises(InvalidParams, match="CONVT-OUTSIZE-1"):
        convt(**base, output_size=0)
    with pytest.raises(InvalidParams, match="PARAM-1"):
        convt(**base, output_size=(5, 5))


def test_case_descriptors_round_trip_lp_and_output_size():  # LPPOOL-PARAM-1, CONVT-OUTSIZE-1
    from convspec.conformance.cases import Case

    for op, params in (("lp_pool", LpPoolParams(input_shape=(1, 1, 5), kernel_size=2, p=3)),
                       ("conv_transpose", convt(input_shape=(1, 1, 3), weight_shape=(1, 1, 3), stride=2,
                                                output_size=6, padding="same_upper"))):
        case = Case.of(op, params)
        assert Case.parse(case.descriptor).build() == params, case.descriptor
