"""TorchBackend (CPU) against the float64 reference (convspec.reference).

Every op and gradient on ranks 1, 2, 3 with groups, depthwise, dilation, stride > kernel,
asymmetric and 'same_lower' pads, every padding mode, output_padding, ceil-mode overhang,
count_include_pad both ways, divisor_override and N = 0 — the cases PyTorch takes natively and
those the backend transforms (F.pad first, cropping, −inf padding with index mapping, a size-1
axis for 1-D divisor_override, float32 for CPU avg_pool3d in half precision). Linear ops must lie
within ERR-BOUND-1, |out − ref| ≤ (2·K·u + u)·mag + tiny, with mag from ``reference.magnitude``
and K from ``terms_per_output``; max pool values and indices must match exactly (ERR-EXACT-1),
a NaN window's index must point at a NaN of that window (MAXPOOL-NAN-1). What PyTorch cannot do
must be declared (Capabilities.unsupported_reason gives a reason, the call raises Unsupported).
"""

from __future__ import annotations

import itertools
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
    NATIVE_POOL_CASES,
    POOL_CASES,
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
)
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")

from convspec import reference  # noqa: E402
from convspec.backends.torch_backend import TorchBackend  # noqa: E402
from convspec.spec import (  # noqa: E402
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    Unsupported,
    pool_output_size,
    to_dtype,
)
from convspec.spec.dtypes import UNIT_ROUNDOFF  # noqa: E402

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parents[1]
CPU = TorchBackend()


# -- the cases -------------------------------------------------------------------------------------

#: backend_checks' rank 1-3 cases (shared with the scipy tests) and the pools PyTorch takes natively.
POOL_CASES = {**POOL_CASES, **NATIVE_POOL_CASES}


def avg_reason(params: AvgPoolParams, dtype: str = "float32") -> str | None:
    return CPU.capabilities.unsupported_reason("avg_pool", params, dtype)


# -- conv and conv_transpose ----------------------------------------------------------------------

@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_and_its_gradients_match_the_reference(case):  # CONV-DEF-1, CONV-GRAD-1, PAD-MODE-1, PAD-5
    params = ConvParams(**CONV_CASES[case])
    check_op_and_gradient(CPU, "conv", params)


@pytest.mark.parametrize("case", CONVT_CASES)
def test_conv_transpose_and_its_gradients_match_the_reference(case):  # CONVT-DEF-1, CONVT-GRAD-1
    params = ConvTransposeParams(**CONVT_CASES[case])
    check_op_and_gradient(CPU, "conv_transpose", params)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("case", ["2d-groups-same-lower-strided", "3d-reflect-grouped", "1d-circular-pad-n",
                                  "2d-replicate-strided-dilated"])
def test_conv_in_every_dtype(case, dtype):  # DTYPE-1, ERR-BOUND-1
    params = ConvParams(**CONV_CASES[case])
    check_op_and_gradient(CPU, "conv", params, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("case", ["2d-groups-dilated", "3d-symmetric", "1d-stride-output-padding-asymmetric"])
def test_conv_transpose_in_every_dtype(case, dtype):  # DTYPE-1, CONVT-DEF-1
    params = ConvTransposeParams(**CONVT_CASES[case])
    check_op_and_gradient(CPU, "conv_transpose", params, dtype)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_cpu_half_precision_convs_accumulate_in_float32(dtype):  # ERR-BOUND-1: finer than the declared None
    # K = 4096 positive terms: float32 accumulation rounds once (< 1 ulp of the result); accumulating
    # in the 11- or 8-bit dtype would drift by many ulps.
    rng = np.random.default_rng(0)
    x = (rng.random((2, 4096, 3)) + 1).astype(to_dtype(dtype))
    w = (rng.random((4, 4096, 1)) + 1).astype(to_dtype(dtype))
    params = ConvParams(input_shape=x.shape, weight_shape=w.shape)
    y = CPU.conv(x, w, None, params).astype(np.float64)
    ref = reference.conv(x, w, None, params)
    assert (np.abs(y - ref) <= UNIT_ROUNDOFF[dtype] * np.abs(ref)).all()


# -- pooling ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pool_and_its_gradient_match_the_reference(case):  # MAXPOOL-DEF-1, MAXPOOL-GRAD-1, POOL-CEIL-1
    params = MaxPoolParams(**POOL_CASES[case])
    check_op_and_gradient(CPU, "max_pool", params)


@pytest.mark.parametrize("variant", AVG_VARIANTS)
@pytest.mark.parametrize("case", POOL_CASES)
def test_avg_pool_and_its_gradient_match_the_reference_or_are_declared(case, variant):  # AVGPOOL-DEF-1, -GRAD-1
    params = AvgPoolParams(**POOL_CASES[case], **AVG_VARIANTS[variant])
    if any(d > 1 for d in params.dilation):
        assert "dilation" in avg_reason(params)
        x = np.zeros(params.input_shape, np.float32)
        with pytest.raises(Unsupported, match="dilation"):
            CPU.avg_pool(x, params)
        with pytest.raises(Unsupported, match="dilation"):
            CPU.avg_pool_backward(x, np.zeros(params.output_shape, np.float32), params)
        return
    assert avg_reason(params) is None
    check_op_and_gradient(CPU, "avg_pool", params)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
@pytest.mark.parametrize("case", ["2d-asymmetric-ceil", "3d-asymmetric-ceil", "3d-native-ceil",
                                  "3d-input-smaller-than-kernel", "1d-ceil-overhang"])
def test_pools_in_every_dtype(case, dtype):  # DTYPE-1 (CPU avg_pool3d has no half kernels: run in float32)
    check_op_and_gradient(CPU, "max_pool", MaxPoolParams(**POOL_CASES[case]), dtype)
    for variant in AVG_VARIANTS.values():
        avg = AvgPoolParams(**POOL_CASES[case], **variant)
        check_op_and_gradient(CPU, "avg_pool", avg, dtype)


SPECIAL_POOL_CASES = ["1d-ceil-overhang", "2d-asymmetric-ceil", "2d-pad-over-half-kernel", "2d-dilated-ceil",
                      "3d-asymmetric-ceil", "2d-native-ceil", "3d-native-ceil", "1d-native-dilated-ceil"]


@pytest.mark.parametrize("case", SPECIAL_POOL_CASES)
def test_max_pool_ties_take_the_first_in_row_major_window_order(case):  # MAXPOOL-TIE-1, MAXPOOL-INDEX-1
    check_max_pool_ties(CPU, MaxPoolParams(**POOL_CASES[case]))


@pytest.mark.parametrize("case", SPECIAL_POOL_CASES)
def test_max_pool_all_minus_inf_windows_never_select_padding(case):  # MAXPOOL-DEF-1, MAXPOOL-TIE-1
    got = check_max_pool_minus_inf_windows(CPU, MaxPoolParams(**POOL_CASES[case]))
    assert (got["y"] == -np.inf).any()


@pytest.mark.parametrize("case", SPECIAL_POOL_CASES)
def test_max_pool_nan_windows_give_nan_and_the_index_of_a_nan(case):  # MAXPOOL-NAN-1, MAXPOOL-GRAD-1
    check_max_pool_nan_windows(CPU, MaxPoolParams(**POOL_CASES[case]))


@pytest.mark.parametrize("padding", [0, ((1, 0),)], ids=["native", "padded"])
def test_max_pool_signed_zero_ties_return_the_first_element(padding):  # MAXPOOL-TIE-1, ERR-EXACT-1
    x = np.array([[[-0.0, 0.0, 0.0, -0.0]]], dtype=np.float32)
    y, indices = CPU.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=2, padding=padding))
    ref_y, ref_indices = reference.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=2, padding=padding))
    assert indices.tolist() == ref_indices.tolist()
    assert np.signbit(y).tolist() == np.signbit(ref_y).tolist()


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # inf + (-inf) on purpose
@pytest.mark.parametrize("padding", [1, ((2, 0),)], ids=["native", "padded"])
def test_avg_pool_propagates_nan_and_inf(padding):  # AVGPOOL-DEF-1, ERR-SPECIAL-1
    params = AvgPoolParams(input_shape=(1, 1, 7), kernel_size=3, stride=1, padding=padding, count_include_pad=False)
    x = np.array([[[1.0, np.nan, 2.0, 3.0, np.inf, 4.0, -np.inf]]], dtype=np.float32)
    check_op(CPU, "avg_pool", params, arrays={"x": x})


# -- torch's own output sizes ----------------------------------------------------------------------

def test_torch_ceil_mode_sizes_follow_the_spec_wherever_torch_pools_natively():  # POOL-CEIL-1, POOL-SHAPE-1
    F = torch.nn.functional
    for n, k, s, d, ceil_mode in itertools.product(range(1, 9), range(1, 5), range(1, 5), range(1, 4), (False, True)):
        for p in range(k // 2 + 1):
            if n + 2 * p < d * (k - 1) + 1:
                continue
            want = pool_output_size(n, k, s, d, (p, p), ceil_mode)
            x = torch.zeros(1, 1, n)
            assert F.max_pool1d(x, k, s, p, d, ceil_mode).shape[-1] == want, (n, k, s, d, p, ceil_mode)
            if d == 1:
                assert F.avg_pool1d(x, k, s, p, ceil_mode).shape[-1] == want, (n, k, s, p, ceil_mode)
    rng = np.random.default_rng(0)
    for _ in range(200):
        rank = int(rng.integers(2, 4))
        k = rng.integers(1, 4, rank)
        d = rng.integers(1, 3, rank)
        s = rng.integers(1, 4, rank)
        p = np.array([int(rng.integers(0, kk // 2 + 1)) for kk in k])
        n = np.array([int(rng.integers(max(dd * (kk - 1) + 1 - 2 * pp, 1), 8)) for kk, dd, pp in zip(k, d, p)])
        want = tuple(pool_output_size(*map(int, a), (int(pp), int(pp)), True) for a, pp in zip(zip(n, k, s, d), p))
        y = getattr(F, f"max_pool{rank}d")(torch.zeros(1, 1, *map(int, n)), tuple(map(int, k)), tuple(map(int, s)),
                                           tuple(map(int, p)), tuple(map(int, d)), True)
        assert tuple(y.shape[2:]) == want, (n, k, s, d, p)


# -- random configurations -------------------------------------------------------------------------

@settings(max_examples=30, deadline=None)
@given(params=conv_params(max_rank=3, max_size=6))
def test_random_convs_match_the_reference(params):  # CONV-DEF-1, CONV-GRAD-1, CONVT-DEF-1, CONVT-GRAD-1
    check_conv_and_its_transpose(CPU, params)


@st.composite
def pool_params(draw_: Any) -> tuple[MaxPoolParams, AvgPoolParams]:
    rank = draw_(st.integers(1, 3), label="rank")
    kernel = tuple(draw_(st.integers(1, 3)) for _ in range(rank))
    dilation = tuple(draw_(st.integers(1, 2)) for _ in range(rank))
    stride = tuple(draw_(st.integers(1, 3)) for _ in range(rank))
    size = tuple(draw_(st.integers(d * (k - 1) + 1, 6)) for k, d in zip(kernel, dilation))
    # Pads up to k − 1 per side keep every window non-empty with or without dilation (POOL-WINDOW-1).
    pads = tuple((draw_(st.integers(0, k - 1)), draw_(st.integers(0, k - 1))) for k in kernel)
    common = dict(input_shape=(draw_(st.integers(0, 2)), 2) + size, kernel_size=kernel, stride=stride, padding=pads,
                  ceil_mode=draw_(st.booleans(), label="ceil_mode"))
    # torch's avg pool has no dilation (declared): draw it for max pool only.
    avg = AvgPoolParams(**common, count_include_pad=draw_(st.booleans(), label="count_include_pad"),
                        divisor_override=draw_(st.sampled_from([None, 2])))
    return MaxPoolParams(**common, dilation=dilation), avg


@settings(max_examples=30, deadline=None)
@given(both=pool_params())
def test_random_pools_match_the_reference(both):  # MAXPOOL-*, AVGPOOL-*, POOL-CEIL-1
    check_pools(CPU, *both)


# -- capabilities: declared limits, supported cases ------------------------------------------------

def test_capabilities_are_declared_honestly():  # ERR-BOUND-1, ERR-NONLOCAL-1, HYGIENE-3
    caps = CPU.capabilities
    assert CPU.name == "torch"
    assert caps.ranks == {1, 2, 3}
    assert caps.dtypes == {"float16", "bfloat16", "float32", "float64"}
    assert dict(caps.unsupported) == {"avg_pool:dilation": caps.unsupported["avg_pool:dilation"]}
    assert caps.accumulation is None and caps.input_precision is None and caps.local and caps.deterministic


def every_supported_case() -> list[tuple[str, Any]]:
    cases: list[tuple[str, Any]] = []
    for kwargs in CONV_CASES.values():
        cases += [("conv", ConvParams(**kwargs)), ("conv_backward", ConvParams(**kwargs))]
    for kwargs in CONVT_CASES.values():
        cases += [("conv_transpose", ConvTransposeParams(**kwargs)),
                  ("conv_transpose_backward", ConvTransposeParams(**kwargs))]
    for kwargs in POOL_CASES.values():
        cases += [("max_pool", MaxPoolParams(**kwargs)), ("max_pool_backward", MaxPoolParams(**kwargs))]
        if kwargs.get("dilation", 1) == 1:
            cases += [(op, AvgPoolParams(**kwargs, **variant)) for variant in AVG_VARIANTS.values()
                      for op in ("avg_pool", "avg_pool_backward")]
    return cases


def test_every_other_case_is_declared_supported_in_every_dtype():  # unsupported is declared, never silent
    for op, params in every_supported_case():
        for dtype in ("float16", "bfloat16", "float32", "float64"):
            assert CPU.capabilities.unsupported_reason(op, params, dtype) is None, (op, params, dtype)


def test_rank_4_is_declared_unsupported_and_refused():  # LAYOUT-1 (PyTorch has conv1d..conv3d only)
    conv = ConvParams(input_shape=(1, 1, 2, 2, 2, 2), weight_shape=(1, 1, 1, 1, 1, 1))
    pool = MaxPoolParams(input_shape=(1, 1, 2, 2, 2, 2), kernel_size=1)
    assert "rank 4" in CPU.capabilities.unsupported_reason("conv", conv, "float32")
    assert "rank 4" in CPU.capabilities.unsupported_reason("max_pool", pool, "float32")
    x = np.zeros(conv.input_shape, np.float32)
    with pytest.raises(Unsupported, match="rank 4"):
        CPU.conv(x, np.zeros(conv.weight_shape, np.float32), None, conv)
    with pytest.raises(Unsupported, match="rank 4"):
        CPU.max_pool(x, pool)


# -- numerics of the call and hygiene --------------------------------------------------------------

def test_nnpack_is_off_during_a_call_and_restored_after(monkeypatch):  # ERR-NONLOCAL-1: local algorithms only
    seen = []
    conv2d = torch.nn.functional.conv2d

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(torch._C._get_nnpack_enabled())
        return conv2d(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", spy)
    before = torch._C._get_nnpack_enabled()
    params = ConvParams(input_shape=(16, 2, 6, 6), weight_shape=(2, 2, 3, 3))
    CPU.conv(np.ones(params.input_shape, np.float32), np.ones(params.weight_shape, np.float32), None, params)
    assert seen == [False] and torch._C._get_nnpack_enabled() == before


def test_repeated_calls_are_bitwise_identical():  # HYGIENE-3
    check_repeated_calls_bitwise_identical(CPU, ConvParams(**CONV_CASES["3d-reflect-grouped"]))


def test_read_only_inputs_are_accepted_and_left_alone():  # HYGIENE-1
    params = MaxPoolParams(**POOL_CASES["2d-asymmetric-ceil"])
    x = np.random.default_rng(0).standard_normal(params.input_shape).astype(np.float32)
    x.flags.writeable = False
    check_op(CPU, "max_pool", params, arrays={"x": x})


def test_arrays_that_do_not_match_the_params_are_refused():  # LAYOUT-1, DTYPE-1
    check_mismatched_arrays_are_refused(CPU)


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="tf32"):
        TorchBackend(tf32=True)
    with pytest.raises(ValueError, match="device"):
        TorchBackend(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda.is_available"):
            TorchBackend(device="cuda")


def test_importing_the_module_does_not_import_torch():  # heavy imports are lazy
    code = ("import sys, convspec.backends, convspec.backends.torch_backend;"
            "print(sorted(m for m in ('scipy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def test_without_torch_construction_raises_import_error_with_the_install_hint():
    code = ("import sys; sys.modules['torch'] = None\n"  # makes `import torch` raise ImportError
            "from convspec.backends.torch_backend import TorchBackend\n"
            "try:\n    TorchBackend()\nexcept ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "torch is not installed: pip install 'convspec[torch]'"
