"""Shape and padding formulas of the spec, checked against brute-force window counting."""

from __future__ import annotations

import doctest
import importlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from convspec.spec import (
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    InvalidParams,
    MaxPoolParams,
    ceil_div,
    conv_output_size,
    conv_transpose_output_size,
    effective_kernel,
    normalize_padding,
    pool_output_size,
    same_pads,
)
from convspec.spec.accuracy import error_bound, statistical_limits, terms_per_output
from convspec.spec.features import features_of

SPEC_MODULES = ["shapes", "padding", "conv", "pool", "dtypes", "features", "accuracy"]


@pytest.mark.parametrize("name", SPEC_MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(f"convspec.spec.{name}")
    result = doctest.testmod(module)
    assert result.failed == 0


dims = st.tuples(
    st.integers(1, 40),  # n
    st.integers(1, 6),  # k
    st.integers(1, 5),  # s
    st.integers(1, 4),  # d
    st.integers(0, 6),  # p_before
    st.integers(0, 6),  # p_after
)


@settings(max_examples=300, deadline=None)
@given(dims)
def test_conv_output_size_counts_windows_that_fit(dim):  # CONV-SHAPE-1
    n, k, s, d, pb, pa = dim
    extent = n + pb + pa
    fitting = [start for start in range(0, extent, s) if start + effective_kernel(k, d) <= extent]
    if extent >= effective_kernel(k, d):
        assert conv_output_size(n, k, s, d, (pb, pa)) == len(fitting)


@settings(max_examples=300, deadline=None)
@given(dims)
def test_ceil_mode_keeps_windows_starting_inside_input_or_left_pad(dim):  # POOL-CEIL-1
    n, k, s, d, pb, pa = dim
    try:
        params = MaxPoolParams(input_shape=(1, 1, n), kernel_size=k, stride=s, dilation=d,
                               padding=((pb, pa),), ceil_mode=True)
    except InvalidParams:
        return  # window larger than the padded input, or an empty window (POOL-WINDOW-1)
    # Brute force, in padded coordinates: a ceil-mode window may overhang the padded end by less
    # than a stride, and must start inside the input or the left padding.
    extent = n + pb + pa
    starts = [start for start in range(0, extent + s, s)
              if start < n + pb and start + effective_kernel(k, d) - s < extent]
    assert params.output_shape[2] == len(starts)
    try:  # where floor mode is valid too, ceil mode only ever adds windows
        floor = MaxPoolParams(input_shape=(1, 1, n), kernel_size=k, stride=s, dilation=d, padding=((pb, pa),))
    except InvalidParams:
        return
    assert len(starts) >= floor.output_shape[2] == conv_output_size(n, k, s, d, (pb, pa))


def test_ceil_mode_known_answers():  # POOL-CEIL-1
    # n=5, k=2, s=2: floor 2 windows; ceil adds the window starting at 4 (inside the input).
    assert pool_output_size(5, 2, 2, 1, (0, 0), ceil_mode=True) == 3
    # n=4, k=2, s=2, pad (1, 1): ceil would add a window starting at 6 >= n + p_b = 5: dropped.
    assert pool_output_size(4, 2, 2, 1, (1, 1), ceil_mode=True) == 3
    assert ceil_div(4 + 2 - 2, 2) + 1 == 3
    # n=6, k=3, s=2, pad (1, 1) -> 7/2: floor 3, ceil 4, last start 6 < 7 kept.
    assert pool_output_size(6, 3, 2, 1, (1, 1), ceil_mode=True) == 4


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 40), st.integers(1, 7), st.integers(1, 5), st.integers(1, 4), st.booleans())
def test_same_pads_give_ceil_n_over_s_outputs(n, k, s, d, lower):  # PAD-4, PAD-5
    before, after = same_pads(n, k, s, d, lower=lower)
    assert before >= 0 and after >= 0
    assert conv_output_size(n, k, s, d, (before, after)) == ceil_div(n, s)
    if lower:
        assert before - after in (0, 1)
    else:
        assert after - before in (0, 1)


def test_same_upper_and_lower_known_answers():  # PAD-4, PAD-5
    assert same_pads(5, 4, 1, 1, lower=False) == (1, 2)
    assert same_pads(5, 4, 1, 1, lower=True) == (2, 1)
    # stride 2, n = 7, k = 3: o = 4, total = 3*2 + 3 - 7 = 2.
    assert same_pads(7, 3, 2, 1, lower=False) == (1, 1)
    # stride 2, n = 8, k = 3: o = 4, total = 1 -> all of it after for same_upper.
    assert same_pads(8, 3, 2, 1, lower=False) == (0, 1)
    assert same_pads(8, 3, 2, 1, lower=True) == (1, 0)
    # dilation 2, k = 3: effective 5, stride 1, n = 6: total 4.
    assert same_pads(6, 3, 1, 2, lower=False) == (2, 2)
    # A kernel smaller than the stride can need no padding at all.
    assert same_pads(8, 1, 2, 1, lower=False) == (0, 0)


def test_padding_forms_normalise_to_pairs():  # PAD-1, PAD-3
    assert normalize_padding(1, 2) == ((1, 1), (1, 1))
    assert normalize_padding((1, 2), 2) == ((1, 1), (2, 2))
    assert normalize_padding(((0, 1), 2), 2) == ((0, 1), (2, 2))
    assert normalize_padding("SAME", 2) == "same_upper"
    assert normalize_padding("same_lower", 3) == "same_lower"
    params = ConvParams(input_shape=(1, 1, 5, 5), weight_shape=(1, 1, 3, 3), padding="valid")
    assert params.pads == ((0, 0), (0, 0)) and params.output_shape == (1, 1, 3, 3)


def test_same_pads_come_from_spatial_dims_only():  # PAD-4: never from batch or channel dims (ONNX bug)
    a = ConvParams(input_shape=(1, 3, 10, 7), weight_shape=(2, 3, 4, 2), padding="same", stride=(3, 2))
    b = ConvParams(input_shape=(9, 3, 10, 7), weight_shape=(2, 3, 4, 2), padding="same", stride=(3, 2))
    assert a.pads == b.pads == (same_pads(10, 4, 3, 1, lower=False), same_pads(7, 2, 2, 1, lower=False))
    assert a.output_shape[2:] == (4, 4)


@settings(max_examples=200, deadline=None)
@given(dims, st.integers(0, 4))
def test_conv_transpose_restores_the_conv_input_size(dim, extra):  # CONVT-SHAPE-1
    n, k, s, d, pb, pa = dim
    if n + pb + pa < effective_kernel(k, d):
        return
    o = conv_output_size(n, k, s, d, (pb, pa))
    back = conv_transpose_output_size(o, k, s, d, (pb, pa), 0)
    output_padding = n - back
    assert 0 <= output_padding < s  # CONVT-PARAM-1 leaves room for exactly this
    params = ConvParams(input_shape=(1, 1, n), weight_shape=(1, 1, k), stride=s, dilation=d, padding=((pb, pa),))
    assert params.output_padding_for_input() == (output_padding,)


def test_conv_transpose_known_answer():  # CONVT-SHAPE-1
    p = ConvTransposeParams(input_shape=(2, 4, 3), weight_shape=(4, 3, 4), stride=3, padding=((1, 2),),
                            output_padding=2, dilation=2, groups=2)
    assert p.output_shape == (2, 6, (3 - 1) * 3 - 3 + 2 * 3 + 2 + 1)


def test_pool_stride_defaults_to_kernel():  # POOL-PARAM-1
    assert MaxPoolParams(input_shape=(1, 1, 9, 9), kernel_size=(3, 2)).stride == (3, 2)
    assert AvgPoolParams(input_shape=(1, 1, 9), kernel_size=3, stride=1, count_include_pad=False).stride == (1,)


def test_pool_allows_large_pads_while_every_window_has_input():  # POOL-WINDOW-1
    # pad 2 > k // 2 = 1, yet every window of k = 3, s = 1 holds input: valid in the spec.
    params = MaxPoolParams(input_shape=(1, 1, 4), kernel_size=3, stride=1, padding=2)
    assert params.output_shape == (1, 1, 6)
    assert "pool_padding_over_half_kernel" in features_of("max_pool", params)


def test_features_of_a_plain_conv_is_empty_and_grows_with_options():
    plain = ConvParams(input_shape=(1, 2, 5), weight_shape=(2, 2, 3))
    assert features_of("conv", plain) == frozenset()
    rich = ConvParams(input_shape=(0, 4, 9), weight_shape=(4, 2, 2), bias_shape=(4,), groups=2, stride=2,
                      padding="same_lower", dilation=2, padding_mode="circular")
    assert features_of("conv_backward", rich) == {
        "empty_batch", "bias", "groups", "stride", "dilation", "padding", "asymmetric_padding", "same",
        "same_strided", "padding_mode.circular",
    } - ({"asymmetric_padding"} if rich.pads[0][0] == rich.pads[0][1] else set())


def test_terms_per_output():  # ERR-BOUND-1: K per output
    p = ConvParams(input_shape=(2, 4, 5, 5), weight_shape=(6, 2, 3, 3), groups=2, bias_shape=(6,))
    assert terms_per_output("conv", p) == {"y": 18}
    assert terms_per_output("conv_backward", p) == {"dx": 27, "dw": 2 * 9, "db": 2 * 9}
    pool = AvgPoolParams(input_shape=(1, 1, 6, 6), kernel_size=(2, 3), count_include_pad=True)
    assert terms_per_output("avg_pool", pool) == {"y": 6}
    assert terms_per_output("max_pool", MaxPoolParams(input_shape=(1, 1, 4), kernel_size=2)) == {"y": 1, "indices": 1}


def test_error_bound_and_statistical_limits():  # ERR-BOUND-1, ERR-STAT-1
    import numpy as np

    bound = error_bound(np.array([0.0, 1.0, np.inf, np.nan]), 10, out_dtype="float16")
    u = 2.0**-11
    assert bound[0] == 2.0**-14
    assert bound[1] == pytest.approx((2 * 10 + 1) * u + 2.0**-14)
    assert np.isinf(bound[2]) and np.isinf(bound[3])
    tf32 = error_bound(np.array(1.0), 10, out_dtype="float32", input_precision="tf32")
    assert tf32 > error_bound(np.array(1.0), 10, out_dtype="float32")
    assert statistical_limits(4, 1000) == (2 * (4 * 1000) ** 0.5, 0.4 * 4 * 1000)
