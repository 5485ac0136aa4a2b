"""The case strategies draw valid cases of every op, reach every feature, and validate their bounds.

Valid by construction: every drawn case builds (CONV-SHAPE-2, PAD-MODE-2, CONVT-PARAM-1,
CONVT-SHAPE-1, POOL-SHAPE-1, POOL-WINDOW-1) and its arrays pass ``check_arrays`` (LAYOUT-1..4,
GRAD-SHAPE-1, DTYPE-1).
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from convspec.conformance.cases import SPECIAL_RECIPES, Case
from convspec.conformance.strategies import DEFAULT_RECIPES, cases, parameters, special_cases
from convspec.spec import (
    FORWARD_OPS,
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    check_arrays,
    expected_shapes,
    ceil_div,
    to_dtype,
)
from convspec.spec.features import FEATURES, PARTIAL_FEATURES, features_of

GRADIENT_OPS = tuple(op for op in OPS if OPS[op].is_gradient)
MAX_ELEMENTS = 2000


def _check_case(case: Case) -> None:
    """The case builds, its arrays have the op table's shapes and its dtype, and fit the budget."""
    params = case.build()  # never raises: valid by construction
    arrays = case.arrays()
    shapes = expected_shapes(case.op, params)
    for name in OPS[case.op].inputs:
        if shapes[name] is None:
            assert arrays[name] is None
            continue
        assert arrays[name].shape == shapes[name], name
        assert arrays[name].dtype == to_dtype(case.dtype), name
    assert check_arrays(case.op, params, arrays) == case.dtype
    for shape in shapes.values():
        if shape is not None:
            assert math.prod(shape) <= MAX_ELEMENTS, (case.descriptor, shape)


@pytest.mark.parametrize("op", FORWARD_OPS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_forward_cases_build_and_fit_the_budget(op, data):
    """CONV-SHAPE-2, PAD-MODE-2, CONVT-SHAPE-1, POOL-WINDOW-1: every drawn case is valid."""
    _check_case(data.draw(cases(op, dtypes=("float16", "float32", "float64")), label="case"))


@pytest.mark.parametrize("op", GRADIENT_OPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_gradient_cases_build_with_their_forward_params(op, data):
    """GRAD-SHAPE-1: gradient ops take the forward op's parameter object; dy has its output shape."""
    case = data.draw(cases(op), label="case")
    assert isinstance(case.build(), OPS[OPS[op].forward].params_type)
    _check_case(case)


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(sorted(OPS)).flatmap(cases))
def test_descriptor_and_json_round_trip(case):
    """A case's descriptor and JSON give the case back (the reproducer of every failure)."""
    parsed = Case.parse(case.descriptor)
    assert parsed.descriptor == case.descriptor
    assert parsed.build() == case.build()
    # A padding given as an int or one int per dim is written as (before, after) pairs; every
    # other parameter comes back exactly.
    padding = case.params["padding"]
    if isinstance(padding, str) or not isinstance(padding, int) and all(isinstance(p, tuple) for p in padding):
        assert parsed == case
    else:
        assert parsed == case.with_(params=dict(padding=case.build().pads))
    assert Case.from_json(json.loads(json.dumps(case.to_json()))) == case


def _impossible(op: str) -> set[str]:
    """Features that cannot occur for op's parameter object (see features_of)."""
    params_type = OPS[op].params_type
    conv_only = {"padding_mode.reflect", "padding_mode.replicate", "padding_mode.circular"}
    pool_only = {"ceil_mode", "pool_padding_over_half_kernel", "count_include_pad", "divisor_override"}
    if params_type is ConvParams:
        return pool_only | {"output_padding"}
    if params_type is ConvTransposeParams:  # no padding modes; the strategy draws no 'same*' (CONVT-SAME-1)
        return pool_only | conv_only | {"same", "same_strided"}
    impossible = conv_only | {"bias", "groups", "output_padding"}
    if params_type is not AvgPoolParams:  # max_pool, lp_pool (LPPOOL-PARAM-1): no divisor
        impossible |= {"count_include_pad", "divisor_override"}
    return impossible


def _situations(case: Case) -> set[str]:
    """Notable configurations beyond FEATURES that random search must also reach."""
    params = case.build()
    found = {f"data.{case.data}"}
    padding = case.params["padding"]
    if isinstance(padding, str):
        found.add(f"padding_form.{padding}")
    # int and per-dim int paddings reach a Case as (before, after) pairs (Case canonicalises
    # them); their normalisation is the spec's, tested in test_spec_shapes.py (PAD-1).
    found |= {f"rank.{params.rank}"}
    kernel = params.kernel_size
    if any(k % 2 == 0 for k in kernel):
        found.add("even_kernel")
    if any(s > k for s, k in zip(params.stride, kernel)):
        found.add("stride_over_kernel")
    if isinstance(params, ConvParams):
        if params.groups > 1 and params.groups == params.input_shape[1] and params.output_shape[1] > params.groups:
            found.add("depthwise_multiplier")
        if params.groups > 1 and params.weight_shape[1] > 1 and params.output_shape[1] // params.groups > 1:
            found.add("groups_multi_output")
        n_min = min(params.input_shape[2:])
        pad_max = max(max(pair) for pair in params.pads)
        if params.padding_mode == "reflect" and any(max(p) == n - 1 > 0 for p, n in zip(params.pads,
                                                                                   params.input_shape[2:])):
            found.add("reflect_at_limit")
        if params.padding_mode == "circular" and any(max(p) == n for p, n in zip(params.pads, params.input_shape[2:])):
            found.add("circular_at_limit")
        if params.padding_mode == "replicate" and pad_max > n_min:
            found.add("replicate_beyond_input")
    if isinstance(params, ConvTransposeParams) and params.groups > 1 and params.weight_shape[1] > 1:
        found.add("groups_multi_output")
    if isinstance(params, (MaxPoolParams, AvgPoolParams)):
        spatial = params.input_shape[2:]
        for n, k, s, d, (before, after), o in zip(spatial, kernel, params.stride, params.dilation, params.pads,
                                                   params.output_shape[2:]):
            last_tap = (o - 1) * s - before + (k - 1) * d
            if params.ceil_mode and last_tap >= n + after:
                found.add("ceil_overhang")  # POOL-CEIL-1: the last window runs past the right padding
            uncorrected = ceil_div(n + before + after - (k - 1) * d - 1, s) + 1
            if params.ceil_mode and o == uncorrected - 1:
                found.add("ceil_drops_window")  # POOL-CEIL-1: a window starting at >= n + p_b dropped
            if max(before, after) == (k - 1) * d > 0:
                found.add("pool_pad_at_reach")
        if isinstance(params, AvgPoolParams):
            found.add(f"count_include_pad.{params.count_include_pad}")
    if params.input_shape[0] == 0:
        found.add("empty_batch")
    return found


SITUATIONS = {
    "conv": {"padding_form.valid", "padding_form.same",
             "padding_form.same_upper", "padding_form.same_lower", "depthwise_multiplier", "groups_multi_output",
             "reflect_at_limit", "circular_at_limit", "replicate_beyond_input", "even_kernel", "stride_over_kernel"},
    "conv_transpose": {"padding_form.valid", "groups_multi_output",
                       "even_kernel", "stride_over_kernel"},
    "max_pool": {"padding_form.same_lower", "ceil_overhang",
                 "ceil_drops_window", "pool_pad_at_reach", "even_kernel", "stride_over_kernel"},
    "avg_pool": {"padding_form.same_upper", "ceil_overhang", "ceil_drops_window", "pool_pad_at_reach",
                 "count_include_pad.True", "count_include_pad.False"},
    "lp_pool": {"padding_form.same_upper", "padding_form.same_lower", "even_kernel", "stride_over_kernel"},  # LPPOOL-PARAM-1
}


@pytest.mark.parametrize("op", FORWARD_OPS)
def test_every_feature_is_reachable(op):
    """Every feature of FEATURES possible for the op, every padding form (PAD-1, PAD-3..5), the
    padding-mode limits (PAD-MODE-2), depthwise and multi-output groups (CONV-GROUPS-1), ceil-mode
    overhang and dropped windows (POOL-CEIL-1), pads at (k−1)·d (POOL-WINDOW-1) and every recipe
    and rank show up within a few hundred draws."""
    seen: set[str] = set()

    @settings(max_examples=400, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(cases(op))
    def collect(case):
        seen.update(features_of(op, case.build()))
        seen.update(_situations(case))

    collect()
    # PARTIAL_FEATURES are declared by backends, never used by a problem.
    wanted = (set(FEATURES) - set(PARTIAL_FEATURES) - _impossible(op)) | SITUATIONS[op]
    wanted |= {f"data.{recipe}" for recipe in DEFAULT_RECIPES} | {"rank.1", "rank.2", "rank.3"}
    assert wanted <= seen, f"never drawn for {op}: {sorted(wanted - seen)}"


@pytest.mark.parametrize("op", FORWARD_OPS)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_features_off_draws_the_plainest_problems(op, data):
    """features=False uses no feature of FEATURES (the plainest form of each op)."""
    case = data.draw(cases(op, features=False), label="case")
    assert features_of(op, case.build()) == frozenset()


@pytest.mark.parametrize("op", ["conv", "conv_transpose_backward", "max_pool", "avg_pool"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_bounds_are_respected(op, data):
    """max_* bounds hold for every array: N, channels, spatial sizes and kernel sizes."""
    case = data.draw(cases(op, ranks=(2,), max_batch=1, max_channels=2, max_spatial=3, max_kernel=2), label="case")
    params = case.build()
    assert len(params.input_shape) == 4
    assert params.input_shape[0] <= 1
    assert max(params.input_shape[1], params.output_shape[1]) <= 2
    assert max(params.input_shape[2:]) <= 3
    assert max(params.kernel_size) <= 2


@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_rank_three_and_four_stay_small(data):
    """Higher ranks shrink the per-dim extent so inputs stay within the element budget."""
    op = data.draw(st.sampled_from(sorted(OPS)), label="op")
    case = data.draw(cases(op, ranks=(3, 4)), label="case")
    _check_case(case)


@pytest.mark.parametrize("op", sorted(OPS))
@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_special_cases_use_special_recipes(op, data):
    """special_cases draws NaN, ±inf, −inf and −0.0 data (ERR-SPECIAL-1, MAXPOOL-NAN-1, MAXPOOL-TIE-1);
    max pooling keeps windows of at most 2 taps per dim so ties and all −inf windows are common."""
    case = data.draw(special_cases(op), label="case")
    assert case.data in SPECIAL_RECIPES
    _check_case(case)
    if OPS[op].params_type is MaxPoolParams:
        assert max(case.build().kernel_size) <= 2


def test_shrinking_target_is_the_plainest_case():
    """Every choice shrinks towards the plainest problem and the impulse recipe."""
    case = find(cases("conv_transpose", ranks=(1,)), lambda c: True, settings=settings(database=None))
    assert case.descriptor == "conv_transpose x=1,1,1 w=1,1,1 s=1 p=0:0 outpad=0 d=1 g=1 dtype=float32 " \
                              "data=impulse seed=0"


def test_dtypes_and_recipes_are_drawn_from_the_given_tuples():
    seen = set()

    @settings(max_examples=60, deadline=None, database=None, derandomize=True)
    @given(cases("max_pool", dtypes=("float64", "bfloat16"), recipes=("ties", "zeros")))
    def collect(case):
        seen.add((case.dtype, case.data))
        assert 0 <= case.seed <= 2**16

    collect()
    assert {dtype for dtype, _ in seen} == {"float64", "bfloat16"}
    assert {data for _, data in seen} == {"ties", "zeros"}


@settings(max_examples=30, deadline=None)
@given(kwargs=parameters("avg_pool"))
def test_parameters_are_constructor_arguments(kwargs):
    """AVGPOOL-PARAM-1: count_include_pad is always given explicitly."""
    assert isinstance(kwargs["count_include_pad"], bool)
    AvgPoolParams(**kwargs)


BAD_BOUNDS = [
    ("unknown-op", dict(op="conv3d"), "op='conv3d'"),
    ("ranks-empty", dict(ranks=()), "ranks=()"),
    ("ranks-zero", dict(ranks=(0, 1)), "ranks entry=0"),
    ("ranks-string", dict(ranks="12"), "ranks='12'"),
    ("max-batch-zero", dict(max_batch=0), "max_batch=0"),
    ("max-channels-negative", dict(max_channels=-1), "max_channels=-1"),
    ("max-spatial-float", dict(max_spatial=2.5), "max_spatial=2.5"),
    ("max-kernel-bool", dict(max_kernel=True), "max_kernel=True"),
    ("dtype-unknown", dict(dtypes=("float8",)), "dtypes=('float8',)"),
    ("dtypes-empty", dict(dtypes=()), "dtypes=()"),
    ("dtypes-string", dict(dtypes="float32"), "dtypes='float32'"),
    ("recipe-unknown", dict(recipes=("gauss",)), "recipes=('gauss',)"),
    ("features-not-bool", dict(features="yes"), "features='yes'"),
]


@pytest.mark.parametrize("kwargs, fragment", [row[1:] for row in BAD_BOUNDS], ids=[row[0] for row in BAD_BOUNDS])
def test_bad_bounds_raise_invalid_argument_eagerly(kwargs, fragment):
    args = dict(op="conv")
    args.update(kwargs)
    op = args.pop("op")
    with pytest.raises(InvalidArgument) as info:
        cases(op, **args)  # raised when the strategy is made, before any draw
    assert fragment in str(info.value)


def test_special_cases_refuse_ordinary_recipes():
    with pytest.raises(InvalidArgument, match="recipes=\\('random',\\)"):
        special_cases("max_pool", recipes=("random",))


def test_cases_accept_every_recipe_name():
    strategy = cases("conv", recipes=tuple(SPECIAL_RECIPES) + ("ties",))  # any recipe of RECIPES
    assert strategy is not None
