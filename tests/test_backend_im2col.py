"""The im2col backend against the float64 reference: every op and gradient, every feature, ranks 1-4,
float16/bfloat16/float32/float64 within the error bound of ERR-BOUND-1 (declared accumulation: the
input dtype or better), max pool exact, special values; chunking that changes nothing; scratch memory
bounded by the budget; hygiene."""

from __future__ import annotations

import doctest
import importlib
import math
import tracemalloc

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
    run_op,
    seed_of,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import convspec.reference as R
from convspec.backends.base import Capabilities
from convspec.backends.im2col import Im2colBackend, chunks, source_indices, source_runs
from convspec.spec import (
    CORE_OPS,
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    bfloat16_available,
    to_dtype,
)

BACKEND = Im2colBackend()
#: One output position per chunk: the smallest chunks the backend makes.
TINY_BUDGET = Im2colBackend(memory_budget_bytes=1)
DTYPES = ["float64", "float32", "float16"] + (["bfloat16"] if bfloat16_available() else [])
im2col_module = importlib.import_module("convspec.backends.im2col")


def check(backend, op: str, params, arrays: dict) -> dict:
    """check_op with exact indices: this backend picks the reference's NaN of a NaN window too."""
    return check_op(backend, op, params, arrays=arrays, exact_indices=True)


# ------------------------------------------------------------------------------------------
# a table of small problems, one or more features each (clause ids in the ids)

CONV = {
    "rank1-bias-pad-CONV-DEF-1": dict(input_shape=(3, 3, 11), weight_shape=(4, 3, 3), bias_shape=(4,), padding=1),
    "groups-Cout-per-group-3-CONV-GROUPS-1": dict(input_shape=(2, 4, 7, 6), weight_shape=(6, 2, 3, 2),
                                                  bias_shape=(6,), groups=2, padding=1),
    "depthwise-CONV-GROUPS-1": dict(input_shape=(2, 3, 6, 5), weight_shape=(6, 1, 3, 3), groups=3, padding=1),
    "dilation-CONV-DEF-1": dict(input_shape=(2, 2, 9, 8), weight_shape=(3, 2, 2, 3), dilation=(3, 2), padding=2),
    "stride-over-kernel-CONV-SHAPE-1": dict(input_shape=(2, 2, 11, 9), weight_shape=(3, 2, 2, 2), stride=(3, 4),
                                            padding=((1, 0), (0, 2))),
    "asymmetric-pads-PAD-1": dict(input_shape=(2, 2, 6, 5), weight_shape=(2, 2, 3, 2), padding=((2, 0), (1, 3))),
    "pad-beyond-kernel-PAD-2": dict(input_shape=(1, 2, 4, 4), weight_shape=(2, 2, 2, 2), padding=((3, 4), (0, 5)),
                                    stride=2),
    "same-lower-strided-PAD-5": dict(input_shape=(2, 2, 7, 6), weight_shape=(2, 2, 4, 3), stride=2,
                                     padding="same_lower"),
    "same-upper-PAD-4": dict(input_shape=(2, 2, 7), weight_shape=(2, 2, 4), padding="same"),
    "reflect-PAD-MODE-1": dict(input_shape=(2, 2, 6, 5), weight_shape=(2, 2, 3, 3), padding=((2, 1), (4, 1)),
                               padding_mode="reflect", bias_shape=(2,)),
    "replicate-PAD-MODE-1": dict(input_shape=(2, 2, 3, 5), weight_shape=(2, 2, 2, 3), padding=((4, 1), (1, 2)),
                                 padding_mode="replicate", stride=(1, 2)),
    "circular-PAD-MODE-1": dict(input_shape=(2, 4, 4, 3), weight_shape=(4, 2, 3, 2), padding=((4, 2), (1, 3)),
                                padding_mode="circular", groups=2, dilation=(1, 2)),
    "pointwise-CONV-DEF-1": dict(input_shape=(2, 4, 64, 65), weight_shape=(6, 2, 1, 1), groups=2, bias_shape=(6,)),
    "pointwise-small-CONV-DEF-1": dict(input_shape=(3, 4, 5, 3), weight_shape=(5, 4, 1, 1)),
    "rank3-CONV-DEF-1": dict(input_shape=(2, 2, 5, 4, 5), weight_shape=(3, 2, 2, 2, 3), stride=(1, 2, 1),
                             padding=((1, 0), (1, 1), (0, 2)), dilation=(1, 1, 2), bias_shape=(3,)),
    "rank3-circular-PAD-MODE-1": dict(input_shape=(1, 2, 3, 4, 4), weight_shape=(2, 2, 2, 3, 2), padding=1,
                                      padding_mode="circular"),
    "rank4-CONV-DEF-1": dict(input_shape=(2, 1, 3, 3, 4, 2), weight_shape=(2, 1, 2, 1, 2, 2),
                             padding=((1, 0),) * 4, stride=(1, 2, 1, 1)),
    "empty-batch-LAYOUT-1": dict(input_shape=(0, 2, 5, 4), weight_shape=(2, 2, 3, 3), bias_shape=(2,), padding=1),
}

CONV_TRANSPOSE = {
    "rank1-output-padding-CONVT-DEF-1": dict(input_shape=(2, 3, 6), weight_shape=(3, 2, 3), bias_shape=(2,),
                                             stride=2, padding=1, output_padding=1),
    "groups-dilation-asymmetric-CONVT-SHAPE-1": dict(input_shape=(2, 4, 5, 4), weight_shape=(4, 3, 3, 2),
                                                     bias_shape=(6,), stride=(2, 3), padding=((1, 0), (2, 1)),
                                                     output_padding=(1, 2), dilation=(1, 2), groups=2),
    "depthwise-CONVT-PARAM-1": dict(input_shape=(2, 3, 4, 5), weight_shape=(3, 1, 2, 3), groups=3, stride=1,
                                    dilation=(2, 3), output_padding=(1, 2)),
    "stride-over-kernel-CONVT-SHAPE-1": dict(input_shape=(2, 2, 3, 4), weight_shape=(2, 2, 2, 1), stride=(3, 4)),
    "pads-beyond-kernel-CONVT-SHAPE-1": dict(input_shape=(1, 2, 6, 5), weight_shape=(2, 2, 2, 2), stride=2,
                                             padding=((3, 2), (0, 4))),
    "pointwise-CONVT-DEF-1": dict(input_shape=(2, 4, 64, 65), weight_shape=(4, 3, 1, 1), bias_shape=(3,)),
    "rank3-CONVT-DEF-1": dict(input_shape=(2, 2, 3, 3, 2), weight_shape=(2, 2, 2, 2, 2), stride=(2, 1, 2),
                              padding=((0, 1), (1, 0), (0, 0)), output_padding=(1, 0, 1)),
    "rank4-CONVT-DEF-1": dict(input_shape=(1, 2, 2, 3, 2, 2), weight_shape=(2, 1, 2, 2, 1, 2), stride=2),
    "empty-batch-LAYOUT-1": dict(input_shape=(0, 2, 4), weight_shape=(2, 3, 3), bias_shape=(3,), stride=2),
}

MAX_POOL = {
    "rank1-ceil-overhang-POOL-CEIL-1": dict(input_shape=(2, 2, 10), kernel_size=3, stride=2, padding=1,
                                            ceil_mode=True),
    "rank2-dilation-asymmetric-MAXPOOL-DEF-1": dict(input_shape=(2, 2, 9, 8), kernel_size=(2, 3), stride=(2, 1),
                                                    padding=((1, 0), (2, 1)), dilation=(2, 1)),
    "stride-over-kernel-POOL-SHAPE-1": dict(input_shape=(2, 2, 11, 9), kernel_size=2, stride=3, ceil_mode=True),
    "big-pad-same-lower-POOL-WINDOW-1": dict(input_shape=(2, 1, 6, 5), kernel_size=(4, 3), padding="same_lower"),
    "rank3-MAXPOOL-INDEX-1": dict(input_shape=(2, 2, 5, 4, 5), kernel_size=(2, 2, 3), stride=(2, 1, 2), padding=1,
                                  ceil_mode=True),
    "rank4-MAXPOOL-INDEX-1": dict(input_shape=(1, 2, 3, 4, 3, 3), kernel_size=2, stride=1, padding=1),
    "empty-batch-LAYOUT-1": dict(input_shape=(0, 2, 5, 5), kernel_size=2),
}

AVG_POOL = {
    "rank1-include-pad-ceil-AVGPOOL-DEF-1": dict(input_shape=(2, 2, 10), kernel_size=3, stride=2, padding=1,
                                                 ceil_mode=True, count_include_pad=True),
    "rank1-exclude-pad-ceil-AVGPOOL-DEF-1": dict(input_shape=(2, 2, 10), kernel_size=3, stride=2, padding=1,
                                                 ceil_mode=True, count_include_pad=False),
    "rank2-divisor-override-AVGPOOL-PARAM-1": dict(input_shape=(2, 2, 7, 6), kernel_size=(3, 2), padding=1,
                                                   count_include_pad=True, divisor_override=5),
    "rank2-dilation-asymmetric-AVGPOOL-DEF-1": dict(input_shape=(2, 2, 9, 8), kernel_size=(2, 3), stride=(2, 1),
                                                    padding=((1, 0), (2, 1)), dilation=(2, 1),
                                                    count_include_pad=True),
    "rank3-AVGPOOL-DEF-1": dict(input_shape=(2, 1, 5, 6, 4), kernel_size=(2, 3, 2), stride=(1, 2, 2), padding=1,
                                ceil_mode=True, count_include_pad=False),
    "empty-batch-LAYOUT-1": dict(input_shape=(0, 2, 5, 5), kernel_size=2, count_include_pad=False),
}

CASES = family_cases(conv=CONV, conv_transpose=CONV_TRANSPOSE, max_pool=MAX_POOL, avg_pool=AVG_POOL)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("op, params_type, kwargs", CASES)
def test_matches_reference_within_error_bound(op, params_type, kwargs, dtype):
    # ERR-BOUND-1, ERR-EXACT-1, DTYPE-1, HYGIENE-1, HYGIENE-2, CONV-GRAD-1, CONVT-GRAD-1,
    # MAXPOOL-GRAD-1, AVGPOOL-GRAD-1
    params = params_type(**kwargs)
    check(BACKEND, op, params, make_arrays(op, params, dtype, seed_of(op, kwargs, dtype)))


@pytest.mark.parametrize("op, params_type, kwargs", CASES)
def test_one_position_per_chunk_matches_reference_too(op, params_type, kwargs):  # ERR-BOUND-1
    params = params_type(**kwargs)
    check(TINY_BUDGET, op, params, make_arrays(op, params, "float32", seed_of(op, kwargs)))


# ------------------------------------------------------------------------------------------
# chunking changes nothing


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("op, params_type, kwargs", CASES)
def test_chunking_gives_identical_results(op, params_type, kwargs, dtype):  # HYGIENE-3, ERR-EXACT-1
    # small integers: every sum is exact, so any chunking and summation order gives the same bits
    params = params_type(**kwargs)
    arrays = make_arrays(op, params, dtype, seed_of(op, kwargs), integers=True)
    if op == "avg_pool_backward":  # multiples of lcm(1..12) keep every dy / divisor an integer
        arrays["dy"] = arrays["dy"] * arrays["dy"].dtype.type(27720)
    whole = run_op(Im2colBackend(memory_budget_bytes=2**30), op, params, arrays)
    for budget in (1, 200, 3000):
        chunked = run_op(Im2colBackend(memory_budget_bytes=budget), op, params, arrays)
        for name, out in whole.items():
            if out is None:
                assert chunked[name] is None
                continue
            assert np.array_equal(np.asarray(chunked[name]), np.asarray(out)), f"{name} differs at budget {budget}"


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(0, 3), out=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       per_position=st.integers(1, 50), overhead=st.integers(0, 100), budget=st.integers(1, 3000))
def test_chunks_cover_every_position_once_within_budget(batch, out, per_position, overhead, budget):
    out = tuple(out)

    def cost(images, shape):
        return images * (math.prod(shape) * per_position + overhead)

    seen = np.zeros((batch, *out), dtype=int)
    for (n0, n1), box in chunks(batch, out, cost, budget):
        shape = tuple(b - a for a, b in box)
        seen[(slice(n0, n1), *(slice(a, b) for a, b in box))] += 1
        # the budget holds unless the chunk is one output position already
        assert cost(n1 - n0, shape) <= budget or (n1 - n0 == 1 and math.prod(shape) == 1)
    assert (seen == 1).all()


@pytest.mark.parametrize("mode, numpy_mode", [("reflect", "reflect"), ("replicate", "edge"), ("circular", "wrap")])
def test_padded_region_runs_rebuild_numpy_pad(mode, numpy_mode):  # PAD-MODE-1, PAD-MODE-2
    for n in range(1, 6):
        largest_pad = {"reflect": n - 1, "replicate": 2 * n + 1, "circular": n}[mode]
        for before in range(largest_pad + 1):
            for after in range(largest_pad + 1):
                x = np.arange(n) * 10
                src = source_indices(np.arange(-before, n + after), n, mode)
                region = np.empty(n + before + after, dtype=x.dtype)
                for region_slice, source_slice in source_runs(src):
                    region[region_slice] = x[source_slice]
                np.testing.assert_array_equal(region, np.pad(x, (before, after), mode=numpy_mode))


# ------------------------------------------------------------------------------------------
# scratch memory stays within the budget


def traced_peak(function):
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        result = function()
        return result, tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()


MEMORY_CASES = {
    "conv-zeros": (ConvParams(input_shape=(4, 16, 32, 32), weight_shape=(16, 16, 3, 3), padding=1), "conv"),
    "conv-reflect-backward": (ConvParams(input_shape=(4, 16, 32, 32), weight_shape=(16, 16, 3, 3), padding=1,
                                         padding_mode="reflect", bias_shape=(16,)), "conv_backward"),
    "conv-transpose": (ConvTransposeParams(input_shape=(4, 16, 16, 16), weight_shape=(16, 16, 3, 3), stride=2,
                                           padding=1, output_padding=1), "conv_transpose"),
    "conv-transpose-backward": (ConvTransposeParams(input_shape=(4, 16, 16, 16), weight_shape=(16, 16, 3, 3),
                                                    stride=2, padding=1, output_padding=1), "conv_transpose_backward"),
    "max-pool": (MaxPoolParams(input_shape=(4, 16, 32, 32), kernel_size=3, stride=1, padding=1), "max_pool"),
    "max-pool-backward": (MaxPoolParams(input_shape=(4, 16, 32, 32), kernel_size=3, stride=1, padding=1),
                          "max_pool_backward"),
    "avg-pool-backward": (AvgPoolParams(input_shape=(4, 16, 32, 32), kernel_size=3, stride=1, padding=1,
                                        count_include_pad=False), "avg_pool_backward"),
}


@pytest.mark.parametrize("name", MEMORY_CASES)
def test_peak_scratch_memory_is_bounded_by_the_budget(name):
    params, op = MEMORY_CASES[name]
    budget = 64 * 2**10
    arrays = make_arrays(op, params, "float32", 0)
    outputs, peak = traced_peak(lambda: run_op(Im2colBackend(memory_budget_bytes=budget), op, params, arrays))
    output_bytes = sum(np.asarray(a).nbytes for a in outputs.values() if a is not None)
    input_bytes = sum(a.nbytes for a in arrays.values() if a is not None)
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        # what a one-chunk im2col would hold: the whole column matrix, far above the budget
        positions = params.output_shape[0] * math.prod(params.output_shape[2:])
        columns = positions * (params.input_shape[1] if isinstance(params, ConvParams) else params.output_shape[1])
        assert columns * math.prod(params.kernel_size) * 4 > 10 * budget
    slack = 32 * 2**10
    assert peak <= budget + input_bytes + output_bytes + slack, (
        f"peak {peak} bytes > budget {budget} + inputs {input_bytes} + outputs {output_bytes} + slack {slack}"
    )


# ------------------------------------------------------------------------------------------
# random problems (hypothesis): every feature combined, derived so that each is valid


#: Sizes large enough for several chunks.
CONV_PROBLEMS = conv_problems(max_channels=3, max_kernel=4, max_dilation=3, max_pad=3, max_extra=5, max_batch=3)
CONV_TRANSPOSE_PROBLEMS = conv_transpose_problems(max_channels=3, max_kernel=4, max_dilation=3, max_pad=3, max_extra=4,
                                                  max_batch=3)
MAX_POOL_PROBLEMS = pool_problems(MaxPoolParams, max_kernel=4, max_dilation=3, max_stride=4, max_extra=5, max_batch=3,
                                  max_channels=3)
AVG_POOL_PROBLEMS = pool_problems(AvgPoolParams, max_kernel=4, max_dilation=3, max_stride=4, max_extra=5, max_batch=3,
                                  max_channels=3)


def check_random(op, params, dtype, seed, budget):
    check(Im2colBackend(memory_budget_bytes=budget), op, params, make_arrays(op, params, dtype, seed))


BUDGETS = st.sampled_from([1, 500, 2**30])


@settings(max_examples=40, deadline=None)
@given(params=CONV_PROBLEMS, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16), budget=BUDGETS)
def test_random_conv_problems(params, dtype, seed, budget):  # CONV-DEF-1, CONV-GRAD-1, PAD-MODE-1
    for op in ("conv", "conv_backward"):
        check_random(op, params, dtype, seed, budget)


@settings(max_examples=40, deadline=None)
@given(params=CONV_TRANSPOSE_PROBLEMS, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16),
       budget=BUDGETS)
def test_random_conv_transpose_problems(params, dtype, seed, budget):  # CONVT-DEF-1, CONVT-GRAD-1
    for op in ("conv_transpose", "conv_transpose_backward"):
        check_random(op, params, dtype, seed, budget)


@settings(max_examples=40, deadline=None)
@given(params=MAX_POOL_PROBLEMS, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16),
       budget=BUDGETS)
def test_random_max_pool_problems(params, dtype, seed, budget):  # MAXPOOL-DEF-1, MAXPOOL-GRAD-1, POOL-CEIL-1
    for op in ("max_pool", "max_pool_backward"):
        check_random(op, params, dtype, seed, budget)


@settings(max_examples=40, deadline=None)
@given(params=AVG_POOL_PROBLEMS, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16),
       budget=BUDGETS)
def test_random_avg_pool_problems(params, dtype, seed, budget):  # AVGPOOL-DEF-1, AVGPOOL-GRAD-1
    for op in ("avg_pool", "avg_pool_backward"):
        check_random(op, params, dtype, seed, budget)


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
    x = np.random.default_rng(5).integers(0, 3, size=(2, 3, 9, 8)).astype(to_dtype(dtype))
    params = MaxPoolParams(input_shape=x.shape, kernel_size=(3, 2), stride=(1, 2), padding=1, ceil_mode=True,
                           dilation=(1, 2))
    dy = np.random.default_rng(6).standard_normal(params.output_shape).astype(x.dtype)
    for backend in (BACKEND, TINY_BUDGET):
        check(backend, "max_pool", params, {"x": x})
        check(backend, "max_pool_backward", params, {"x": x, "dy": dy})


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_nan_window_gives_nan_and_a_nan_index(dtype):  # MAXPOOL-NAN-1
    check_max_pool_nan_window(BACKEND, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool_nan_and_infinities_match_the_reference(dtype):  # MAXPOOL-NAN-1, MAXPOOL-DEF-1, ERR-SPECIAL-1
    rng = np.random.default_rng(7)
    x = rng.choice(np.array([np.nan, -np.inf, np.inf, 0.0, -1.0]), size=(2, 2, 7, 6), p=[0.1, 0.5, 0.1, 0.2, 0.1])
    x = x.astype(to_dtype(dtype))
    params = MaxPoolParams(input_shape=x.shape, kernel_size=3, stride=(2, 1), padding=1, ceil_mode=True)
    y, indices = BACKEND.max_pool(x, params)
    ref_y, ref_indices = R.max_pool(x, params)
    assert np.array_equal(y.astype(np.float64), ref_y, equal_nan=True)
    nan = np.isnan(ref_y)  # MAXPOOL-NAN-1 asks for "one of" the NaNs; elsewhere the index is exact
    np.testing.assert_array_equal(indices[~nan], ref_indices[~nan])
    planes = x.reshape(4, -1).astype(np.float64)
    assert np.isnan(np.take_along_axis(planes, indices.reshape(4, -1), axis=1)[nan.reshape(4, -1)]).all()


def test_max_pool_minus_infinity_never_loses_to_padding():  # MAXPOOL-DEF-1, MAXPOOL-INDEX-1
    check_max_pool_minus_infinity_never_loses_to_padding(BACKEND)


def test_max_pool_backward_accumulates_overlapping_windows():  # MAXPOOL-GRAD-1
    check_max_pool_backward_accumulates(BACKEND)


def test_avg_pool_propagates_nan():  # AVGPOOL-DEF-1, ERR-SPECIAL-1
    check_avg_pool_propagates_nan(BACKEND)


# ------------------------------------------------------------------------------------------
# hygiene, capabilities, arguments


def test_non_contiguous_inputs_give_the_same_results():  # HYGIENE-1, CONV-DEF-1
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 9, 16)).astype(np.float32)[:, :, :, ::2]  # a strided view
    w = np.asfortranarray(rng.standard_normal((6, 2, 3, 3)).astype(np.float32))
    params = ConvParams(input_shape=x.shape, weight_shape=w.shape, groups=2, padding=1)
    dy = rng.standard_normal(params.output_shape).astype(np.float32).transpose(1, 0, 2, 3).copy().transpose(1, 0, 2, 3)
    contiguous = (np.ascontiguousarray(x), np.ascontiguousarray(w), np.ascontiguousarray(dy))
    assert np.array_equal(BACKEND.conv(x, w, None, params), BACKEND.conv(*contiguous[:2], None, params))
    for got, want in zip(BACKEND.conv_backward(x, w, dy, params)[:2], BACKEND.conv_backward(*contiguous, params)[:2]):
        assert np.array_equal(got, want)


def test_repeated_calls_are_bitwise_identical():  # HYGIENE-3
    params = ConvParams(input_shape=(2, 3, 9, 9), weight_shape=(4, 3, 3, 3), padding=1, bias_shape=(4,))
    arrays = make_arrays("conv_backward", params, "float32", 1)
    first = run_op(BACKEND, "conv_backward", params, arrays)
    second = run_op(BACKEND, "conv_backward", params, arrays)
    assert all(np.array_equal(first[name], second[name]) for name in first)


def test_capabilities_declare_half_types_accumulated_in_float32():  # ERR-BOUND-1
    caps = BACKEND.capabilities
    assert isinstance(caps, Capabilities) and BACKEND.name == "im2col"
    assert [caps.accumulation_for(d) for d in ("float16", "bfloat16", "float32", "float64")] == [
        "float32", "float32", "float32", "float64"]
    assert caps.speed == "fast" and caps.ranks is None and caps.deterministic
    assert caps.ops == CORE_OPS and not caps.unsupported  # extension ops (lp_pool) are not claimed
    assert ("bfloat16" in caps.dtypes) == bfloat16_available()


@pytest.mark.parametrize("budget", [0, -1, 1.5, True, "1MB"])
def test_invalid_memory_budget_is_refused(budget):
    with pytest.raises(ValueError, match="memory_budget_bytes"):
        Im2colBackend(memory_budget_bytes=budget)


def test_invalid_arrays_are_refused():  # LAYOUT-1, DTYPE-1, GRAD-SHAPE-1
    check_invalid_arrays_are_refused(BACKEND)


def test_docstring_examples_run():  # docstring examples are tested
    result = doctest.testmod(im2col_module)
    assert result.failed == 0 and result.attempted > 0


def test_half_types_really_accumulate_in_float32():  # ERR-BOUND-1: the declaration is true
    """2048 + sixteen 1s: float16 accumulation stays at 2048 (its spacing there is 2); float32
    accumulation reaches 2064, which float16 holds exactly."""
    x = np.array([[[2048.0] + [1.0] * 16]], dtype=np.float16)
    w = np.ones((1, 1, 17), dtype=np.float16)
    y = BACKEND.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    assert y.dtype == np.float16 and float(y[0, 0, 0]) == 2064.0
