"""The edge-case catalogue builds, targets what it claims, and every forged invalid configuration
is refused by the spec citing exactly its clause (the engine's self-check before asking a backend)."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from convspec.conformance.cases import SPECIAL_RECIPES, Case
from convspec.conformance.catalogue import (
    CATALOGUE,
    INVALID,
    INVALID_CLAUSES,
    Entry,
    InvalidEntry,
    catalogue_cases,
    forge,
)
from convspec.spec import (
    CLAUSES,
    FORWARD_OPS,
    OPS,
    AvgPoolParams,
    ConvParams,
    InvalidParams,
    MaxPoolParams,
    PoolParams,
    ceil_div,
    check_arrays,
    effective_kernel,
    expected_shapes,
)
from convspec.spec.features import features_of

ENTRIES = {entry.name: entry for entry in CATALOGUE}


def _rank(case: Case) -> int:
    return len(case.params["input_shape"]) - 2


@pytest.mark.parametrize("entry", CATALOGUE, ids=[e.name for e in CATALOGUE])
def test_every_entry_builds_with_arrays_of_its_shapes(entry):
    """Catalogue entries are valid forward problems (LAYOUT-1..4) whose arrays pass check_arrays."""
    assert not OPS[entry.case.op].is_gradient
    params = entry.case.build()
    arrays = entry.case.arrays()
    shapes = expected_shapes(entry.case.op, params)
    for name in OPS[entry.case.op].inputs:
        assert (arrays[name] is None) == (shapes[name] is None)
        if arrays[name] is not None:
            assert arrays[name].shape == shapes[name]
    check_arrays(entry.case.op, params, arrays)
    assert entry.case.label == entry.name
    assert Case.parse(entry.case.descriptor) == entry.case  # the reproducer round-trips


def test_entries_cite_known_clauses_and_have_unique_names():
    for entry in CATALOGUE:
        assert entry.clauses and set(entry.clauses) <= set(CLAUSES), entry.name
        assert entry.description and entry.equivalence_class, entry.name
    names = [e.name for e in CATALOGUE] + [e.name for e in INVALID]
    assert [n for n, count in collections.Counter(names).items() if count > 1] == []


def test_entries_refuse_gradient_ops_and_unknown_clauses():
    case = ENTRIES["conv-1x1-bias"].case
    with pytest.raises(ValueError, match="forward op"):
        Entry("x", case.with_(op="conv_backward"), ("CONV-DEF-1",), "d", "c")
    with pytest.raises(ValueError, match="unknown clauses"):
        Entry("x", case, ("CONV-DEF-9",), "d", "c")


def test_catalogue_covers_every_op_and_ranks_one_to_four():
    """LAYOUT-1: spatial rank m ≥ 1; ranks 1-3 everywhere and 4 in spot checks, for every op."""
    for op in FORWARD_OPS:
        ranks = {_rank(e.case) for e in CATALOGUE if e.case.op == op}
        assert {1, 2, 3, 4} <= ranks, (op, ranks)
    assert {case.op for case in catalogue_cases()} == set(OPS)


def test_catalogue_size_and_classes():
    assert 40 <= len(CATALOGUE) <= 90  # 83 with the lp_pool entries (LPPOOL-DEF-1)
    assert len({e.equivalence_class for e in CATALOGUE}) >= 20


def test_catalogue_cases_expand_to_gradient_ops_once_per_dtype():
    cases = catalogue_cases(dtypes=("float32", "float64"))
    assert len(cases) == len(CATALOGUE) * 2 * 2
    by_label = collections.defaultdict(set)
    for case in cases:
        by_label[case.label].add((case.op, case.dtype))
        entry = ENTRIES[case.label]
        assert case.params == entry.case.params and case.data == entry.case.data
    for entry in CATALOGUE:
        forward, backward = entry.case.op, OPS[entry.case.op].backward
        assert by_label[entry.name] == {(op, dtype) for op in (forward, backward) for dtype in ("float32", "float64")}


def test_catalogue_cases_respect_filters():
    only = catalogue_cases(ops=("max_pool_backward",), ranks=(1, 4))
    assert only and {case.op for case in only} == {"max_pool_backward"}
    assert {_rank(case) for case in only} == {1, 4}
    assert catalogue_cases(ops=()) == []
    assert all(case.dtype == "bfloat16" for case in catalogue_cases(ranks=(2,), dtypes=("bfloat16",)))
    with pytest.raises(ValueError, match="conv3d"):
        catalogue_cases(ops=("conv3d",))
    with pytest.raises(ValueError, match="float8"):
        catalogue_cases(dtypes=("float8",))


# -- the entries target what they claim ---------------------------------------------------------

def _params(name):
    return ENTRIES[name].case.build()


def test_same_entries_put_the_odd_pad_where_the_spec_says():  # PAD-4, PAD-5
    assert _params("conv-same-upper-even-kernel-1d").pads == ((1, 2),)
    assert _params("conv-same-lower-even-kernel-1d").pads == ((2, 1),)
    for name in ("conv-same-upper-even-kernel-2d", "conv-same-lower-even-kernel-2d", "max-pool-same-lower-even-kernel"):
        params = _params(name)
        assert params.output_shape[2:] == params.input_shape[2:]
        assert any(before != after for before, after in params.pads), name
        lower = params.padding == "same_lower"
        assert all((before > after) == lower for before, after in params.pads if before != after), name
    assert "same_strided" in features_of("conv", _params("conv-same-strided-dilated"))
    assert "dilation" in features_of("conv", _params("conv-same-strided-dilated"))


def test_stride_over_kernel_entries_skip_input():  # CONV-SHAPE-1
    for name in [e.name for e in CATALOGUE if e.equivalence_class == "shape.stride_over_kernel"]:
        params = _params(name)
        assert any(s > k for s, k in zip(params.stride, params.kernel_size)), name


def test_single_output_entries_have_one_window():  # CONV-SHAPE-1, CONV-SHAPE-2
    for name in [e.name for e in CATALOGUE if e.equivalence_class == "shape.single_output"]:
        params = _params(name)
        assert params.output_shape[2:] == (1,) * params.rank, name
        for n, k, d, (before, after) in zip(params.input_shape[2:], params.kernel_size, params.dilation, params.pads):
            assert n + before + after == effective_kernel(k, d), name


def _last_window(params: PoolParams):
    """Per dim: n, p_b, p_a, the last window's first and last tap, the uncorrected ceil size, o."""
    for n, k, s, d, (before, after), o in zip(params.input_shape[2:], params.kernel_size, params.stride,
                                               params.dilation, params.pads, params.output_shape[2:]):
        start = (o - 1) * s - before
        yield n, before, after, start, start + (k - 1) * d, ceil_div(n + before + after - effective_kernel(k, d), s) + 1, o


def test_ceil_entries_overhang_or_drop_a_window():  # POOL-CEIL-1
    for entry in CATALOGUE:
        params = entry.case.build()
        if entry.equivalence_class == "pool.ceil_overhang" or entry.name.startswith("avg-pool-ceil-overhang"):
            assert params.ceil_mode
            assert any(last_tap >= n + after for n, _, after, _, last_tap, _, _ in _last_window(params)), entry.name
        if entry.equivalence_class == "pool.ceil_drop":
            assert params.ceil_mode
            # the uncorrected ceil size has one more window, starting at >= n + p_b
            assert any(o == uncorrected - 1 for *_, uncorrected, o in _last_window(params)), entry.name


def test_pool_window_entries_exceed_pytorch_pad_limit_yet_stay_valid():  # POOL-WINDOW-1
    params = _params("avg-pool-pad-over-half-kernel")
    assert "pool_padding_over_half_kernel" in features_of("avg_pool", params)
    params = _params("max-pool-dilation-over-input")
    assert params.dilation[0] > params.input_shape[2]


def test_divisor_entries_cover_both_count_include_pad_values_and_override():  # AVGPOOL-DEF-1
    divisor_entries = [e.case.build() for e in CATALOGUE if e.equivalence_class == "pool.avg_divisor"]
    assert {p.count_include_pad for p in divisor_entries} == {True, False}
    assert any(p.divisor_override is not None for p in divisor_entries)
    assert all(isinstance(p, AvgPoolParams) for p in divisor_entries)


def test_padding_mode_entries_sit_at_their_limits():  # PAD-MODE-2
    modes = set()
    for entry in CATALOGUE:
        params = entry.case.build()
        if entry.equivalence_class != "padding.mode_limit":
            continue
        assert isinstance(params, ConvParams)
        modes.add(params.padding_mode)
        worst = max(max(pair) - n for pair, n in zip(params.pads, params.input_shape[2:]))
        limit = {"reflect": -1, "circular": 0}.get(params.padding_mode)
        if limit is None:
            assert worst > 0  # replicate beyond the input
        else:
            assert worst == limit, entry.name
    assert modes == {"reflect", "replicate", "circular"}


def test_special_value_entries_use_special_recipes():  # MAXPOOL-NAN-1, MAXPOOL-TIE-1, ERR-SPECIAL-1
    recipes = {e.case.data for e in CATALOGUE if e.equivalence_class.startswith("special.")}
    assert set(SPECIAL_RECIPES) | {"ties"} <= recipes
    for entry in CATALOGUE:
        if entry.equivalence_class == "special.ties":
            params = entry.case.build()
            assert isinstance(params, MaxPoolParams) and entry.case.data == "ties"
            x = entry.case.arrays()["x"]
            assert len(np.unique(x)) < x.size  # ties are there


def test_groups_entries():  # CONV-GROUPS-1
    depthwise = _params("conv-depthwise-multiplier")
    assert depthwise.groups == depthwise.input_shape[1] and depthwise.output_shape[1] == 2 * depthwise.groups
    multi = _params("conv-groups-multi-output")
    assert multi.groups > 1 and multi.output_shape[1] // multi.groups > 1 and multi.weight_shape[1] > 1
    convt = _params("conv-transpose-groups-dilation")
    assert convt.groups > 1 and max(convt.dilation) > 1 and any(convt.output_padding)


def test_empty_batch_entries_cover_every_op():  # LAYOUT-1
    ops = {e.case.op for e in CATALOGUE if e.case.params["input_shape"][0] == 0}
    assert ops == set(FORWARD_OPS)


# -- invalid configurations --------------------------------------------------------------------

@pytest.mark.parametrize("entry", INVALID, ids=[e.name for e in INVALID])
def test_forged_configuration_is_refused_citing_its_clause(entry):
    """Engine self-check: the base is valid, and the forged params/arrays raise exactly entry.clause."""
    base = entry.base.with_(op=entry.op)
    check_arrays(entry.op, base.build(), base.arrays())  # the base is valid: only the forgery is wrong
    params, arrays = forge(entry)
    with pytest.raises(InvalidParams) as info:
        check_arrays(entry.op, params, arrays)
    assert info.value.clause == entry.clause, str(info.value)


def test_invalid_entries_cover_every_invalid_configuration_clause():
    assert set(INVALID_CLAUSES) <= set(CLAUSES)
    assert set(INVALID_CLAUSES) <= {entry.clause for entry in INVALID}
    assert {entry.clause for entry in INVALID} <= set(INVALID_CLAUSES)


def test_forge_leaves_the_base_untouched():
    entry = next(e for e in INVALID if e.name == "stride-zero")
    before = entry.base.build()
    params, _ = forge(entry)
    assert params.stride == (0, 1) and entry.base.build() == before and before.stride == (1, 1)


def test_forge_mirrors_explicit_padding_into_pads():
    entry = next(e for e in INVALID if e.name == "padding-negative")
    params, _ = forge(entry)
    assert params.pads == params.padding == ((-1, -1), (1, 1))


def test_forge_applies_array_changes():  # LAYOUT-4, DTYPE-1
    wrong_bias = next(e for e in INVALID if e.name == "bias-wrong-length")
    _, arrays = forge(wrong_bias)
    assert arrays["b"].shape == (5,) and arrays["b"].dtype == np.float32
    other_dtype = next(e for e in INVALID if e.name == "w-other-dtype")
    _, arrays = forge(other_dtype)
    assert arrays["w"].dtype == np.float64 and arrays["x"].dtype == np.float32
    missing = next(e for e in INVALID if e.name == "bias-missing")
    assert forge(missing)[1]["b"] is None
    assert wrong_bias.description == "b.shape=(5,)" and missing.description == "b omitted"
    assert next(e for e in INVALID if e.name == "stride-zero").description == "stride=(0, 1)"


def test_invalid_entry_validation():
    base = INVALID[0].base
    with pytest.raises(ValueError, match="unknown clause"):
        InvalidEntry("x", "PARAM-9", base.op, base)
    with pytest.raises(ValueError, match="does not take"):
        InvalidEntry("x", "PARAM-1", "max_pool", base)
    with pytest.raises(ValueError, match="no field"):
        forge(InvalidEntry("x", "PARAM-1", base.op, base, overrides={"strides": 2}))
