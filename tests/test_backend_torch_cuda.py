"""TorchBackend on CUDA against the float64 reference (convspec.reference): float16, bfloat16,
float32 with TF32 off (``TorchBackend(device="cuda")``) and float32 with TF32 on
(``TorchBackend(device="cuda", tf32=True)``).

Each is held to the bound its capabilities declare (ERR-BOUND-1): u of the dtype (accumulation
None), ``input_precision="tf32"`` for the TF32 variant, and, since cuDNN may pick FFT or Winograd
algorithms, the non-local magnitude of ERR-NONLOCAL-1. float32 with TF32 off must pass the float32
bound on cases with few terms per output and many outputs, and the float32 statistical test
(ERR-STAT-1) on a case with K = 576: a TF32 silently left on fails both, and on a GPU with TF32
(compute capability ≥ 8.0) the TF32 variant is shown to fail the float32 statistical test, so the
check has the power it claims.

Every test is skipped, with the reason, where ``torch.cuda.is_available()`` is False.
"""

from __future__ import annotations

from typing import Any

import backend_checks
import numpy as np
import pytest
from backend_checks import AVG_VARIANTS, CONV_CASES, CONVT_CASES, NATIVE_POOL_CASES, POOL_CASES, make_arrays

torch = pytest.importorskip("torch")

from convspec import reference  # noqa: E402
from convspec.backends.torch_backend import TorchBackend  # noqa: E402
from convspec.spec import (  # noqa: E402
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    Unsupported,
    to_dtype,
)
from convspec.spec.accuracy import statistical_limits, terms_per_output  # noqa: E402
from convspec.spec.dtypes import UNIT_ROUNDOFF  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: torch.cuda.is_available() is False"),
]

HALF_TYPES = ["float16", pytest.param("bfloat16", marks=pytest.mark.skipif(
    not (torch.cuda.is_available() and torch.cuda.is_bf16_supported()),
    reason="this CUDA device has no bfloat16 support (torch.cuda.is_bf16_supported() is False)"))]
TF32_HARDWARE = torch.cuda.is_available() and torch.cuda.get_device_capability() >= (8, 0)


@pytest.fixture(scope="module")
def cuda() -> TorchBackend:
    return TorchBackend(device="cuda")


@pytest.fixture(scope="module")
def cuda_tf32() -> TorchBackend:
    return TorchBackend(device="cuda", tf32=True)


# -- comparison with the reference ---------------------------------------------------------------

def magnitude(op: str, arrays: dict[str, Any], params: Any, local: bool) -> dict[str, Any]:
    """mag of ERR-BOUND-1; for a non-local backend every operand but w and b is replaced by its
    largest absolute value (ERR-NONLOCAL-1)."""
    if not local:
        arrays = {name: None if a is None else (
            np.full(a.shape, np.abs(a.astype(np.float64)).max(initial=0.0)) if name not in ("w", "b")
            else a.astype(np.float64)) for name, a in arrays.items()}
    return reference.magnitude(op, arrays, params)


def declared_model(backend: Any, op: str, arrays: dict[str, Any], params: Any) -> tuple[dict, dict]:
    """mag and K of ERR-BOUND-1 for these tests: ``magnitude`` above (each operand but w and b at its
    largest absolute value for a non-local backend, without the engine's maximum over the output)
    and ``terms_per_output`` (without the engine's ⌈log2 L⌉ extra terms) - stricter than the
    engine's non-local model."""
    return magnitude(op, arrays, params, backend.capabilities.local), terms_per_output(op, params)


def check_op(backend: Any, op: str, params: Any, dtype: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """backend_checks.check_op under ``declared_model``."""
    return backend_checks.check_op(backend, op, params, dtype, bound_model=declared_model, **kwargs)


# -- the cases -------------------------------------------------------------------------------------

CONV_CASES = {name: CONV_CASES[name] for name in (
    "1d-bias", "2d-groups-same-lower-strided", "2d-depthwise-same-dilated", "3d-asymmetric", "3d-reflect-grouped",
    "2d-replicate-strided-dilated", "1d-circular-pad-n", "2d-empty-batch")}

CONVT_CASES = {name: CONVT_CASES[name] for name in (
    "1d-stride-output-padding-asymmetric", "2d-groups-dilated", "3d-symmetric")}

POOL_CASES = {name: {**POOL_CASES, **NATIVE_POOL_CASES}[name] for name in (
    "1d-ceil-overhang", "2d-asymmetric-ceil", "2d-native-ceil", "3d-native-ceil", "3d-asymmetric-ceil",
    "3d-input-smaller-than-kernel")}

#: Few terms per output, many outputs: TF32 rounding (u = 2**-11 per product) dwarfs the float32 bound.
FEW_TERMS = {
    "conv": ConvParams(input_shape=(4, 1, 96, 96), weight_shape=(8, 1, 3, 3), padding=1),
    "conv_transpose": ConvTransposeParams(input_shape=(4, 8, 48, 48), weight_shape=(8, 1, 2, 2), stride=2),
}
#: K = 64·3·3 = 576 terms per output, 2·64·30·30 outputs: for ERR-STAT-1.
MANY_TERMS = ConvParams(input_shape=(2, 64, 32, 32), weight_shape=(64, 64, 3, 3))


def normalised_errors(backend: Any, params: ConvParams, seed: int = 0) -> tuple[float, float, float, float]:
    """(Σe, Σe², bias limit, variance limit) of ERR-STAT-1 for conv in float32, e = (out − ref)/(mag·u)
    with u = 2**-24 and the magnitude of the backend's declared locality."""
    arrays = make_arrays("conv", params, "float32", np.random.default_rng(seed))
    out = np.asarray(backend.conv(arrays["x"], arrays["w"], None, params), np.float64)
    ref = reference.conv(arrays["x"], arrays["w"], None, params)
    mag = magnitude("conv", arrays, params, backend.capabilities.local)["y"]
    e = (out - ref) / (mag * UNIT_ROUNDOFF["float32"])
    bias_limit, variance_limit = statistical_limits(params.terms_per_output, e.size)
    return float(e.sum()), float(np.square(e).sum()), bias_limit, variance_limit


# -- declarations ----------------------------------------------------------------------------------

def test_capabilities_are_declared_honestly(cuda, cuda_tf32):  # ERR-BOUND-1, ERR-NONLOCAL-1, HYGIENE-3
    assert (cuda.name, cuda_tf32.name) == ("torch:cuda", "torch:cuda:tf32")
    for backend in (cuda, cuda_tf32):
        caps = backend.capabilities
        assert caps.dtypes == {"float16", "bfloat16", "float32"} and caps.ranks == {1, 2, 3}
        assert caps.accumulation is None  # half-type atomics in pool and pad backward accumulate in the dtype
        assert caps.local is False  # cuDNN's heuristics may choose FFT or Winograd algorithms
        assert caps.deterministic is False  # atomicAdd in max_pool3d / avg_pool3d / F.pad backward, scatter_add_
        assert "dilation" in caps.unsupported["avg_pool:dilation"]
    assert cuda.capabilities.input_precision is None and cuda_tf32.capabilities.input_precision == "tf32"


def test_float64_is_declared_unsupported_on_cuda(cuda):  # DTYPE-1
    params = ConvParams(**CONV_CASES["1d-bias"])
    assert "float64" in cuda.capabilities.unsupported_reason("conv", params, "float64")
    with pytest.raises(Unsupported, match="float64"):
        cuda.conv(np.zeros(params.input_shape), np.zeros(params.weight_shape), np.zeros(params.bias_shape), params)


@pytest.mark.parametrize("tf32", [False, True], ids=["tf32-off", "tf32-on"])
def test_tf32_flags_hold_during_the_call_and_are_restored_after(monkeypatch, tf32):
    backend = TorchBackend(device="cuda", tf32=tf32)
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    seen = []
    conv2d = torch.nn.functional.conv2d

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append((matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark))
        return conv2d(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "conv2d", spy)
    saved = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
    try:
        # The caller's flags are the opposite of the backend's, so a leak either way shows.
        matmul.allow_tf32 = cudnn.allow_tf32 = not tf32
        cudnn.deterministic, cudnn.benchmark = False, True
        params = ConvParams(input_shape=(1, 2, 6, 6), weight_shape=(2, 2, 3, 3))
        backend.conv(np.ones(params.input_shape, np.float32), np.ones(params.weight_shape, np.float32), None, params)
        assert seen == [(tf32, tf32, True, False)]
        assert (matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark) == (
            not tf32, not tf32, False, True)
    finally:
        matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved


# -- every op in every CUDA dtype ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", HALF_TYPES + ["float32"])
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_and_its_gradients(cuda, case, dtype):  # CONV-DEF-1, CONV-GRAD-1, ERR-BOUND-1
    params = ConvParams(**CONV_CASES[case])
    check_op(cuda, "conv", params, dtype)
    check_op(cuda, "conv_backward", params, dtype, seed=1)


@pytest.mark.parametrize("dtype", HALF_TYPES + ["float32"])
@pytest.mark.parametrize("case", CONVT_CASES)
def test_conv_transpose_and_its_gradients(cuda, case, dtype):  # CONVT-DEF-1, CONVT-GRAD-1, ERR-BOUND-1
    params = ConvTransposeParams(**CONVT_CASES[case])
    check_op(cuda, "conv_transpose", params, dtype)
    check_op(cuda, "conv_transpose_backward", params, dtype, seed=1)


@pytest.mark.parametrize("dtype", HALF_TYPES + ["float32"])
@pytest.mark.parametrize("case", POOL_CASES)
def test_pools_and_their_gradients(cuda, case, dtype):  # MAXPOOL-*, AVGPOOL-*, POOL-CEIL-1
    params = MaxPoolParams(**POOL_CASES[case])
    check_op(cuda, "max_pool", params, dtype)
    check_op(cuda, "max_pool_backward", params, dtype, seed=1)
    rng = np.random.default_rng(2)
    x = rng.choice(np.array([np.nan, -np.inf, 0.0, 1.0], dtype=to_dtype(dtype)), size=params.input_shape)
    check_op(cuda, "max_pool", params, dtype, arrays={"x": x})  # NaN, -inf windows and ties, exactly
    for variant in AVG_VARIANTS.values():
        avg = AvgPoolParams(**POOL_CASES[case], **variant)
        check_op(cuda, "avg_pool", avg, dtype)
        check_op(cuda, "avg_pool_backward", avg, dtype, seed=1)


# -- float32: TF32 off must be float32, TF32 on within its declared precision ----------------------

@pytest.mark.parametrize("op", ["conv", "conv_transpose"])
def test_float32_with_tf32_off_meets_the_float32_bound_with_few_terms(cuda, op):  # ERR-BOUND-1, DTYPE-2
    check_op(cuda, op, FEW_TERMS[op], "float32")
    check_op(cuda, f"{op}_backward", FEW_TERMS[op], "float32", seed=1)


@pytest.mark.parametrize("op", ["conv", "conv_transpose"])
def test_tf32_meets_the_bound_of_its_declared_input_precision(cuda_tf32, op):  # ERR-BOUND-1, DTYPE-2
    check_op(cuda_tf32, op, FEW_TERMS[op], "float32")
    check_op(cuda_tf32, f"{op}_backward", FEW_TERMS[op], "float32", seed=1)
    check_op(cuda_tf32, "conv", MANY_TERMS, "float32")


def test_float32_with_tf32_off_passes_the_float32_statistical_test(cuda):  # ERR-STAT-1
    total, squares, bias_limit, variance_limit = normalised_errors(cuda, MANY_TERMS)
    assert abs(total) <= bias_limit and squares <= variance_limit, (total, bias_limit, squares, variance_limit)


@pytest.mark.skipif(not TF32_HARDWARE, reason="TF32 needs compute capability >= 8.0")
def test_tf32_fails_the_float32_statistical_test_so_the_check_has_power(cuda_tf32):  # ERR-STAT-1
    _, squares, _, variance_limit = normalised_errors(cuda_tf32, MANY_TERMS)
    assert squares > variance_limit, "TF32 on gave float32-sized errors: is TF32 really applied?"
