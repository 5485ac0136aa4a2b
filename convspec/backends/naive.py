"""The naive backend: SPEC.md's definitions read literally, one output position at a time.

y[n, g·M+m, p] = b[g·M+m] + Σ_c Σ_q w[g·M+m, c, q] · x̃[n, g·C_g+c, p·s + q·d − p_b]   (CONV-DEF-1)

Every op loops over output positions (``np.ndindex``) and, at each, forms the receptive field with
explicit index arithmetic — the source index of every tap under the padding mode (PAD-MODE-1),
never ``np.pad`` — and takes one dot product over (channels of the group × taps). Gradients
scatter into ``dx``/``dw`` exactly as the adjoint formulas read. Any spatial rank.

Where a formula reads a zero-padded array (x̃ in CONV-DEF-1 and in CONV-GRAD-1's dw; dy extended
by zeros in CONVT-GRAD-1) the padding zeros are terms of the sum like any other, so an infinite
weight meeting a padding zero gives NaN; where a formula drops out-of-range contributions
(CONV-GRAD-1's dx at padded positions, CONVT-DEF-1's targets outside [0, o)) nothing is added.
Pooling never reads padding (MAXPOOL-DEF-1, AVGPOOL-DEF-1).

Precision: inputs are widened to float64 (exact for every spec dtype), every sum is carried in
float64 and each result is rounded once to the input dtype, so the declared accumulation is
float64 (ERR-BOUND-1). Slow by design — clarity is the point — hence ``speed="slow"``.

Independent of the reference and of every other backend: it imports only ``convspec.spec``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..spec import (
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    bfloat16_available,
    check_arrays,
    to_dtype,
)
from .base import Capabilities

Window = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]


def source_index(u: int, n: int, mode: str) -> int | None:
    """The input index whose value the padded input x̃ holds at unpadded coordinate ``u`` (PAD-MODE-1).

    zeros: None outside [0, n) (the tap reads 0); reflect: mirror about 0 and n−1 without
    repeating the edge (numpy 'reflect'); replicate: the nearest edge (numpy 'edge'); circular:
    u mod n (numpy 'wrap').

    >>> [source_index(u, 4, "reflect") for u in (-2, -1, 4, 5)]
    [2, 1, 2, 1]
    """
    if 0 <= u < n:
        return u
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(u, 0), n - 1)
    if mode == "circular":
        return u % n
    if mode == "reflect":
        period = 2 * (n - 1)  # PAD-MODE-2 keeps pads <= n-1, so n >= 2 whenever u is outside
        r = u % period
        return r if r < n else period - r
    raise ValueError(f"padding_mode={mode!r} is not one of zeros, reflect, replicate, circular")


def window(
    p: Sequence[int],
    size: Sequence[int],
    kernel_size: Sequence[int],
    stride: Sequence[int],
    dilation: Sequence[int],
    pads: Sequence[tuple[int, int]],
    mode: str = "zeros",
) -> Window:
    """The taps of the window at position ``p`` that read an input element, and those elements.

    Per spatial dim i: tap q_i reads coordinate u = p_i·s_i + q_i·d_i − p_b,i, mapped by
    :func:`source_index`; taps whose source is zero padding are left out. The window is the
    product over dims, so it is returned as one (taps, sources) pair of index arrays per dim,
    in increasing tap order (row-major window order when combined with ``np.ix_``).
    """
    taps, sources = [], []
    for p_i, n, k, s, d, (p_b, _) in zip(p, size, kernel_size, stride, dilation, pads):
        pairs = [(q, source_index(p_i * s + q * d - p_b, n, mode)) for q in range(k)]
        kept = [(q, src) for q, src in pairs if src is not None]
        taps.append(np.array([q for q, _ in kept], dtype=np.intp))
        sources.append(np.array([src for _, src in kept], dtype=np.intp))
    return tuple(taps), tuple(sources)


def padded_field(a: np.ndarray, kernel_size: Sequence[int], taps: tuple[np.ndarray, ...],
                 sources: tuple[np.ndarray, ...]) -> np.ndarray:
    """The receptive field a[:, src(q)] of every tap q, shape (C, *K): the window of the padded
    array, zero where the tap reads zero padding. Those zeros are terms of the sums that read a
    padded array (x̃ in CONV-DEF-1 and CONV-GRAD-1's dw, dy in CONVT-GRAD-1): w·0 is a product
    like any other, NaN for an infinite w."""
    field = np.zeros((a.shape[0], *kernel_size))
    field[(slice(None), *mesh(*taps))] = a[(slice(None), *mesh(*sources))]
    return field


def mesh(*indices: np.ndarray) -> tuple[Any, ...]:
    """``np.ix_``: the open mesh of per-dim index arrays, selecting their product (a window)."""
    return tuple(np.ix_(*indices))


def round_to(values: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    """``values`` (float64) rounded once, to nearest even, to ``dtype``.

    NumPy rounds float64 to float32 and float16 correctly in one step. ml_dtypes converts
    float64 to bfloat16 through float32, rounding twice; so we round to *odd* in float32 first
    (truncate, then set the last bit when inexact): the odd bit remembers the discarded part and
    the second rounding is then correct (Boldo & Melquiond 2008, "Emulation of FMA and
    correctly rounded sums: proved algorithms using rounding to odd").
    """
    if dtype.name != "bfloat16":
        return values.astype(dtype)
    single = values.astype(np.float32)
    with np.errstate(invalid="ignore"):
        inexact = np.isfinite(single) & (single.astype(np.float64) != values)
        overshot = inexact & (np.abs(single.astype(np.float64)) > np.abs(values))
    single = np.where(overshot, np.nextafter(single, np.float32(0)), single)
    bits = single.view(np.uint32) | inexact.astype(np.uint32)
    return bits.view(np.float32).astype(dtype)


def widen(array: Any) -> np.ndarray:
    """``array`` as float64: exact for float16, bfloat16, float32 and float64."""
    return np.asarray(array).astype(np.float64)


def channels(group: int, per_group: int) -> slice:
    """The channels of group ``group`` when each group holds ``per_group`` of them."""
    return slice(group * per_group, (group + 1) * per_group)


class NaiveBackend:
    """The naive backend: literal loops over output positions, float64 sums, one rounding.

    Examples
    --------
    >>> from convspec.spec import ConvParams
    >>> x = np.arange(5.0).reshape(1, 1, 5); w = np.ones((1, 1, 3))
    >>> NaiveBackend().conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding=1))
    array([[[1., 3., 6., 9., 7.]]])
    """

    name = "naive"

    def __init__(self) -> None:
        dtypes = {"float16", "float32", "float64"} | ({"bfloat16"} if bfloat16_available() else set())
        self.capabilities = Capabilities(dtypes=frozenset(dtypes), accumulation="float64", speed="slow")

    # -- convolution ---------------------------------------------------------------------------

    def conv(self, x: Any, w: Any, b: Any, params: ConvParams) -> np.ndarray:
        """y[n, g·M+m, p] = b[g·M+m] + Σ_c Σ_q w[g·M+m, c, q] · x̃[n, g·C_g+c, p·s + q·d − p_b]  (CONV-DEF-1)."""
        dtype = to_dtype(check_arrays("conv", params, {"x": x, "w": w, "b": b}))
        x64, w64 = widen(x), widen(w)
        N, C_out, *o = params.output_shape
        C_g, M = params.weight_shape[1], C_out // params.groups
        y = np.zeros(params.output_shape)
        for n, g, p in itertools.product(range(N), range(params.groups), np.ndindex(*o)):
            taps, sources = window(p, params.input_shape[2:], params.kernel_size, params.stride,
                                   params.dilation, params.pads, params.padding_mode)
            field = padded_field(x64[n, channels(g, C_g)], params.kernel_size, taps, sources)  # (C_g, *K)
            y[(n, channels(g, M), *p)] = w64[channels(g, M)].reshape(M, -1) @ field.reshape(-1)
        if b is not None:
            y += widen(b).reshape((C_out,) + (1,) * params.rank)
        return round_to(y, dtype)

    def conv_backward(self, x: Any, w: Any, dy: Any, params: ConvParams) -> tuple[np.ndarray, np.ndarray, Any]:
        """Gradients of Σ y·dy (CONV-GRAD-1), by scattering each output position's dy:

        dw[g·M+m, c, q] += dy[n, g·M+m, p] · x̃[n, g·C_g+c, p·s + q·d − p_b]   (padding zeros included)
        dx[n, g·C_g+c, src(p·s + q·d − p_b)] += Σ_m w[g·M+m, c, q] · dy[n, g·M+m, p]
        db[o] = Σ_n Σ_p dy[n, o, p]

        With a non-zeros padding mode src() folds a padded copy back onto its source element.
        """
        dtype = to_dtype(check_arrays("conv_backward", params, {"x": x, "w": w, "dy": dy}))
        x64, w64, dy64 = widen(x), widen(w), widen(dy)
        N, C_out, *o = params.output_shape
        C_g, M = params.weight_shape[1], C_out // params.groups
        dx, dw = np.zeros(params.input_shape), np.zeros(params.weight_shape)
        for n, g, p in itertools.product(range(N), range(params.groups), np.ndindex(*o)):
            taps, sources = window(p, params.input_shape[2:], params.kernel_size, params.stride,
                                   params.dilation, params.pads, params.padding_mode)
            grad = dy64[(n, channels(g, M), *p)]  # (M,)
            dw[channels(g, M)] += np.multiply.outer(
                grad, padded_field(x64[n, channels(g, C_g)], params.kernel_size, taps, sources))
            # dx̃ at padding positions is dropped (zeros) or folded onto its source (the other modes);
            # several taps may share a source under reflect/replicate/circular: accumulate with add.at.
            tap_index = (slice(None), slice(None), *mesh(*taps))
            contribution = np.tensordot(grad, w64[channels(g, M)][tap_index], axes=1)  # (C_g, *taps)
            np.add.at(dx[n, channels(g, C_g)], (slice(None), *mesh(*sources)), contribution)
        db = None if params.bias_shape is None else round_to(dy64.sum(axis=(0, *range(2, dy64.ndim))), dtype)
        return round_to(dx, dtype), round_to(dw, dtype), db

    def conv_transpose(self, x: Any, w: Any, b: Any, params: ConvTransposeParams) -> np.ndarray:
        """y[n, g·M+m, p·s + q·d − p_b] += w[g·C_g+c, m, q] · x[n, g·C_g+c, p] for targets in [0, o),
        then + b  (CONVT-DEF-1): each input position scatters its kernel-weighted value."""
        dtype = to_dtype(check_arrays("conv_transpose", params, {"x": x, "w": w, "b": b}))
        x64, w64 = widen(x), widen(w)
        N, C_in, *size = params.input_shape
        C_out, o = params.output_shape[1], params.output_shape[2:]
        C_g, M = C_in // params.groups, params.weight_shape[1]
        y = np.zeros(params.output_shape)
        for n, g, p in itertools.product(range(N), range(params.groups), np.ndindex(*size)):
            taps, targets = window(p, o, params.kernel_size, params.stride, params.dilation, params.pads)
            weights = w64[channels(g, C_g)][(slice(None), slice(None), *mesh(*taps))]  # (C_g, M, *taps)
            # Distinct taps of one input position hit distinct targets, so plain += is exact.
            y[n, channels(g, M)][(slice(None), *mesh(*targets))] += np.tensordot(
                x64[(n, channels(g, C_g), *p)], weights, axes=1
            )
        if b is not None:
            y += widen(b).reshape((C_out,) + (1,) * params.rank)
        return round_to(y, dtype)

    def conv_transpose_backward(
        self, x: Any, w: Any, dy: Any, params: ConvTransposeParams
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """Gradients of Σ y·dy (CONVT-GRAD-1), gathering dy over each input position's targets:

        dx[n, g·C_g+c, p] = Σ_m Σ_q w[g·C_g+c, m, q] · dy̆[n, g·M+m, p·s + q·d − p_b]   (a conv of dy)
        dw[g·C_g+c, m, q] = Σ_n Σ_p x[n, g·C_g+c, p] · dy̆[n, g·M+m, p·s + q·d − p_b]
        db[o] = Σ_n Σ_t dy[n, o, t]

        dy̆ is dy extended by zeros over the cropped targets, as in the conv that dx is; dw reads it
        the same way, the weight gradient of that conv. Where such a zero meets an infinite or NaN x
        (or w) the product is NaN: the zero-extended outcome, which CONVT-GRAD-1 accepts beside the
        strict term-wise value.
        """
        dtype = to_dtype(check_arrays("conv_transpose_backward", params, {"x": x, "w": w, "dy": dy}))
        x64, w64, dy64 = widen(x), widen(w), widen(dy)
        N, C_in, *size = params.input_shape
        o = params.output_shape[2:]
        C_g, M = C_in // params.groups, params.weight_shape[1]
        dx, dw = np.zeros(params.input_shape), np.zeros(params.weight_shape)
        for n, g, p in itertools.product(range(N), range(params.groups), np.ndindex(*size)):
            taps, targets = window(p, o, params.kernel_size, params.stride, params.dilation, params.pads)
            field = padded_field(dy64[n, channels(g, M)], params.kernel_size, taps, targets)  # (M, *K)
            dx[(n, channels(g, C_g), *p)] = w64[channels(g, C_g)].reshape(C_g, -1) @ field.reshape(-1)
            dw[channels(g, C_g)] += np.multiply.outer(x64[(n, channels(g, C_g), *p)], field)
        db = None if params.bias_shape is None else round_to(dy64.sum(axis=(0, *range(2, dy64.ndim))), dtype)
        return round_to(dx, dtype), round_to(dw, dtype), db

    # -- pooling -------------------------------------------------------------------------------

    def _pool_windows(self, params: MaxPoolParams | AvgPoolParams) -> Any:
        """(p, taps, sources) for every output position p; pooling taps in the padding are left out."""
        for p in np.ndindex(*params.output_shape[2:]):
            taps, sources = window(p, params.input_shape[2:], params.kernel_size, params.stride,
                                   params.dilation, params.pads)
            yield p, taps, sources

    def _max_pool(self, x: np.ndarray, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
        N, C, *size = params.input_shape
        y = np.empty(params.output_shape, dtype=x.dtype)
        indices = np.empty(params.output_shape, dtype=np.int64)
        for p, _, sources in self._pool_windows(params):
            flat = np.ravel_multi_index(mesh(*sources), size).reshape(-1)  # MAXPOOL-INDEX-1
            values = x[(slice(None), slice(None), *mesh(*sources))].reshape(N, C, flat.size)  # row-major
            exact = values.astype(np.float64)  # widening is exact: comparisons are those of x's dtype
            nan = np.isnan(exact)
            first_nan = np.argmax(nan, axis=-1)  # MAXPOOL-NAN-1: a NaN wins, the first one
            is_max = exact == np.max(np.where(nan, -np.inf, exact), axis=-1, keepdims=True)
            first_max = np.argmax(is_max, axis=-1)  # MAXPOOL-TIE-1: first maximum in window order
            pick = np.where(nan.any(axis=-1), first_nan, first_max)
            y[(..., *p)] = np.take_along_axis(values, pick[..., None], axis=-1)[..., 0]
            indices[(..., *p)] = flat[pick]
        return y, indices

    def max_pool(self, x: Any, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
        """y[n, c, p] = max over the window's taps inside the input (MAXPOOL-DEF-1); padding never
        wins, a NaN in the window wins (MAXPOOL-NAN-1), ties go to the first in row-major window
        order (MAXPOOL-TIE-1); indices are flat into the unpadded plane (MAXPOOL-INDEX-1)."""
        check_arrays("max_pool", params, {"x": x})
        return self._max_pool(np.asarray(x), params)

    def max_pool_backward(self, x: Any, dy: Any, params: MaxPoolParams) -> np.ndarray:
        """dx[n, c, indices[n, c, p]] += dy[n, c, p] for every output position p (MAXPOOL-GRAD-1)."""
        dtype = to_dtype(check_arrays("max_pool_backward", params, {"x": x, "dy": dy}))
        N, C, *size = params.input_shape
        _, indices = self._max_pool(np.asarray(x), params)
        dx = np.zeros((N, C, int(np.prod(size))))
        n_index, c_index = np.ix_(range(N), range(C))
        positions = int(np.prod(params.output_shape[2:]))
        np.add.at(dx, (n_index[..., None], c_index[..., None], indices.reshape(N, C, positions)),
                  widen(dy).reshape(N, C, positions))
        return round_to(dx.reshape(params.input_shape), dtype)

    def _divisor(self, params: AvgPoolParams, p: Sequence[int], taps: tuple[np.ndarray, ...]) -> int:
        """AVGPOOL-DEF-1: divisor_override; else taps inside [−p_b, n + p_a) with count_include_pad;
        else the taps inside [0, n). A product of per-dim counts."""
        if params.divisor_override is not None:
            return params.divisor_override
        if not params.count_include_pad:
            return int(np.prod([len(t) for t in taps]))
        count = 1
        for p_i, n, k, s, d, (p_b, p_a) in zip(p, params.input_shape[2:], params.kernel_size, params.stride,
                                                params.dilation, params.pads):
            count *= sum(1 for q in range(k) if -p_b <= p_i * s + q * d - p_b < n + p_a)
        return count

    def avg_pool(self, x: Any, params: AvgPoolParams) -> np.ndarray:
        """y[n, c, p] = (Σ over the window's taps inside the input of x) / divisor(p)  (AVGPOOL-DEF-1)."""
        dtype = to_dtype(check_arrays("avg_pool", params, {"x": x}))
        x64 = widen(x)
        N, C = params.input_shape[:2]
        y = np.empty(params.output_shape)
        for p, taps, sources in self._pool_windows(params):
            total = x64[(slice(None), slice(None), *mesh(*sources))].sum(axis=tuple(range(2, 2 + params.rank)))
            y[(..., *p)] = total / self._divisor(params, p, taps)
        return round_to(y, dtype)

    def avg_pool_backward(self, x: Any, dy: Any, params: AvgPoolParams) -> np.ndarray:
        """dx[n, c, u] += dy[n, c, p] / divisor(p) for every input element u of window p (AVGPOOL-GRAD-1)."""
        dtype = to_dtype(check_arrays("avg_pool_backward", params, {"x": x, "dy": dy}))
        dy64 = widen(dy)
        dx = np.zeros(params.input_shape)
        rank = params.rank
        for p, taps, sources in self._pool_windows(params):
            share = dy64[(..., *p)] / self._divisor(params, p, taps)  # (N, C)
            # Pool windows never hold padding, so the sources of one window are distinct.
            dx[(slice(None), slice(None), *mesh(*sources))] += share.reshape(share.shape + (1,) * rank)
        return round_to(dx, dtype)
