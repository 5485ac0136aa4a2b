"""Every invalid configuration of SPEC.md is refused with InvalidParams naming parameter and clause.

A table of invalid arguments with readable ids: each row builds a parameter object
that the spec must refuse, the clause it must cite, and a fragment of the message.
"""

from __future__ import annotations

import numpy as np
import pytest

from convspec.spec import (
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    InvalidParams,
    MaxPoolParams,
    check_arrays,
    to_dtype,
)

X2 = (1, 4, 6, 6)
W2 = (8, 4, 3, 3)


def conv(**kw):
    args = dict(input_shape=X2, weight_shape=W2)
    args.update(kw)
    return ConvParams(**args)


def convt(**kw):
    args = dict(input_shape=(1, 4, 5, 5), weight_shape=(4, 2, 3, 3))
    args.update(kw)
    return ConvTransposeParams(**args)


def maxpool(**kw):
    args = dict(input_shape=(1, 2, 6, 6), kernel_size=2)
    args.update(kw)
    return MaxPoolParams(**args)


def avgpool(**kw):
    args = dict(input_shape=(1, 2, 6, 6), kernel_size=2, count_include_pad=True)
    args.update(kw)
    return AvgPoolParams(**args)


INVALID = [
    # (id, builder, clause, message fragment)
    ("x-rank-too-small", lambda: conv(input_shape=(1, 4), weight_shape=(8, 4)), "LAYOUT-1", "at least one spatial dim"),
    ("x-zero-channels", lambda: conv(input_shape=(1, 0, 6, 6)), "LAYOUT-1", "every spatial size >= 1"),
    ("x-zero-spatial", lambda: conv(input_shape=(1, 4, 0, 6)), "LAYOUT-1", ">= 1"),
    ("x-negative-batch", lambda: conv(input_shape=(-1, 4, 6, 6)), "LAYOUT-1", "N >= 0"),
    ("x-float-dims", lambda: conv(input_shape=(1, 4, 6.0, 6)), "LAYOUT-1", "tuple of ints"),
    ("w-rank-mismatch", lambda: conv(weight_shape=(8, 4, 3)), "LAYOUT-2", "4 dims"),
    ("w-zero-kernel", lambda: conv(weight_shape=(8, 4, 0, 3)), "LAYOUT-2", ">= 1"),
    ("convt-w-rank-mismatch", lambda: convt(weight_shape=(4, 2, 3)), "LAYOUT-3", "4 dims"),
    ("convt-w-cin-mismatch", lambda: convt(weight_shape=(3, 2, 3, 3)), "LAYOUT-3", "C_in = 4"),
    ("bias-wrong-length", lambda: conv(bias_shape=(4,)), "LAYOUT-4", "(C_out,) = (8,)"),
    ("bias-2d", lambda: conv(bias_shape=(8, 1)), "LAYOUT-4", "(C_out,)"),
    ("convt-bias-wrong", lambda: convt(bias_shape=(4,)), "LAYOUT-4", "(2,)"),
    ("stride-length", lambda: conv(stride=(1, 1, 1)), "PARAM-1", "one entry per spatial dim (2)"),
    ("stride-string", lambda: conv(stride="2"), "PARAM-1", "int or a sequence"),
    ("dilation-length", lambda: conv(dilation=(1,)), "PARAM-1", "one entry per spatial dim"),
    ("stride-zero", lambda: conv(stride=(0, 2)), "PARAM-2", "positive"),
    ("stride-negative", lambda: conv(stride=-1), "PARAM-2", "positive"),
    ("stride-float", lambda: conv(stride=1.0), "PARAM-1", "int or a sequence"),
    ("stride-bool", lambda: conv(stride=(True, 1)), "PARAM-2", "integers only"),
    ("dilation-zero", lambda: conv(dilation=0), "PARAM-2", "positive"),
    ("padding-unknown-string", lambda: conv(padding="full"), "PAD-1", "not a padding form"),
    ("padding-length", lambda: conv(padding=(1, 1, 1)), "PAD-1", "2 (before, after) pairs"),
    ("padding-triple", lambda: conv(padding=((1, 1, 1), (0, 0))), "PAD-1", "pairs of ints"),
    ("padding-float", lambda: conv(padding=1.5), "PAD-1", "must be an int"),
    ("padding-negative", lambda: conv(padding=-1), "PAD-2", "non-negative"),
    ("padding-negative-pair", lambda: conv(padding=((0, -1), (0, 0))), "PAD-2", "non-negative"),
    ("padding-mode-unknown", lambda: conv(padding=1, padding_mode="mirror"), "PAD-MODE-1", "must be one of"),
    ("reflect-pad-too-big", lambda: conv(padding=6, padding_mode="reflect"), "PAD-MODE-2", "n-1=5"),
    ("circular-pad-too-big", lambda: conv(padding=7, padding_mode="circular"), "PAD-MODE-2", "n=6"),
    ("groups-zero", lambda: conv(groups=0), "CONV-GROUPS-1", "positive int"),
    ("groups-float", lambda: conv(groups=2.0), "CONV-GROUPS-1", "positive int"),
    ("groups-not-dividing-cin", lambda: conv(groups=3, weight_shape=(9, 1, 3, 3)), "CONV-GROUPS-1", "must divide"),
    ("groups-not-dividing-cout", lambda: conv(groups=2, weight_shape=(7, 2, 3, 3)), "CONV-GROUPS-1", "must divide"),
    ("groups-weight-channels", lambda: conv(groups=2, weight_shape=(8, 4, 3, 3)), "CONV-GROUPS-1", "C_in/groups = 2"),
    ("kernel-larger-than-input", lambda: conv(weight_shape=(8, 4, 7, 3)), "CONV-SHAPE-2", "effective kernel"),
    ("dilated-kernel-too-large", lambda: conv(dilation=4, padding=1), "CONV-SHAPE-2", "effective kernel"),
    ("convt-output-padding-too-big", lambda: convt(stride=2, output_padding=2), "CONVT-PARAM-1", "< max(stride, dilation) = 2"),
    ("convt-output-padding-stride1", lambda: convt(output_padding=1), "CONVT-PARAM-1", "< max"),
    ("convt-output-padding-negative", lambda: convt(output_padding=-1), "CONVT-PARAM-1", ">= 0"),
    ("convt-same-unreachable", lambda: convt(padding="same", stride=4), "CONVT-SAME-1", "total pad"),
    ("convt-output-size-too-far", lambda: convt(output_size=(8, 8)), "CONVT-OUTSIZE-1", "needs output_padding 1"),
    ("convt-output-size-with-pads", lambda: convt(output_size=(7, 7), padding=1), "CONVT-OUTSIZE-1", "with output_size"),
    ("convt-padding-mode-string", lambda: convt(padding="reflect"), "PAD-1", "reflect"),
    ("convt-crops-everything", lambda: convt(input_shape=(1, 4, 1, 1), padding=2), "CONVT-SHAPE-1", ">= 1"),
    ("pool-kernel-zero", lambda: maxpool(kernel_size=0), "POOL-PARAM-1", "positive"),
    ("pool-stride-zero", lambda: maxpool(stride=(1, 0)), "POOL-PARAM-1", "positive"),
    ("pool-dilation-zero", lambda: avgpool(dilation=0), "POOL-PARAM-1", "positive"),
    ("pool-kernel-length", lambda: maxpool(kernel_size=(2, 2, 2)), "PARAM-1", "one entry per spatial dim"),
    ("pool-window-too-large", lambda: maxpool(kernel_size=7), "POOL-SHAPE-1", "smaller than the window"),
    ("pool-ceil-mode-not-bool", lambda: maxpool(ceil_mode=1), "POOL-CEIL-1", "must be a bool"),
    ("pool-empty-first-window", lambda: maxpool(padding=2), "POOL-WINDOW-1", "holds no input element"),
    ("pool-empty-window-dilated", lambda: maxpool(input_shape=(1, 1, 2), kernel_size=2, dilation=3, padding=((2, 2),), stride=1),
     "POOL-WINDOW-1", "no input element"),
    ("avg-count-include-pad-missing", lambda: AvgPoolParams(input_shape=(1, 2, 6, 6), kernel_size=2), "AVGPOOL-PARAM-1",
     "given explicitly"),
    ("avg-divisor-zero", lambda: avgpool(divisor_override=0), "AVGPOOL-PARAM-1", "positive int"),
    ("avg-divisor-float", lambda: avgpool(divisor_override=2.5), "AVGPOOL-PARAM-1", "positive int"),
]


@pytest.mark.parametrize("build, clause, fragment", [row[1:] for row in INVALID], ids=[row[0] for row in INVALID])
def test_invalid_configuration_is_refused_citing_its_clause(build, clause, fragment):
    with pytest.raises(InvalidParams) as info:
        build()
    message = str(info.value)
    assert f"({clause})" in message
    assert fragment in message
    assert info.value.clause == clause
    # The message opens with name=value, so a user sees what they passed.
    assert message.startswith(f"{info.value.param}=")
    assert isinstance(info.value, ValueError)


def test_invalid_params_survives_pickling():  # used by --isolate child processes
    import pickle

    with pytest.raises(InvalidParams) as info:
        conv(stride=0)
    clone = pickle.loads(pickle.dumps(info.value))
    assert str(clone) == str(info.value) and clone.clause == "PARAM-2"


ARRAY_ERRORS = [
    ("x-shape-mismatch", "conv", dict(x=np.zeros((1, 4, 5, 6)), w=np.zeros(W2), b=None), "LAYOUT-1"),
    ("w-shape-mismatch", "conv", dict(x=np.zeros(X2), w=np.zeros((8, 4, 3, 2)), b=None), "LAYOUT-2"),
    ("bias-not-declared", "conv", dict(x=np.zeros(X2), w=np.zeros(W2), b=np.zeros(8)), "LAYOUT-4"),
    ("dy-shape-mismatch", "conv_backward", dict(x=np.zeros(X2), w=np.zeros(W2), dy=np.zeros((1, 8, 4, 3))),
     "GRAD-SHAPE-1"),
    ("mixed-dtypes", "conv", dict(x=np.zeros(X2, np.float32), w=np.zeros(W2), b=None), "DTYPE-1"),
    ("integer-dtype", "conv", dict(x=np.zeros(X2, np.int32), w=np.zeros(W2, np.int32), b=None), "DTYPE-1"),
]


@pytest.mark.parametrize("op, arrays, clause", [row[1:] for row in ARRAY_ERRORS], ids=[row[0] for row in ARRAY_ERRORS])
def test_arrays_not_matching_params_are_refused(op, arrays, clause):
    params = conv()
    with pytest.raises(InvalidParams, match=rf"\({clause}\)"):
        check_arrays(op, params, arrays)


def test_bias_required_when_declared():  # LAYOUT-4
    params = conv(bias_shape=(8,))
    with pytest.raises(InvalidParams, match=r"\(LAYOUT-4\)"):
        check_arrays("conv", params, dict(x=np.zeros(X2), w=np.zeros(W2), b=None))


def test_unknown_dtype_name_is_refused():  # DTYPE-1
    with pytest.raises(InvalidParams, match=r"\(DTYPE-1\)"):
        to_dtype("float8")
