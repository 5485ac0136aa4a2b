"""ScipyBackend against the float64 reference (convspec.reference).

Every op and gradient on ranks 1, 2, 3 (and 4: SciPy is rank-generic) with groups, depthwise,
dilation, stride > kernel, asymmetric and 'same_lower' pads, every padding mode, output_padding,
ceil-mode overhang, count_include_pad both ways, divisor_override and N = 0. Linear ops must lie
within ERR-BOUND-1, |out − ref| ≤ (2·K·u + u)·mag + tiny, with mag = op(|x|, |w|, |b|) from
``reference.magnitude`` and K from ``terms_per_output``; max pool values and indices must match
exactly (ERR-EXACT-1), a NaN window's index must point at a NaN of that window (MAXPOOL-NAN-1).
"""

from __future__ import annotations

import doctest
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from backend_checks import (
    AVG_VARIANTS,
    CONV_CASES,
    CONVT_CASES,
    POOL_CASES,
    assert_within_bound,
    check_conv_and_its_transpose,
    check_max_pool_minus_inf_windows,
    check_max_pool_nan_windows,
    check_max_pool_ties,
    check_mismatched_arrays_are_refused,
    check_op,
    check_op_and_gradient,
    check_pools,
    check_repeated_calls_bitwise_identical,
    conv_params,
    engine_model,
    make_arrays,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from convspec import reference
from convspec.backends import scipy_backend
from convspec.backends.scipy_backend import ScipyBackend
from convspec.spec import (
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
)
from convspec.conformance.cases import Case
from convspec.spec.accuracy import error_bound

ROOT = Path(__file__).resolve().parents[1]
DIRECT = ScipyBackend()
FFT = ScipyBackend(method="fft")


# -- the cases -------------------------------------------------------------------------------------

#: backend_checks' rank 1-3 cases (shared with the torch tests) and one of rank 4 per family.
CONV_CASES = {**CONV_CASES,  # SciPy is rank-generic: rank 4 too
    "4d": dict(input_shape=(1, 2, 3, 4, 3, 3), weight_shape=(2, 2, 2, 2, 1, 2), padding=((1, 0), (0, 0), (0, 1), (1, 1))),
}

CONVT_CASES = {**CONVT_CASES,  # SciPy is rank-generic: rank 4 too
    "4d": dict(input_shape=(1, 2, 2, 3, 2, 2), weight_shape=(2, 1, 2, 1, 2, 2), stride=(2, 1, 1, 2),
               padding=((1, 0), (0, 0), (0, 1), (1, 1)), output_padding=(1, 0, 0, 1)),
}

POOL_CASES = {**POOL_CASES,  # SciPy is rank-generic: rank 4 too
    "4d": dict(input_shape=(1, 1, 3, 4, 3, 3), kernel_size=2, stride=(1, 2, 2, 1), padding=((1, 0), (0, 0), (1, 1), (0, 1)),
               ceil_mode=True),
}


# -- conv and conv_transpose ----------------------------------------------------------------------

@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_and_its_gradients_match_the_reference(case):  # CONV-DEF-1, CONV-GRAD-1, PAD-MODE-1, PAD-5
    params = ConvParams(**CONV_CASES[case])
    check_op_and_gradient(DIRECT, "conv", params)


@pytest.mark.parametrize("case", CONVT_CASES)
def test_conv_transpose_and_its_gradients_match_the_reference(case):  # CONVT-DEF-1, CONVT-GRAD-1
    params = ConvTransposeParams(**CONVT_CASES[case])
    check_op_and_gradient(DIRECT, "conv_transpose", params)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("case", ["2d-groups-same-lower-strided", "3d-reflect-grouped", "1d-circular-pad-n"])
def test_conv_in_every_dtype(case, dtype):  # DTYPE-1, ERR-BOUND-1
    params = ConvParams(**CONV_CASES[case])
    check_op_and_gradient(DIRECT, "conv", params, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_conv_transpose_in_every_dtype(dtype):  # DTYPE-1, CONVT-DEF-1
    params = ConvTransposeParams(**CONVT_CASES["2d-groups-dilated"])
    check_op_and_gradient(DIRECT, "conv_transpose", params, dtype)


def test_half_precision_is_computed_in_float32_and_rounded_once():  # DTYPE-1, ERR-BOUND-1
    # 2048 + 1 + ... + 1 (32 ones) is 2080 with float32 accumulation; float16 accumulation stays at 2048.
    x = np.array([[[2048.0] + [1.0] * 32]], dtype=np.float16)
    w = np.ones((1, 1, 33), dtype=np.float16)
    y = DIRECT.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    assert y.dtype == np.float16 and float(y[0, 0, 0]) == 2080.0


def test_float32_accumulates_in_float32():  # ERR-BOUND-1: the declared accumulation is real
    x = np.array([[[2.0**24] + [1.0] * 16]], dtype=np.float32)
    w = np.ones((1, 1, 17), dtype=np.float32)
    y = DIRECT.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    assert float(y[0, 0, 0]) == 2.0**24  # each + 1 rounds back to 2**24 in float32
    assert DIRECT.capabilities.accumulation_for("float32") == "float32"
    assert DIRECT.capabilities.accumulation_for("float16") == "float32"  # see the half-precision test above


# -- the FFT variant -------------------------------------------------------------------------------

def test_fft_variant_declares_itself_non_local():  # ERR-NONLOCAL-1
    assert FFT.name == "scipy:fft" and FFT.capabilities.local is False
    assert DIRECT.name == "scipy" and DIRECT.capabilities.local is True
    with pytest.raises(ValueError, match="method"):
        ScipyBackend(method="winograd")


@pytest.mark.parametrize("case", ["2d-groups-same-lower-strided", "3d-circular", "1d-reflect-pad-n-1"])
def test_fft_conv_within_the_non_local_bound(case):  # ERR-NONLOCAL-1
    params = ConvParams(**CONV_CASES[case])
    check_op_and_gradient(FFT, "conv", params)


@pytest.mark.parametrize("case", ["2d-depthwise", "3d-asymmetric-strided", "3d-symmetric"])
def test_fft_conv_transpose_within_the_non_local_bound(case):  # ERR-NONLOCAL-1
    params = ConvTransposeParams(**CONVT_CASES[case])
    check_op_and_gradient(FFT, "conv_transpose", params)


# ERR-NONLOCAL-1: an FFT's rounding is spread over the whole output and grows with the transform
# length, which the uniform magnitude and the ⌈log2 L⌉ terms of the clause account for.

def test_fft_meets_the_non_local_bound_with_few_terms_on_long_signals():  # ERR-NONLOCAL-1
    params = ConvParams(input_shape=(1, 1, 2**15), weight_shape=(1, 1, 2))
    for seed in range(3):
        check_op(FFT, "conv", params, "float64", seed=seed)


def test_fft_noise_on_outputs_that_no_term_reaches_is_within_the_bound():  # ERR-NONLOCAL-1, ERR-SPECIAL-1
    check_op(FFT, "conv_transpose", ConvTransposeParams(**CONVT_CASES["2d-groups-dilated"]))


def test_fft_meets_the_bound_where_an_output_gets_few_terms():  # ERR-NONLOCAL-1
    check_op(FFT, "conv_transpose", ConvTransposeParams(**CONVT_CASES["1d-stride-output-padding-asymmetric"]))


# -- pooling ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_and_its_gradient_match_the_reference(case):  # MAXPOOL-DEF-1, MAXPOOL-GRAD-1, POOL-CEIL-1
    params = MaxPoolParams(**POOL_CASES[case])
    check_op_and_gradient(DIRECT, "max_pool", params)


@pytest.mark.parametrize("variant", AVG_VARIANTS)
@pytest.mark.parametrize("case", POOL_CASES)
def test_avg_pool_and_its_gradient_match_the_reference(case, variant):  # AVGPOOL-DEF-1, AVGPOOL-GRAD-1
    params = AvgPoolParams(**POOL_CASES[case], **AVG_VARIANTS[variant])
    check_op_and_gradient(DIRECT, "avg_pool", params)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_pools_in_every_dtype(dtype):  # DTYPE-1
    for case in ("2d-asymmetric-ceil", "3d-asymmetric-ceil"):
        check_op_and_gradient(DIRECT, "max_pool", MaxPoolParams(**POOL_CASES[case]), dtype)
        avg = AvgPoolParams(**POOL_CASES[case], count_include_pad=True)
        check_op_and_gradient(DIRECT, "avg_pool", avg, dtype)


@pytest.mark.parametrize("case", ["1d-ceil-overhang", "2d-asymmetric-ceil", "2d-pad-over-half-kernel",
                                  "2d-dilated-ceil", "3d-asymmetric-ceil"])
def test_max_pool_ties_take_the_first_in_row_major_window_order(case):  # MAXPOOL-TIE-1, MAXPOOL-INDEX-1
    check_max_pool_ties(DIRECT, MaxPoolParams(**POOL_CASES[case]))


@pytest.mark.parametrize("case", ["1d-ceil-overhang", "2d-pad-over-half-kernel", "2d-dilated-ceil", "3d-asymmetric-ceil"])
def test_max_pool_all_minus_inf_windows_never_select_padding(case):  # MAXPOOL-DEF-1, MAXPOOL-TIE-1
    check_max_pool_minus_inf_windows(DIRECT, MaxPoolParams(**POOL_CASES[case]))


@pytest.mark.parametrize("case", ["1d-ceil-overhang", "2d-asymmetric-ceil", "2d-dilated-ceil", "3d-asymmetric-ceil"])
def test_max_pool_nan_windows_give_nan_and_the_index_of_a_nan(case):  # MAXPOOL-NAN-1
    check_max_pool_nan_windows(DIRECT, MaxPoolParams(**POOL_CASES[case]))


def test_max_pool_signed_zero_ties_return_the_first_element():  # MAXPOOL-TIE-1, ERR-EXACT-1
    x = np.array([[[-0.0, 0.0, 0.0, -0.0]]], dtype=np.float32)
    y, indices = DIRECT.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=2))
    assert indices.tolist() == [[[0, 2]]]
    assert np.signbit(y).tolist() == [[[True, False]]]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf + (-inf) on purpose
def test_avg_pool_propagates_nan_and_inf_but_not_through_dilation_holes():  # AVGPOOL-DEF-1, ERR-SPECIAL-1
    params = AvgPoolParams(input_shape=(1, 1, 7), kernel_size=2, stride=1, dilation=2, count_include_pad=False)
    x = np.array([[[1.0, np.nan, 2.0, 3.0, np.inf, 4.0, -np.inf]]], dtype=np.float32)
    y = check_op(DIRECT, "avg_pool", params, arrays={"x": x})["y"]
    assert np.isnan(y[0, 0, 1]) and y[0, 0, 0] == 1.5 and y[0, 0, 2] == np.inf and np.isnan(y[0, 0, 4])


# -- special values: IEEE semantics per term (CONV-DEF-1, ERR-SPECIAL-1) --------------------------
#
# A NaN or ±∞ may only reach the outputs whose sum has a term holding it. Zero-stuffing (dilation,
# stride) adds terms NaN · 0 and ±∞ · 0 = NaN that the spec does not have, an FFT spreads every
# input over every output; both variants must place every special value exactly as the reference.

SPECIAL_CLASSES = {0: "finite", 1: "NaN", 2: "+inf", 3: "-inf"}


def special_class(a: np.ndarray) -> np.ndarray:
    """0 finite, 1 NaN, 2 +inf, 3 −inf, per element."""
    a = np.asarray(a).astype(np.float64)
    return np.select([np.isnan(a), a == np.inf, a == -np.inf], [1, 2, 3], 0)


def assert_specials_placed(label: str, out: np.ndarray, ref: np.ndarray, nan_ok: np.ndarray | None = None) -> None:
    """ERR-SPECIAL-1 both ways: NaN exactly where the reference is NaN, the same infinity where it
    is infinite, a finite value everywhere else (an infinite bound must not excuse a stray NaN);
    where ``nan_ok`` is true NaN is accepted in place of the strict value (CONV-GRAD-1, CONVT-GRAD-1)."""
    got, want = special_class(out), special_class(ref)
    if nan_ok is not None:
        got = np.where(nan_ok & (got == 1), want, got)
    if not np.array_equal(got, want):
        where = tuple(int(i) for i in np.argwhere(got != want)[0])
        pytest.fail(f"{label}: {int((got != want).sum())} of {got.size} elements misplace a special value; first at "
                    f"{where}: got {SPECIAL_CLASSES[int(got[where])]} ({np.asarray(out)[where]!r}), reference "
                    f"{SPECIAL_CLASSES[int(want[where])]} ({ref[where]!r})")


def check_special(backend: Any, op: str, params: Any, arrays: dict[str, Any]) -> dict[str, Any]:
    """check_op (the engine's error model), then the exact placement of every special value, then
    the finite outputs against the bound of the same problem with every non-finite input set to 0.

    An output whose reference is finite has no special term, so its sum is that of the zeroed
    problem; for the FFT variant the non-local magnitude of the zeroed problem is the model of the
    finite part (with an infinite operand the engine's non-local bound is infinite everywhere)."""
    dtype = np.asarray(arrays["x"]).dtype.name
    got = check_op(backend, op, params, dtype, arrays=arrays)
    ref = reference.evaluate(op, arrays, params)
    nan_ok = reference.zero_extension_nan(op, arrays, params)
    zeroed = {name: None if a is None else np.where(np.isfinite(a), a, 0).astype(a.dtype) for name, a in arrays.items()}
    ref_zeroed = reference.evaluate(op, zeroed, params)
    mag, k = engine_model(backend, op, zeroed, params)
    caps = backend.capabilities
    for name in OPS[op].outputs:
        if ref[name] is None:
            continue
        label = f"{backend.name} {op} {name}"
        assert_specials_placed(label, got[name], ref[name], nan_ok[name])
        finite = np.isfinite(ref[name]) & np.isfinite(np.asarray(got[name], dtype=np.float64))
        bound = error_bound(mag[name], k[name], out_dtype=dtype,
                            accumulation=caps.accumulation_for(dtype), input_precision=caps.input_precision)
        assert_within_bound(f"{label} (finite outputs)", np.where(finite, got[name], 0),
                            np.where(finite, ref_zeroed[name], 0), bound)
    return got


def with_specials(a: np.ndarray, recipe: str, rng: np.random.Generator) -> np.ndarray:
    """a with NaN ("nan"), ±∞ ("inf") or −∞ ("neg_inf") at random positions, at least one."""
    u = rng.random(a.shape)
    u.flat[rng.integers(a.size)] = 0.0
    out = a.copy()
    if recipe == "nan":
        out[u < 0.15] = np.nan
    elif recipe == "inf":
        out[u < 0.08] = np.inf
        out[(u >= 0.08) & (u < 0.16)] = -np.inf
        out.flat[int(np.argmin(u))] = np.inf
    else:
        out[u < 0.3] = -np.inf
    return out


def special_arrays(op: str, params: Any, recipe: str, operands: tuple[str, ...], dtype: str = "float32",
                   seed: int = 0) -> dict[str, Any]:
    """The op's arrays with special values in ``operands`` and about a quarter exact zeros in the
    others (so ±∞ · 0 = NaN terms occur besides those with padding zeros); the bias stays finite."""
    rng = np.random.default_rng(seed)
    arrays = make_arrays(op, params, dtype, rng)
    for name, a in arrays.items():
        if a is None or name == "b":
            continue
        if name in operands:
            arrays[name] = with_specials(a, recipe, rng)
        else:
            arrays[name] = np.where(rng.random(a.shape) < 0.25, 0, a).astype(a.dtype)
    return arrays


REPORTED_SPECIAL_CASES = {
    # a NaN met a stuffed dilation zero: y[1, 0, 0] reads x[1, 0, 0] and x[1, 0, 2], both finite
    "conv-dilation": ("conv x=2,1,4 w=1,1,2 s=1 p=0:0 d=2 g=1 dtype=float32 data=nan seed=0", "y", (1, 0, 0)),
    # a NaN x met a stride-stuffed zero of dy: dw reads x[0, 0, :, 0] and x[0, 0, :, 2] only
    "conv-backward-stride": ("conv_backward x=1,1,2,4 w=1,1,1,1 s=1,2 p=0:0,0:0 d=1,1 g=1 dtype=float32 data=nan "
                             "seed=0", "dw", (0, 0, 0, 0)),
    # −∞ met a stuffed dilation zero: no tap reaches y[0, 0, 1], so it is an empty sum, exactly 0
    "conv-transpose-dilation": ("conv_transpose x=1,1,1 w=1,1,2 s=1 p=0:0 outpad=0 d=2 g=1 dtype=float32 data=neg_inf "
                                "seed=0", "y", (0, 0, 1)),
}


@pytest.mark.parametrize("backend", [DIRECT, FFT], ids=lambda b: b.name)
@pytest.mark.parametrize("case", REPORTED_SPECIAL_CASES)
def test_reported_special_value_cases(case, backend):  # CONV-DEF-1, CONVT-DEF-1, CONV-GRAD-1, ERR-SPECIAL-1
    descriptor, output, element = REPORTED_SPECIAL_CASES[case]
    parsed = Case.parse(descriptor)
    arrays = parsed.arrays()
    assert not all(np.isfinite(a).all() for a in arrays.values() if a is not None)
    got = check_special(backend, parsed.op, parsed.params_object, arrays)
    ref = reference.evaluate(parsed.op, arrays, parsed.params_object)
    assert np.isfinite(ref[output][element]) and np.isfinite(got[output][element])
    if case == "conv-transpose-dilation":
        assert got[output][element] == 0.0


def test_reported_cases_pass_the_conformance_run():  # ERR-SPECIAL-1, via the engine and the CLI's descriptors
    import convspec

    for backend in ("scipy", "scipy:fft"):
        cases = [Case.parse(descriptor) for descriptor, _, _ in REPORTED_SPECIAL_CASES.values()]
        results = convspec.run_conformance(backend, cases=cases, checks=["special"])
        assert results.conformant and not results.failures(), results.summary()
        assert [r.status for r in results.all_results()] == ["passed"] * len(cases), results.summary()


SPECIAL_CONV_CASES = {
    "1d-strided-dilated-bias": dict(input_shape=(2, 2, 11), weight_shape=(3, 2, 3), bias_shape=(3,), stride=2,
                                    dilation=2, padding=((1, 2),)),
    "2d-groups-strided-dilated": dict(input_shape=(1, 4, 7, 8), weight_shape=(4, 2, 2, 3), groups=2, stride=(2, 3),
                                      dilation=(2, 1), padding=1),
    "2d-reflect-strided-dilated": dict(input_shape=(1, 2, 6, 5), weight_shape=(2, 2, 2, 2), stride=2, dilation=2,
                                       padding=((2, 1), (1, 2)), padding_mode="reflect"),
}

SPECIAL_CONVT_CASES = {
    "1d-strided-dilated-output-padding": dict(input_shape=(2, 2, 5), weight_shape=(2, 3, 3), bias_shape=(3,), stride=3,
                                              dilation=2, padding=((2, 1),), output_padding=1),
    "2d-groups-strided-dilated": dict(input_shape=(1, 4, 3, 4), weight_shape=(4, 1, 2, 3), groups=2, stride=(2, 3),
                                      dilation=(3, 1), padding=((1, 0), (0, 2)), output_padding=(2, 1)),
}

SPECIAL_RECIPES = ("nan", "inf", "neg_inf")

#: op -> the operands that carry the special values, one at a time and all together
SPECIAL_OPERANDS = {"conv": (("x",), ("w",), ("x", "w")),
                    "conv_backward": (("x",), ("w",), ("dy",), ("x", "w", "dy")),
                    "conv_transpose": (("x",), ("w",), ("x", "w")),
                    "conv_transpose_backward": (("x",), ("w",), ("dy",), ("x", "w", "dy"))}


def special_sweep(cases: dict[str, dict[str, Any]], ops: tuple[str, str]) -> list[Any]:
    return [pytest.param(op, case, operands, id=f"{op}-{case}-{'+'.join(operands)}")
            for case in cases for op in ops for operands in SPECIAL_OPERANDS[op]]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the reference's inf - inf, inf * 0
@pytest.mark.parametrize("backend", [DIRECT, FFT], ids=lambda b: b.name)
@pytest.mark.parametrize("recipe", SPECIAL_RECIPES)
@pytest.mark.parametrize("op, case, operands", special_sweep(SPECIAL_CONV_CASES, ("conv", "conv_backward")))
def test_conv_special_values_reach_only_their_terms(op, case, operands, recipe, backend):
    """CONV-DEF-1, CONV-GRAD-1, ERR-SPECIAL-1: dilation and stride > 1, groups, reflect padding."""
    params = ConvParams(**SPECIAL_CONV_CASES[case])
    check_special(backend, op, params, special_arrays(op, params, recipe, operands))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("backend", [DIRECT, FFT], ids=lambda b: b.name)
@pytest.mark.parametrize("recipe", SPECIAL_RECIPES)
@pytest.mark.parametrize("op, case, operands",
                         special_sweep(SPECIAL_CONVT_CASES, ("conv_transpose", "conv_transpose_backward")))
def test_conv_transpose_special_values_reach_only_their_terms(op, case, operands, recipe, backend):
    """CONVT-DEF-1, CONVT-GRAD-1, ERR-SPECIAL-1: dilation and stride > 1, groups, output_padding."""
    params = ConvTransposeParams(**SPECIAL_CONVT_CASES[case])
    check_special(backend, op, params, special_arrays(op, params, recipe, operands))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_special_values_in_every_dtype(dtype):  # DTYPE-1, ERR-SPECIAL-1
    conv = ConvParams(**SPECIAL_CONV_CASES["2d-groups-strided-dilated"])
    transpose = ConvTransposeParams(**SPECIAL_CONVT_CASES["2d-groups-strided-dilated"])
    for backend in (DIRECT, FFT):
        for op, params in (("conv", conv), ("conv_backward", conv), ("conv_transpose", transpose),
                           ("conv_transpose_backward", transpose)):
            check_special(backend, op, params, special_arrays(op, params, "inf", ("x",), dtype, seed=1))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("backend", [DIRECT, FFT], ids=lambda b: b.name)
def test_special_values_follow_ieee_per_term_hand_computed(backend):  # CONV-DEF-1, ERR-SPECIAL-1
    def conv(values: list[float], weights: list[float], dilation: int = 1) -> np.ndarray:
        x, w = np.array([[values]], dtype=np.float32), np.array([[weights]], dtype=np.float32)
        return backend.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, dilation=dilation))[0, 0]

    x = [1.0, np.inf, -np.inf, 2.0, 3.0]
    # y[p] = x[p] + x[p+1]: +inf + (−inf) is NaN
    np.testing.assert_array_equal(conv(x, [1.0, 1.0]), [np.inf, np.nan, -np.inf, 5.0])
    # y[p] = x[p]·0 + x[p+1]: ±inf·0 is NaN
    np.testing.assert_array_equal(conv(x, [0.0, 1.0]), [np.inf, np.nan, np.nan, 3.0])
    # y[p] = 2·x[p] − x[p+1]: 2·inf − (−inf) is +inf, −2·inf − 2 is −inf
    np.testing.assert_array_equal(conv(x, [2.0, -1.0]), [-np.inf, np.inf, -np.inf, 1.0])
    # d = 2 reads x[0], x[2], x[4] only: the infinities sit in the dilation holes
    np.testing.assert_allclose(conv([1.0, np.inf, 2.0, -np.inf, 3.0], [1.0, 0.5, -1.0], dilation=2), [-1.0],
                               rtol=1e-6)


def test_finite_operands_take_the_plain_path(monkeypatch):  # ERR-SPECIAL-1 costs nothing on finite data
    def refuse(a: np.ndarray) -> dict[str, np.ndarray]:
        raise AssertionError("special-value indicators built for finite operands")

    monkeypatch.setattr(scipy_backend, "_indicators", refuse)
    params = ConvParams(**SPECIAL_CONV_CASES["2d-groups-strided-dilated"])
    check_op(DIRECT, "conv_backward", params)
    transpose = ConvTransposeParams(**SPECIAL_CONVT_CASES["1d-strided-dilated-output-padding"])
    check_op(FFT, "conv_transpose_backward", transpose)
    x = np.array([[[1.0, np.nan, 2.0]]], dtype=np.float32)
    with pytest.raises(AssertionError, match="indicators"):
        DIRECT.conv(x, np.ones((1, 1, 2), np.float32), None, ConvParams(input_shape=x.shape, weight_shape=(1, 1, 2)))


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
@pytest.mark.parametrize("recipe", SPECIAL_RECIPES)
@pytest.mark.parametrize("variant", AVG_VARIANTS)
@pytest.mark.parametrize("case", ["1d-ceil-overhang", "2d-pad-over-half-kernel", "2d-dilated-ceil",
                                  "3d-asymmetric-ceil"])
def test_avg_pool_special_values_reach_only_their_windows(case, variant, recipe):
    """AVGPOOL-DEF-1, AVGPOOL-GRAD-1, ERR-SPECIAL-1: NaN/±∞ in x (forward) and dy (gradient)."""
    params = AvgPoolParams(**POOL_CASES[case], **AVG_VARIANTS[variant])
    for backend in (DIRECT, FFT):
        check_special(backend, "avg_pool", params, special_arrays("avg_pool", params, recipe, ("x",)))
        check_special(backend, "avg_pool_backward", params,
                      special_arrays("avg_pool_backward", params, recipe, ("dy",), seed=1))


def test_avg_pool_nan_does_not_spread_past_its_windows():  # AVGPOOL-DEF-1, ERR-SPECIAL-1
    # A running-sum filter (ndimage.uniform_filter) would make every window after the NaN NaN.
    x = np.arange(40, dtype=np.float32).reshape(1, 1, 40)
    x[0, 0, 5] = np.nan
    x[0, 0, 20] = np.inf
    params = AvgPoolParams(input_shape=x.shape, kernel_size=3, stride=1, padding=1, count_include_pad=True)
    y = check_special(DIRECT, "avg_pool", params, {"x": x})["y"][0, 0]
    assert np.flatnonzero(np.isnan(y)).tolist() == [4, 5, 6]
    assert np.flatnonzero(np.isinf(y)).tolist() == [19, 20, 21]
    dy = np.ones((1, 1, 40), np.float32)
    dy[0, 0, 30] = -np.inf
    dx = check_special(DIRECT, "avg_pool_backward", params, {"x": x, "dy": dy})["dx"][0, 0]
    assert np.flatnonzero(~np.isfinite(dx)).tolist() == [29, 30, 31]


# -- random configurations -------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(params=conv_params(max_rank=2, max_size=7))
def test_random_convs_match_the_reference(params):  # CONV-DEF-1, CONV-GRAD-1, CONVT-DEF-1, CONVT-GRAD-1
    check_conv_and_its_transpose(DIRECT, params)


@st.composite
def pool_params(draw_: Any) -> tuple[MaxPoolParams, AvgPoolParams]:
    rank = draw_(st.integers(1, 3), label="rank")
    kernel = tuple(draw_(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw_(st.integers(1, 2)) for _ in range(rank))
    stride = tuple(draw_(st.integers(1, 3)) for _ in range(rank))
    size = tuple(draw_(st.integers(d * (k - 1) + 1, 6)) for k, d in zip(kernel, dilation))
    # Pads up to (k − 1)·d per side keep every window non-empty (POOL-WINDOW-1).
    pads = tuple((draw_(st.integers(0, (k - 1) * d)), draw_(st.integers(0, (k - 1) * d)))
                 for k, d in zip(kernel, dilation))
    common = dict(input_shape=(draw_(st.integers(0, 2)), 2) + size, kernel_size=kernel, stride=stride, padding=pads,
                  dilation=dilation, ceil_mode=draw_(st.booleans(), label="ceil_mode"))
    avg = AvgPoolParams(**common, count_include_pad=draw_(st.booleans(), label="count_include_pad"),
                        divisor_override=draw_(st.sampled_from([None, 2])))
    return MaxPoolParams(**common), avg


@settings(max_examples=30, deadline=None)
@given(both=pool_params())
def test_random_pools_match_the_reference(both):  # MAXPOOL-*, AVGPOOL-*, POOL-CEIL-1
    check_pools(DIRECT, *both)


# -- capabilities and hygiene ----------------------------------------------------------------------

def every_case() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for kwargs in CONV_CASES.values():
        cases += [("conv", ConvParams(**kwargs)), ("conv_backward", ConvParams(**kwargs))]
    for kwargs in CONVT_CASES.values():
        cases += [("conv_transpose", ConvTransposeParams(**kwargs))]
    for kwargs in POOL_CASES.values():
        cases += [("max_pool", MaxPoolParams(**kwargs))]
        cases += [("avg_pool", AvgPoolParams(**kwargs, **variant)) for variant in AVG_VARIANTS.values()]
    return cases


@pytest.mark.parametrize("backend", [DIRECT, FFT], ids=lambda b: b.name)
def test_every_case_is_declared_supported_in_every_dtype(backend):  # unsupported is declared, never silent
    assert backend.capabilities.unsupported == {}
    for op, params in every_case():
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            assert backend.capabilities.unsupported_reason(op, params, dtype) is None, (op, params, dtype)
    assert backend.capabilities.ranks is None and backend.capabilities.deterministic


def test_repeated_calls_are_bitwise_identical():  # HYGIENE-3
    check_repeated_calls_bitwise_identical(DIRECT, ConvParams(**CONV_CASES["3d-reflect-grouped"]))


def test_arrays_that_do_not_match_the_params_are_refused():  # LAYOUT-1, DTYPE-1
    check_mismatched_arrays_are_refused(DIRECT)


def test_importing_the_module_does_not_import_scipy():  # heavy imports are lazy
    code = ("import sys, convspec.backends.scipy_backend;"
            "print(sorted(m for m in ('scipy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_docstring_examples_run():  # docstring examples are tested
    result = doctest.testmod(scipy_backend)
    assert result.attempted > 0 and result.failed == 0


def test_max_pool_gradient_is_bounded_per_element_even_for_the_fft_backend():  # ERR-NONLOCAL-1
    """Max pool is never non-local: filling x with a constant (the non-local magnitude) would route
    every dy to its window's first tap, so a position two windows send dy to (here 0.87 + 0.63 in
    bfloat16, rounded half to even) got a bound below its own output rounding."""
    from convspec.conformance import run_conformance

    case = Case.parse("max_pool_backward x=1,1,8 k=2 s=2 p=0:0 d=2 ceil dtype=bfloat16 data=random seed=0")
    assert run_conformance("scipy:fft", cases=[case], checks=["differential"]).exit_code == 0


@pytest.mark.parametrize("descriptor", [
    # every tap reads padding (rows 0 and 2 of a 3-row padded input): the exact y is 0, the FFT's ≈ 2e-9
    "conv x=1,1,1,1 w=1,1,2,1 s=1,1 p=1:1,1:1 d=2,1 g=1 dtype=float32 data=impulse seed=0",
    "conv x=1,1,1,1 w=1,1,2,1 s=1,1 p=1:1,1:1 d=2,1 g=1 dtype=bfloat16 data=impulse seed=0",
    # tap 0's products are cropped: y holds x·w[1] only, but the FFT also multiplied x by w[0]
    "conv_transpose x=1,1,1 w=1,1,2 s=2 p=1:1 outpad=1 d=1 g=1 dtype=float32 data=wide seed=0",
    "conv_transpose x=1,3,1 w=3,1,2 s=2 p=1:1 outpad=1 d=1 g=1 dtype=float32 data=wide seed=0",
])
def test_fft_noise_of_products_the_op_drops_is_bounded(descriptor):  # ERR-NONLOCAL-1
    from convspec.conformance import run_conformance

    assert run_conformance("scipy:fft", cases=[Case.parse(descriptor)]).exit_code == 0


@pytest.mark.parametrize("op", ["avg_pool", "avg_pool_backward", "max_pool_backward"])
def test_pools_are_bounded_per_element_for_a_non_local_backend(op):  # ERR-NONLOCAL-1
    """Pools are never non-local: scipy:fft's pool magnitudes are the reference's, element by element."""
    from backend_checks import make_arrays

    from convspec.conformance.invoke import Invoker
    from convspec.conformance.context import CheckContext, Settings

    backend = ScipyBackend(method="fft")
    params = AvgPoolParams(input_shape=(1, 2, 7, 7), kernel_size=3, stride=3, padding=1, count_include_pad=False) \
        if op.startswith("avg") else MaxPoolParams(input_shape=(1, 2, 7, 7), kernel_size=3, stride=2, padding=1)
    arrays = make_arrays(op, params, "float32", 0)
    ctx = CheckContext(backend, backend.name, Invoker(backend), Settings())
    expected = reference.magnitude(op, arrays, params)["dx" if op.endswith("backward") else "y"]
    got = ctx.magnitude(op, arrays, params)["dx" if op.endswith("backward") else "y"]
    np.testing.assert_array_equal(got, expected)
