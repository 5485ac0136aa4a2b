"""The error model (ERR-*): how far a backend's output may lie from the float64 reference.

Generalised from the TOSA specification's dot-product accuracy rule to N-D convolution, its
gradients and pooling. For an output element with reference value ``ref`` (float64, computed from
the backend's own rounded inputs), magnitude ``mag = op(|x|, |w|, |b|)`` and ``K`` terms summed
into it::

    |out − ref| ≤ (α·K·u_acc + α·u_in + u_out) · mag + tiny(out dtype)       (ERR-BOUND-1)

``u_acc`` is the unit roundoff of the precision the backend accumulates in, ``u_in`` that of a
reduced precision the backend rounds its inputs to before multiplying (TF32: each product then
carries up to 2·u_in relative error; 0 when inputs are used as given), ``u_out`` the output
dtype's. α = 2 as in TOSA: Higham's recursive-summation bound γ_K = K·u/(1 − K·u) plus the
rounding of each product, with margin. This module holds only the formulas; comparing arrays is
the conformance engine's job.
"""

from __future__ import annotations

import math

import numpy as np

from .conv import ConvParams, ConvTransposeParams
from .dtypes import TINY, UNIT_ROUNDOFF
from .ops import OPS, Params
from .pool import PoolParams

ALPHA = 2.0
#: ERR-STAT-1 applies to comparisons with at least this many outputs.
STAT_MIN_OUTPUTS = 1000
#: Significand bits (with the implicit one) per precision: integers up to 2^p are exact.
PRECISION_BITS = {"float16": 11, "bfloat16": 8, "tf32": 11, "float32": 24, "float64": 53}


def terms_per_output(op: str, params: Params) -> dict[str, int]:
    """K per output array of ``op``: an upper bound on the terms summed into one element.

    conv y: C_in/g · ΠK; conv dx: C_out/g · ΠK (at most one output position per tap and channel);
    conv dw and db: N · Πo. conv_transpose mirrors conv with input and output swapped. Avg pool y
    and dx: Πk. Max pool selects one element and sums nothing in y; its dx sums up to Πk routed
    gradients.
    """
    info = OPS[op]
    forward = info.forward or op
    if isinstance(params, ConvParams):
        c_in, c_out = params.input_shape[1], params.output_shape[1]
        taps = math.prod(params.kernel_size)
        positions = params.output_shape[0] * math.prod(params.output_shape[2:])
        k = {"y": c_in // params.groups * taps, "dx": c_out // params.groups * taps * padding_copies(params),
             "dw": positions, "db": positions}
    elif isinstance(params, ConvTransposeParams):
        c_in, c_out = params.input_shape[1], params.output_shape[1]
        taps = math.prod(params.kernel_size)
        k = {
            "y": c_in // params.groups * taps,
            "dx": c_out // params.groups * taps,
            "dw": params.input_shape[0] * math.prod(params.input_shape[2:]),
            "db": params.output_shape[0] * math.prod(params.output_shape[2:]),
        }
    elif isinstance(params, PoolParams):
        taps = math.prod(params.kernel_size)
        k = {"y": 1 if forward == "max_pool" else taps, "dx": taps, "indices": 0}
    else:
        raise TypeError(f"no parameter object of {op}: {type(params).__name__}")
    return {name: max(k[name], 1) for name in info.outputs}


def padding_copies(params: ConvParams) -> int:
    """The most places one input element occupies in the padded input x̃ (PAD-MODE-1).

    dx folds the gradient of every copy back onto its source, so its K grows by this factor:
    1 for zeros; per dim up to 3 for reflect and circular (the element and one image on each
    side), 1 + p_b + p_a for replicate (an edge element fills the whole pad).
    """
    copies = 1
    for (before, after) in params.pads:
        if params.padding_mode in ("reflect", "circular") and (before or after):
            copies *= 1 + (before > 0) + (after > 0)
        elif params.padding_mode == "replicate":
            copies *= 1 + before + after
    return copies


def nonlocal_terms(k: int, params: Params) -> int:
    """ERR-NONLOCAL-1: K + ⌈log2 L⌉ for a transform-based algorithm, L = Π (max(n, o) + p_b + p_a +
    d·(k − 1)) the transform length per dim (an FFT's rounding grows with log L, not with K)."""
    kernel = getattr(params, "kernel_size")
    length = 1
    for n, o, k_i, d, (before, after) in zip(params.input_shape[2:], params.output_shape[2:], kernel,
                                             params.dilation, params.pads):
        length *= max(n, o) + before + after + d * (k_i - 1)
    return k + max(math.ceil(math.log2(max(length, 1))), 1)


def error_bound(
    mag: np.ndarray, k: int, *, out_dtype: str, accumulation: str | None = None, input_precision: str | None = None
) -> np.ndarray:
    """ERR-BOUND-1 per element: (α·K·u_acc + α·u_in + u_out)·mag + tiny(out dtype).

    ``accumulation`` defaults to the output dtype; ``input_precision`` is None when the backend
    multiplies its inputs as given. An infinite or NaN ``mag`` gives an infinite bound.

    >>> float(error_bound(np.array(1.0), 4, out_dtype="float32")[()]) == (2 * 4 + 1) * 2.0**-24 + 2.0**-126
    True
    """
    u_acc = UNIT_ROUNDOFF[accumulation or out_dtype]
    u_in = UNIT_ROUNDOFF[input_precision] if input_precision else 0.0
    u_out = UNIT_ROUNDOFF[out_dtype]
    with np.errstate(invalid="ignore", over="ignore"):
        bound = (ALPHA * k * u_acc + ALPHA * u_in + u_out) * np.asarray(mag, dtype=np.float64) + TINY[out_dtype]
    return np.where(np.isnan(bound), np.inf, bound)


def statistical_limits(k: int, count: int) -> tuple[float, float]:
    """ERR-STAT-1: limits on |Σ e| and Σ e² over ``count`` normalised errors e = (out − ref)/(mag·u).

    TOSA's dot-product rule: |Σ e| ≤ 2·√(K·T) (no systematic bias) and Σ e² ≤ 0.4·K·T (variance
    of K roundings, each ≤ u/√3 on average, with margin), for T outputs each summing K terms.
    """
    return 2.0 * math.sqrt(k * count), 0.4 * k * count


def largest_finite(dtype: str) -> float:
    """The largest finite value of ``dtype``."""
    return {"float16": 65504.0, "bfloat16": 3.3895313892515355e38, "float32": 3.4028234663852886e38,
            "float64": 1.7976931348623157e308}[dtype]


def bound_overflows(mag: np.ndarray, k: int, dtype: str, accumulation: str | None = None) -> np.ndarray:
    """ERR-SPECIAL-1 (3): where mag·(1 + α·K·u_acc) overflows ``dtype`` (there anything goes)."""
    with np.errstate(over="ignore", invalid="ignore"):
        reach = np.asarray(mag, dtype=np.float64) * (1 + ALPHA * k * UNIT_ROUNDOFF[accumulation or dtype])
    return reach > largest_finite(dtype)  # type: ignore[no-any-return]


def exact_integer_limit(dtype: str, accumulation: str | None = None) -> float:
    """ERR-EXACT-1 (3): integer partial sums up to this magnitude are exact in both the
    accumulation precision and ``dtype``."""
    return 2.0**min(PRECISION_BITS[accumulation or dtype], PRECISION_BITS[dtype])


def statistical_terms(k: int, dtype: str, accumulation: str | None = None, bias_term: bool = False) -> int:
    """ERR-STAT-1's k: max(1, ⌈K · u_acc / u_out⌉), plus one for a bias term."""
    return max(1, math.ceil(k * UNIT_ROUNDOFF[accumulation or dtype] / UNIT_ROUNDOFF[dtype])) + (1 if bias_term else 0)


def wants_statistics(count: int, dtype: str) -> bool:
    """The statistical test runs on ≥ STAT_MIN_OUTPUTS outputs of a dtype narrower than float64
    (for float64 the reference is no more precise than the backend)."""
    return count >= STAT_MIN_OUTPUTS and dtype != "float64"
