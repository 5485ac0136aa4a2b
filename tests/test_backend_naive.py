"""The naive backend against the float64 reference: every op and gradient, every feature, ranks 1-4,
float16/bfloat16/float32/float64 within the error bound of ERR-BOUND-1 (its declared accumulation
is float64), max pool exact, special values, hygiene. Sizes stay tiny: the backend loops in Python."""

from __future__ import annotations

import doctest
import importlib

import numpy as np
import pytest
from backend_checks import (
    check_avg_pool_propagates_nan,
    check_infinities_and_nan,
    check_invalid_arrays_are_refused,
    check_max_pool_backward_accumulates,
    check_max_pool_minus_infinity_never_loses_to_padding,
    check_max_pool_nan_window,
    check_max_pool_ties_first,
    check_op,
    conv_problems,
    conv_transpose_problems,
    family_cases,
    make_arrays,
    pool_problems,
    seed_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from convspec.backends.base import Capabilities
from convspec.backends.naive import NaiveBackend, round_to, source_index
from convspec.spec import (
    CORE_OPS,
    OPS,
    AvgPoolParams,
    MaxPoolParams,
    bfloat16_available,
    to_dtype,
)

BACKEND = NaiveBackend()
DTYPES = ["float64", "float32", "float16"] + (["bfloat16"] if bfloat16_available() else [])
naive_module = importlib.import_module("convspec.backends.naive")


def check(backend, op: str, params, arrays: dict) -> dict:
    """check_op with exact indices: this backend picks the reference's NaN of a NaN window too."""
    return check_op(backend, op, params, arrays=arrays, exact_indices=True)


# ------------------------------------------------------------------------------------------
# a table of small problems, one or more features each (clause ids in the ids)

CONV = {
    "rank1-bias-pad-CONV-DEF-1": dict(input_shape=(2, 3, 7), weight_shape=(4, 3, 3), bias_shape=(4,), padding=1),
    "groups-Cout-per-group-2-CONV-GROUPS-1": dict(input_shape=(2, 4, 5, 4), weight_shape=(6, 2, 3, 2),
                                                  bias_shape=(6,), groups=2, padding=1),
    "depthwise-CONV-GROUPS-1": dict(input_shape=(1, 3, 5, 4), weight_shape=(6, 1, 3, 3), groups=3, padding=1),
    "dilation-CONV-DEF-1": dict(input_shape=(1, 2, 7, 6), weight_shape=(2, 2, 2, 3), dilation=(3, 2)),
    "stride-over-kernel-CONV-SHAPE-1": dict(input_shape=(2, 2, 9, 8), weight_shape=(3, 2, 2, 2), stride=(3, 4)),
    "asymmetric-pads-PAD-1": dict(input_shape=(1, 2, 5, 4), weight_shape=(2, 2, 3, 2), padding=((2, 0), (1, 3))),
    "same-lower-strided-PAD-5": dict(input_shape=(1, 2, 6, 5), weight_shape=(2, 2, 4, 3), stride=2,
                                     padding="same_lower"),
    "same-upper-PAD-4": dict(input_shape=(1, 2, 5), weight_shape=(2, 2, 4), padding="same"),
    "reflect-PAD-MODE-1": dict(input_shape=(1, 2, 5, 4), weight_shape=(2, 2, 3, 3), padding=((2, 1), (3, 1)),
                               padding_mode="reflect", bias_shape=(2,)),
    "replicate-PAD-MODE-1": dict(input_shape=(1, 2, 3, 4), weight_shape=(2, 2, 2, 3), padding=((4, 1), (1, 2)),
                                 padding_mode="replicate", stride=(1, 2)),
    "circular-PAD-MODE-1": dict(input_shape=(2, 2, 4, 3), weight_shape=(4, 1, 3, 2), padding=((4, 2), (1, 3)),
                                padding_mode="circular", groups=2, dilation=(1, 2)),
    "rank3-CONV-DEF-1": dict(input_shape=(1, 2, 4, 3, 4), weight_shape=(2, 2, 2, 2, 3), stride=(1, 2, 1),
                             padding=((1, 0), (1, 1), (0, 2)), dilation=(1, 1, 2), bias_shape=(2,)),
    "rank3-reflect-PAD-MODE-1": dict(input_shape=(1, 1, 3, 3, 4), weight_shape=(1, 1, 2, 2, 2), padding=1,
                                     padding_mode="reflect"),
    "rank4-CONV-DEF-1": dict(input_shape=(1, 1, 3, 2, 3, 2), weight_shape=(2, 1, 2, 1, 2, 2), padding=((1, 0),) * 4),
    "empty-batch-LAYOUT-1": dict(input_shape=(0, 2, 5, 4), weight_shape=(2, 2, 3, 3), bias_shape=(2,), padding=1),
}

CONV_TRANSPOSE = {
    "rank1-output-padding-CONVT-DEF-1": dict(input_shape=(2, 3, 5), weight_shape=(3, 2, 3), bias_shape=(2,),
                                             stride=2, padding=1, output_padding=1),
    "groups-dilation-asymmetric-CONVT-SHAPE-1": dict(input_shape=(2, 4, 4, 3), weight_shape=(4, 3, 3, 2),
                                                     bias_shape=(6,), stride=(2, 3), padding=((1, 0), (2, 1)),
                                                     output_padding=(1, 2), dilation=(1, 2), groups=2),
    "depthwise-CONVT-PARAM-1": dict(input_shape=(1, 3, 4, 4), weight_shape=(3, 1, 2, 3), groups=3, stride=1,
                                    dilation=(2, 3), output_padding=(1, 2)),
    "stride-over-kernel-CONVT-SHAPE-1": dict(input_shape=(1, 2, 3, 3), weight_shape=(2, 2, 2, 1), stride=(3, 4)),
    "rank3-CONVT-DEF-1": dict(input_shape=(1, 2, 2, 3, 2), weight_shape=(2, 2, 2, 2, 2), stride=(2, 1, 2),
                              padding=((0, 1), (1, 0), (0, 0)), output_padding=(1, 0, 1)),
    "empty-batch-LAYOUT-1": dict(input_shape=(0, 2, 4), weight_shape=(2, 3, 3), bias_shape=(3,), stride=2),
}

MAX_POOL = {
    "rank1-ceil-overhang-POOL-CEIL-1": dict(input_shape=(2, 2, 8), kernel_size=3, stride=2, padding=1,
                                            ceil_mode=True),
    "rank2-dilation-asymmetric-MAXPOOL-DEF-1": dict(input_shape=(1, 2, 7, 6), kernel_size=(2, 3), stride=(2, 1),
                                                    padding=((1, 0), (2, 1)), dilation=(2, 1)),
    "stride-over-kernel-POOL-SHAPE-1": dict(input_shape=(1, 2, 9, 7), kernel_size=2, stride=3, ceil_mode=True),
    "big-pad-same-lower-POOL-WINDOW-1": dict(input_shape=(1, 1, 5, 4), kernel_size=(4, 3), padding="same_lower"),
    "rank3-MAXPOOL-INDEX-1": dict(input_shape=(1, 2, 4, 3, 5), kernel_size=(2, 2, 3), stride=(2, 1, 2), padding=1,
                                  ceil_mode=True),
    "empty-batch-LAYOUT-1": dict(input_shape=(0, 2, 5, 5), kernel_size=2),
}

AVG_POOL = {
    "rank1-include-pad-ceil-AVGPOOL-DEF-1": dict(input_shape=(2, 2, 8), kernel_size=3, stride=2, padding=1,
                                                 ceil_mode=True, count_include_pad=True),
    "rank1-exclude-pad-ceil-AVGPOOL-DEF-1": dict(input_shape=(2, 2, 8), kernel_size=3, stride=2, padding=1,
                                                 ceil_mode=True, count_include_pad=False),
    "rank2-divisor-override-AVGPOOL-PARAM-1": dict(input_shape=(1, 2, 6, 5), kernel_size=(3, 2), padding=1,
                                                   count_include_pad=True, divisor_override=5),
    "rank2-dilation-asymmetric-AVGPOOL-DEF-1": dict(input_shape=(1, 2, 7, 6), kernel_size=(2, 3), stride=(2, 1),
                                                    padding=((1, 0), (2, 1)), dilation=(2, 1),
                                                    count_include_pad=True),
    "rank3-AVGPOOL-DEF-1": dict(input_shape=(1, 1, 4, 5, 3), kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=1,
                                ceil_mode=True, count_include_pad=False),
    "empty-batch-LAYOUT-1": dict(input_shape=(0, 2, 5, 5), kernel_size=2, count_include_pad=False),
}

CASES = family_cases(conv=CONV, conv_transpose=CONV_TRANSPOSE, max_pool=MAX_POOL, avg_pool=AVG_POOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, params_type, kwargs", CASES)
def test_matches_reference_within_error_bound(op, params_type, kwargs, dtype):
    # ERR-BOUND-1 (float64 accumulation), ERR-EXACT-1, DTYPE-1, HYGIENE-1, HYGIENE-2, CONV-GRAD-1,
    # CONVT-GRAD-1, MAXPOOL-GRAD-1, AVGPOOL-GRAD-1
    params = params_type(**kwargs)
    check(BACKEND, op, params, make_arrays(op, params, dtype, seed_of(op, kwargs, dtype)))


# ------------------------------------------------------------------------------------------
# random problems (hypothesis): every feature combined, derived so that each is valid


#: Sizes stay tiny: the backend loops in Python.
CONV_PROBLEMS = conv_problems(max_channels=2, max_kernel=3, max_dilation=2, max_pad=2, max_extra=2, max_batch=2)
CONV_TRANSPOSE_PROBLEMS = conv_transpose_problems(max_channels=2, max_kernel=3, max_dilation=2, max_pad=2, max_extra=2,
                                                  max_batch=2)
MAX_POOL_PROBLEMS = pool_problems(MaxPoolParams, max_kernel=3, max_dilation=2, max_stride=3, max_extra=3, max_batch=2,
                                  max_channels=2)
AVG_POOL_PROBLEMS = pool_problems(AvgPoolParams, max_kernel=3, max_dilation=2, max_stride=3, max_extra=3, max_batch=2,
                                  max_channels=2)


def check_random(op, params, dtype, seed):
    check(BACKEND, op, params, make_arrays(op, params, dtype, seed))


@settings(max_examples=30, deadline=None)
@given(params=CONV_PROBLEMS, dtype=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 2**16))
def test_random_conv_problems(params, dtype, seed):  # CONV-DEF-1, CONV-GRAD-1, PAD-MODE-1
    for op in ("conv", "conv_backward"):
        check_random(op, params, dtype, seed)


@settings(max_examples=30, deadline=None)
@given(params=CONV_TRANSPOSE_PROBLEMS, dtype=st.sampled_from(["float64", "float16"]), seed=st.integers(0, 2**16))
def test_random_conv_transpose_problems(params, dtype, seed):  # CONVT-DEF-1, CONVT-GRAD-1
    for op in ("conv_transpose", "conv_transpose_backward"):
        check_random(op, params, dtype, seed)


@settings(max_examples=30, deadline=None)
@given(params=MAX_POOL_PROBLEMS, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_random_max_pool_problems(params, dtype, seed):  # MAXPOOL-DEF-1, MAXPOOL-GRAD-1, POOL-CEIL-1
    for op in ("max_pool", "max_pool_backward"):
        check_random(op, params, dtype, seed)


@settings(max_examples=30, deadline=None)
@given(params=AVG_POOL_PROBLEMS, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_random_avg_pool_problems(params, dtype, seed):  # AVGPOOL-DEF-1, AVGPOOL-GRAD-1
    for op in ("avg_pool", "avg_pool_backward"):
        check_random(op, params, dtype, seed)


# ------------------------------------------------------------------------------------------
# max pool: ties, NaN and -inf windows


SPECIAL_CASES = [c for c in CASES if "empty-batch" not in c.id and "rank4" not in c.id][::3]


@pytest.mark.parametrize("op, params_type, kwargs", SPECIAL_CASES)
def test_infinities_and_nan_match_the_reference(op, params_type, kwargs):  # ERR-SPECIAL-1, CONV-DEF-1
    check_infinities_and_nan(BACKEND, op, params_type(**kwargs), kwargs)


def test_max_pool_ties_pick_the_first_in_window_order():  # MAXPOOL-TIE-1
    check_max_pool_ties_first(BACKEND)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_ties_everywhere_match_the_reference(dtype):  # MAXPOOL-TIE-1, ERR-EXACT-1
    x = np.random.default_rng(5).integers(0, 3, size=(2, 2, 6, 5)).astype(to_dtype(dtype))
    params = MaxPoolParams(input_shape=x.shape, kernel_size=(3, 2), stride=(1, 2), padding=1, ceil_mode=True)
    dy = np.random.default_rng(6).standard_normal(params.output_shape).astype(x.dtype)
    check(BACKEND, "max_pool", params, {"x": x})
    check(BACKEND, "max_pool_backward", params, {"x": x, "dy": dy})


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_nan_window_gives_nan_and_a_nan_index(dtype):  # MAXPOOL-NAN-1
    check_max_pool_nan_window(BACKEND, dtype)


def test_max_pool_minus_infinity_never_loses_to_padding():  # MAXPOOL-DEF-1, MAXPOOL-INDEX-1
    check_max_pool_minus_infinity_never_loses_to_padding(BACKEND)


def test_max_pool_backward_accumulates_overlapping_windows():  # MAXPOOL-GRAD-1
    check_max_pool_backward_accumulates(BACKEND)


def test_avg_pool_propagates_nan():  # AVGPOOL-DEF-1, ERR-SPECIAL-1
    check_avg_pool_propagates_nan(BACKEND)


# ------------------------------------------------------------------------------------------
# the building blocks


@pytest.mark.parametrize("mode, numpy_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_source_index_is_numpy_pad(mode, numpy_mode):  # PAD-MODE-1, PAD-MODE-2
    for n in range(1, 6):
        largest_pad = {"reflect": n - 1, "replicate": 2 * n + 1, "circular": n}[mode]
        for pad in range(largest_pad + 1):
            expected = np.pad(np.arange(n), pad, mode=numpy_mode)
            got = [source_index(u, n, mode) for u in range(-pad, n + pad)]
            assert got == expected.tolist(), (mode, n, pad)
    assert source_index(-1, 4, "zeros") is None and source_index(4, 4, "zeros") is None


@pytest.mark.skipif(not bfloat16_available(), reason="bfloat16 needs ml_dtypes")
def test_round_to_bfloat16_rounds_once():  # DTYPE-1, DTYPE-2
    bf16 = to_dtype("bfloat16")
    # float64 -> float32 -> bfloat16 would give 1.0 (a tie after the first rounding); once gives 1 + 2^-7
    value = np.array([1 + 2.0**-8 + 2.0**-30, -(1 + 2.0**-8 + 2.0**-30), 1 + 2.0**-8, 3e38, 3.4e38, np.inf, np.nan])
    got = round_to(value, bf16).astype(np.float64)
    assert got[0] == 1 + 2.0**-7 and got[1] == -(1 + 2.0**-7) and got[2] == 1.0  # the exact tie goes to even
    assert np.isfinite(got[3]) and np.isinf(got[4]) and np.isinf(got[5]) and np.isnan(got[6])
    # nearest everywhere: no bfloat16 neighbour is closer
    rng = np.random.default_rng(0)
    values = rng.standard_normal(20000) * np.exp2(rng.integers(-40, 40, 20000))
    rounded = round_to(values, bf16)
    bits = rounded.view(np.uint16)  # neighbours: one unit in the last place up and down
    up = np.where(rounded.astype(np.float64) >= 0, (bits + 1), (bits - 1)).astype(np.uint16).view(bf16)
    down = np.where(rounded.astype(np.float64) >= 0, (bits - 1), (bits + 1)).astype(np.uint16).view(bf16)
    error = np.abs(values - rounded.astype(np.float64))
    assert (error <= np.abs(values - up.astype(np.float64))).all()
    assert (error <= np.abs(values - down.astype(np.float64))).all()


def test_capabilities_declare_float64_accumulation_and_slowness():  # ERR-BOUND-1
    caps = BACKEND.capabilities
    assert isinstance(caps, Capabilities) and BACKEND.name == "naive"
    assert caps.accumulation == "float64" and caps.speed == "slow" and caps.ranks is None
    assert caps.ops == CORE_OPS and not caps.unsupported  # extension ops (lp_pool) are not claimed
    assert ("bfloat16" in caps.dtypes) == bfloat16_available()


def test_invalid_arrays_are_refused():  # LAYOUT-1, DTYPE-1, GRAD-SHAPE-1
    check_invalid_arrays_are_refused(BACKEND)


def test_docstring_examples_run():  # docstring examples are tested
    result = doctest.testmod(naive_module)
    assert result.failed == 0 and result.attempted > 0

