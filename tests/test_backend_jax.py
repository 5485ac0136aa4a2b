"""JaxBackend (CPU) against the float64 reference (convspec.reference).

Every op and gradient (gradients are ``jax.vjp`` of the backend's forward) on the shared rank 1-3
cases of backend_checks, plus a rank-4 case (lax takes any rank); 'SAME'/'SAME_LOWER'/'VALID' are
passed to lax where they name the requested padding; the transposed-weight layout; max-pool indices
from the variadic reduce_window (ties, NaN, −inf); a small run_conformance with gradients; a seeded
adapter bug is caught; jax is imported lazily; ``--isolate`` runs it in a child process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from backend_checks import (
    AVG_VARIANTS,
    CONV_CASES,
    CONVT_CASES,
    NATIVE_POOL_CASES,
    POOL_CASES,
    check_max_pool_minus_inf_windows,
    check_max_pool_nan_windows,
    check_max_pool_ties,
    check_op,
    check_op_and_gradient,
)

jax = pytest.importorskip("jax")

from convspec import reference  # noqa: E402
from convspec.backends import jax_backend  # noqa: E402
from convspec.backends.jax_backend import JaxBackend, lax_padding  # noqa: E402
from convspec.conformance import run_conformance  # noqa: E402
from convspec.spec import AvgPoolParams, ConvParams, ConvTransposeParams, MaxPoolParams, to_dtype  # noqa: E402
from convspec.spec.dtypes import UNIT_ROUNDOFF  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JAX = JaxBackend()
POOL_CASES = {**POOL_CASES, **NATIVE_POOL_CASES}


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_and_its_gradients_match_the_reference(case):  # CONV-DEF-1, CONV-GRAD-1, PAD-MODE-1, PAD-4, PAD-5
    check_op_and_gradient(JAX, "conv", ConvParams(**CONV_CASES[case]))


@pytest.mark.parametrize("case", CONVT_CASES)
def test_conv_transpose_and_its_gradients_match_the_reference(case):  # CONVT-DEF-1, CONVT-GRAD-1
    check_op_and_gradient(JAX, "conv_transpose", ConvTransposeParams(**CONVT_CASES[case]))


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float64"])
def test_every_dtype(dtype):  # DTYPE-1, ERR-BOUND-1
    check_op_and_gradient(JAX, "conv", ConvParams(**CONV_CASES["2d-groups-same-lower-strided"]), dtype)
    check_op_and_gradient(JAX, "conv_transpose", ConvTransposeParams(**CONVT_CASES["2d-groups-dilated"]), dtype)
    check_op_and_gradient(JAX, "avg_pool", AvgPoolParams(input_shape=(2, 3, 7, 6), kernel_size=3, stride=2,
                                                         padding=1, ceil_mode=True, count_include_pad=False), dtype)


def test_rank_4_runs():  # lax takes any spatial rank: declared ranks=None
    assert JAX.capabilities.ranks is None
    check_op_and_gradient(JAX, "conv", ConvParams(input_shape=(1, 2, 3, 4, 3, 4), weight_shape=(2, 1, 2, 2, 1, 2),
                                                 groups=2, padding="same_lower"))
    check_op_and_gradient(JAX, "max_pool", MaxPoolParams(input_shape=(1, 1, 3, 4, 3, 4), kernel_size=2, stride=2,
                                                         ceil_mode=True), exact_indices=True)


@pytest.mark.parametrize("case", POOL_CASES)
def test_pools_and_their_gradients_match_the_reference(case):  # MAXPOOL-*, AVGPOOL-DEF-1, POOL-CEIL-1
    kwargs = POOL_CASES[case]
    params = MaxPoolParams(**kwargs)
    check_op(JAX, "max_pool", params)
    if kwargs.get("dilation", 1) == 1:
        check_op(JAX, "max_pool_backward", params, seed=1)
    else:  # JAX has no VJP of a dilated reduce_window max: declared
        assert "select_and_gather" in JAX.capabilities.unsupported_reason("max_pool_backward", params, "float32")
        assert JAX.capabilities.unsupported_reason("max_pool", params, "float32") is None
    if kwargs.get("dilation", 1) == 1:
        check_max_pool_ties(JAX, params)
    for variant in AVG_VARIANTS.values():
        check_op_and_gradient(JAX, "avg_pool", AvgPoolParams(**kwargs, **variant))


@pytest.mark.xfail(strict=True, reason="upstream: JAX's max-pool VJP sends the gradient of an all -inf window "
                   "into the -inf padding (reported; MAXPOOL-DEF-1, MAXPOOL-GRAD-1)")
def test_max_pool_minus_inf_windows():  # MAXPOOL-DEF-1: padding never wins, in the gradient too
    params = MaxPoolParams(**next(kw for kw in POOL_CASES.values() if kw.get("dilation", 1) == 1))
    check_max_pool_minus_inf_windows(JAX, params)


@pytest.mark.xfail(strict=True, reason="upstream: JAX's max-pool VJP sends the gradient of a NaN window to a "
                   "non-NaN tap (reported; MAXPOOL-NAN-1, MAXPOOL-GRAD-1)")
def test_max_pool_nan_windows():  # MAXPOOL-NAN-1: values and indices pass, the gradient does not
    params = MaxPoolParams(**next(kw for kw in POOL_CASES.values() if kw.get("dilation", 1) == 1))
    check_max_pool_nan_windows(JAX, params)


def test_max_pool_special_windows():  # MAXPOOL-NAN-1, MAXPOOL-TIE-1, MAXPOOL-DEF-1 (indices never in padding)
    x = np.array([[[1.0, np.nan, 0.5, np.nan, 2.0]]])
    y, indices = JAX.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=3, stride=2))
    assert np.isnan(y).all() and indices.tolist() == [[[1, 3]]]
    x = np.array([[[3.0, 3, 1, 3, -np.inf, -np.inf]]])
    y, indices = JAX.max_pool(x, MaxPoolParams(input_shape=x.shape, kernel_size=2, stride=1, padding=1))
    assert indices.dtype == np.int64
    assert indices.tolist() == [[[0, 0, 1, 3, 3, 4, 5]]]


def test_same_and_valid_go_to_lax_as_strings():  # PAD-3, PAD-4, PAD-5 equal lax's padtype_to_pads
    from jax import lax
    for padding, expected in (("same", "SAME"), ("same_upper", "SAME"), ("same_lower", "SAME_LOWER"),
                              ("valid", "VALID")):
        for n, k, s, d in ((5, 4, 1, 1), (7, 3, 2, 2), (9, 2, 3, 3), (4, 3, 3, 1)):
            params = ConvParams(input_shape=(1, 1, n), weight_shape=(1, 1, k), stride=s, dilation=d, padding=padding)
            assert lax_padding(params) == expected
            effective = d * (k - 1) + 1
            assert tuple(lax.padtype_to_pads((n,), (effective,), (s,), expected)) == params.pads
    explicit = ConvParams(input_shape=(1, 1, 5), weight_shape=(1, 1, 2), padding=[(2, 1)])
    assert lax_padding(explicit) == [(2, 1)]
    reflect = ConvParams(input_shape=(1, 1, 5), weight_shape=(1, 1, 2), padding="same", padding_mode="reflect")
    assert lax_padding(reflect) == [(0, 0)]  # jnp.pad did the padding


def test_conv_transpose_reads_the_spec_weight_layout():  # LAYOUT-3: w is (C_in, C_out/groups, *K)
    params = ConvTransposeParams(input_shape=(1, 4, 3), weight_shape=(4, 3, 2), groups=2, stride=2)
    assert params.output_shape == (1, 6, 6)
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(params.input_shape), rng.standard_normal(params.weight_shape)
    np.testing.assert_allclose(JAX.conv_transpose(x, w, None, params), reference.conv_transpose(x, w, None, params),
                               rtol=1e-12, atol=1e-12)


def test_half_precision_is_finer_than_declared():  # ERR-BOUND-1: accumulation=None is an upper bound
    rng = np.random.default_rng(0)
    for dtype in ("float16", "bfloat16"):
        x = (rng.random((2, 1024, 3)) + 1).astype(to_dtype(dtype))
        w = (rng.random((2, 1024, 1)) + 1).astype(to_dtype(dtype))
        params = ConvParams(input_shape=x.shape, weight_shape=w.shape)
        err = np.abs(JAX.conv(x, w, None, params).astype(np.float64) - reference.conv(x, w, None, params))
        assert (err <= 2 * 1024 * UNIT_ROUNDOFF[dtype] * np.abs(reference.conv(x, w, None, params))).all()
    assert JAX.capabilities.accumulation is None and JAX.capabilities.dtypes == {
        "float16", "bfloat16", "float32", "float64"}
    assert set(JAX.capabilities.unsupported) == {"max_pool_backward:dilation"} and JAX.capabilities.local and JAX.capabilities.deterministic


def test_x64_is_scoped_to_the_call():  # float64 computed, the caller's flag untouched
    before = jax.config.jax_enable_x64
    x = np.arange(6.0).reshape(1, 1, 6) / 3
    y = JAX.avg_pool(x, AvgPoolParams(input_shape=x.shape, kernel_size=2, count_include_pad=True))
    assert y.dtype == np.float64 and np.array_equal(y, reference.avg_pool(x, AvgPoolParams(
        input_shape=x.shape, kernel_size=2, count_include_pad=True)))
    assert jax.config.jax_enable_x64 == before


def test_small_conformance_run_with_gradients_conforms():
    # max_pool values are left out: XLA's max returns +0.0 for a window holding -0.0 and +0.0 (reported).
    results = run_conformance("jax", ops=["conv", "conv_backward", "conv_transpose_backward",
                                          "max_pool_backward", "avg_pool_backward"],
                              ranks=[1, 2], dtypes=["float32", "float64"], checks=["differential"],
                              max_examples=3, catalogue=False)
    assert results.exit_code == 0


class SameLowerAsSame(JaxBackend):
    """A realistic adapter bug: 'same_lower' passed to lax as 'SAME' (the extra pad at the wrong end)."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "jax-same-lower-bug"
        self._padding_strings["same_lower"] = "SAME"


def test_a_seeded_adapter_bug_is_caught():
    params = ConvParams(input_shape=(1, 1, 6), weight_shape=(1, 1, 4), padding="same_lower")
    with pytest.raises(pytest.fail.Exception):
        check_op(SameLowerAsSame(), "conv", params)
    results = run_conformance(SameLowerAsSame(), ops=["conv"], ranks=[1], dtypes=["float64"], max_examples=5,
                              checks=["differential"])
    assert results.exit_code != 0


def test_importing_the_module_does_not_import_jax():  # heavy imports are lazy
    code = ("import sys, convspec.backends, convspec.backends.jax_backend, convspec.backends.loader;"
            "print(sorted(m for m in ('jax', 'jaxlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"
    assert jax_backend.__doc__ and "SAME_LOWER" in jax_backend.__doc__


def test_without_jax_construction_raises_import_error_with_the_install_hint():
    code = ("import sys; sys.modules['jax'] = None\n"
            "from convspec.backends.jax_backend import JaxBackend\n"
            "try:\n    JaxBackend()\nexcept ImportError as exc:\n    print(exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "jax is not installed: pip install 'convspec[jax]'"


def test_runs_isolated():  # --isolate from a fresh process: no XLA computation before the fork
    run = subprocess.run([sys.executable, "-m", "convspec.cli", "check", "jax", "--isolate", "--ops", "conv_transpose",
                          "avg_pool", "--ranks", "1", "--dtypes", "float32", "--checks", "differential",
                          "--max-examples", "1", "--no-catalogue"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
