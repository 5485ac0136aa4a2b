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
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Iterator

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
    y = _gather(x_tilde, W, params.kernel_size, params.stride, params.dilation, params.output_shape[2:])
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
    dx_tilde = _scatter(dy_grouped, W, params.kernel_size, params.stride, params.dilation, extent)
    dx = fold(dx_tilde, pads, params.padding_mode, first_axis=3).reshape(params.input_shape)
    dW = _correlate(x_tilde, dy_grouped, params.kernel_size, params.stride, params.dilation)
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
    y_tilde = _scatter(
        _split_groups(x, params.groups), W, params.kernel_size, params.stride, params.dilation,
        _transpose_extent(params),
    )  # (N, G, M, *extent)
    y = fold(y_tilde, _transpose_buffer_pads(params), first_axis=3)  # crop to [p_b, p_b + o)
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
    dx = _gather(dy_tilde, W, params.kernel_size, params.stride, params.dilation, params.input_shape[2:])
    dW = _correlate(dy_tilde, _split_groups(x, groups), params.kernel_size, params.stride, params.dilation)
    db = _bias_grad(dy, params.bias_shape is not None)
    return dx.reshape(params.input_shape), dW.reshape(params.weight_shape), db
