"""Convolution and transposed convolution, forward and gradients, in float64, any spatial rank.

Layout. Internally an activation of ``groups`` groups is held as (G, N, *S, C): one contiguous
matrix of channels per group and position, so each kernel tap q is one batched BLAS matmul of
the tap's strided view of x̃, (G, N·Πo, C_g), with the tap's weight matrices, (G, C_g, M). The loop
runs over the ΠK taps; batch, positions and channels are vectorised. No im2col matrix is built:
the largest temporary is one tap's view, the size of the output times C_g/M.

All four ops are made of three contractions over the same windows (p an output position, q a tap,
W[q, g, i, j] the tap matrices of :func:`_tap_matrices`):

* gather     out[g, n, p, j] = Σ_q Σ_i a[g, n, p·s + q·d, i] · W[q, g, i, j]     (a conv)
* scatter    out[g, n, p·s + q·d, i] += Σ_j b[g, n, p, j] · W[q, g, i, j]        (its adjoint in a)
* correlate  dW[q, g, i, j] = Σ_n Σ_p a[g, n, p·s + q·d, i] · b[g, n, p, j]      (its adjoint in W)

conv is a gather; its dx a scatter (then :func:`~.window.fold`), its dw a correlate.
conv_transpose is a scatter (then a crop); its dx a gather, its dw a correlate.
"""

from __future__ import annotations

import math

import numpy as np

from ..spec import ConvParams, ConvTransposeParams, Shape, check_arrays
from .window import fold, pad, spatial, tap_slices, taps


def _float64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _float64_bias(b: np.ndarray | None) -> np.ndarray | None:
    return None if b is None else _float64(b)


def _grouped(a: np.ndarray, groups: int) -> np.ndarray:
    """(N, G·C, *S) → (G, N, *S, C), a view: channel g·C + c becomes [g, …, c]."""
    batch, channels, *size = a.shape
    return np.moveaxis(a.reshape(batch, groups, channels // groups, *size), (1, 2), (0, -1))


def _ungrouped(a: np.ndarray) -> np.ndarray:
    """(G, N, *S, C) → (N, G·C, *S), C-contiguous: the inverse of :func:`_grouped`."""
    groups, batch, *size, channels = a.shape
    return np.ascontiguousarray(np.moveaxis(a, (0, -1), (1, 2))).reshape(batch, groups * channels, *size)


def _tap_matrices(w: np.ndarray, groups: int) -> np.ndarray:
    """W[q, g, i, j] = w[g·J + j, i, q] for a weight (G·J, I, *K): (ΠK, G, I, J), C-contiguous.

    conv's weight (C_out, C_in/g, *K) gives W[q, g, c, m] = w[g·M + m, c, q]; conv_transpose's
    (C_in, C_out/g, *K) gives W[q, g, m, c] = w[g·C_g + c, m, q] — the same map, which is why
    conv_transpose is conv's scatter with its own weight.
    """
    rows, cols = w.shape[:2]
    taps_count = math.prod(w.shape[2:])
    return np.ascontiguousarray(w.reshape(groups, rows // groups, cols, taps_count).transpose(3, 0, 2, 1))


def _weight_of(dW: np.ndarray, kernel_size: Shape) -> np.ndarray:
    """The inverse of :func:`_tap_matrices`: w[g·J + j, i, q] = dW[q, g, i, j]."""
    _, groups, cols, per_group = dW.shape
    return np.ascontiguousarray(dW.transpose(1, 3, 2, 0)).reshape(groups * per_group, cols, *kernel_size)


def _contract(a: np.ndarray, W_q: np.ndarray, out: np.ndarray) -> np.ndarray:
    """out = (G, P, I) @ (G, I, J). A sum of one term (I = 1, depthwise conv) is a broadcast
    product: NumPy's stacked matmul takes a slow path for it."""
    if a.shape[-1] == 1:
        return np.multiply(a, W_q, out=out)
    return np.matmul(a, W_q, out=out)


def _tap_view(a: np.ndarray, q: tuple[int, ...], stride: Shape, dilation: Shape, out_size: Shape) -> np.ndarray:
    """a[g, n, p·s + q·d, i] for every window p: a strided view of a (G, N, *S̃, I) array."""
    return a[spatial(a, 2, tap_slices(q, stride, dilation, out_size))]


# The loops below reuse one buffer per temporary: a fresh array per tap costs page faults that,
# for these memory-bound steps, take as long as the arithmetic.


def _gather(a: np.ndarray, W: np.ndarray, kernel_size: Shape, stride: Shape, dilation: Shape,
            out_size: Shape) -> np.ndarray:
    """out[g, n, p, j] = Σ_q Σ_i a[g, n, p·s + q·d, i] · W[q, g, i, j]; a is (G, N, *S̃, I)."""
    groups, batch, cols = a.shape[0], a.shape[1], a.shape[-1]
    positions = batch * math.prod(out_size)
    out = np.zeros((groups, positions, W.shape[-1]))
    a_q = np.empty((groups, batch, *out_size, cols))  # one tap's view, made contiguous for BLAS
    product = np.empty_like(out)
    for t, q in enumerate(taps(kernel_size)):
        np.copyto(a_q, _tap_view(a, q, stride, dilation, out_size))
        out += _contract(a_q.reshape(groups, positions, cols), W[t], product)
    return out.reshape(groups, batch, *out_size, W.shape[-1])


def _scatter(b: np.ndarray, W: np.ndarray, kernel_size: Shape, stride: Shape, dilation: Shape,
             extent: Shape) -> np.ndarray:
    """out[g, n, p·s + q·d, i] += Σ_j b[g, n, p, j] · W[q, g, i, j] into a zero (G, N, *extent, I)
    buffer: the adjoint of :func:`_gather` in its first argument."""
    groups, batch, *out_size, per_group = b.shape
    b_matrix = b.reshape(groups, -1, per_group)
    cols = W.shape[2]
    out = np.zeros((groups, batch, *extent, cols))
    product = np.empty((groups, b_matrix.shape[1], cols))
    for t, q in enumerate(taps(kernel_size)):
        _contract(b_matrix, W[t].transpose(0, 2, 1), product)
        target = _tap_view(out, q, stride, dilation, tuple(out_size))
        target += product.reshape(groups, batch, *out_size, cols)
    return out


def _correlate(a: np.ndarray, b: np.ndarray, kernel_size: Shape, stride: Shape, dilation: Shape) -> np.ndarray:
    """dW[q, g, i, j] = Σ_n Σ_p a[g, n, p·s + q·d, i] · b[g, n, p, j]: the adjoint of
    :func:`_gather` in W. a is (G, N, *S̃, I), b is (G, N, *o, J); returns (ΠK, G, I, J)."""
    groups, batch, *out_size, per_group = b.shape
    b_matrix = b.reshape(groups, -1, per_group)
    cols = a.shape[-1]
    dW = np.empty((math.prod(kernel_size), groups, cols, per_group))
    a_q = np.empty((groups, batch, *out_size, cols))
    for t, q in enumerate(taps(kernel_size)):
        np.copyto(a_q, _tap_view(a, q, stride, dilation, tuple(out_size)))
        np.matmul(a_q.reshape(groups, -1, cols).transpose(0, 2, 1), b_matrix, out=dW[t])
    return dW


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

    Returns y, float64 (N, C_out, *o). Cost: ΠK batched matmuls of (N·Πo, C_g) × (C_g, M).

    >>> from convspec.spec import ConvParams
    >>> x, w = np.array([[[1.0, 2, 3, 4, 5]]]), np.array([[[1.0, 0, -1]]])
    >>> conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    array([[[-2., -2., -2.]]])
    """
    check_arrays("conv", params, {"x": x, "w": w, "b": b})
    x, w, b = _float64(x), _float64(w), _float64_bias(b)
    x_tilde = pad(_grouped(x, params.groups), params.pads, params.padding_mode)  # (G, N, *S̃, C_g)
    W = _tap_matrices(w, params.groups)  # W[q, g, c, m] = w[g·M+m, c, q]
    y = _gather(x_tilde, W, params.kernel_size, params.stride, params.dilation, params.output_shape[2:])
    return _add_bias(_ungrouped(y), b)


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
    x_tilde = pad(_grouped(x, groups), pads, params.padding_mode)  # (G, N, *S̃, C_g)
    W = _tap_matrices(w, groups)
    dy_grouped = np.ascontiguousarray(_grouped(dy, groups))  # (G, N, *o, M), read twice
    extent = _padded_size(params.input_shape[2:], pads)
    dx_tilde = _scatter(dy_grouped, W, params.kernel_size, params.stride, params.dilation, extent)
    dx = _ungrouped(fold(dx_tilde, pads, params.padding_mode))
    dW = _correlate(x_tilde, dy_grouped, params.kernel_size, params.stride, params.dilation)
    dw = _weight_of(dW, params.kernel_size)
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
    W = _tap_matrices(w, params.groups)  # W[q, g, m, c] = w[g·C_g+c, m, q]
    y_tilde = _scatter(
        _grouped(x, params.groups), W, params.kernel_size, params.stride, params.dilation, _transpose_extent(params)
    )
    y = fold(y_tilde, _transpose_buffer_pads(params))  # crop to [p_b, p_b + o)
    return _add_bias(_ungrouped(y), b)


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
    W = _tap_matrices(w, groups)
    dy_tilde = pad(_grouped(dy, groups), _transpose_buffer_pads(params))  # (G, N, *extent, M)
    x_grouped = np.ascontiguousarray(_grouped(x, groups))  # (G, N, *S, C_g)
    dx = _gather(dy_tilde, W, params.kernel_size, params.stride, params.dilation, params.input_shape[2:])
    dW = _correlate(dy_tilde, x_grouped, params.kernel_size, params.stride, params.dilation)
    return _ungrouped(dx), _weight_of(dW, params.kernel_size), _bias_grad(dy, params.bias_shape is not None)
