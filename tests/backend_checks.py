"""What the backend test files share: inputs for an op, one call, and the comparison of a backend
with ``convspec.reference`` under the engine's error model (ERR-BOUND-1 through
``CheckContext``'s magnitude, terms and bound and ``compare.compare``), ERR-EXACT-1 for max pool,
MAXPOOL-INDEX-1 / -TIE-1 / -NAN-1 for its indices (the engine's ``check_indices``), HYGIENE-1 and
HYGIENE-2 — plus the hand-computed pool checks and the special-value sweep several files run, the
hypothesis strategies of random problems (size bounds chosen by each file) and the case tables the
scipy and torch tests share.

What stays in a test file is what is really its own: naive's tiny sizes, im2col's budgets, exact
NaN-window indices for the backends that pick the reference's NaN (``exact_indices``), the CUDA
tests' stricter bound model (``bound_model``), rank 4 for SciPy.

Imported by the test files as ``from backend_checks import ...`` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import strategies as st

from convspec import reference
from convspec.conformance.compare import Comparison, compare
from convspec.conformance.invoke import Invoker
from convspec.conformance.context import (
    CheckContext,
    Settings,
    check_indices,
    window_members,
)
from convspec.spec import (
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    InvalidParams,
    MaxPoolParams,
    dtype_name,
    to_dtype,
)

__all__ = [
    "AVG_VARIANTS",
    "CONVT_CASES",
    "CONV_CASES",
    "NATIVE_POOL_CASES",
    "POOL_CASES",
    "BoundModel",
    "assert_exact",
    "assert_indices",
    "assert_within_bound",
    "check_avg_pool_propagates_nan",
    "check_conv_and_its_transpose",
    "check_infinities_and_nan",
    "check_invalid_arrays_are_refused",
    "check_max_pool_backward_accumulates",
    "check_max_pool_minus_inf_windows",
    "check_max_pool_minus_infinity_never_loses_to_padding",
    "check_max_pool_nan_window",
    "check_max_pool_nan_windows",
    "check_max_pool_ties",
    "check_max_pool_ties_first",
    "check_mismatched_arrays_are_refused",
    "check_op",
    "check_op_and_gradient",
    "check_pools",
    "check_repeated_calls_bitwise_identical",
    "conv_params",
    "conv_problems",
    "conv_transpose_problems",
    "engine_model",
    "family_cases",
    "make_arrays",
    "pool_data",
    "pool_problems",
    "run_op",
    "seed_of",
    "window_members",
]

#: (backend, op, arrays, params) -> (mag, K) per output: the two inputs of ERR-BOUND-1.
BoundModel = Callable[[Any, str, dict[str, Any], Any], tuple[dict[str, Any], dict[str, int]]]


# -- inputs and one call ----------------------------------------------------------------------------

def seed_of(*parts: Any) -> int:
    """A stable seed from any repr-able parts (a case's op, kwargs, dtype)."""
    return zlib.crc32(repr(parts).encode())


def make_arrays(op: str, params: Any, dtype: str, rng: int | np.random.Generator, *,
                integers: bool = False) -> dict[str, np.ndarray | None]:
    """Random inputs of ``op`` in ``dtype``, drawn in ``OPS[op].inputs`` order from ``rng`` (a seed
    or a generator, which goes on drawing): standard normal, or with ``integers`` values in
    [−3, 3] so every sum is exact. The bias is None where ``params`` has none."""
    rng = np.random.default_rng(rng)
    shapes = {"x": params.input_shape, "dy": params.output_shape,
              "w": getattr(params, "weight_shape", None), "b": getattr(params, "bias_shape", None)}

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        values = rng.integers(-3, 4, size=shape) if integers else rng.standard_normal(shape)
        return values.astype(to_dtype(dtype))

    return {name: None if shapes[name] is None else draw(shapes[name]) for name in OPS[op].inputs}


def run_op(backend: Any, op: str, params: Any, arrays: dict[str, Any]) -> dict[str, Any]:
    """The backend's outputs of ``op``, by name (``OPS[op].outputs``)."""
    info = OPS[op]
    result = getattr(backend, op)(*(arrays[name] for name in info.inputs), params)
    return dict(zip(info.outputs, (result,) if len(info.outputs) == 1 else result))


# -- the error model --------------------------------------------------------------------------------

def engine_model(backend: Any, op: str, arrays: dict[str, Any], params: Any) -> tuple[dict[str, Any], dict[str, int]]:
    """mag and K of ERR-BOUND-1 as the conformance engine computes them for ``backend``: the
    reference's magnitude and ``terms_per_output`` for a local backend, ERR-NONLOCAL-1's uniform
    magnitude and ⌈log2 L⌉ extra terms for a non-local one."""
    ctx = CheckContext(backend, backend.name, Invoker(backend), Settings())
    return ctx.magnitude(op, arrays, params), ctx.terms(op, params)


def _describe(label: str, comparison: Comparison) -> str:
    """The count, the share, the worst element (where, out, ref, error, bound) of a failed comparison."""
    text = (f"{label}: {comparison.violations} of {comparison.count} elements "
            f"({100 * comparison.violations / max(comparison.count, 1):.1f}%) break {comparison.clause} "
            f"({comparison.rule})")
    worst = comparison.worst
    if worst is not None:
        text += (f"; worst at {worst.index}: out={worst.out!r} ref={worst.ref!r} error={worst.error:.3g} "
                 f"bound={worst.bound:.3g}")
        if worst.bound:
            text += f" error/bound={worst.error / worst.bound:.3g}"
    return text


def assert_within_bound(label: str, out: Any, ref: np.ndarray, bound: Any, nan_ok: np.ndarray | None = None) -> None:
    """ERR-BOUND-1 per element, |out − ref| ≤ bound, and ERR-SPECIAL-1: a NaN reference needs NaN,
    an infinite one the same infinity, a finite one a non-NaN output (also where the bound is
    infinite) and a bound that is a number. NaN is also accepted where ``nan_ok`` is true
    (``reference.zero_extension_nan``: CONV-GRAD-1, CONVT-GRAD-1).

    The comparison is the engine's ``compare`` with the bound given; the two guards before it keep
    what ``compare`` lets through where the bound is infinite or NaN."""
    out = np.asarray(out)
    assert out.shape == ref.shape, f"{label}: shape {out.shape} != {ref.shape} (HYGIENE-2)"
    out64 = out.astype(np.float64)
    finite = np.isfinite(ref)
    stray_nan = finite & np.isnan(out64) & (True if nan_ok is None else ~nan_ok)
    if stray_nan.any():
        where = tuple(int(i) for i in np.argwhere(stray_nan)[0])
        pytest.fail(f"{label}: {int(stray_nan.sum())} of {ref.size} elements are NaN where the reference is finite "
                    f"(ERR-SPECIAL-1); first at {where}: ref={ref[where]!r}")
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), ref.shape)
    assert not np.isnan(bound[finite]).any(), f"{label}: the bound is NaN where the reference is finite"
    comparison = compare(label, out, ref, None, k=0, dtype="float64", bound=bound, nan_ok=nan_ok)
    if not comparison.passed:
        pytest.fail(_describe(label, comparison))


def assert_indices(x: np.ndarray, indices: Any, ref_y: np.ndarray, ref_indices: np.ndarray,
                   params: MaxPoolParams, *, exact: bool = False) -> None:
    """MAXPOOL-INDEX-1 / MAXPOOL-TIE-1 exactly outside NaN windows, MAXPOOL-NAN-1 (the index of a
    NaN of that window) inside them, through the engine's ``check_indices``; with ``exact`` the
    indices must also be int64 and equal the reference's everywhere, NaN windows included."""
    indices = np.asarray(indices)
    assert indices.shape == ref_indices.shape and np.issubdtype(indices.dtype, np.integer), (  # HYGIENE-2
        f"indices: {indices.dtype} {indices.shape}, not integers of shape {ref_indices.shape}")
    comparison = check_indices("indices", indices, ref_indices, ref_y, np.asarray(x), params)
    if not comparison.passed:
        pytest.fail(_describe("max_pool indices", comparison))
    if exact:  # MAXPOOL-INDEX-1, ERR-EXACT-1
        assert indices.dtype == np.int64, f"indices are {indices.dtype}, not int64"
        np.testing.assert_array_equal(indices, ref_indices, err_msg="indices differ (ERR-EXACT-1)")


def assert_exact(label: str, out: Any, ref: np.ndarray) -> None:
    """ERR-EXACT-1: the same value (NaN where NaN) everywhere, through the engine's ``compare``."""
    comparison = compare(label, out, ref, None, k=1, dtype="float64", exact=True)
    if not comparison.passed:
        pytest.fail(_describe(label, comparison))


def check_op(backend: Any, op: str, params: Any, dtype: str | None = None, *, arrays: dict[str, Any] | None = None,
             seed: int = 0, bound_model: BoundModel = engine_model, exact_indices: bool = False) -> dict[str, Any]:
    """Run ``op`` on the backend and on the reference and compare every output; returns the outputs.

    ``arrays`` default to ``make_arrays(op, params, dtype or "float32", seed)``; ``dtype`` defaults to
    that of ``arrays["x"]``. Checks: inputs unchanged (HYGIENE-1); None exactly where the reference
    has no output (db without a bias); shapes (HYGIENE-2); outputs in the input dtype (DTYPE-1);
    max pool y exact (ERR-EXACT-1) and its indices (``assert_indices``, ``exact_indices`` for
    backends that pick the reference's NaN too); every other output within ERR-BOUND-1 with mag and
    K from ``bound_model`` (default: the engine's) and the backend's declared accumulation and input
    precision. NaN is accepted where ``reference.zero_extension_nan`` allows it.
    """
    if arrays is None:
        arrays = make_arrays(op, params, dtype or "float32", seed)
    dtype = dtype_name(arrays["x"].dtype) if dtype is None else dtype
    copies = {name: None if a is None else a.copy() for name, a in arrays.items()}
    info = OPS[op]
    got = run_op(backend, op, params, arrays)
    for name, a in arrays.items():  # HYGIENE-1: inputs are not modified
        assert a is None or (a.dtype == copies[name].dtype and np.array_equal(a, copies[name], equal_nan=True)), (
            f"{op} modified its input {name}")
    ref = reference.evaluate(op, arrays, params)
    nan_ok = reference.zero_extension_nan(op, arrays, params)
    mag, k = bound_model(backend, op, arrays, params)
    ctx = CheckContext(backend, backend.name, Invoker(backend), Settings())
    for name in info.outputs:
        if ref[name] is None:
            assert got[name] is None, f"{op}: {name} must be None without a bias"
            continue
        out = np.asarray(got[name])
        assert out.shape == ref[name].shape, f"{op}: {name} has shape {out.shape}, not {ref[name].shape}"  # HYGIENE-2
        if name == "indices":
            assert_indices(arrays["x"], out, ref["y"], ref["indices"], params, exact=exact_indices)
            continue
        assert out.dtype == to_dtype(dtype) == arrays["x"].dtype, (  # DTYPE-1, HYGIENE-2
            f"{op}: {name} is {out.dtype}, not {dtype} (input {arrays['x'].dtype})")
        if op == "max_pool":  # ERR-EXACT-1: the output is one of the inputs
            assert_exact(f"{backend.name} {op} {name} {dtype}", out, ref[name])
        else:
            assert_within_bound(f"{backend.name} {op} {name} {dtype} (K={k[name]})", out, ref[name],
                                 ctx.bound(mag[name], k[name], dtype), nan_ok[name])
    return got


def check_op_and_gradient(backend: Any, op: str, params: Any, dtype: str | None = None, **kwargs: Any) -> None:
    """``check_op`` of ``op`` (seed 0) and of ``op``_backward (seed 1) on the same problem."""
    check_op(backend, op, params, dtype, **kwargs)
    check_op(backend, f"{op}_backward", params, dtype, seed=1, **kwargs)


# -- checks several backends' test files run ---------------------------------------------------------

def check_infinities_and_nan(backend: Any, op: str, params: Any, kwargs: dict[str, Any]) -> None:
    """ERR-SPECIAL-1: float32 inputs with ±inf, NaN and 0 at 15% of the elements; NaN exactly where
    the reference has NaN, the same infinities; a NaN window's index may be any of its NaNs
    (MAXPOOL-NAN-1), every other index exact. Padding zeros are terms of the sums that read a
    padded array: inf·0 gives NaN there. Where ``reference.zero_extension_nan`` marks a gradient
    element, NaN is accepted in place of the strict value (CONV-GRAD-1, CONVT-GRAD-1)."""
    arrays = make_arrays(op, params, "float32", seed_of(op, kwargs, "special"))
    rng = np.random.default_rng(seed_of(op, kwargs))
    for name, a in arrays.items():
        if a is not None:
            specials = rng.choice(np.array([np.inf, -np.inf, np.nan, 0.0], dtype=np.float32), size=a.shape)
            arrays[name] = np.where(rng.random(a.shape) < 0.15, specials, a)
    with np.errstate(invalid="ignore", over="ignore"):
        outs = run_op(backend, op, params, arrays)
        ref = reference.evaluate(op, arrays, params)
        nan_ok = reference.zero_extension_nan(op, arrays, params)
    for name, expected in ref.items():
        if expected is None:
            continue
        got = np.asarray(outs[name]).astype(np.float64)
        if name == "indices":  # a NaN window may report any of its NaNs (MAXPOOL-NAN-1)
            nan = np.isnan(ref["y"])
            np.testing.assert_array_equal(got[~nan], expected[~nan])
            continue
        # CONV-GRAD-1 / CONVT-GRAD-1: where a zero that is no term may meet a non-finite value,
        # NaN and the strict value are both conformant; everywhere else NaN exactly as strict.
        either = np.zeros(expected.shape, bool) if nan_ok.get(name) is None else nan_ok[name] & np.isnan(got)
        strict = ~either
        assert np.array_equal(np.isnan(got[strict]), np.isnan(expected[strict])), f"{name}: NaN pattern differs"
        infinite = np.isinf(expected) & strict
        np.testing.assert_array_equal(got[infinite], expected[infinite], err_msg=f"{name}: infinities differ")


def check_max_pool_ties_first(backend: Any) -> None:
    """MAXPOOL-TIE-1 by hand: [3, 3, 1, 3], k = 2, s = 1 gives indices [0, 1, 3]."""
    x = np.array([[[3.0, 3, 1, 3]]])
    y, indices = backend.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=2, stride=1))
    np.testing.assert_array_equal(indices, [[[0, 1, 3]]])
    np.testing.assert_array_equal(y, [[[3.0, 3, 3]]])


def check_max_pool_nan_window(backend: Any, dtype: str) -> None:
    """MAXPOOL-NAN-1 by hand: a window with a NaN gives NaN and the index of one of its NaNs."""
    x = np.array([[[1.0, np.nan, 5, np.nan, 2, 7, 0]]]).astype(to_dtype(dtype))
    y, indices = backend.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=3, stride=1))
    y = y.astype(np.float64)
    assert np.isnan(y[0, 0, :4]).all() and y[0, 0, 4] == 7.0
    assert np.isnan(x[0, 0, indices[0, 0, :4]].astype(np.float64)).all()
    assert all(p <= i < p + 3 for p, i in enumerate(indices[0, 0, :4]))  # a NaN of that window
    assert indices[0, 0, 4] == 5


def check_max_pool_minus_infinity_never_loses_to_padding(backend: Any) -> None:
    """MAXPOOL-DEF-1, MAXPOOL-INDEX-1: an all −inf input with padding picks input elements."""
    x = np.full((1, 1, 4), -np.inf)
    y, indices = backend.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=3, stride=1, padding=1))
    np.testing.assert_array_equal(y, np.full((1, 1, 4), -np.inf))
    np.testing.assert_array_equal(indices, [[[0, 0, 1, 2]]])


def check_max_pool_backward_accumulates(backend: Any) -> None:
    """MAXPOOL-GRAD-1 by hand: dy of overlapping windows with the same maximum add up."""
    x = np.array([[[0.0, 9, 1, 2]]])
    params = MaxPoolParams(input_shape=x.shape, kernel_size=2, stride=1)
    dx = backend.max_pool_backward(x, np.array([[[1.0, 10, 100]]]), params)
    np.testing.assert_array_equal(dx, [[[0.0, 11, 0, 100]]])


def check_avg_pool_propagates_nan(backend: Any) -> None:
    """AVGPOOL-DEF-1, ERR-SPECIAL-1 by hand: a NaN makes its window NaN and no other."""
    x = np.array([[[1.0, np.nan, 3, 4, 5]]])
    params = AvgPoolParams(input_shape=x.shape, kernel_size=2, count_include_pad=False)
    np.testing.assert_array_equal(np.isnan(backend.avg_pool(x, params)), [[[True, False]]])


def check_invalid_arrays_are_refused(backend: Any) -> None:
    """LAYOUT-1, DTYPE-1, GRAD-SHAPE-1: x of the wrong shape, w of another dtype, dy of the wrong
    shape raise InvalidParams."""
    params = ConvParams(input_shape=(1, 2, 5), weight_shape=(3, 2, 3))
    x, w = np.zeros((1, 2, 5)), np.zeros((3, 2, 3))
    with pytest.raises(InvalidParams):
        backend.conv(np.zeros((1, 2, 6)), w, None, params)
    with pytest.raises(InvalidParams):
        backend.conv(x, w.astype(np.float32), None, params)
    with pytest.raises(InvalidParams):
        backend.conv_backward(x, w, np.zeros((1, 3, 4)), params)


# -- the cases the scipy and torch tests share (ranks 1-3; scipy adds rank 4) -------------------------

CONV_CASES = {
    "1d-bias": dict(input_shape=(2, 3, 9), weight_shape=(4, 3, 3), bias_shape=(4,), padding=1),
    "1d-stride-over-kernel-dilated-asymmetric": dict(input_shape=(2, 2, 17), weight_shape=(3, 2, 2), stride=4,
                                                     dilation=3, padding=((2, 1),)),
    "2d-groups-same-lower-strided": dict(input_shape=(2, 4, 7, 6), weight_shape=(6, 2, 3, 2), bias_shape=(6,),
                                         groups=2, stride=(2, 1), padding="same_lower"),
    "2d-depthwise-same-dilated": dict(input_shape=(1, 3, 6, 7), weight_shape=(6, 1, 3, 3), groups=3, dilation=2,
                                      padding="same"),
    "3d-asymmetric": dict(input_shape=(2, 2, 4, 5, 3), weight_shape=(2, 2, 2, 3, 2), bias_shape=(2,),
                          stride=(1, 2, 1), padding=((1, 0), (0, 2), (1, 1))),
    "1d-reflect-pad-n-1": dict(input_shape=(1, 2, 4), weight_shape=(2, 2, 3), padding=((3, 3),),
                               padding_mode="reflect"),
    "2d-reflect-asymmetric": dict(input_shape=(2, 2, 5, 4), weight_shape=(3, 2, 3, 2), stride=(1, 2),
                                  padding=((2, 1), (3, 0)), padding_mode="reflect"),
    "3d-reflect-grouped": dict(input_shape=(1, 2, 3, 4, 3), weight_shape=(4, 1, 2, 2, 2), groups=2,
                               padding=((1, 2), (0, 3), (2, 1)), padding_mode="reflect"),
    "1d-replicate-over-n": dict(input_shape=(2, 1, 3), weight_shape=(2, 1, 2), padding=((4, 5),),
                                padding_mode="replicate"),
    "2d-replicate-strided-dilated": dict(input_shape=(1, 2, 3, 4), weight_shape=(2, 2, 2, 2), stride=2, dilation=2,
                                         padding=((4, 1), (0, 5)), padding_mode="replicate"),
    "3d-replicate": dict(input_shape=(1, 1, 2, 3, 2), weight_shape=(1, 1, 2, 2, 2), padding=1,
                         padding_mode="replicate"),
    "1d-circular-pad-n": dict(input_shape=(1, 2, 4), weight_shape=(3, 2, 3), padding=((4, 2),),
                              padding_mode="circular", bias_shape=(3,)),
    "2d-circular-same": dict(input_shape=(2, 2, 5, 4), weight_shape=(2, 2, 3, 4), padding="same",
                             padding_mode="circular"),
    "3d-circular": dict(input_shape=(1, 1, 3, 2, 4), weight_shape=(2, 1, 2, 2, 3), stride=(2, 1, 1),
                        padding=((3, 0), (2, 2), (1, 4)), padding_mode="circular"),
    "2d-empty-batch": dict(input_shape=(0, 2, 5, 5), weight_shape=(3, 2, 3, 3), bias_shape=(3,), padding=1),
}

CONVT_CASES = {
    "1d-stride-output-padding-asymmetric": dict(input_shape=(2, 2, 5), weight_shape=(2, 3, 2), bias_shape=(3,),
                                                stride=3, padding=((1, 0),), output_padding=2),
    "1d-output-padding-over-stride": dict(input_shape=(1, 2, 6), weight_shape=(2, 1, 3), stride=1, dilation=3,
                                          padding=((0, 1),), output_padding=2),
    "2d-groups-dilated": dict(input_shape=(2, 4, 4, 3), weight_shape=(4, 3, 2, 3), groups=2, stride=(2, 1),
                              dilation=2, padding=((1, 2), (0, 0)), output_padding=(1, 1)),
    "2d-depthwise": dict(input_shape=(1, 3, 4, 4), weight_shape=(3, 1, 3, 3), bias_shape=(3,), groups=3, stride=2,
                         padding=((0, 1), (1, 0))),
    "3d-symmetric": dict(input_shape=(1, 2, 3, 3, 2), weight_shape=(2, 2, 2, 2, 2), stride=2, padding=1,
                         output_padding=1),
    "3d-asymmetric-strided": dict(input_shape=(2, 2, 2, 3, 2), weight_shape=(2, 2, 3, 2, 2), bias_shape=(4,),
                                  groups=2, stride=(3, 1, 2), padding=((2, 0), (0, 1), (1, 1))),
    "2d-empty-batch": dict(input_shape=(0, 2, 3, 3), weight_shape=(2, 2, 2, 2), bias_shape=(2,)),
}

POOL_CASES = {
    "1d-ceil-overhang": dict(input_shape=(2, 3, 8), kernel_size=3, stride=2, padding=1, ceil_mode=True),
    "1d-stride-over-kernel-ceil": dict(input_shape=(1, 2, 11), kernel_size=2, stride=4, ceil_mode=True),
    "2d-asymmetric-ceil": dict(input_shape=(2, 2, 7, 6), kernel_size=(3, 2), stride=(2, 3), padding=((2, 0), (1, 1)),
                               ceil_mode=True),
    "2d-pad-over-half-kernel": dict(input_shape=(1, 2, 5, 5), kernel_size=3, stride=2, padding=2),
    "2d-same-lower": dict(input_shape=(1, 2, 6, 5), kernel_size=(2, 3), stride=1, padding="same_lower"),
    "2d-dilated-ceil": dict(input_shape=(1, 2, 7, 7), kernel_size=2, stride=2, dilation=3, padding=1, ceil_mode=True),
    "3d-asymmetric-ceil": dict(input_shape=(1, 2, 4, 5, 3), kernel_size=(2, 3, 2), stride=(2, 2, 1),
                               padding=((1, 0), (1, 1), (0, 1)), ceil_mode=True),
    "3d-input-smaller-than-kernel": dict(input_shape=(1, 1, 2, 5, 5), kernel_size=3, stride=1, padding=1),
    "2d-empty-batch": dict(input_shape=(0, 2, 5, 5), kernel_size=2),
}

AVG_VARIANTS = {"exclude-pad": dict(count_include_pad=False), "include-pad": dict(count_include_pad=True),
                "divisor-override": dict(count_include_pad=False, divisor_override=3)}


#: Pools PyTorch takes natively (symmetric pads of at most kernel_size // 2): torch's tests add them.
NATIVE_POOL_CASES = {
    "2d-native-ceil": dict(input_shape=(2, 2, 7, 6), kernel_size=3, stride=2, padding=1, ceil_mode=True),
    "3d-native-ceil": dict(input_shape=(1, 2, 5, 4, 5), kernel_size=2, stride=2, padding=1, ceil_mode=True),
    "1d-native-dilated-ceil": dict(input_shape=(2, 2, 9), kernel_size=3, stride=2, padding=1, dilation=2,
                                   ceil_mode=True),
}


def family_cases(*, conv: dict[str, dict[str, Any]], conv_transpose: dict[str, dict[str, Any]],
                 max_pool: dict[str, dict[str, Any]], avg_pool: dict[str, dict[str, Any]]) -> list[Any]:
    """pytest params (op, params_type, kwargs), id ``{op}-{name}``, for the forward and the backward op
    of each family and each named problem of its table."""
    families = ((("conv", "conv_backward"), ConvParams, conv),
                (("conv_transpose", "conv_transpose_backward"), ConvTransposeParams, conv_transpose),
                (("max_pool", "max_pool_backward"), MaxPoolParams, max_pool),
                (("avg_pool", "avg_pool_backward"), AvgPoolParams, avg_pool))
    return [pytest.param(op, params_type, kwargs, id=f"{op}-{name}")
            for ops, params_type, table in families for name, kwargs in table.items() for op in ops]


# -- random problems (hypothesis): every feature combined, derived so that each is valid -------------

@st.composite
def conv_problems(draw: Any, *, max_channels: int, max_kernel: int, max_dilation: int, max_pad: int,
                  max_extra: int, max_batch: int) -> ConvParams:
    """Convolutions of rank 1-3, every padding mode, stride ≤ 3, groups, c_g and C_out/groups up to
    ``max_channels``; each spatial size is the least valid one plus up to ``max_extra``."""
    rank = draw(st.integers(1, 3), label="rank")
    groups, c_g, m = (draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels)),
                      draw(st.integers(1, max_channels)))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]), label="padding_mode")
    kernel, stride, dilation, pads, size = [], [], [], [], []
    for _ in range(rank):
        k, s, d = draw(st.integers(1, max_kernel)), draw(st.integers(1, 3)), draw(st.integers(1, max_dilation))
        pair = (draw(st.integers(0, max_pad)), draw(st.integers(0, max_pad)))
        # valid by construction: padded extent >= d(k-1)+1 (CONV-SHAPE-2), pads <= n-1 (PAD-MODE-2)
        n = max(d * (k - 1) + 1 - sum(pair), max(pair) + 1, 1) + draw(st.integers(0, max_extra))
        kernel.append(k), stride.append(s), dilation.append(d), pads.append(pair), size.append(n)
    bias = draw(st.booleans(), label="bias")
    return ConvParams(input_shape=(draw(st.integers(0, max_batch)), groups * c_g, *size),
                      weight_shape=(groups * m, c_g, *kernel), bias_shape=(groups * m,) if bias else None,
                      stride=stride, padding=tuple(pads), dilation=dilation, groups=groups, padding_mode=mode)


@st.composite
def conv_transpose_problems(draw: Any, *, max_channels: int, max_kernel: int, max_dilation: int, max_pad: int,
                            max_extra: int, max_batch: int) -> ConvTransposeParams:
    """Transposed convolutions of rank 1-3 with stride ≤ 3, every valid output_padding, groups."""
    rank = draw(st.integers(1, 3), label="rank")
    groups, c_g, m = (draw(st.integers(1, max_channels)), draw(st.integers(1, max_channels)),
                      draw(st.integers(1, max_channels)))
    kernel, stride, dilation, pads, out_pad, size = [], [], [], [], [], []
    for _ in range(rank):
        k, s, d = draw(st.integers(1, max_kernel)), draw(st.integers(1, 3)), draw(st.integers(1, max_dilation))
        pair = (draw(st.integers(0, max_pad)), draw(st.integers(0, max_pad)))
        op = draw(st.integers(0, max(s, d) - 1))  # CONVT-PARAM-1
        # CONVT-SHAPE-1: (n-1)s - p_b - p_a + d(k-1) + op + 1 >= 1
        n = max(1, -(-(sum(pair) - d * (k - 1) - op) // s) + 1) + draw(st.integers(0, max_extra))
        kernel.append(k), stride.append(s), dilation.append(d), pads.append(pair), out_pad.append(op), size.append(n)
    bias = draw(st.booleans(), label="bias")
    return ConvTransposeParams(input_shape=(draw(st.integers(0, max_batch)), groups * c_g, *size),
                               weight_shape=(groups * c_g, m, *kernel), bias_shape=(groups * m,) if bias else None,
                               stride=stride, padding=tuple(pads), output_padding=out_pad, dilation=dilation,
                               groups=groups)


@st.composite
def pool_problems(draw: Any, params_type: type, *, max_kernel: int, max_dilation: int, max_stride: int,
                  max_extra: int, max_batch: int, max_channels: int) -> Any:
    """Max or avg pools (``params_type``) of rank 1-3, ceil mode either way, pads up to (k − 1)·d;
    avg pools with count_include_pad either way and divisor_override None, 1 or 3."""
    rank = draw(st.integers(1, 3), label="rank")
    kernel = [draw(st.integers(1, max_kernel)) for _ in range(rank)]
    dilation = [draw(st.integers(1, max_dilation)) for _ in range(rank)]
    stride = [draw(st.integers(1, max_stride)) for _ in range(rank)]
    pads = tuple((draw(st.integers(0, (k - 1) * d)), draw(st.integers(0, (k - 1) * d)))
                 for k, d in zip(kernel, dilation))
    size = [max(d * (k - 1) + 1 - sum(p), 1) + draw(st.integers(0, max_extra))
            for k, d, p in zip(kernel, dilation, pads)]
    extra = {}
    if params_type is AvgPoolParams:
        extra = dict(count_include_pad=draw(st.booleans()), divisor_override=draw(st.sampled_from([None, 1, 3])))
    kwargs = dict(input_shape=(draw(st.integers(0, max_batch)), draw(st.integers(1, max_channels)), *size),
                  kernel_size=kernel, stride=stride, dilation=dilation, ceil_mode=draw(st.booleans()), **extra)
    try:
        return params_type(padding=pads, **kwargs)
    except InvalidParams:  # a window left empty by dilation gaps (POOL-WINDOW-1): drop the padding
        unpadded = [max(n, d * (k - 1) + 1) for n, k, d in zip(size, kernel, dilation)]
        return params_type(padding=0, **{**kwargs, "input_shape": kwargs["input_shape"][:2] + tuple(unpadded)})


@st.composite
def conv_params(draw: Any, *, max_rank: int, max_size: int) -> ConvParams:
    """Convolutions of rank 1 to ``max_rank``, spatial sizes up to ``max_size``, every padding mode
    with pads up to 3 (n − 1 for reflect, n for circular), groups up to 2, with or without a bias."""
    rank = draw(st.integers(1, max_rank), label="rank")
    groups = draw(st.integers(1, 2), label="groups")
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(rank))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(rank))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]), label="padding_mode")
    size = tuple(draw(st.integers(d * (k - 1) + 1, max_size)) for k, d in zip(kernel, dilation))
    limit = {"reflect": lambda n: n - 1, "circular": lambda n: n}.get(mode, lambda n: 3)
    pads = tuple((draw(st.integers(0, min(3, limit(n)))), draw(st.integers(0, min(3, limit(n))))) for n in size)
    return ConvParams(input_shape=(draw(st.integers(0, 2)), c_in) + size, weight_shape=(c_out, c_in // groups) + kernel,
                      bias_shape=draw(st.sampled_from([None, (c_out,)])), stride=stride, padding=pads,
                      dilation=dilation, groups=groups, padding_mode=mode)


def check_conv_and_its_transpose(backend: Any, params: ConvParams) -> None:
    """conv and conv_backward of ``params``; with zeros padding also conv_transpose and its
    gradients of the transposed problem (CONV-DEF-1, CONV-GRAD-1, CONVT-DEF-1, CONVT-GRAD-1)."""
    check_op(backend, "conv", params)
    check_op(backend, "conv_backward", params, seed=1)
    if params.padding_mode == "zeros":
        transpose = ConvTransposeParams(
            input_shape=params.output_shape, weight_shape=(params.weight_shape[0], params.weight_shape[1]) +
            params.kernel_size, stride=params.stride, padding=params.pads, dilation=params.dilation,
            groups=params.groups, output_padding=params.output_padding_for_input(),
            bias_shape=None if params.bias_shape is None else (params.input_shape[1],))
        check_op(backend, "conv_transpose", transpose, seed=2)
        check_op(backend, "conv_transpose_backward", transpose, seed=3)


def pool_data(params: Any, values: list[float], seed: int) -> np.ndarray:
    """x drawn from a few ``values`` (many ties, whole windows of one value), float32."""
    rng = np.random.default_rng(seed)
    return rng.choice(np.array(values, dtype=np.float32), size=params.input_shape)


def check_pools(backend: Any, max_params: MaxPoolParams, avg_params: AvgPoolParams) -> None:
    """max pool on x of 0, 1, 2 and −inf (ties and −inf windows) and its gradient; avg pool and its
    gradient on normal data (MAXPOOL-*, AVGPOOL-*, POOL-CEIL-1)."""
    x = pool_data(max_params, [0.0, 1.0, 2.0, -np.inf], seed=11)
    check_op(backend, "max_pool", max_params, arrays={"x": x})
    dy = np.random.default_rng(12).standard_normal(max_params.output_shape).astype(np.float32)
    check_op(backend, "max_pool_backward", max_params, arrays={"x": x, "dy": dy})
    check_op(backend, "avg_pool", avg_params)
    check_op(backend, "avg_pool_backward", avg_params, seed=1)


def check_max_pool_ties(backend: Any, params: MaxPoolParams) -> None:
    """MAXPOOL-TIE-1, MAXPOOL-INDEX-1: x of 0, 1 and 2 only, and the gradient routed by it."""
    x = pool_data(params, [0.0, 1.0, 2.0], seed=3)
    check_op(backend, "max_pool", params, arrays={"x": x})
    dy = np.random.default_rng(4).standard_normal(params.output_shape).astype(np.float32)
    check_op(backend, "max_pool_backward", params, arrays={"x": x, "dy": dy})


def check_max_pool_minus_inf_windows(backend: Any, params: MaxPoolParams) -> dict[str, Any]:
    """MAXPOOL-DEF-1, MAXPOOL-TIE-1: x three quarters −inf; every index lies in its window (never
    in the padding); the gradient too. Returns the forward outputs."""
    x = pool_data(params, [-np.inf, -np.inf, -np.inf, 1.0], seed=5)
    got = check_op(backend, "max_pool", params, arrays={"x": x})
    assert window_members(params, got["indices"]).all()
    dy = np.random.default_rng(6).standard_normal(params.output_shape).astype(np.float32)
    check_op(backend, "max_pool_backward", params, arrays={"x": x, "dy": dy})
    return got


def check_max_pool_nan_windows(backend: Any, params: MaxPoolParams) -> None:
    """MAXPOOL-NAN-1, MAXPOOL-GRAD-1: windows with NaN give NaN and the index of one of their NaNs;
    the gradient follows the backend's own choice of NaN (dy added at its indices)."""
    x = pool_data(params, [np.nan, 0.0, 1.0, 2.0, -np.inf, np.inf], seed=7)
    got = check_op(backend, "max_pool", params, arrays={"x": x})
    assert np.isnan(got["y"]).any()
    dy = np.random.default_rng(8).standard_normal(params.output_shape).astype(np.float32)
    dx = backend.max_pool_backward(x, dy, params)
    routed = np.zeros(params.input_shape[:2] + (int(np.prod(params.input_shape[2:])),))
    n, c = np.indices(params.output_shape[:2])
    flat = got["indices"].reshape(params.output_shape[:2] + (-1,))
    np.add.at(routed, (n[..., None], c[..., None], flat), dy.reshape(flat.shape))
    np.testing.assert_allclose(dx, routed.reshape(params.input_shape), rtol=2e-7, atol=0)


def check_repeated_calls_bitwise_identical(backend: Any, params: ConvParams) -> None:
    """HYGIENE-3: conv_backward twice on the same float32 inputs gives the same bytes."""
    arrays = make_arrays("conv_backward", params, "float32", np.random.default_rng(0))
    first = backend.conv_backward(arrays["x"], arrays["w"], arrays["dy"], params)
    second = backend.conv_backward(arrays["x"], arrays["w"], arrays["dy"], params)
    for a, b in zip(first, second):
        assert a is b is None or a.tobytes() == b.tobytes()


def check_mismatched_arrays_are_refused(backend: Any) -> None:
    """LAYOUT-1, DTYPE-1: float32 x shorter than the params say, or w in float64, raise InvalidParams."""
    params = ConvParams(input_shape=(1, 2, 5), weight_shape=(3, 2, 3))
    x, w = np.zeros((1, 2, 5), np.float32), np.zeros((3, 2, 3), np.float32)
    with pytest.raises(InvalidParams):
        backend.conv(x[:, :, :4], w, None, params)
    with pytest.raises(InvalidParams):
        backend.conv(x, w.astype(np.float64), None, params)
