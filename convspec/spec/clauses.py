"""The clause index of SPEC.md: stable id -> one-line statement of the rule.

Every validation error, check and report row cites one of these ids. ``SPEC.md`` at the
repository root holds the normative text (formula, rationale, conventions) under a heading
per clause; a test asserts the two lists are identical, so neither can drift.
"""

from __future__ import annotations

SPEC_VERSION = "0.1"

CLAUSES: dict[str, str] = {
    # Layout and generic parameters
    "LAYOUT-1": "x is (N, C, *S): batch, channels, then m >= 1 spatial dims; N >= 0, C >= 1, every S_i >= 1.",
    "LAYOUT-2": "conv weight is (C_out, C_in/groups, *K) with the same spatial rank m as x.",
    "LAYOUT-3": "conv_transpose weight is (C_in, C_out/groups, *K) with the same spatial rank m as x.",
    "LAYOUT-4": "bias, when given, has shape exactly (C_out,).",
    "PARAM-1": "per-dim parameters are one int (broadcast) or exactly one entry per spatial dim.",
    "PARAM-2": "kernel size, stride and dilation are positive integers in every spatial dim.",
    "PARAM-3": "an argument left out takes its default (stride 1, a pool's stride kernel_size, padding 0, dilation 1, groups 1, no bias, ceil_mode False).",
    # Padding
    "PAD-1": "padding is an int, one int per dim, one (before, after) pair per dim, or one of 'valid', 'same', 'same_upper', 'same_lower'.",
    "PAD-2": "explicit pads are non-negative integers.",
    "PAD-3": "'valid' means zero pads on both sides.",
    "PAD-4": "'same_upper' (= 'same'): o = ceil(n/s), total = max((o-1)*s + d*(k-1) + 1 - n, 0), floor(total/2) before, the rest after.",
    "PAD-5": "'same_lower': as 'same_upper' but ceil(total/2) before, floor(total/2) after.",
    "PAD-MODE-1": "conv padding_mode is 'zeros', 'reflect', 'replicate' or 'circular'; the padded value x~ is defined per mode.",
    "PAD-MODE-2": "reflect needs every pad <= n-1, circular every pad <= n; replicate accepts any pad.",
    # Convolution
    "CONV-DEF-1": "y[n, o, p] = b[o] + sum_c sum_q w[o, c, q] * x~[n, g(o)*C_g + c, p*s + q*d], g(o) = floor(o / (C_out/groups)): cross-correlation.",
    "CONV-GROUPS-1": "groups is a positive int dividing C_in and C_out; w.shape[1] == C_in/groups.",
    "CONV-SHAPE-1": "o = floor((n + p_before + p_after - d*(k-1) - 1) / s) + 1, integer arithmetic.",
    "CONV-SHAPE-2": "the padded extent n + p_before + p_after must be >= the effective kernel d*(k-1) + 1.",
    "CONV-GRAD-1": "conv_backward gives dx = conv_transpose(dy) restoring n, dw[o,c,q] = sum_n sum_p dy[n,o,p] x~[n, g(o)C_g+c, p*s+q*d], db = sum of dy over batch and space; NaN from unread elements via zero-extended dy is implementation-defined.",
    # Transposed convolution
    "CONVT-DEF-1": "conv_transpose is the adjoint of conv (same s, d, pads, groups) with respect to its input, plus bias.",
    "CONVT-SHAPE-1": "o = (n-1)*s - p_before - p_after + d*(k-1) + output_padding + 1, and o >= 1.",
    "CONVT-PARAM-1": "0 <= output_padding < max(s, d) in every spatial dim.",
    "CONVT-PAD-1": "conv_transpose takes explicit pads, 'valid', or 'same_upper'/'same_lower' (CONVT-SAME-1), with zero padding; other padding modes are refused.",
    "CONVT-SAME-1": "conv_transpose 'same_upper' (= 'same') / 'same_lower' follow ONNX auto_pad: o = n*s, total = s*(n-1) + output_padding + d*(k-1) + 1 - n*s >= 0; upper: floor(total/2) before, lower: ceil(total/2) before.",
    "CONVT-OUTSIZE-1": "conv_transpose output_size (ONNX output_shape): total = s*(n-1) + output_padding + d*(k-1) + 1 - o, split as 'same_lower' (padding 0) or by the padding string; total < 0 adds -total to output_padding (CONVT-PARAM-1 bound).",
    "CONVT-GRAD-1": "conv_transpose_backward gives dx = conv(dy) with w, dw by the adjoint of the weight contraction, db = sum of dy; cropped targets are no terms, NaN from their zero extension is implementation-defined.",
    # Pooling
    "POOL-PARAM-1": "pool kernel_size, stride (default: kernel_size) and dilation are positive ints per dim.",
    "POOL-SHAPE-1": "floor mode: o = floor((n + p_before + p_after - d*(k-1) - 1) / s) + 1.",
    "POOL-CEIL-1": "ceil mode: o = ceil((n + p_before + p_after - d*(k-1) - 1) / s) + 1, then o -= 1 if (o-1)*s >= n + p_before.",
    "POOL-WINDOW-1": "every pooling window must hold at least one input element; otherwise the configuration is invalid.",
    "MAXPOOL-DEF-1": "y = max over the window's taps inside the input; padding never wins (acts as -inf).",
    "MAXPOOL-NAN-1": "a window holding a NaN yields NaN, and its index points at one of that window's NaNs.",
    "MAXPOOL-TIE-1": "among equal maxima the first in row-major scan order of the window is selected.",
    "MAXPOOL-INDEX-1": "indices are flat row-major indices into the unpadded spatial plane of that (n, c).",
    "MAXPOOL-INDEX-2": "max-pool indices have dtype int64 (int32 overflows on planes past 2^31 elements).",
    "MAXPOOL-GRAD-1": "max_pool_backward routes each dy to its index and accumulates where windows overlap.",
    "AVGPOOL-PARAM-1": "count_include_pad must be given explicitly; divisor_override, when given, is a positive int.",
    "AVGPOOL-DEF-1": "y = (sum over taps inside the input) / divisor; divisor = divisor_override, else taps inside [-p_before, n + p_after) if count_include_pad, else taps inside [0, n).",
    "AVGPOOL-GRAD-1": "avg_pool_backward spreads each dy / divisor over the input elements of its window.",
    # ONNX extension ops and global pools
    "LPPOOL-PARAM-1": "lp_pool's p (ONNX LpPool attribute, default 2) is a positive int; windows are those of every pool.",
    "LPPOOL-DEF-1": "lp_pool: y = (sum over the window's taps inside the input of |x|^p)^(1/p); padding taps contribute 0; mag = y.",
    "LPPOOL-GRAD-1": "lp_pool_backward: dx[u] = sum over windows p holding u of dy[p] * sign(x[u]) |x[u]|^(p-1) / y[p]^(p-1), and 0 from a window whose y is 0.",
    "GLOBALPOOL-MAX-1": "global max pool (ONNX GlobalMaxPool) is max_pool with kernel_size = the spatial shape of x, stride 1, no padding: y has spatial size 1.",
    "GLOBALPOOL-AVG-1": "global average pool (ONNX GlobalAveragePool) is avg_pool with kernel_size = the spatial shape of x, stride 1, no padding: y = mean over the plane.",
    # Gradients and dtypes
    "GRAD-SHAPE-1": "the output gradient dy has exactly the forward output's shape; dx, dw, db have the shapes of x, w, b.",
    "DTYPE-1": "x, w, b and dy share one floating dtype (float16, bfloat16, float32, float64); results have that dtype.",
    "DTYPE-2": "unit roundoff u: float16 2^-11, bfloat16 2^-8, tf32 2^-11, float32 2^-24, float64 2^-53.",
    # Error model
    "ERR-BOUND-1": "per element |out - ref| <= (alpha*K*u_acc + u_out) * mag + tiny, mag = op(|x|, |w|, |b|), alpha = 2.",
    "ERR-SPECIAL-1": "strict sums (0*inf is NaN for padding zeros and zero weights); a NaN reference requires NaN, an infinite one the same infinity (or NaN where a zero-extended gradient may be NaN), a zero bound an exact match.",
    "ERR-STAT-1": "on >= 1000 outputs the normalised errors have |mean| and variance within the TOSA limits.",
    "ERR-NONLOCAL-1": "non-local algorithms (FFT, Winograd) are bounded with max|x| in place of |x|.",
    "ERR-EXACT-1": "max_pool values and indices, and integer-valued data with exactly representable sums, must match exactly.",
    # Hygiene of an implementation
    "HYGIENE-1": "an op never modifies its input arrays.",
    "HYGIENE-2": "outputs have the shapes of the op table and the input dtype (indices: int64, MAXPOOL-INDEX-2).",
    "HYGIENE-3": "a backend declaring determinism returns bitwise identical results on repeated calls.",
}


def clause_title(clause: str) -> str:
    """The one-line statement of ``clause``; ``KeyError`` names an unknown id."""
    return CLAUSES[clause]
