"""Convolution and transposed convolution, forward and gradients, in float64, any spatial rank.

Layout. Every array keeps the caller's layout: an activation (N, G·C, *S) is read as
(N, G, C, *S) and a weight (G·J, I, *K) as W[g, j, i, q] (G, J, I, ΠK) — both free reshapes.
For a block B of kernel taps the columns

    X̂_B[n, g, (i, q), p] = a[n, g, i, p·s + q·d]      (q ∈ B; one strided view of a per tap)

turn each contraction into one batched BLAS matmul with W_B[g, j, (i, q)] = W[g, j, i, q]:

* gather     out[n, g, j, p] = Σ_B W_B · X̂_B                                  (a conv)
* scatter    X̂_B = W_Bᵀ · b, then out[n, g, i, p·s + q·d] += X̂_B[n, g, (i, q), p]
             (col2im: the adjoint of gather in a)
* correlate  dW_B = Σ_n b[n] · X̂_B[n]ᵀ                                        (its adjoint in W)

conv is a gather; its dx a scatter (then :func:`~.window.fold`), its dw a correlate.
conv_transpose is a scatter (then a crop); its dx a gather, its dw a correlate.

Blocks. The taps are cut, in row-major order, into runs whose columns fit in
:data:`COLUMN_BUDGET_BYTES`: one block of all taps for every ResNet-50 layer at batch 1, one tap
per block at worst, so the memory stays bounded for any input.

Special values. Every output is the strict sum of its own terms (ERR-SPECIAL-1): padding zeros of
x̃ are terms (0·∞ = NaN), the zeros that extend dy to conv_transpose's uncropped buffer are not.
With NaN or ±∞ among the operands, :func:`_bilinear` counts the non-finite terms of each output
through the same contraction on 0/1 indicators; finite operands take the plain path.
:func:`conv_backward_zero_extension_nan` and :func:`conv_transpose_backward_zero_extension_nan`
mark where a zero-extended gradient may be NaN instead (CONV-GRAD-1, CONVT-GRAD-1).
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterator

import numpy as np

from ..spec import ConvParams, ConvTransposeParams, Shape, check_arrays
from .window import fold, pad, spatial, tap_slices, taps

#: Largest column matrix X̂_B one contraction builds, in bytes.
COLUMN_BUDGET_BYTES = 64 * 2**20


def _float64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _float64_bias(b: np.ndarray | None) -> np.ndarray | None:
    return None if b is None else _float64(b)


def _split_groups(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, G·C, *S) → (N, G, C, *S): channel g·C + c becomes [:, g, c]."""
    return a.reshape(a.shape[0], groups, a.shape[1] // groups, *a.shape[2:])


def _grouped_weight(w: np.ndarray, groups: int) -> np.ndarray:
    """W[g, j, i, q] = w[g·J + j, i, q] for a weight (G·J, I, *K): (G, J, I, ΠK).

    conv's weight (C_out, C_in/g, *K) gives W[g, m, c, q] = w[g·M + m, c, q]; conv_transpose's
    (C_in, C_out/g, *K) gives W[g, c, m, q] = w[g·C_g + c, m, q] — the same map, which is why
    conv_transpose is conv's scatter with its own weight.
    """
    return w.reshape(groups, w.shape[0] // groups, w.shape[1], math.prod(w.shape[2:]))


def _tap_blocks(kernel_size: Shape, bytes_per_tap: int) -> Iterator[list[tuple[int, ...]]]:
    """The taps (row-major, :func:`~.window.taps`) in consecutive runs whose columns, at
    ``bytes_per_tap`` each, fit in COLUMN_BUDGET_BYTES (at least one tap per run)."""
    all_taps = list(taps(kernel_size))
    per_block = max(1, COLUMN_BUDGET_BYTES // max(1, bytes_per_tap))
    for start in range(0, len(all_taps), per_block):
        yield all_taps[start : start + per_block]


def _weight_block(W: np.ndarray, kernel_size: Shape, block: list[tuple[int, ...]]) -> np.ndarray:
    """W_B[g, j, (i, q)] for the taps q of the block: (G, J, I·|B|)."""
    first = int(np.ravel_multi_index(block[0], kernel_size))
    return W[..., first : first + len(block)].reshape(*W.shape[:2], W.shape[2] * len(block))


def _tap_view(a: np.ndarray, q: tuple[int, ...], stride: Shape, dilation: Shape, out_size: Shape) -> np.ndarray:
    """a[n, g, i, p·s + q·d] for every window p: a strided view of a (N, G, I, *S̃) array."""
    return a[spatial(a, 3, tap_slices(q, stride, dilation, out_size))]


def _columns(a: np.ndarray, block: list[tuple[int, ...]], stride: Shape, dilation: Shape,
             out_size: Shape) -> np.ndarray:
    """X̂_B[n, g, (i, q), p] = a[n, g, i, p·s + q·d] for the taps q of the block: (N, G, I·|B|, Πo)."""
    batch, groups, in_per_group = a.shape[:3]
    X = np.empty((batch, groups, in_per_group, len(block), *out_size))
    for t, q in enumerate(block):
        X[:, :, :, t] = _tap_view(a, q, stride, dilation, out_size)
    return X.reshape(batch, groups, in_per_group * len(block), math.prod(out_size))


def _bytes_per_tap(a: np.ndarray, out_size: Shape) -> int:
    """Size of one tap's columns, N·G·I·Πo float64s."""
    return math.prod(a.shape[:3]) * math.prod(out_size) * 8


def _gather(a: np.ndarray, W: np.ndarray, kernel_size: Shape, stride: Shape, dilation: Shape,
            out_size: Shape) -> np.ndarray:
    """out[n, g, j, p] = Σ_q Σ_i W[g, j, i, q] · a[n, g, i, p·s + q·d]; a is (N, G, I, *S̃),
    W (G, J, I, ΠK); returns (N, G, J, *o)."""
    products = (
        np.matmul(_weight_block(W, kernel_size, block), _columns(a, block, stride, dilation, out_size))
        for block in _tap_blocks(kernel_size, _bytes_per_tap(a, out_size))
    )
    out = functools.reduce(operator.iadd, products)
    return out.reshape(*out.shape[:3], *out_size)


def _scatter(b: np.ndarray, W: np.ndarray, kernel_size: Shape, stride: Shape, dilation: Shape,
             extent: Shape) -> np.ndarray:
    """out[n, g, i, p·s + q·d] += Σ_j W[g, j, i, q] · b[n, g, j, p] into a zero (N, G, I, *extent)
    buffer: the adjoint of :func:`_gather` in its first argument. b is (N, G, J, *o)."""
    batch, groups, out_per_group = b.shape[:3]
    out_size, in_per_group = b.shape[3:], W.shape[2]
    b_matrix = b.reshape(batch, groups, out_per_group, math.prod(out_size))
    out = np.zeros((batch, groups, in_per_group, *extent))
    for block in _tap_blocks(kernel_size, _bytes_per_tap(out, out_size)):
        X = np.matmul(_weight_block(W, kernel_size, block).transpose(0, 2, 1), b_matrix)
        X = X.reshape(batch, groups, in_per_group, len(block), *out_size)
        for t, q in enumerate(block):
            target = _tap_view(out, q, stride, dilation, out_size)
            target += X[:, :, :, t]
    return out


def _correlate(a: np.ndarray, b: np.ndarray, kernel_size: Shape, stride: Shape, dilation: Shape) -> np.ndarray:
    """dW[g, j, i, q] = Σ_n Σ_p b[n, g, j, p] · a[n, g, i, p·s + q·d]: the adjoint of :func:`_gather`
    in W. a is (N, G, I, *S̃), b is (N, G, J, *o); returns (G, J, I, ΠK)."""
    batch, groups, out_per_group = b.shape[:3]
    out_size, in_per_group = b.shape[3:], a.shape[2]
    b_matrix = b.reshape(batch, groups, out_per_group, math.prod(out_size))
    dW_blocks = []
    for block in _tap_blocks(kernel_size, _bytes_per_tap(a, out_size)):
        X = _columns(a, block, stride, dilation, out_size)
        dW_B = np.zeros((groups, out_per_group, in_per_group * len(block)))
        for n in range(batch):  # one image at a time: no N weight-sized products at once
            dW_B += np.matmul(b_matrix[n], X[n].transpose(0, 2, 1))
        dW_blocks.append(dW_B.reshape(groups, out_per_group, in_per_group, len(block)))
    return np.concatenate(dW_blocks, axis=-1)


def _add_bias(y: np.ndarray, b: np.ndarray | None) -> np.ndarray:
    if b is not None:
        y += b.reshape((-1,) + (1,) * (y.ndim - 2))
    return y


def _bias_grad(dy: np.ndarray, has_bias: bool) -> np.ndarray | None:
    """db[o] = Σ_n Σ_p dy[n, o, p], or None without a bias."""
    if not has_bias:
        return None
    return dy.sum(axis=(0, *range(2, dy.ndim)))


def _padded_size(size: Shape, pads: tuple[tuple[int, int], ...]) -> Shape:
    return tuple(n + before + after for n, (before, after) in zip(size, pads))


# --------------------------------------------------------------------------------------------
# special values: every sum over its terms only (ERR-SPECIAL-1, CONV-GRAD-1, CONVT-GRAD-1)


class _Kinds:
    """0/1 indicator arrays of one contraction operand, zero wherever a position is not a term.

    ``terms`` marks the positions that are terms (None: all); the operand is given in the layout
    the contraction reads (x̃ padded: padding zeros are terms; dỹ's zero extension is not).
    """

    def __init__(self, a: np.ndarray, terms: np.ndarray | None) -> None:
        term = np.ones(a.shape) if terms is None else np.broadcast_to(terms, a.shape).astype(np.float64)
        self.term = term
        self.nan = np.isnan(a) * term
        self.pos_inf = (a == np.inf) * term
        self.neg_inf = (a == -np.inf) * term
        self.inf = self.pos_inf + self.neg_inf
        self.zero = (a == 0) * term
        self.pos_finite = ((a > 0) & (a < np.inf)) * term
        self.neg_finite = ((a < 0) & (a > -np.inf)) * term
        self.pos = self.pos_finite + self.pos_inf
        self.neg = self.neg_finite + self.neg_inf


def _bilinear(contract: Callable[[np.ndarray, np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray,
              a_terms: np.ndarray | None = None, b_terms: np.ndarray | None = None) -> np.ndarray:
    """``contract(a, b)`` for a contraction linear in each operand, with every output element the
    strict sum of its terms a·b: NaN when a term is NaN (NaN factor, or 0·±∞) or when +∞ and −∞
    terms meet; ±∞ when only terms of that sign are infinite; the finite sum otherwise.

    Operands without a NaN or an infinity take the fast path, ``contract(a, b)`` itself. Otherwise
    the finite sum is ``contract`` on the operands with their non-finite entries zeroed, and the
    non-finite terms are counted per kind by ``contract`` on 0/1 indicators, so a position outside
    ``a_terms`` / ``b_terms`` (an extension by zeros that is not a term) adds nothing, not 0·∞.
    """
    if np.isfinite(a).all() and np.isfinite(b).all():
        return contract(a, b)
    value = contract(np.where(np.isfinite(a), a, 0.0), np.where(np.isfinite(b), b, 0.0))
    A, B = _Kinds(a, a_terms), _Kinds(b, b_terms)

    def count(*pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        total = np.zeros(value.shape)
        for p, q in pairs:
            if p.any() and q.any():
                total += contract(p, q)
        return total

    nan = count((A.nan, B.term), (A.term - A.nan, B.nan), (A.inf, B.zero), (A.zero, B.inf))
    pos_inf = count((A.pos_inf, B.pos), (A.neg_inf, B.neg), (A.pos_finite, B.pos_inf), (A.neg_finite, B.neg_inf))
    neg_inf = count((A.pos_inf, B.neg), (A.neg_inf, B.pos), (A.pos_finite, B.neg_inf), (A.neg_finite, B.pos_inf))
    value = np.where(pos_inf > 0, np.inf, value)
    value = np.where(neg_inf > 0, -np.inf, value)
    return np.where((nan > 0) | ((pos_inf > 0) & (neg_inf > 0)), np.nan, value)


def _nonfinite(a: np.ndarray) -> np.ndarray:
    """1.0 where ``a`` is NaN or ±∞, else 0.0."""
    return (~np.isfinite(a)).astype(np.float64)


# --------------------------------------------------------------------------------------------
# conv


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, params: ConvParams) -> np.ndarray:
    """y[n, g·M+m, p] = b[g·M+m] + Σ_c Σ_q w[g·M+m, c, q] · x̃[n, g·C_g+c, p·s + q·d]

    (CONV-DEF-1). Cross-correlation (no kernel flip); M = C_out/groups, C_g = C_in/groups, x̃ the
    input padded by ``params.pads`` and ``params.padding_mode`` (PAD-MODE-1) and indexed from its
    first padded element; o by CONV-SHAPE-1.

    Returns y, float64 (N, C_out, *o). Cost: per batch element and group, one matmul
    (M, C_g·ΠK) × (C_g·ΠK, Πo) (one per tap block, see the module docstring).

    >>> from convspec.spec import ConvParams
    >>> x, w = np.array([[[1.0, 2, 3, 4, 5]]]), np.array([[[1.0, 0, -1]]])
    >>> conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    array([[[-2., -2., -2.]]])
    """
    check_arrays("conv", params, {"x": x, "w": w, "b": b})
    x, w, b = _float64(x), _float64(w), _float64_bias(b)
    x_tilde = pad(_split_groups(x, params.groups), params.pads, params.padding_mode, first_axis=3)  # (N, G, C_g, *S̃)
    W = _grouped_weight(w, params.groups)  # W[g, m, c, q] = w[g·M+m, c, q]
    y = _bilinear(lambda a, W_: _gather(a, W_, params.kernel_size, params.stride, params.dilation,
                                        params.output_shape[2:]), x_tilde, W)
    return _add_bias(y.reshape(params.output_shape), b)


def conv_backward(
    x: np.ndarray, w: np.ndarray, dy: np.ndarray, params: ConvParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dx̃[n, g·C_g+c, p·s + q·d] += Σ_m w[g·M+m, c, q] · dy[n, g·M+m, p], dx = fold(dx̃);
    dw[g·M+m, c, q] = Σ_n Σ_p dy[n, g·M+m, p] · x̃[n, g·C_g+c, p·s + q·d];  db[o] = Σ_n Σ_p dy[n, o, p]

    (CONV-GRAD-1): the gradients of Σ y·dy. dx is the scatter-add adjoint of :func:`conv`; ``fold``
    adds the gradient of each padded copy onto its source element (zeros padding: a crop).

    Returns (dx, dw, db), float64; db is None when ``params.bias_shape`` is None.

    >>> from convspec.spec import ConvParams
    >>> x, w = np.array([[[1.0, 2, 3, 4, 5]]]), np.array([[[1.0, 0, -1]]])
    >>> dx, dw, db = conv_backward(x, w, np.ones((1, 1, 3)), ConvParams(input_shape=x.shape, weight_shape=w.shape))
    >>> dx, dw, db
    (array([[[ 1.,  1.,  0., -1., -1.]]]), array([[[ 6.,  9., 12.]]]), None)
    """
    check_arrays("conv_backward", params, {"x": x, "w": w, "dy": dy})
    x, w, dy = _float64(x), _float64(w), _float64(dy)
    groups, pads = params.groups, params.pads
    x_tilde = pad(_split_groups(x, groups), pads, params.padding_mode, first_axis=3)  # (N, G, C_g, *S̃)
    W = _grouped_weight(w, groups)  # W[g, m, c, q] = w[g·M+m, c, q]
    dy_grouped = _split_groups(dy, groups)  # (N, G, M, *o)
    extent = _padded_size(params.input_shape[2:], pads)
    dx = _bilinear(lambda b, W_: fold(_scatter(b, W_, params.kernel_size, params.stride, params.dilation, extent),
                                      pads, params.padding_mode, first_axis=3), dy_grouped, W)
    dx = dx.reshape(params.input_shape)
    dW = _bilinear(lambda a, b: _correlate(a, b, params.kernel_size, params.stride, params.dilation),
                   x_tilde, dy_grouped)
    dw = dW.reshape(params.weight_shape)
    return dx, dw, _bias_grad(dy, params.bias_shape is not None)


# --------------------------------------------------------------------------------------------
# conv_transpose


def _transpose_extent(params: ConvTransposeParams) -> Shape:
    """Length of the buffer ỹ that every target p·s + q·d reaches and that holds [p_b, p_b + o):
    max((n − 1)·s + d·(k − 1) + 1, p_b + o) per dim (more than the first only with output_padding)."""
    return tuple(
        max((n - 1) * s + d * (k - 1) + 1, before + o)
        for n, k, s, d, (before, _), o in zip(
            params.input_shape[2:], params.kernel_size, params.stride, params.dilation, params.pads,
            params.output_shape[2:],
        )
    )


def _transpose_buffer_pads(params: ConvTransposeParams) -> tuple[tuple[int, int], ...]:
    """(p_b, rest) such that ỹ[p_b : p_b + o] is y: how ỹ crops to y, and dy pads to dỹ."""
    return tuple(
        (before, length - before - o)
        for length, (before, _), o in zip(_transpose_extent(params), params.pads, params.output_shape[2:])
    )


def _surviving_targets(params: ConvTransposeParams) -> np.ndarray:
    """1 where a position of the buffer ỹ (1, G, M, *extent) is kept by the crop to [p_b, p_b + o), else 0."""
    groups, out_channels = params.groups, params.output_shape[1]
    ones = np.ones((1, groups, out_channels // groups, *params.output_shape[2:]))
    return pad(ones, _transpose_buffer_pads(params), first_axis=3)


def conv_transpose(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, params: ConvTransposeParams) -> np.ndarray:
    """y[n, g·M+m, p·s + q·d − p_b] += Σ_c w[g·C_g+c, m, q] · x[n, g·C_g+c, p], then + b[g·M+m]

    (CONVT-DEF-1): the adjoint of conv (same s, d, pads, groups) in its input, for targets inside
    [0, o); M = C_out/groups, C_g = C_in/groups, o by CONVT-SHAPE-1 (output_padding lengthens o).

    Returns y, float64 (N, C_out, *o). Computed as conv's scatter into a buffer ỹ, then cropped.

    >>> from convspec.spec import ConvTransposeParams
    >>> x, w = np.array([[[1.0, 2]]]), np.array([[[1.0, 10, 100]]])
    >>> conv_transpose(x, w, None, ConvTransposeParams(input_shape=x.shape, weight_shape=w.shape, stride=2))
    array([[[  1.,  10., 102.,  20., 200.]]])
    """
    check_arrays("conv_transpose", params, {"x": x, "w": w, "b": b})
    x, w, b = _float64(x), _float64(w), _float64_bias(b)
    W = _grouped_weight(w, params.groups)  # W[g, c, m, q] = w[g·C_g+c, m, q]
    extent, buffer_pads = _transpose_extent(params), _transpose_buffer_pads(params)
    y = _bilinear(  # scatter into ỹ (N, G, M, *extent), then crop to [p_b, p_b + o)
        lambda a, W_: fold(_scatter(a, W_, params.kernel_size, params.stride, params.dilation, extent),
                           buffer_pads, first_axis=3),
        _split_groups(x, params.groups), W)
    return _add_bias(y.reshape(params.output_shape), b)


def conv_transpose_backward(
    x: np.ndarray, w: np.ndarray, dy: np.ndarray, params: ConvTransposeParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """dx[n, g·C_g+c, p] = Σ_m Σ_q w[g·C_g+c, m, q] · dỹ[n, g·M+m, p·s + q·d];
    dw[g·C_g+c, m, q] = Σ_n Σ_p x[n, g·C_g+c, p] · dỹ[n, g·M+m, p·s + q·d];  db[o] = Σ_n Σ_p dy[n, o, p]

    (CONVT-GRAD-1), dỹ = dy zero-padded by p_b before (indexed from its first padded element): dx is
    conv(dy) with w, dw the adjoint of the weight contraction.

    Returns (dx, dw, db), float64; db is None when ``params.bias_shape`` is None.

    >>> from convspec.spec import ConvTransposeParams
    >>> x, w = np.array([[[1.0, 2]]]), np.array([[[1.0, 10, 100]]])
    >>> p = ConvTransposeParams(input_shape=x.shape, weight_shape=w.shape, stride=2)
    >>> conv_transpose_backward(x, w, np.array([[[1.0, 0, 0, 0, 1]]]), p)
    (array([[[  1., 100.]]]), array([[[1., 0., 2.]]]), None)
    """
    check_arrays("conv_transpose_backward", params, {"x": x, "w": w, "dy": dy})
    x, w, dy = _float64(x), _float64(w), _float64(dy)
    groups = params.groups
    W = _grouped_weight(w, groups)  # W[g, c, m, q] = w[g·C_g+c, m, q]
    dy_tilde = pad(_split_groups(dy, groups), _transpose_buffer_pads(params), first_axis=3)  # (N, G, M, *extent)
    targets = _surviving_targets(params)  # dỹ's zero extension is not a term (CONVT-GRAD-1)
    dx = _bilinear(lambda a, W_: _gather(a, W_, params.kernel_size, params.stride, params.dilation,
                                         params.input_shape[2:]), dy_tilde, W, a_terms=targets)
    dW = _bilinear(lambda a, b: _correlate(a, b, params.kernel_size, params.stride, params.dilation),
                   dy_tilde, _split_groups(x, groups), a_terms=targets)
    db = _bias_grad(dy, params.bias_shape is not None)
    return dx.reshape(params.input_shape), dW.reshape(params.weight_shape), db


# --------------------------------------------------------------------------------------------
# where a zero-extended formulation may give NaN (CONV-GRAD-1, CONVT-GRAD-1)


def conv_backward_zero_extension_nan(
    x: np.ndarray, w: np.ndarray, dy: np.ndarray, params: ConvParams
) -> tuple[np.ndarray | None, np.ndarray | None, None]:
    """Where conv_backward may be NaN in place of its strict value: (dx, dw, db) boolean masks,
    None where no element can be.

    A zero-extended formulation (dy zero-stuffed at the stride gaps and extended by zeros at both
    ends) multiplies extra zeros with factors that no term pairs them with (CONV-GRAD-1):

    * dw[g·M+m, c, q]: a non-finite x̃[n, g·C_g+c, t] that tap q reads from no window p
      (t ≠ p·s + q·d: a stride gap, an unread tail, a padded copy beyond the last window);
    * dx̃[n, g·C_g+c, j]: a non-finite w[g·M+m, c, q] for a tap that reaches j from no window
      (j ≠ p·s + q·d), then folded onto x (PAD-MODE-1) like dx̃ itself.

    dy's own elements are factors of a term of every dx and dw element they meet, and db has no
    extra zeros.

    >>> from convspec.spec import ConvParams
    >>> x = np.array([[[1.0, 2.0, np.nan]]])                 # x[2] is read by no window (s = 2)
    >>> params = ConvParams(input_shape=x.shape, weight_shape=(1, 1, 2), stride=2)
    >>> conv_backward_zero_extension_nan(x, np.ones((1, 1, 2)), np.ones((1, 1, 1)), params)
    (None, array([[[ True,  True]]]), None)
    """
    check_arrays("conv_backward", params, {"x": x, "w": w, "dy": dy})
    x, w = _float64(x), _float64(w)
    groups, pads, kernel, stride, dilation = params.groups, params.pads, params.kernel_size, params.stride, params.dilation
    batch, out_size = params.input_shape[0], params.output_shape[2:]
    dx_mask = dw_mask = None
    if not np.isfinite(x).all():
        x_bad = pad(_split_groups(_nonfinite(x), groups), pads, params.padding_mode, first_axis=3)  # (N, G, C_g, *S̃)
        ones = np.ones((batch, groups, params.output_shape[1] // groups, *out_size))
        read = _correlate(x_bad, ones, kernel, stride, dilation)  # (G, M, C_g, ΠK): non-finite x̃ tap q reads
        total = x_bad.sum(axis=(0, *range(3, x_bad.ndim)))  # (G, C_g)
        dw_mask = (total[:, None, :, None] > read).reshape(params.weight_shape)
    if not np.isfinite(w).all():
        W_bad = _grouped_weight(_nonfinite(w), groups)  # (G, M, C_g, ΠK)
        ones = np.ones((1, groups, W_bad.shape[1], *out_size))
        extent = _padded_size(params.input_shape[2:], pads)
        reached = _scatter(ones, W_bad, kernel, stride, dilation, extent)  # (1, G, C_g, *S̃)
        total = W_bad.sum(axis=(1, 3)).reshape(1, groups, -1, *(1,) * len(extent))
        outside = (total > reached).astype(np.float64)
        folded = fold(outside, pads, params.padding_mode, first_axis=3) > 0  # (1, G, C_g, *S)
        dx_mask = np.broadcast_to(folded.reshape(1, *params.input_shape[1:]), params.input_shape)
    return dx_mask, dw_mask, None


def conv_transpose_backward_zero_extension_nan(
    x: np.ndarray, w: np.ndarray, dy: np.ndarray, params: ConvTransposeParams
) -> tuple[np.ndarray | None, np.ndarray | None, None]:
    """Where conv_transpose_backward may be NaN in place of its strict value: (dx, dw, db)
    boolean masks, None where no element can be.

    A zero-extended formulation (dy extended by zeros to the uncropped buffer ỹ; for dw also x
    zero-stuffed, dw being the weight gradient of a conv whose input is dy) multiplies extra
    zeros with factors that no term pairs them with (CONVT-GRAD-1):

    * dx[n, g·C_g+c, p]: a non-finite w[g·C_g+c, m, q] whose target p·s + q·d − p_b is cropped;
    * dw[g·C_g+c, m, q]: a non-finite x[n, g·C_g+c, p] whose target through tap q is cropped, or a
      non-finite dy[n, g·M+m, j] that tap q reaches from no input position (j ≠ p·s + q·d − p_b).

    >>> from convspec.spec import ConvTransposeParams
    >>> x = np.array([[[np.nan, 1.0]]])                  # o = 1: x[0]'s target through q = 0 is cropped
    >>> params = ConvTransposeParams(input_shape=x.shape, weight_shape=(1, 1, 2), padding=1)
    >>> conv_transpose_backward_zero_extension_nan(x, np.ones((1, 1, 2)), np.ones((1, 1, 1)), params)
    (None, array([[[ True, False]]]), None)
    """
    check_arrays("conv_transpose_backward", params, {"x": x, "w": w, "dy": dy})
    x, w, dy = _float64(x), _float64(w), _float64(dy)
    groups, kernel, stride, dilation = params.groups, params.kernel_size, params.stride, params.dilation
    size = params.input_shape[2:]
    targets = _surviving_targets(params)  # (1, G, M, *extent)
    dx_mask = dw_mask = None
    if not np.isfinite(w).all():
        W_bad = _grouped_weight(_nonfinite(w), groups)  # (G, C_g, M, ΠK)
        kept = _gather(targets, W_bad, kernel, stride, dilation, size)  # (1, G, C_g, *n)
        total = W_bad.sum(axis=(2, 3)).reshape(1, groups, -1, *(1,) * len(size))
        dx_mask = np.broadcast_to((total > kept).reshape(1, *params.input_shape[1:]), params.input_shape)
    if not (np.isfinite(x).all() and np.isfinite(dy).all()):
        x_bad = _split_groups(_nonfinite(x), groups)  # (N, G, C_g, *n)
        dy_bad = pad(_split_groups(_nonfinite(dy), groups), _transpose_buffer_pads(params), first_axis=3)
        all_targets = np.broadcast_to(targets, (x.shape[0], *targets.shape[1:]))
        kept_x = _correlate(all_targets, x_bad, kernel, stride, dilation)  # (G, C_g, M, ΠK)
        read_dy = _correlate(dy_bad, np.ones(x_bad.shape), kernel, stride, dilation)
        total_x = x_bad.sum(axis=(0, *range(3, x_bad.ndim)))[:, :, None, None]  # (G, C_g, 1, 1)
        total_dy = dy_bad.sum(axis=(0, *range(3, dy_bad.ndim)))[:, None, :, None]  # (G, 1, M, 1)
        dw_mask = ((total_x > kept_x) | (total_dy > read_dy)).reshape(params.weight_shape)
    return dx_mask, dw_mask, None
