"""The SciPy backend: convolution by ``scipy.signal.correlate``, pooling by ``scipy.ndimage`` filters.

y[n, o, p] = b[o] + Σ_c Σ_q w[o, c, q] · x̃[n, g(o)·C_g + c, p·s + q·d]   (CONV-DEF-1)

Every op is computed the way SciPy offers it, not by a transcription of the spec's loops:

* conv: ``x̃`` is ``numpy.pad`` of x in the mode matching ``padding_mode`` (PAD-MODE-1: zeros =
  'constant', reflect = 'reflect', replicate = 'edge', circular = 'wrap'); one
  ``scipy.signal.correlate(x̃[:, group], w_d[o][None], mode='valid')`` per output channel, where
  ``w_d`` is the kernel with its taps zero-stuffed by the dilation; stride subsamples the stride-1
  result. The batch axis is 'valid' against a kernel of extent 1, the channel axis against the
  full C_g: that axis collapses to the sum over c.
* gradients and conv_transpose: the input gradient is the correlation of the stride-stuffed ``dy``
  (zero-padded by the effective kernel minus one) with the spatially flipped dilated kernel; with a
  non-zeros padding mode the gradient of x̃ is folded back onto the source elements of the padded
  copies (CONV-GRAD-1). The weight gradient correlates x̃ with the stride-stuffed ``dy`` (a
  'valid' correlation whose batch axis sums over n) and reads taps q·d. conv_transpose is that
  input-gradient contraction cropped to [p_b, p_b + o) (CONVT-DEF-1); its backward is conv of the
  zero-padded dy (CONVT-GRAD-1).
* pooling: ``scipy.ndimage.maximum_filter`` (max) and ``scipy.ndimage.correlate`` with a ones
  footprint (sums; dilation is the footprint's zero-stuffing, skipped by ndimage) over the input
  padded with −inf or zeros, sampled at the window starts. ndimage filters do not propagate NaN
  (``maximum_filter([1, nan, 2])`` is ``[1, 2, 2]``), so max pool replaces NaN by −inf before
  filtering, marks every window holding a NaN with a second ``maximum_filter`` of the NaN mask, and
  then recovers, tap by tap in row-major window order, the first tap inside the input that equals
  the window maximum (or, in a NaN window, the first NaN) (MAXPOOL-NAN-1, MAXPOOL-TIE-1). The
  value returned is the input element at that index, so −0.0 and +0.0 ties come out as chosen.
* special values (ERR-SPECIAL-1): a NaN or ±∞ may only reach the outputs whose sum has a term
  holding it, with IEEE semantics per term. The zero-stuffing of dilation and stride adds terms
  the spec does not have (NaN · 0 and ±∞ · 0 are NaN) and an FFT mixes every input into every
  output, so when an operand is not finite every contraction runs as a finite part (non-finite
  values replaced by 0) plus the counts of NaN, +∞ and −∞ terms, from the same contraction on
  0/1 indicators by the direct method (exact small integers); see :meth:`ScipyBackend._ieee`.
  Finite operands take the plain path. The pool sums need no such care: ``ndimage.correlate``
  skips zero weights, adds every window element once, and the zeros it adds are terms.

Precision (declared in :class:`~convspec.backends.base.Capabilities`): SciPy's direct correlation
accumulates in the input dtype for float32 and float64 (``correlate([2**24, 1, …, 1], ones)`` in
float32 stays 2**24). It refuses float16 and bfloat16 ("Unsupported type"), and so do ndimage's
filters, so those two are computed in float32 (exact widening; products of two 11-bit significands
are exact in float32) and rounded once to the input dtype: the declared accumulation is
``{"float16": "float32", "bfloat16": "float32"}`` (float32 and float64 in themselves).
Pool sums are computed by ndimage in float64 and divided in float64, then rounded once; max pool
and its gradient (accumulated in float64) are exact or nearly so.

``ScipyBackend(method="fft")`` computes every correlation by FFT (``scipy.signal.correlate``'s
``method='fft'``): an error spread over the whole signal, so it declares ``local=False``
(ERR-NONLOCAL-1) and is named ``"scipy:fft"``.

SciPy is imported when the backend is constructed, never when this module is imported.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..spec import AvgPoolParams, ConvParams, ConvTransposeParams, MaxPoolParams, Pads, Shape, check_arrays
from .base import Capabilities

#: padding_mode (PAD-MODE-1) -> the numpy.pad mode that extends x the same way.
_NUMPY_PAD_MODES: dict[str, Any] = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

#: spec dtype -> dtype SciPy computes in (SciPy has no float16 or bfloat16 kernels).
_WORK_DTYPES = {"float16": np.float32, "bfloat16": np.float32, "float32": np.float32, "float64": np.float64}

_METHODS = ("direct", "fft")

#: A contraction (a, k, method) -> out that is linear in a and in k, computed with
#: ``scipy.signal.correlate``'s ``method``: every conv-family output is Σ over terms a_i · k_j.
Bilinear = Callable[[np.ndarray, np.ndarray, str], np.ndarray]

#: The term classes of a product a_i · k_j under IEEE 754, as pairs of operand indicators (see
#: :func:`_indicators`) whose joint occurrence puts a term in the class (ERR-SPECIAL-1). A term may
#: match two pairs (NaN · NaN, ∞ · ∞); only whether a class count is positive is used.
_NAN_TERMS = (("nan", "all"), ("all", "nan"), ("inf", "zero"), ("zero", "inf"))
_POS_INF_TERMS = (("pos_inf", "positive"), ("neg_inf", "negative"), ("positive", "pos_inf"), ("negative", "neg_inf"))
_NEG_INF_TERMS = (("pos_inf", "negative"), ("neg_inf", "positive"), ("positive", "neg_inf"), ("negative", "pos_inf"))


def _index(a_ndim: int, spatial: tuple[slice, ...]) -> tuple[slice, ...]:
    """Index that keeps the leading (batch, channel) axes whole and applies ``spatial`` to the rest."""
    return (slice(None),) * (a_ndim - len(spatial)) + spatial


def _stuffed(a: np.ndarray, step: Shape) -> np.ndarray:
    """a_s[..., p·s] = a[..., p], zeros between: extent (o − 1)·s + 1 per spatial dim."""
    spatial = a.shape[a.ndim - len(step):]
    out = np.zeros(a.shape[: a.ndim - len(step)] + tuple((o - 1) * s + 1 for o, s in zip(spatial, step)), a.dtype)
    out[_index(a.ndim, tuple(slice(None, None, s) for s in step))] = a
    return out


def _subsampled(a: np.ndarray, step: Shape, count: Shape) -> np.ndarray:
    """a[..., p·s] for 0 ≤ p < count, per spatial dim."""
    return a[_index(a.ndim, tuple(slice(0, (o - 1) * s + 1, s) for s, o in zip(step, count)))]


def _fitted(a: np.ndarray, start: Shape, size: Shape) -> np.ndarray:
    """a[..., start : start + size] per spatial dim, zero-filled where that runs past the end of a."""
    out = np.zeros(a.shape[: a.ndim - len(size)] + tuple(size), a.dtype)
    spatial = a.shape[a.ndim - len(size):]
    stop = tuple(max(min(b + e, n), b) for b, e, n in zip(start, size, spatial))
    out[_index(a.ndim, tuple(slice(0, t - b) for b, t in zip(start, stop)))] = a[
        _index(a.ndim, tuple(slice(b, t) for b, t in zip(start, stop)))
    ]
    return out


def _padded(a: np.ndarray, pads: Pads, mode: str = "zeros", value: float = 0.0) -> np.ndarray:
    """x̃: ``a`` extended by ``pads`` per spatial dim in ``mode``; a negative 'after' crops."""
    grow = tuple((before, max(after, 0)) for before, after in pads)
    full = ((0, 0),) * (a.ndim - len(pads)) + grow
    if mode == "zeros":
        out = np.pad(a, full, mode="constant", constant_values=value)
    else:
        out = np.pad(a, full, mode=_NUMPY_PAD_MODES[mode])
    keep = tuple(slice(0, out.shape[out.ndim - len(pads) + i] + min(after, 0)) for i, (_, after) in enumerate(pads))
    return out[_index(out.ndim, keep)]


def _folded(dx_tilde: np.ndarray, pads: Pads, mode: str, size: Shape) -> np.ndarray:
    """dx[u] = Σ_{i : x̃[i] is a copy of x[u]} dx̃[i]: the adjoint of :func:`_padded` (CONV-GRAD-1).

    The padded copies are separable, x̃[i_1, …, i_m] = x[src_1(i_1), …, src_m(i_m)], with src_j
    the ``numpy.pad`` of ``arange(n_j)`` in the same mode, so the fold is one scatter-add per dim.
    """
    if mode == "zeros":
        return _fitted(dx_tilde, tuple(before for before, _ in pads), size)
    lead = dx_tilde.ndim - len(pads)
    out = dx_tilde.astype(np.float64)
    for axis, (pair, n) in enumerate(zip(pads, size), start=lead):
        source = np.pad(np.arange(n), pair, mode=_NUMPY_PAD_MODES[mode])
        moved = np.moveaxis(out, axis, 0)
        folded = np.zeros((n,) + moved.shape[1:], np.float64)
        np.add.at(folded, source, moved)
        out = np.moveaxis(folded, 0, axis)
    return out.astype(dx_tilde.dtype)


def _indicators(a: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the term values an operand holds: every element ("all"), NaN, +∞, −∞, ±∞,
    exactly ±0, > 0 and < 0 (the infinities included, NaN in neither)."""
    with np.errstate(invalid="ignore"):
        return {"all": np.ones(a.shape, bool), "nan": np.isnan(a), "pos_inf": a == np.inf, "neg_inf": a == -np.inf,
                "inf": np.isinf(a), "zero": a == 0, "positive": a > 0, "negative": a < 0}


def _combined(finite: np.ndarray, nan_terms: np.ndarray, pos_inf_terms: np.ndarray,
              neg_inf_terms: np.ndarray) -> np.ndarray:
    """The IEEE sum of an output's terms from the sum of its finite terms and the counts of its
    special ones: NaN if a term is NaN or +∞ and −∞ terms meet, else ±∞ if such a term occurs, else
    the finite sum (ERR-SPECIAL-1)."""
    out = np.where(pos_inf_terms > 0, np.inf, finite)
    out = np.where(neg_inf_terms > 0, -np.inf, out)
    out = np.where((nan_terms > 0) | ((pos_inf_terms > 0) & (neg_inf_terms > 0)), np.nan, out)
    return out.astype(finite.dtype, copy=False)


def _dilated(w: np.ndarray, dilation: Shape) -> np.ndarray:
    """w_d[..., q·d] = w[..., q], zeros between: extent d·(k − 1) + 1 per spatial dim."""
    return _stuffed(w, dilation)


def _taps(kernel_size: Shape, dilation: Shape) -> np.ndarray:
    """Footprint of one pool window: True at the taps j·d, 0 ≤ j < k, extent d·(k − 1) + 1."""
    return _dilated(np.ones(kernel_size, bool), dilation)


def _window_starts(full: np.ndarray, extent: Shape, stride: Shape, count: Shape) -> np.ndarray:
    """The ndimage filter output ``full`` at the window starts p·s, 0 ≤ p < count.

    ndimage centres a footprint of extent e at e // 2 (origin 0): the window starting at t is the
    filter's output at t + e // 2.
    """
    return full[_index(full.ndim, tuple(slice(e // 2, e // 2 + (o - 1) * s + 1, s)
                                        for e, s, o in zip(extent, stride, count)))]


def _flat_index(coords: Sequence[np.ndarray], size: Shape) -> np.ndarray:
    """Row-major flat index Σ_i u_i · Π_{j>i} n_j of per-dim coordinate grids (MAXPOOL-INDEX-1)."""
    flat = np.zeros((), np.int64)
    for u, n in zip(coords, size):
        flat = flat * n + u
    return flat


class ScipyBackend:
    """Forward ops and gradients through ``scipy.signal.correlate`` and ``scipy.ndimage``.

    Parameters
    ----------
    method : "direct" (default; a local algorithm) or "fft" (non-local, ERR-NONLOCAL-1), passed to
        ``scipy.signal.correlate``.

    Notes
    -----
    Any spatial rank m ≥ 1 (SciPy is rank-generic). Cost: direct correlation does
    N·C_out·C_g·Πo·ΠK_eff multiply-adds with K_eff = d·(k − 1) + 1, since dilation is run as a
    zero-stuffed kernel; the weight gradient correlates over every lag up to the stuffed extent.
    An operand holding NaN or ±∞ adds the contractions of :meth:`_ieee` (direct, float64): six
    when one operand is non-finite, up to twelve when both are.

    Examples
    --------
    >>> from convspec.spec import ConvParams
    >>> x, w = np.arange(5.0).reshape(1, 1, 5), np.array([[[1.0, -1.0]]])
    >>> ScipyBackend().conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    array([[[-1., -1., -1., -1.]]])

    y[p] = x[p] + x[p + 2] (d = 2): the NaN reaches only the output that reads it.

    >>> x = np.array([[[1.0, np.nan, 2.0, 3.0, 4.0]]])
    >>> ScipyBackend().conv(x, np.ones((1, 1, 2)), None, ConvParams(input_shape=x.shape, weight_shape=(1, 1, 2),
    ...                                                              dilation=2))
    array([[[ 3., nan,  6.]]])
    """

    def __init__(self, method: str = "direct") -> None:
        if method not in _METHODS:
            raise ValueError(f"method={method!r} must be one of {_METHODS}")
        import scipy.ndimage
        import scipy.signal

        self._signal: Any = scipy.signal
        self._ndimage: Any = scipy.ndimage
        self.method = method
        self.name = "scipy" if method == "direct" else f"scipy:{method}"
        self.capabilities = Capabilities(
            ranks=None,
            dtypes=frozenset({"float16", "bfloat16", "float32", "float64"}),
            unsupported={},
            accumulation={"float16": "float32", "bfloat16": "float32"},
            local=method == "direct",
            deterministic=True,
        )

    # -- special values: IEEE semantics per term around the contractions ------------------------

    def _ieee(self, contraction: Bilinear, a: np.ndarray, k: np.ndarray) -> np.ndarray:
        """out = contraction(a, k) = Σ_terms a_i · k_j, each term in IEEE 754 arithmetic (CONV-DEF-1,
        ERR-SPECIAL-1): a NaN or ±∞ operand affects only the outputs with a term that holds it.

        The contractions themselves do not guarantee that. Dilation and stride are run as
        zero-stuffed operands, so a NaN or ±∞ meets the stuffed zeros in terms the spec does not
        have (NaN · 0 = ±∞ · 0 = NaN); an FFT mixes every input into every output. So when an
        operand holds a non-finite value the contraction is run twice over:

        * the finite part, contraction(a′, k′, method) with every non-finite value replaced by 0,
          which is each output's sum over its finite terms: where an output has a special term the
          part is discarded, elsewhere the zeroed values were never in its sum;
        * the counts of special terms, contraction(1[a ∈ A], 1[k ∈ B], "direct") on float64 0/1
          indicators summed over the pairs (A, B) of each class: NaN (NaN · anything, ±∞ · 0),
          +∞ (+∞ · positive, −∞ · negative, and the converse) and −∞ (+∞ · negative, …). The same
          bilinear map counts exactly the spec's terms: an indicator is 0 wherever the stuffing or
          padding inside the contraction puts a zero, and the counts are small integers that the
          direct method sums exactly in float64.

        :func:`_combined` then makes each output NaN, ±∞ or its finite part. The operands are what
        the spec's sum reads, so padding whose zeros are terms (x̃ of conv, dỹ of CONVT-GRAD-1) is
        applied before; zeros that only place values (the stuffing, the scatter's margins) are made
        inside ``contraction`` and never count. With finite operands (the common case) this adds
        only the ``np.isfinite`` scans.
        """
        if np.isfinite(a).all() and np.isfinite(k).all():
            return contraction(a, k, self.method)
        with np.errstate(invalid="ignore"):
            finite = contraction(np.where(np.isfinite(a), a, 0), np.where(np.isfinite(k), k, 0), self.method)
        a_masks, k_masks = _indicators(a), _indicators(k)

        def count(pairs: tuple[tuple[str, str], ...]) -> np.ndarray:
            terms = np.zeros(finite.shape)
            for a_class, k_class in pairs:
                if a_masks[a_class].any() and k_masks[k_class].any():
                    terms += contraction(a_masks[a_class].astype(np.float64), k_masks[k_class].astype(np.float64),
                                         "direct")
            return terms

        return _combined(finite, count(_NAN_TERMS), count(_POS_INF_TERMS), count(_NEG_INF_TERMS))

    # -- the three contractions every conv op is built from --------------------------------------

    def _correlate(self, a: np.ndarray, kernel: np.ndarray, method: str) -> np.ndarray:
        return self._signal.correlate(a, kernel, mode="valid", method=method)

    def _gather(self, x_tilde: np.ndarray, w: np.ndarray, stride: Shape, dilation: Shape, groups: int,
                count: Shape, method: str) -> np.ndarray:
        """y[n, o, p] = Σ_c Σ_q w[o, c, q] · x̃[n, g(o)·C_g + c, p·s + q·d], 0 ≤ p < count."""
        out_channels, c_g = w.shape[:2]
        m = out_channels // groups
        y = np.zeros((x_tilde.shape[0], out_channels) + tuple(count), x_tilde.dtype)
        if y.size == 0:
            return y
        w_d = _dilated(w, dilation)
        for o in range(out_channels):
            g = o // m
            full = self._correlate(x_tilde[:, g * c_g:(g + 1) * c_g], w_d[o][None], method)
            y[:, o] = _subsampled(full[:, 0], stride, count)
        return y

    def _scatter(self, dy: np.ndarray, w: np.ndarray, stride: Shape, dilation: Shape, groups: int,
                 extent: Shape, method: str) -> np.ndarray:
        """dx̃[n, g·C_g + c, p·s + q·d] += Σ_m w[g·M + m, c, q] · dy[n, g·M + m, p] into a zero
        (N, groups·C_g, *extent): the adjoint of :meth:`_gather` with respect to x̃.

        As a correlation: dx̃[t] = Σ_j dy_s[t − j] · w_d[j] = correlate(pad(dy_s, K_eff − 1),
        flip(w_d)) with dy_s the stride-stuffed dy and w_d the dilated kernel.
        """
        out_channels, c_g = w.shape[:2]
        m = out_channels // groups
        dx_tilde = np.zeros((dy.shape[0], groups * c_g) + tuple(extent), dy.dtype)
        if dx_tilde.size == 0 or dy.size == 0:
            return dx_tilde
        w_d = _dilated(w, dilation)
        reach = w_d.shape[2:]
        dy_s = _padded(_stuffed(dy, stride), tuple((e - 1, e - 1) for e in reach))
        flip = _index(w_d.ndim, tuple(slice(None, None, -1) for _ in reach))
        w_flipped = w_d[flip]
        for g in range(groups):
            for c in range(c_g):
                full = self._correlate(dy_s[:, g * m:(g + 1) * m], w_flipped[g * m:(g + 1) * m, c][None], method)
                dx_tilde[:, g * c_g + c] = _fitted(full[:, 0], (0,) * len(extent), extent)
        return dx_tilde

    def _weight_grad(self, x_tilde: np.ndarray, dy: np.ndarray, stride: Shape, dilation: Shape, groups: int,
                     kernel_size: Shape, method: str) -> np.ndarray:
        """dw[o, c, q] = Σ_n Σ_p dy[n, o, p] · x̃[n, g(o)·C_g + c, p·s + q·d]: the correlation of x̃
        with the stride-stuffed dy ('valid' over the batch axis sums over n), read at lags q·d."""
        out_channels = dy.shape[1]
        c_g = x_tilde.shape[1] // groups
        m = out_channels // groups
        dw = np.zeros((out_channels, c_g) + tuple(kernel_size), x_tilde.dtype)
        if dy.size == 0:
            return dw
        dy_s = _stuffed(dy, stride)
        for o in range(out_channels):
            g = o // m
            full = self._correlate(x_tilde[:, g * c_g:(g + 1) * c_g], dy_s[:, o][:, None], method)
            dw[o] = _subsampled(full[0], dilation, kernel_size)
        return dw

    # -- conv ----------------------------------------------------------------------------------

    def conv(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, params: ConvParams) -> np.ndarray:
        """y[n, o, p] = b[o] + Σ_c Σ_q w[o, c, q] · x̃[n, g(o)·C_g + c, p·s + q·d]  (CONV-DEF-1).

        The padding of x̃ is part of the operand: w · (a padding zero) is a term.
        """
        dtype = np.asarray(x).dtype
        work = _WORK_DTYPES[check_arrays("conv", params, {"x": x, "w": w, "b": b})]
        s, d, groups, count = params.stride, params.dilation, params.groups, params.output_shape[2:]
        x_tilde = _padded(np.asarray(x, work), params.pads, params.padding_mode)
        y = self._ieee(lambda a, k, method: self._gather(a, k, s, d, groups, count, method),
                       x_tilde, np.asarray(w, work))
        if b is not None:
            y += np.asarray(b, work).reshape((-1,) + (1,) * params.rank)
        return y.astype(dtype)

    def conv_backward(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                      params: ConvParams) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """dx = fold(dx̃), dx̃[n, g·C_g+c, p·s + q·d] += Σ_m w[g·M+m, c, q]·dy[n, g·M+m, p];
        dw[o, c, q] = Σ_n Σ_p dy[n, o, p]·x̃[n, g(o)·C_g + c, p·s + q·d]; db[o] = Σ_n Σ_p dy[n, o, p]
        (CONV-GRAD-1)."""
        dtype = np.asarray(x).dtype
        work = _WORK_DTYPES[check_arrays("conv_backward", params, {"x": x, "w": w, "dy": dy})]
        s, d, groups, pads, mode = params.stride, params.dilation, params.groups, params.pads, params.padding_mode
        x_tilde = _padded(np.asarray(x, work), pads, mode)
        w_work, dy_work = np.asarray(w, work), np.asarray(dy, work)
        extent, size = x_tilde.shape[2:], params.input_shape[2:]
        dx = self._ieee(lambda a, k, method: _folded(self._scatter(a, k, s, d, groups, extent, method),
                                                     pads, mode, size),
                        dy_work, w_work)
        dw = self._ieee(lambda a, k, method: self._weight_grad(a, k, s, d, groups, params.kernel_size, method),
                        x_tilde, dy_work)
        db = None if params.bias_shape is None else _bias_grad(dy_work).astype(dtype)
        return dx.astype(dtype), dw.astype(dtype), db

    # -- conv_transpose ------------------------------------------------------------------------

    def conv_transpose(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                       params: ConvTransposeParams) -> np.ndarray:
        """y[n, g·M+m, p·s + q·d − p_b] += Σ_c w[g·C_g+c, m, q] · x[n, g·C_g+c, p], then + b
        (CONVT-DEF-1): the input-gradient contraction of conv, cropped to [p_b, p_b + o)."""
        dtype = np.asarray(x).dtype
        work = _WORK_DTYPES[check_arrays("conv_transpose", params, {"x": x, "w": w, "b": b})]
        s, d, groups, size = params.stride, params.dilation, params.groups, params.output_shape[2:]
        extent = tuple(o + before + after for o, (before, after) in zip(size, params.pads))
        start = tuple(before for before, _ in params.pads)
        y = self._ieee(lambda a, k, method: _fitted(self._scatter(a, k, s, d, groups, extent, method), start, size),
                       np.asarray(x, work), np.asarray(w, work))
        if b is not None:
            y += np.asarray(b, work).reshape((-1,) + (1,) * params.rank)
        return y.astype(dtype)

    def conv_transpose_backward(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                                params: ConvTransposeParams) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """dx[n, g·C_g+c, p] = Σ_m Σ_q w[g·C_g+c, m, q] · dỹ[n, g·M+m, p·s + q·d], dỹ = dy zero-padded
        by the pads; dw[g·C_g+c, m, q] = Σ_n Σ_p x[n, g·C_g+c, p] · dỹ[n, g·M+m, p·s + q·d];
        db = Σ dy (CONVT-GRAD-1).

        Both sums read dỹ, whose padding zeros are terms: w · 0 in dx (a conv with zeros padding),
        x · 0 in dw (every input position p takes part in every tap's sum, a cropped target included).
        """
        dtype = np.asarray(x).dtype
        work = _WORK_DTYPES[check_arrays("conv_transpose_backward", params, {"x": x, "w": w, "dy": dy})]
        s, d, groups = params.stride, params.dilation, params.groups
        x_work, w_work, dy_work = np.asarray(x, work), np.asarray(w, work), np.asarray(dy, work)
        dy_tilde = _padded(dy_work, params.pads)
        size = params.input_shape[2:]
        dx = self._ieee(lambda a, k, method: self._gather(a, k, s, d, groups, size, method), dy_tilde, w_work)
        dw = self._ieee(lambda a, k, method: self._weight_grad(a, k, s, d, groups, params.kernel_size, method),
                        dy_tilde, x_work)
        db = None if params.bias_shape is None else _bias_grad(dy_work).astype(dtype)
        return dx.astype(dtype), dw.astype(dtype), db

    # -- pooling -------------------------------------------------------------------------------

    def _window_max(self, a: np.ndarray, footprint: np.ndarray, stride: Shape, count: Shape,
                    fill: Any) -> np.ndarray:
        """max over the footprint of the window starting at every p·s, 0 ≤ p < count."""
        full = self._ndimage.maximum_filter(a, footprint=footprint[(None, None)], mode="constant", cval=fill)
        return _window_starts(full, footprint.shape, stride, count)

    def _window_sum(self, a: np.ndarray, footprint: np.ndarray, stride: Shape, count: Shape) -> np.ndarray:
        """Σ over the footprint of the window starting at every p·s, 0 ≤ p < count (float64).

        ``ndimage.correlate`` sums each window directly and skips the zero weights of the dilation
        holes, so a NaN or ±∞ reaches exactly the windows holding it. Not ``uniform_filter``: its
        running sum (add the entering element, subtract the leaving one) turns a NaN or ∞ into NaN
        for every later window (``uniform_filter1d([1, 2, nan, 3, 4, 5], 3)`` is NaN from the
        second output on).
        """
        weights = footprint[(None, None)].astype(np.float64)
        full = self._ndimage.correlate(a.astype(np.float64), weights, mode="constant", cval=0.0)
        return _window_starts(full, footprint.shape, stride, count)

    def _max_select(self, x: np.ndarray, params: MaxPoolParams) -> np.ndarray:
        """indices[n, c, p]: the flat index of the selected tap of every window (MAXPOOL-DEF-1,
        MAXPOOL-NAN-1, MAXPOOL-TIE-1, MAXPOOL-INDEX-1)."""
        size, count = params.input_shape[2:], params.output_shape[2:]
        x_work = np.asarray(x, _WORK_DTYPES[np.asarray(x).dtype.name])
        nan = np.isnan(x_work)
        buffer = _buffer_pads(params)
        values = _padded(np.where(nan, -np.inf, x_work), buffer, value=-np.inf)
        nans = _padded(nan, buffer, value=False)
        footprint = _taps(params.kernel_size, params.dilation)
        peak = self._window_max(values, footprint, params.stride, count, -np.inf)
        window_nan = self._window_max(nans, footprint, params.stride, count, False)
        indices = np.zeros(params.output_shape, np.int64)
        found = np.zeros(params.output_shape, bool)
        # Taps in row-major window order: the first match wins (MAXPOOL-TIE-1).
        for q in itertools.product(*(range(k) for k in params.kernel_size)):
            tap = tuple(slice(j * d, j * d + (o - 1) * s + 1, s)
                        for j, d, s, o in zip(q, params.dilation, params.stride, count))
            coords = [np.arange(o) * s - before + j * d
                      for o, s, (before, _), j, d in zip(count, params.stride, params.pads, q, params.dilation)]
            inside = np.ones((), bool)
            for axis, (u, n) in enumerate(zip(coords, size)):
                shape = [1] * len(size)
                shape[axis] = -1
                inside = inside & ((u >= 0) & (u < n)).reshape(shape)
            grids = np.meshgrid(*coords, indexing="ij")
            hit = inside & ~found & np.where(window_nan, nans[_index(nans.ndim, tap)],
                                             values[_index(values.ndim, tap)] == peak)
            indices = np.where(hit, _flat_index(grids, size), indices)
            found |= hit
        return indices

    def max_pool(self, x: np.ndarray, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
        """y[n, c, p] = max_{q : 0 ≤ u < n} x[n, c, u], u = p·s − p_b + q·d, and the flat index of
        that u (MAXPOOL-DEF-1, MAXPOOL-NAN-1, MAXPOOL-TIE-1, MAXPOOL-INDEX-1)."""
        check_arrays("max_pool", params, {"x": x})
        x = np.asarray(x)
        indices = self._max_select(x, params)
        plane = x.reshape(x.shape[:2] + (math.prod(params.input_shape[2:]),))
        y = np.take_along_axis(plane, indices.reshape(indices.shape[:2] + (math.prod(params.output_shape[2:]),)),
                               axis=2)
        return y.reshape(params.output_shape), indices

    def max_pool_backward(self, x: np.ndarray, dy: np.ndarray, params: MaxPoolParams) -> np.ndarray:
        """dx[n, c, u] = Σ_{p : indices[n, c, p] = u} dy[n, c, p]  (MAXPOOL-GRAD-1), summed in float64."""
        check_arrays("max_pool_backward", params, {"x": x, "dy": dy})
        x, dy = np.asarray(x), np.asarray(dy)
        indices = self._max_select(x, params)
        batch, channels = params.input_shape[:2]
        plane = math.prod(params.input_shape[2:])
        rows = np.arange(batch * channels).reshape(batch, channels, *(1,) * params.rank) * plane
        dx = np.bincount((rows + indices).ravel(), weights=dy.astype(np.float64).ravel(),
                         minlength=batch * channels * plane)
        return dx.reshape(params.input_shape).astype(dy.dtype)

    def avg_pool(self, x: np.ndarray, params: AvgPoolParams) -> np.ndarray:
        """y[n, c, p] = (Σ_{q : 0 ≤ u < n} x[n, c, u]) / divisor[p], u = p·s − p_b + q·d
        (AVGPOOL-DEF-1): an ndimage ones-footprint correlation over the zero-padded input."""
        check_arrays("avg_pool", params, {"x": x})
        x = np.asarray(x)
        values = _padded(x.astype(np.float64), _buffer_pads(params))
        sums = self._window_sum(values, _taps(params.kernel_size, params.dilation), params.stride,
                                params.output_shape[2:])
        return (sums / _divisor(params)).astype(x.dtype)

    def avg_pool_backward(self, x: np.ndarray, dy: np.ndarray, params: AvgPoolParams) -> np.ndarray:
        """dx[n, c, u] = Σ_{p, q : p·s − p_b + q·d = u} dy[n, c, p] / divisor[p]  (AVGPOOL-GRAD-1).

        With g_s the stride-stuffed dy / divisor, padded by K_eff − 1 on both sides, dx̃[i] =
        Σ_j g_s[i − j·d] = Σ_j g_p[i + (k − 1 − j)·d]: the same window sum as the forward (the tap
        pattern is symmetric), read at [p_b, p_b + n).
        """
        check_arrays("avg_pool_backward", params, {"x": x, "dy": dy})
        dy = np.asarray(dy)
        footprint = _taps(params.kernel_size, params.dilation)
        grad = _stuffed(dy.astype(np.float64) / _divisor(params), params.stride)
        grad = _padded(grad, tuple((e - 1, e - 1) for e in footprint.shape))
        reach = tuple(n - e + 1 for n, e in zip(grad.shape[2:], footprint.shape))
        dx_tilde = self._window_sum(grad, footprint, (1,) * params.rank, reach)
        dx = _fitted(dx_tilde, tuple(before for before, _ in params.pads), params.input_shape[2:])
        return dx.astype(dy.dtype)


def _bias_grad(dy: np.ndarray) -> np.ndarray:
    """db[o] = Σ_n Σ_p dy[n, o, p]."""
    return dy.sum(axis=(0,) + tuple(range(2, dy.ndim)))


def _buffer_pads(params: MaxPoolParams | AvgPoolParams) -> Pads:
    """Per dim (p_b, (o − 1)·s + d·(k − 1) + 1 − n − p_b): the buffer every window of the output
    lies in, ceil-mode overhang included; a negative 'after' crops input no window reaches."""
    return tuple(
        (before, (o - 1) * s + d * (k - 1) + 1 - n - before)
        for n, o, k, s, d, (before, _) in zip(params.input_shape[2:], params.output_shape[2:], params.kernel_size,
                                              params.stride, params.dilation, params.pads)
    )


def _divisor(params: AvgPoolParams) -> np.ndarray | float:
    """divisor[p] = Π_i count_i(p_i)  (AVGPOOL-DEF-1): divisor_override; else the taps
    u = p·s − p_b + q·d inside [−p_b, n + p_a) if count_include_pad, else inside [0, n)."""
    if params.divisor_override is not None:
        return float(params.divisor_override)
    divisor = np.ones((1, 1) + (1,) * params.rank)
    for axis, (n, o, k, s, d, (before, after)) in enumerate(zip(
            params.input_shape[2:], params.output_shape[2:], params.kernel_size, params.stride, params.dilation,
            params.pads)):
        u = (np.arange(o) * s - before)[:, None] + np.arange(k)[None, :] * d
        low, high = (-before, n + after) if params.count_include_pad else (0, n)
        count = ((u >= low) & (u < high)).sum(axis=1).astype(np.float64)
        shape = [1] * (2 + params.rank)
        shape[2 + axis] = o
        divisor = divisor * count.reshape(shape)
    return divisor
