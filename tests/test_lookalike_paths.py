"""The look-alike adapter reaches the implementation's own code paths.

'same' and 'valid' go to a conv function that takes strings (PAD-3, PAD-4), arguments at their
default are left out by the ``defaults`` check (PARAM-3), max-pool indices must be int64
(MAXPOOL-INDEX-2), and what the adapter's own code cannot convert is the backend's
non-conformance with the clause it breaks, never an error inside convspec.
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

import convspec
import convspec.reference as reference
from convspec.backends import FunctionalBackend, FunctionBackend, load
from convspec.backends.adapters import ARGUMENT_DEFAULTS
from convspec.conformance.checks.defaults import default_cases
from convspec.spec import ConvParams, ConvTransposeParams, MaxPoolParams, NonConformingOutput, same_pads

# ---- NumPy look-alikes built on the reference (exact, so only a seeded bug differs) ------------


def _conv_params(input, weight, bias, stride, padding, dilation, groups):
    return ConvParams(input_shape=input.shape, weight_shape=weight.shape,
                      bias_shape=None if bias is None else bias.shape, stride=stride, padding=padding,
                      dilation=dilation, groups=groups)


def string_conv1d(calls, same_extra_before=False):
    """conv1d taking padding strings (annotated ``int | str``); with ``same_extra_before`` its own
    'same' puts the odd pad before, the same_lower convention (a bug: torch and PAD-4 put it after)."""

    def conv1d(input, weight, bias=None, stride=1, padding: "int | str" = 0, dilation=1, groups=1):
        calls.append(padding)
        if padding == "same" and same_extra_before:
            padding = "same_lower"
        params = _conv_params(input, weight, bias, stride, padding, dilation, groups)
        return reference.conv(input, weight, bias, params).astype(input.dtype)

    return conv1d


def pool_lookalike(stride_default_is_kernel=True, index_dtype=np.int64):
    """max_pool1d/2d with torch's signature on the reference; optionally the wrong default stride 1."""

    def make(rank):
        def max_pool(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     return_indices=False):
            if stride is None:
                stride = kernel_size if stride_default_is_kernel else 1
            params = MaxPoolParams(input_shape=input.shape, kernel_size=kernel_size, stride=stride,
                                   padding=padding, dilation=dilation, ceil_mode=ceil_mode)
            y, indices = reference.max_pool(input, params)
            y = y.astype(input.dtype)
            return (y, indices.astype(index_dtype)) if return_indices else y

        max_pool.__name__ = f"max_pool{rank}d"
        return max_pool

    return types.SimpleNamespace(max_pool1d=make(1), max_pool2d=make(2))


# ---- 'same' and 'valid' reach the function's own padding code (PAD-3, PAD-4) -----------------


def test_padding_strings_go_to_a_function_that_takes_them():  # PAD-3, PAD-4
    calls = []
    backend = FunctionalBackend(types.SimpleNamespace(conv1d=string_conv1d(calls)), name="strings")
    x, w = np.ones((1, 1, 7)), np.ones((1, 1, 4))
    for padding, stride in (("same", 1), ("valid", 2), ("same", 2), ("same_lower", 1), (((1, 1),), 1)):
        backend.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding=padding,
                                            stride=stride))
    # 'same' at stride > 1 and 'same_lower' are pre-padded (torch's 'same' is stride 1, same_upper)
    assert calls == ["same", "valid", 0, 0, 1]


def test_without_string_support_the_pads_are_explicit():  # PAD-4
    calls = []
    plain = string_conv1d(calls)
    plain.__annotations__.clear()  # no `str` in the annotation, int default: strings are not taken
    backend = FunctionalBackend(types.SimpleNamespace(conv1d=plain), name="ints")
    x, w = np.ones((1, 1, 7)), np.ones((1, 1, 4))
    backend.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding="same"))
    forced = FunctionalBackend(types.SimpleNamespace(conv1d=plain), name="forced", padding_strings=True)
    forced.conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding="same"))
    assert calls == [0, "same"]  # asymmetric (1, 2): pre-padded, then the override sends the string


def test_a_lookalike_whose_own_same_pads_the_extra_before_is_caught():  # PAD-4
    calls = []
    buggy = FunctionalBackend(types.SimpleNamespace(conv1d=string_conv1d(calls, same_extra_before=True)),
                              name="same-before")
    results = convspec.run_conformance(buggy, ops=["conv"], ranks=[1], checks=["differential"], max_examples=5)
    assert results.exit_code == 1
    failed = [r for r in results.failures() if r.case is not None and r.case.params.get("padding") == "same_upper"]
    assert failed, results.summary()
    assert "same" in calls
    correct = FunctionalBackend(types.SimpleNamespace(conv1d=string_conv1d([])), name="same-after")
    assert convspec.run_conformance(correct, ops=["conv"], ranks=[1], checks=["differential"],
                                    max_examples=5).exit_code == 0


def test_catalogue_cases_carry_padding_strings():  # PAD-1
    case = convspec.Case.parse("conv x=1,2,7 w=3,2,4 s=1 p=same d=1 g=1 dtype=float32 data=random seed=0")
    assert case.params_object.padding == "same_upper" and case.params_object.pads == ((1, 2),)
    from convspec.conformance.catalogue import catalogue_cases

    forms = {c.params.get("padding") for c in catalogue_cases(ops=["conv"], ranks=[1, 2], dtypes=["float32"])}
    assert {"same_upper", "valid"} <= forms


def test_torch_functional_same_is_same_upper():  # PAD-4
    """torch's own 'same' (stride 1) puts the odd pad after: exactly same_upper, even kernels included."""
    torch = pytest.importorskip("torch")
    backend = load("torch.nn.functional")
    assert same_pads(7, 4, 1, 1, lower=False) == (1, 2)
    for kernel, dilation in ((4, 1), (2, 3), (3, 2)):
        params = ConvParams(input_shape=(1, 2, 7, 6), weight_shape=(3, 2, kernel, 3), padding="same",
                            dilation=(dilation, 1))
        rng = np.random.default_rng(kernel)
        x = rng.integers(-4, 5, params.input_shape).astype(np.float64)
        w = rng.integers(-4, 5, params.weight_shape).astype(np.float64)
        with warnings.catch_warnings():  # torch: an even 'same' kernel may need a zero-padded copy
            warnings.simplefilter("ignore", UserWarning)
            y = backend.conv(x, w, None, params)
            direct = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), padding="same",
                                                dilation=(dilation, 1))
        np.testing.assert_array_equal(y, reference.conv(x, w, None, params))
        np.testing.assert_array_equal(direct.numpy(), y)


# ---- defaults (PARAM-3) --------------------------------------------------------------------


def test_a_wrong_default_pool_stride_is_caught_by_the_defaults_check():  # PARAM-3
    buggy = FunctionalBackend(pool_lookalike(stride_default_is_kernel=False), name="stride-1-default")
    results = convspec.run_conformance(buggy, ranks=[1, 2], checks=["defaults"])
    failures = results.failures()
    assert results.exit_code == 1 and len(failures) == 2
    assert {(r.op, r.family, r.clause) for r in failures} == {("max_pool", "defaults", "PARAM-3")}
    assert "left out" in failures[0].message
    assert "--checks defaults" in failures[0].reproducer()["cli"]
    # Every other family gives every argument: the bug is invisible to them.
    others = convspec.run_conformance(buggy, ranks=[1, 2], checks=["differential", "property"], max_examples=5)
    assert others.exit_code == 0, others.summary()
    good = FunctionalBackend(pool_lookalike(), name="kernel-default")
    assert convspec.run_conformance(good, ranks=[1, 2], checks=["defaults"]).exit_code == 0


def test_the_defaults_view_leaves_out_exactly_the_default_arguments():  # PARAM-3
    seen = []

    def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        seen.append(dict(stride=stride, padding=padding, dilation=dilation, ceil_mode=ceil_mode,
                         return_indices=return_indices))
        params = MaxPoolParams(input_shape=input.shape, kernel_size=kernel_size, stride=stride, padding=padding,
                               dilation=dilation, ceil_mode=ceil_mode)
        return reference.max_pool(input, params)

    backend = FunctionalBackend(types.SimpleNamespace(max_pool1d=max_pool1d), name="record")
    params = MaxPoolParams(input_shape=(1, 1, 7), kernel_size=2, padding=1, ceil_mode=False)
    backend.with_defaults_omitted().max_pool(np.zeros((1, 1, 7)), params)
    backend.max_pool(np.zeros((1, 1, 7)), params)
    assert seen == [dict(stride=None, padding=1, dilation=1, ceil_mode=False, return_indices=True),
                    dict(stride=2, padding=1, dilation=1, ceil_mode=False, return_indices=True)]
    assert ARGUMENT_DEFAULTS["stride"] == 1 and ARGUMENT_DEFAULTS["ceil_mode"] is False


def test_defaults_cases_put_every_parameter_at_its_default():  # PARAM-3
    for case in default_cases(["conv", "conv_transpose", "max_pool", "avg_pool", "conv_backward"], [1, 3], "float32"):
        params = case.params_object
        assert case.op != "conv_backward"
        assert set(params.dilation) == {1} and all(pair == (0, 0) for pair in params.pads)
        if isinstance(params, MaxPoolParams) or case.op == "avg_pool":
            assert params.stride == params.kernel_size and not params.ceil_mode
        else:
            assert set(params.stride) == {1} and params.groups == 1 and params.bias_shape is None


def test_torch_functional_passes_the_defaults_check():  # PARAM-3
    pytest.importorskip("torch")
    results = convspec.run_conformance("torch.nn.functional", checks=["defaults"])
    assert results.exit_code == 0, results.summary()
    assert {r.status for r in results.all_results()} == {"passed"}
    assert {r.op for r in results.all_results()} == {"conv", "conv_transpose", "max_pool", "avg_pool"}


def test_backends_without_argument_defaults_say_so():  # PARAM-3
    results = convspec.run_conformance("naive", ranks=[1], ops=["conv", "conv_backward"], checks=["defaults"])
    (result,) = results.all_results()
    assert (result.op, result.status, result.clause) == ("conv", "unsupported", "PARAM-3")
    assert "no argument defaults" in result.message


def test_a_bug_in_both_paths_is_not_blamed_on_the_defaults():  # PARAM-3, MAXPOOL-DEF-1
    def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        params = MaxPoolParams(input_shape=input.shape, kernel_size=kernel_size, stride=stride, padding=padding,
                               dilation=dilation, ceil_mode=ceil_mode)
        y, indices = reference.max_pool(input, params)
        return y.astype(input.dtype) * 2, indices  # wrong whatever the arguments

    backend = FunctionalBackend(types.SimpleNamespace(max_pool1d=max_pool1d), name="doubling")
    (result,) = convspec.run_conformance(backend, checks=["defaults"]).failures()
    assert result.clause != "PARAM-3" and "every argument given as well" in result.message


# ---- indices are int64 (MAXPOOL-INDEX-2) ------------------------------------------------------


def test_int32_indices_fail_maxpool_index_2():  # MAXPOOL-INDEX-2
    narrow = FunctionalBackend(pool_lookalike(index_dtype=np.int32), name="int32")
    results = convspec.run_conformance(narrow, ranks=[1], checks=["differential", "hygiene"], max_examples=3)
    failures = results.failures()
    assert failures and {r.clause for r in failures} == {"MAXPOOL-INDEX-2"}
    assert "int32" in failures[0].message and failures[0].family == "hygiene"
    wide = FunctionalBackend(pool_lookalike(), name="int64")
    assert convspec.run_conformance(wide, ranks=[1], checks=["differential", "hygiene"], max_examples=3).exit_code == 0


@pytest.mark.parametrize("name", ["naive", "im2col", "scipy", "torch"])
def test_builtin_backends_return_int64_indices(name):  # MAXPOOL-INDEX-2
    if name in ("scipy", "torch"):
        pytest.importorskip(name)
    backend = load(name)
    for params in (MaxPoolParams(input_shape=(2, 2, 7), kernel_size=3, stride=2, padding=1),
                   MaxPoolParams(input_shape=(1, 2, 5, 6), kernel_size=2, padding=((1, 0), (0, 1)), ceil_mode=True)):
        x = np.random.default_rng(0).standard_normal(params.input_shape).astype(np.float32)
        _, indices = backend.max_pool(x, params)
        assert np.asarray(indices).dtype == np.int64, name


# ---- the adapter's own errors are the backend's non-conformance --------------------------------


def test_an_index_outside_the_padded_plane_is_maxpool_index_1():  # MAXPOOL-INDEX-1
    def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, return_indices=False):
        params = MaxPoolParams(input_shape=input.shape, kernel_size=kernel_size, stride=stride, padding=padding,
                               dilation=dilation, ceil_mode=ceil_mode)
        y, indices = reference.max_pool(input, params)
        return y.astype(input.dtype), indices + input.shape[-1]  # one plane too far

    backend = FunctionalBackend(types.SimpleNamespace(max_pool1d=max_pool1d), name="far")
    params = MaxPoolParams(input_shape=(1, 1, 6), kernel_size=2, padding=((1, 0),))  # pre-padded: indices remapped
    with pytest.raises(NonConformingOutput, match="outside the 7 plane") as info:
        backend.max_pool(np.arange(6.0).reshape(1, 1, 6), params)
    assert info.value.clause == "MAXPOOL-INDEX-1"
    case = "max_pool x=1,1,6 k=2 s=2 p=1:0 d=1 dtype=float32 data=random seed=0"
    (result,) = convspec.run_conformance(backend, cases=[case], checks=["differential"]).failures()
    assert (result.status, result.clause) == ("failed", "MAXPOOL-INDEX-1")
    assert "outside" in result.message and "adapters.py" not in result.message


def test_outputs_the_adapter_cannot_crop_are_hygiene_2():  # HYGIENE-2
    def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
        return np.zeros((input.shape[0], 1, 2), input.dtype)  # a made-up shape

    backend = FunctionalBackend(types.SimpleNamespace(conv_transpose1d=conv_transpose1d), name="shapeless")
    case = "conv_transpose x=1,2,4 w=2,3,3 b s=2 p=1:0 outpad=0 d=1 g=1 dtype=float32 data=random seed=0"
    params = convspec.Case.parse(case).params_object
    assert isinstance(params, ConvTransposeParams)
    with pytest.raises(NonConformingOutput, match=r"returned shape \(1, 1, 2\) with padding=0, expected \(1, 3, 9\)"):
        backend.conv_transpose(np.zeros((1, 2, 4), np.float32), np.zeros((2, 3, 3), np.float32),
                               np.zeros(3, np.float32), params)
    (result,) = convspec.run_conformance(backend, cases=[case], checks=["differential"]).failures()
    assert (result.status, result.clause) == ("failed", "HYGIENE-2")


def test_function_backend_errors_stay_the_functions_own():  # HYGIENE-2
    def conv(x, w, b, params):
        raise ValueError("my own bug")

    backend = FunctionBackend("raiser", conv=conv, ranks={1})
    with pytest.raises(ValueError, match="my own bug"):
        backend.conv(np.zeros((1, 1, 4)), np.zeros((1, 1, 2)), None,
                     ConvParams(input_shape=(1, 1, 4), weight_shape=(1, 1, 2)))
    ragged = FunctionBackend("ragged", conv=lambda x, w, b, p: [np.zeros(2), np.zeros(3)], ranks={1})
    with pytest.raises(NonConformingOutput) as info:
        ragged.conv(np.zeros((1, 1, 4)), np.zeros((1, 1, 2)), None,
                    ConvParams(input_shape=(1, 1, 4), weight_shape=(1, 1, 2)))
    assert info.value.clause == "HYGIENE-2"
