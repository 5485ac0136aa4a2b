"""The adapters: torch.nn.functional look-alikes with no glue, plain functions with a few lines.

Every result is compared with the float64 reference under the error model (ERR-BOUND-1; max pool
exactly, ERR-EXACT-1), and must come back in the input dtype (DTYPE-1). The transformations the
adapter performs itself — pre-padding for asymmetric pads and padding modes, cropping for
conv_transpose, index mapping for max pool — are checked on cases that need them.
"""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest

import convspec.reference as reference
from convspec.backends import (
    PADDING_MODE_FEATURES,
    Capabilities,
    FunctionalBackend,
    FunctionBackend,
    load,
)
from convspec.spec import (
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    Unsupported,
    dtype_name,
)
from convspec.spec.accuracy import error_bound, terms_per_output
from convspec.spec.features import features_of

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "my_conv.py"


def random_inputs(op, params, dtype, seed=0):
    """Arrays for the inputs of ``op`` under ``params``, values on a coarse grid (exact in float16)."""
    rng = np.random.default_rng(seed)
    arrays = {"x": rng.integers(-8, 9, params.input_shape) / 8}
    if isinstance(params, (ConvParams, ConvTransposeParams)):
        arrays["w"] = rng.integers(-8, 9, params.weight_shape) / 8
        arrays["b"] = None if params.bias_shape is None else rng.integers(-8, 9, params.bias_shape) / 8
    return {name: None if a is None else a.astype(dtype) for name, a in arrays.items()}


def check_against_reference(backend, op, params, arrays):
    """Run ``op`` on ``backend`` and compare every output with the reference (ERR-BOUND-1, ERR-EXACT-1)."""
    info = OPS[op]
    result = getattr(backend, op)(*(arrays.get(name) for name in info.inputs), params)
    outputs = (result,) if len(info.outputs) == 1 else tuple(result)
    want = reference.evaluate(op, arrays, params)
    mag = reference.magnitude(op, arrays, params)
    dtype = dtype_name(arrays["x"].dtype)
    k = terms_per_output(op, params)
    for name, got in zip(info.outputs, outputs):
        got = np.asarray(got)
        assert got.shape == want[name].shape, (name, got.shape, want[name].shape)
        if name == "indices" or not info.linear:  # ERR-EXACT-1
            np.testing.assert_array_equal(got, want[name], err_msg=name)
            continue
        assert got.dtype == arrays["x"].dtype, f"{name} has dtype {got.dtype}, input {arrays['x'].dtype} (DTYPE-1)"
        bound = error_bound(mag[name], k[name], out_dtype=dtype, accumulation=backend.capabilities.accumulation_for(dtype))
        error = np.abs(got.astype(np.float64) - want[name])
        assert np.all(error <= bound), f"{name}: max error {error.max()} > bound (ERR-BOUND-1)"
    return outputs


# ---- a torch.nn.functional look-alike: torch underneath, NumPy in, tensors out -----------------


def torch_lookalike():
    """A module of torch.nn.functional's functions taking NumPy arrays: zero glue for the adapter.

    The wrappers are variadic, so the adapter reads torch's documented signatures; they return
    tensors, which the adapter converts.
    """
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    module = types.ModuleType("torch_numpy_functional")

    def to_torch(value):
        return torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value

    def wrap(fn):
        return lambda *args, **kwargs: fn(*map(to_torch, args), **{k: to_torch(v) for k, v in kwargs.items()})

    for op in ("conv", "conv_transpose", "max_pool", "avg_pool"):
        for rank in (1, 2, 3):
            setattr(module, f"{op}{rank}d", wrap(getattr(functional, f"{op}{rank}d")))
    return module


@pytest.fixture(scope="module")
def torch_backend():
    return FunctionalBackend(torch_lookalike())


def test_torch_lookalike_capabilities_are_inferred(torch_backend):  # AVGPOOL-DEF-1, POOL-WINDOW-1
    caps = torch_backend.capabilities
    assert caps.ops == {"conv", "conv_transpose", "max_pool", "avg_pool"}  # no gradient functions
    assert caps.ranks == {1, 2, 3}
    # avg_pool1d has no divisor_override, but avg_pool2d does: rank 1 is lifted, nothing declared.
    assert set(caps.unsupported) == {
        "avg_pool:dilation", "avg_pool:asymmetric_padding", "avg_pool:pool_padding_over_half_kernel",
    }
    assert torch_backend.name == "functional:torch_numpy_functional"


CONV_CASES = {
    "1d-bias-stride": dict(input_shape=(2, 3, 9), weight_shape=(4, 3, 3), bias_shape=(4,), stride=2, padding=1),
    "2d-dilation-groups": dict(input_shape=(2, 4, 7, 6), weight_shape=(6, 2, 3, 2), bias_shape=(6,),
                               dilation=(2, 1), groups=2, padding=(2, 1)),
    "3d": dict(input_shape=(1, 2, 4, 5, 3), weight_shape=(3, 2, 2, 3, 2), stride=(1, 2, 1), padding=1),
    "2d-asymmetric": dict(input_shape=(2, 3, 6, 7), weight_shape=(2, 3, 3, 3), padding=((2, 0), (1, 3))),
    "1d-same_lower-even-kernel": dict(input_shape=(1, 2, 8), weight_shape=(2, 2, 4), padding="same_lower"),
    "2d-reflect": dict(input_shape=(1, 2, 5, 6), weight_shape=(3, 2, 3, 3), bias_shape=(3,), padding=((1, 2), (2, 1)),
                       padding_mode="reflect"),
    "2d-replicate": dict(input_shape=(1, 2, 5, 6), weight_shape=(3, 2, 3, 3), padding=3, stride=2,
                         padding_mode="replicate"),
    "1d-circular": dict(input_shape=(2, 2, 6), weight_shape=(2, 1, 3), groups=2, padding=((2, 1),),
                        padding_mode="circular"),
    "2d-empty-batch": dict(input_shape=(0, 2, 5, 5), weight_shape=(3, 2, 3, 3), padding=1),
}


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("case", list(CONV_CASES), ids=list(CONV_CASES))
def test_torch_lookalike_conv_matches_the_reference(torch_backend, case, dtype):  # CONV-DEF-1, PAD-MODE-1, PAD-5
    params = ConvParams(**CONV_CASES[case])
    check_against_reference(torch_backend, "conv", params, random_inputs("conv", params, dtype))


def test_the_transformed_conv_cases_do_use_the_transformed_features():  # PAD-1, PAD-MODE-1
    used = {case: features_of("conv", ConvParams(**kw)) for case, kw in CONV_CASES.items()}
    assert "asymmetric_padding" in used["2d-asymmetric"]
    assert "asymmetric_padding" in used["1d-same_lower-even-kernel"]
    assert {"padding_mode.reflect", "asymmetric_padding"} <= used["2d-reflect"]
    assert "padding_mode.replicate" in used["2d-replicate"]
    assert "padding_mode.circular" in used["1d-circular"]


CONV_TRANSPOSE_CASES = {
    "2d-symmetric-output_padding": dict(input_shape=(2, 4, 4, 5), weight_shape=(4, 3, 3, 3), bias_shape=(6,),
                                        stride=2, padding=1, output_padding=1, groups=2),
    "1d-dilation": dict(input_shape=(1, 2, 5), weight_shape=(2, 3, 3), dilation=2, padding=2, output_padding=1),
    "2d-asymmetric": dict(input_shape=(1, 2, 4, 4), weight_shape=(2, 3, 3, 2), bias_shape=(3,), stride=2,
                          padding=((2, 0), (0, 1))),
    # output_padding 1 > p_a = 0 in dim 0: the crop runs past the full output (CONVT-SHAPE-1)
    "2d-asymmetric-output_padding": dict(input_shape=(1, 2, 3, 4), weight_shape=(2, 2, 3, 3), bias_shape=(2,),
                                         stride=(2, 3), padding=((1, 0), (2, 1)), output_padding=(1, 2)),
    "3d-asymmetric": dict(input_shape=(1, 1, 3, 2, 3), weight_shape=(1, 2, 2, 2, 3), padding=((0, 1), (1, 0), (1, 1))),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CONV_TRANSPOSE_CASES), ids=list(CONV_TRANSPOSE_CASES))
def test_torch_lookalike_conv_transpose_matches_the_reference(torch_backend, case, dtype):  # CONVT-DEF-1
    params = ConvTransposeParams(**CONV_TRANSPOSE_CASES[case])
    check_against_reference(torch_backend, "conv_transpose", params, random_inputs("conv_transpose", params, dtype))


MAX_POOL_CASES = {
    "1d-ceil": dict(input_shape=(2, 3, 7), kernel_size=2, ceil_mode=True),
    "2d-padding-dilation": dict(input_shape=(1, 2, 6, 7), kernel_size=3, stride=(2, 1), padding=1, dilation=(1, 2)),
    "3d": dict(input_shape=(1, 1, 4, 5, 4), kernel_size=(2, 3, 2), stride=1, padding=(1, 1, 0)),
    "2d-asymmetric": dict(input_shape=(2, 2, 6, 5), kernel_size=3, stride=2, padding=((2, 0), (0, 1))),
    "1d-over-half-kernel": dict(input_shape=(1, 2, 7), kernel_size=3, stride=2, padding=2),
    "2d-asymmetric-ceil": dict(input_shape=(1, 2, 7, 6), kernel_size=2, stride=2, padding=((1, 0), (0, 1)),
                               ceil_mode=True),
    "1d-asymmetric-dilation-ceil": dict(input_shape=(1, 1, 9), kernel_size=3, stride=3, dilation=2,
                                        padding=((3, 1),), ceil_mode=True),
}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("case", list(MAX_POOL_CASES), ids=list(MAX_POOL_CASES))
def test_torch_lookalike_max_pool_matches_the_reference(torch_backend, case, dtype):  # MAXPOOL-DEF-1, MAXPOOL-INDEX-1
    params = MaxPoolParams(**MAX_POOL_CASES[case])
    rng = np.random.default_rng(1)
    x = rng.permutation(np.prod(params.input_shape)).reshape(params.input_shape).astype(dtype)  # no ties
    check_against_reference(torch_backend, "max_pool", params, {"x": x})


def test_minus_inf_padding_never_wins_a_window_of_minus_infs(torch_backend):  # MAXPOOL-DEF-1, MAXPOOL-TIE-1
    """Pre-padding with −inf ties an all −inf window: the index must still point into the input."""
    # With dilation 2 the first window of dim 0 has taps -3, -1, 1: its first tap inside is 1, not 0.
    params = MaxPoolParams(input_shape=(1, 1, 6, 4), kernel_size=3, stride=(2, 1), dilation=(2, 1),
                           padding=((3, 0), (1, 1)))
    assert "asymmetric_padding" in features_of("max_pool", params)
    x = np.full(params.input_shape, -np.inf, dtype=np.float32)
    x[0, 0, 5, 3] = 1.0
    _, indices = check_against_reference(torch_backend, "max_pool", params, {"x": x})
    assert indices[0, 0, 0, 0] == 1 * 4 + 0


AVG_POOL_CASES = {
    "1d-count_include_pad": dict(input_shape=(2, 3, 8), kernel_size=3, stride=2, padding=1, count_include_pad=True),
    "2d-exclude-pad-ceil": dict(input_shape=(1, 2, 7, 6), kernel_size=(3, 2), stride=2, padding=1, ceil_mode=True,
                                count_include_pad=False),
    "3d": dict(input_shape=(1, 2, 4, 4, 5), kernel_size=2, stride=(1, 2, 2), count_include_pad=True),
    "1d-divisor_override": dict(input_shape=(1, 2, 7), kernel_size=3, stride=2, padding=1, count_include_pad=False,
                                divisor_override=5),
    "2d-divisor_override-ceil": dict(input_shape=(1, 2, 5, 5), kernel_size=2, ceil_mode=True, count_include_pad=True,
                                     divisor_override=3),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", list(AVG_POOL_CASES), ids=list(AVG_POOL_CASES))
def test_torch_lookalike_avg_pool_matches_the_reference(torch_backend, case, dtype):  # AVGPOOL-DEF-1
    params = AvgPoolParams(**AVG_POOL_CASES[case])
    check_against_reference(torch_backend, "avg_pool", params, random_inputs("avg_pool", params, dtype))


@pytest.mark.parametrize("params", [
    AvgPoolParams(input_shape=(1, 1, 6), kernel_size=3, padding=((1, 0),), count_include_pad=False),
    AvgPoolParams(input_shape=(1, 1, 6, 6), kernel_size=3, stride=1, padding=2, count_include_pad=True),
    AvgPoolParams(input_shape=(1, 1, 6), kernel_size=2, dilation=2, count_include_pad=True),
], ids=["asymmetric", "over-half-kernel", "dilation"])
def test_declared_unsupported_features_raise_unsupported(torch_backend, params):  # POOL-WINDOW-1
    with pytest.raises(Unsupported, match="avg_pool:"):
        torch_backend.avg_pool(np.zeros(params.input_shape, np.float32), params)


def test_gradients_are_unsupported_without_gradient_functions(torch_backend):  # CONV-GRAD-1
    params = ConvParams(input_shape=(1, 1, 4), weight_shape=(1, 1, 2))
    with pytest.raises(Unsupported, match="op conv_backward not implemented"):
        torch_backend.conv_backward(np.zeros((1, 1, 4)), np.zeros((1, 1, 2)), np.zeros((1, 1, 3)), params)


def test_torch_functional_itself_needs_no_glue():  # CONV-DEF-1, MAXPOOL-INDEX-1
    """torch.nn.functional takes tensors: the adapter converts NumPy inputs with torch.from_numpy."""
    pytest.importorskip("torch")
    backend = load("torch.nn.functional")
    assert isinstance(backend, FunctionalBackend) and backend.name == "torch.nn.functional"
    conv = ConvParams(input_shape=(1, 2, 5, 5), weight_shape=(3, 2, 2, 2), bias_shape=(3,), padding="same_upper")
    check_against_reference(backend, "conv", conv, random_inputs("conv", conv, "float32"))
    pool = MaxPoolParams(input_shape=(1, 2, 5, 5), kernel_size=3, stride=2, padding=((0, 2), (1, 1)))
    x = np.random.default_rng(0).permutation(50).reshape(pool.input_shape).astype(np.float64)
    check_against_reference(backend, "max_pool", pool, {"x": x})


# ---- what reaches the wrapped functions -----------------------------------------------------


def recording_conv2d(calls):
    def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
        calls.append(dict(shape=input.shape, stride=stride, padding=padding))
        return reference.conv(input, weight, bias, ConvParams(
            input_shape=input.shape, weight_shape=weight.shape, bias_shape=None if bias is None else bias.shape,
            stride=stride, padding=padding, dilation=dilation, groups=groups)).astype(input.dtype)
    return conv2d


def test_symmetric_pads_go_to_the_function_and_asymmetric_ones_are_applied_first():  # PAD-1
    calls = []
    backend = FunctionalBackend(types.SimpleNamespace(conv2d=recording_conv2d(calls)), name="recording")
    x, w = np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3))
    backend.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding=1, stride=(1, 2)))
    backend.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding=((1, 0), (2, 2))))
    assert calls == [dict(shape=(1, 1, 5, 5), stride=(1, 2), padding=1), dict(shape=(1, 1, 6, 9), stride=1, padding=0)]


# ---- a pure NumPy look-alike providing only conv2d -------------------------------------------


def numpy_conv2d(input, weight, bias=None, stride=1, padding=0):
    """torch.nn.functional.conv2d's signature without dilation and groups, in NumPy."""
    s_i, s_j = (stride, stride) if isinstance(stride, int) else stride
    p_i, p_j = (padding, padding) if isinstance(padding, int) else padding
    x = np.pad(input, ((0, 0), (0, 0), (p_i, p_i), (p_j, p_j)))
    k_i, k_j = weight.shape[2:]
    o_i, o_j = (x.shape[2] - k_i) // s_i + 1, (x.shape[3] - k_j) // s_j + 1
    y = np.zeros((x.shape[0], weight.shape[0], o_i, o_j), dtype=input.dtype)
    for q_i in range(k_i):
        for q_j in range(k_j):
            window = x[:, :, q_i:q_i + (o_i - 1) * s_i + 1:s_i, q_j:q_j + (o_j - 1) * s_j + 1:s_j]
            y += np.einsum("ncij,oc->noij", window, weight[:, :, q_i, q_j])
    return y if bias is None else y + bias[:, None, None]


@pytest.fixture(scope="module")
def numpy_backend():
    return FunctionalBackend(types.SimpleNamespace(conv2d=numpy_conv2d), name="numpy-conv2d")


def test_numpy_lookalike_capabilities_are_inferred_from_its_signature(numpy_backend):  # CONV-GROUPS-1
    caps = numpy_backend.capabilities
    assert caps.ops == {"conv"} and caps.ranks == {2}
    assert dict(caps.unsupported) == {"conv:dilation": "conv2d takes no dilation", "conv:groups": "conv2d takes no groups"}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", ["2d-asymmetric", "2d-reflect", "2d-replicate", "2d-empty-batch"])
def test_numpy_lookalike_conv_matches_the_reference(numpy_backend, case, dtype):  # CONV-DEF-1, PAD-MODE-1
    params = ConvParams(**CONV_CASES[case])
    check_against_reference(numpy_backend, "conv", params, random_inputs("conv", params, dtype))


def test_numpy_lookalike_refuses_what_it_declared(numpy_backend):  # CONV-GROUPS-1
    params = ConvParams(**CONV_CASES["2d-dilation-groups"])
    with pytest.raises(Unsupported, match="conv:dilation"):
        numpy_backend.conv(*random_inputs("conv", params, "float32").values(), params)
    rank1 = ConvParams(**CONV_CASES["1d-bias-stride"])
    with pytest.raises(Unsupported, match="spatial rank 1"):
        numpy_backend.conv(*random_inputs("conv", rank1, "float32").values(), rank1)


def test_functions_named_as_ops_are_used_directly():  # CONV-GRAD-1
    namespace = types.SimpleNamespace(conv2d=numpy_conv2d, conv_backward=reference.conv_backward)
    backend = FunctionalBackend(namespace)
    assert backend.capabilities.ops == {"conv", "conv_backward"}
    params = ConvParams(input_shape=(1, 2, 4, 4), weight_shape=(3, 2, 2, 2), bias_shape=(3,))
    arrays = random_inputs("conv", params, "float64")
    dy = np.ones(params.output_shape)
    dx, dw, db = backend.conv_backward(arrays["x"], arrays["w"], dy, params)
    np.testing.assert_array_equal(db, [9.0, 9.0, 9.0])


def test_max_pool_without_return_indices_gives_none():  # MAXPOOL-DEF-1
    def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
        params = MaxPoolParams(input_shape=input.shape, kernel_size=kernel_size, stride=stride, padding=padding,
                               dilation=dilation, ceil_mode=ceil_mode)
        return reference.max_pool(input, params)[0].astype(input.dtype)

    backend = FunctionalBackend(types.SimpleNamespace(max_pool1d=max_pool1d))
    params = MaxPoolParams(input_shape=(1, 1, 6), kernel_size=2, padding=((1, 0),))
    x = np.arange(6.0)[None, None]
    y, indices = backend.max_pool(x, params)
    assert indices is None
    np.testing.assert_array_equal(y, [[[0.0, 2.0, 4.0]]])


def test_rank_1_divisor_override_is_declared_when_it_cannot_be_lifted():  # AVGPOOL-DEF-1
    def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
        raise AssertionError("not called")

    backend = FunctionalBackend(types.SimpleNamespace(avg_pool1d=avg_pool1d))
    assert "avg_pool:divisor_override" in backend.capabilities.unsupported
    assert "avg_pool:dilation" in backend.capabilities.unsupported


def test_ranks_are_those_every_op_has():  # LAYOUT-1
    one_and_two = types.SimpleNamespace(conv1d=numpy_conv2d, conv2d=numpy_conv2d, max_pool2d=lambda *a, **k: None)
    assert FunctionalBackend(one_and_two).capabilities.ranks == {2}
    disjoint = types.SimpleNamespace(conv1d=numpy_conv2d, max_pool2d=lambda *a, **k: None)
    with pytest.raises(TypeError, match="no spatial rank has a function for every op"):
        FunctionalBackend(disjoint)
    with pytest.raises(TypeError, match="none of the functions"):
        FunctionalBackend(types.SimpleNamespace(relu=abs))
    with pytest.raises(TypeError, match="lacks parameter"):
        FunctionalBackend(types.SimpleNamespace(max_pool2d=lambda input, kernel_size: input))


def test_unsupported_overrides_add_to_the_inferred_ones(numpy_backend):
    backend = FunctionalBackend(types.SimpleNamespace(conv2d=numpy_conv2d), dtypes={"float64"},
                                unsupported={"empty_batch": "einsum is fine, but say we do not"})
    assert backend.capabilities.dtypes == {"float64"}
    assert set(backend.capabilities.unsupported) == {"conv:dilation", "conv:groups", "empty_batch"}


# ---- plain functions: FunctionBackend and the README example ---------------------------------


@pytest.fixture(scope="module")
def example_backend():
    return load(f"{EXAMPLE}:backend")


def test_the_example_declares_what_its_function_lacks(example_backend):  # PAD-MODE-1, CONV-GROUPS-1
    caps = example_backend.capabilities
    assert isinstance(example_backend, FunctionBackend) and example_backend.name == "my_conv2d"
    assert caps.ops == {"conv"} and caps.ranks == {2}
    assert set(caps.unsupported) == {"asymmetric_padding", "groups", "dilation", *PADDING_MODE_FEATURES}


EXAMPLE_CASES = {
    "plain": dict(input_shape=(2, 3, 5, 6), weight_shape=(4, 3, 3, 3)),
    "bias-stride-padding": dict(input_shape=(1, 2, 7, 6), weight_shape=(3, 2, 3, 2), bias_shape=(3,),
                                stride=(2, 1), padding=(1, 2)),
    "same-odd-kernel": dict(input_shape=(2, 1, 6, 6), weight_shape=(2, 1, 3, 5), padding="same"),
    "empty-batch": dict(input_shape=(0, 1, 4, 4), weight_shape=(2, 1, 2, 2), bias_shape=(2,)),
}


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("case", list(EXAMPLE_CASES), ids=list(EXAMPLE_CASES))
def test_the_example_matches_the_reference(example_backend, case, dtype):  # CONV-DEF-1, CONV-SHAPE-1
    params = ConvParams(**EXAMPLE_CASES[case])
    check_against_reference(example_backend, "conv", params, random_inputs("conv", params, dtype, seed=3))


@pytest.mark.parametrize("kw, feature", [
    (dict(padding=((1, 0), (0, 0))), "asymmetric_padding"),
    (dict(padding=1, padding_mode="reflect"), "padding_mode.reflect"),
    (dict(dilation=2), "dilation"),
], ids=["asymmetric", "reflect", "dilation"])
def test_the_example_refuses_what_it_declared(example_backend, kw, feature):  # PAD-1
    params = ConvParams(input_shape=(1, 1, 5, 5), weight_shape=(1, 1, 2, 2), **kw)
    with pytest.raises(Unsupported, match=feature):
        example_backend.conv(np.zeros(params.input_shape), np.zeros(params.weight_shape), None, params)


def test_function_backend_checks_its_arguments():
    with pytest.raises(TypeError, match="at least one op"):
        FunctionBackend("empty")
    with pytest.raises(TypeError, match="ops= is not accepted"):
        FunctionBackend("x", conv=print, ops={"conv"})
    with pytest.raises(TypeError, match="must be callable"):
        FunctionBackend("x", conv=3)
    with pytest.raises(TypeError, match="non-empty str"):
        FunctionBackend("", conv=print)
    with pytest.raises(ValueError, match="'no_such_feature' names unknown feature"):  # validated keys
        FunctionBackend("x", conv=print, unsupported={"no_such_feature": "?"})


def test_function_backend_converts_tensors_and_tuples():  # DTYPE-1
    torch = pytest.importorskip("torch")
    backend = FunctionBackend(
        "torch-max-pool",
        max_pool=lambda x, p: torch.nn.functional.max_pool1d(
            torch.from_numpy(x), p.kernel_size[0], p.stride[0], return_indices=True),
        ranks={1}, unsupported={"padding": "not passed", "dilation": "not passed", "ceil_mode": "not passed"},
    )
    params = MaxPoolParams(input_shape=(1, 2, 6), kernel_size=2)
    x = np.random.default_rng(2).permutation(12).reshape(1, 2, 6).astype(np.float32)
    y, indices = check_against_reference(backend, "max_pool", params, {"x": x})
    assert isinstance(y, np.ndarray) and y.dtype == np.float32 and indices.dtype == np.int64


def test_capabilities_of_adapters_are_frozen(example_backend):
    assert isinstance(example_backend.capabilities, Capabilities)
    with pytest.raises(TypeError):
        example_backend.capabilities.unsupported["groups"] = "changed"  # type: ignore[index]
