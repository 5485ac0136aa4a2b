"""Deliberately broken backends: each is a correct backend with ONE realistic bug.

Used by ``tests/test_mutations.py`` (every mutant must be caught by ``run_conformance`` with its
default settings) and ``tests/test_isolation.py`` (backends that crash, hang, exit, run away with
memory or mutate their input, for ``--isolate``). Importable as ``from mutants import ...`` (pytest
puts ``tests/`` on ``sys.path``: it has no ``__init__.py``) and loadable by path, e.g.
``convspec check tests/mutants.py:SegfaultBackend --isolate``.

A mutant wraps the im2col backend (fast, NumPy only) and overrides one method. Where the bug lives
inside an algorithm the wrapper cannot reach (the order of a max scan, col2im's ``+=``, the
accumulation dtype), the method is a small hand-written implementation with the bug switched on;
the same implementation with the bug switched off is a *control* backend (``CONTROLS``) that must
pass, so the failure is the bug's and not the rewrite's. Capabilities are the wrapped backend's:
every mutant claims to be conformant.
"""

from __future__ import annotations

import faulthandler
import functools
import math
import os
import signal
import time
from typing import Any, ClassVar

import numpy as np

from convspec.backends import Capabilities
from convspec.backends.im2col import Im2colBackend, tap_spans
from convspec.spec import (
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    check_arrays,
    init_kwargs,
)

# -- helpers ---------------------------------------------------------------------------------------


def rebuild(params: Any, **changes: Any) -> Any:
    """``params`` built again with some constructor arguments changed (validated)."""
    return type(params)(**{**init_kwargs(params), **changes})


def spatial_axes(params: Any) -> tuple[int, ...]:
    return tuple(range(2, 2 + params.rank))


def window_taps(params: Any, out_sizes: tuple[int, ...] | None = None,
                dilation: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Flat plane index and inside-ness of every pool tap: arrays of shape (*o, T).

    Window p of dim i covers u_i = p_i·s_i − p_b,i + j_i·d_i, 0 ≤ j_i < k_i; a tap is inside when
    0 ≤ u_i < n_i in every dim. A tap outside is given the flat index of its coordinates clamped
    to [0, n_i − 1] (a bounds-safe read, as a GPU kernel does). Row-major plane indices
    Σ_i u_i·Π_{i' > i} n_i', taps in row-major window order. ``out_sizes`` and ``dilation``
    override the params' (for mutants).
    """
    sizes = params.input_shape[2:]
    out = out_sizes or params.output_shape[2:]
    dilation = dilation or params.dilation
    rank = len(sizes)
    flat = np.zeros(tuple(out) + tuple(params.kernel_size), dtype=np.int64)
    inside = np.ones(flat.shape, dtype=bool)
    for i, (n, o, k, s, d, (p_b, _)) in enumerate(zip(sizes, out, params.kernel_size, params.stride, dilation,
                                                       params.pads)):
        u = np.arange(o)[:, None] * s - p_b + np.arange(k)[None, :] * d  # (o_i, k_i)
        shape = [1] * (2 * rank)
        shape[i], shape[rank + i] = o, k
        u = u.reshape(shape)
        inside &= (u >= 0) & (u < n)
        flat += np.clip(u, 0, n - 1) * math.prod(sizes[i + 1:])
    taps = math.prod(params.kernel_size)
    return flat.reshape(tuple(out) + (taps,)), inside.reshape(tuple(out) + (taps,))


def gather_windows(x: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """x's values at every tap of ``flat`` (from :func:`window_taps`): (N·C, *o, T)."""
    planes = x.reshape(x.shape[0] * x.shape[1], math.prod(x.shape[2:]))
    return planes[:, flat]


def scan_max_pool(x: Any, params: MaxPoolParams, *, last_tie: bool = False, skip_nan: bool = False,
                  out_sizes: tuple[int, ...] | None = None,
                  dilation: tuple[int, ...] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """y = max over each window's taps inside the input, with its flat plane index.

    Correct with the defaults: a window holding a NaN gives its first NaN (MAXPOOL-NAN-1), else
    the first maximum in row-major window order (MAXPOOL-TIE-1). ``last_tie`` takes the last
    maximum; ``skip_nan`` ignores NaNs like ``np.fmax`` unless the whole window is NaN. A window
    with no input element (only a mutant's window) gives −inf and index 0.
    """
    x = np.asarray(x)
    flat, inside = window_taps(params, out_sizes, dilation)
    values = gather_windows(x, flat)
    wide = values.astype(np.float64)
    nan = np.isnan(wide) & inside
    number = inside & ~nan
    best = np.max(np.where(number, wide, -np.inf), axis=-1, initial=-np.inf, keepdims=True)
    maxima = number & (wide == best)
    window_nan = nan.any(axis=-1, keepdims=True)
    if skip_nan:
        window_nan &= ~number.any(axis=-1, keepdims=True)
    candidates = np.where(window_nan, nan, maxima)
    if last_tie:
        choice = candidates.shape[-1] - 1 - np.argmax(candidates[..., ::-1], axis=-1)
    else:
        choice = np.argmax(candidates, axis=-1)
    found = candidates.any(axis=-1)
    y = np.take_along_axis(values, choice[..., None], axis=-1)[..., 0]
    indices = np.take_along_axis(np.broadcast_to(flat, values.shape), choice[..., None], axis=-1)[..., 0]
    y = np.where(found, y, np.array(-np.inf, dtype=x.dtype)).astype(x.dtype)
    indices = np.where(found, indices, 0)
    out = (x.shape[0], x.shape[1]) + tuple(out_sizes or params.output_shape[2:])
    return y.reshape(out), indices.reshape(out).astype(np.int64)


def avg_divisor(params: AvgPoolParams) -> np.ndarray:
    """AVGPOOL-DEF-1: divisor_override, else per output position the product over dims of the
    taps inside [−p_b, n + p_a) (count_include_pad) or inside [0, n)."""
    out = params.output_shape[2:]
    if params.divisor_override is not None:
        return np.full(out, float(params.divisor_override))
    divisor = np.ones(out)
    for i, (n, o, k, s, d, (p_b, p_a)) in enumerate(zip(params.input_shape[2:], out, params.kernel_size,
                                                        params.stride, params.dilation, params.pads)):
        low, high = (-p_b, n + p_a) if params.count_include_pad else (0, n)
        u = np.arange(o)[:, None] * s - p_b + np.arange(k)[None, :] * d
        count = ((u >= low) & (u < high)).sum(axis=1)
        shape = [1] * len(out)
        shape[i] = o
        divisor = divisor * count.reshape(shape)
    return divisor


def masked_avg_pool(x: Any, params: AvgPoolParams, *, multiply_mask: bool) -> np.ndarray:
    """y = Σ over each window's taps inside the input / divisor, from a gathered window array.

    Correct when padding taps are dropped with ``np.where``; with ``multiply_mask`` they are
    multiplied by 0 — and a clamped padding tap reading ±inf or NaN gives 0·inf = NaN.
    """
    x = np.asarray(x)
    flat, inside = window_taps(params)
    values = gather_windows(x, flat).astype(np.float64)
    if multiply_mask:
        total = (values * inside).sum(axis=-1)
    else:
        total = np.where(inside, values, 0.0).sum(axis=-1)
    y = total / avg_divisor(params)
    return y.reshape(params.output_shape).astype(x.dtype)


def pad_by_indices(x: np.ndarray, params: ConvParams, source: Any) -> np.ndarray:
    """x̃ over the whole padded extent, dim by dim: x̃[u] = x[source(u, n)], u in [−p_b, n + p_a)."""
    padded = x
    for axis, (n, (p_b, p_a)) in zip(spatial_axes(params), zip(params.input_shape[2:], params.pads)):
        u = np.arange(-p_b, n + p_a)
        padded = np.take(padded, source(u, n), axis=axis)
    return np.ascontiguousarray(padded)


def crop(full: np.ndarray, starts: list[int], sizes: tuple[int, ...]) -> np.ndarray:
    """full[..., start_i : start_i + size_i, ...] per spatial dim, zero where that runs off ``full``."""
    out = np.zeros(full.shape[:2] + tuple(sizes), dtype=full.dtype)
    target, source = [slice(None)] * 2, [slice(None)] * 2
    for start, size, length in zip(starts, sizes, full.shape[2:]):
        low, high = max(start, 0), min(start + size, length)
        if high <= low:
            return out
        target.append(slice(low - start, high - start))
        source.append(slice(low, high))
    out[tuple(target)] = full[tuple(source)]
    return out


def conv_of_padded(inner: Any, padded: np.ndarray, w: Any, b: Any, params: ConvParams) -> np.ndarray:
    """conv of an already padded input with the same stride, dilation and groups, no padding."""
    unpadded = rebuild(params, input_shape=padded.shape, padding=0, padding_mode="zeros")
    return inner.conv(padded, w, b, unpadded)


def tf32(a: np.ndarray) -> np.ndarray:
    """float32 rounded to TF32's 10 explicit mantissa bits (round to nearest even); non-finite kept."""
    bits = a.view(np.uint32)
    rounded = ((bits + np.uint32(0x0FFF) + ((bits >> np.uint32(13)) & np.uint32(1))) & np.uint32(0xFFFFE000))
    return np.where(np.isfinite(a), rounded.view(np.float32), a)


def tap_conv(x: Any, w: Any, b: Any, params: ConvParams, accumulate: Any, *,
             skip_zero_weights: bool = False) -> np.ndarray:
    """y[n, g·M+m, p] = b + Σ_c Σ_q w[g·M+m, c, q]·x[n, g·C_g+c, p·s + q·d − p_b] (zero padding),
    one term at a time: every product and every running sum is rounded to ``accumulate``.
    ``skip_zero_weights`` leaves out the terms of zero weights, as a sparse kernel does."""
    x, w = np.asarray(x), np.asarray(w)
    N = x.shape[0]
    C_out, C_g = w.shape[:2]
    G = params.groups
    M = C_out // G
    out = params.output_shape[2:]
    xs = x.astype(accumulate).reshape((N, G, C_g) + x.shape[2:])
    ws = w.astype(accumulate).reshape((G, M, C_g, -1))
    y = np.zeros((N, G, M) + tuple(out), dtype=accumulate)
    box = tuple((0, o) for o in out)
    offsets = [-p_b for p_b, _ in params.pads]
    for t, q in enumerate(np.ndindex(*params.kernel_size)):
        spans = tap_spans(q, box, offsets, x.shape[2:], params.stride, params.dilation)
        if spans is None:
            continue
        sources, targets = spans
        target = (slice(None),) * 3 + targets
        for c in range(C_g):
            column = xs[(slice(None), slice(None), c) + sources]  # (N, G, *sub)
            weight = ws[:, :, c, t].reshape((1, G, M) + (1,) * len(out))
            product = (weight * column[:, :, None]).astype(accumulate)
            if skip_zero_weights:
                product = np.where(weight == 0, np.zeros((), accumulate), product)
            y[target] = (y[target] + product).astype(accumulate)
    y = y.reshape((N, C_out) + tuple(out))
    if b is not None:
        y = (y + np.asarray(b).astype(accumulate).reshape((-1,) + (1,) * len(out))).astype(accumulate)
    return y.astype(x.dtype)


def col2im_dx(w: Any, dy: Any, params: ConvParams, *, overwrite: bool) -> np.ndarray:
    """dx[n, g·C_g+c, p·s + q·d − p_b] += Σ_m w[g·M+m, c, q]·dy[n, g·M+m, p], tap by tap (zero
    padding; targets in the padding dropped). ``overwrite`` assigns instead of adding, so where
    windows overlap only the last tap's share survives."""
    w, dy = np.asarray(w), np.asarray(dy)
    N, _, *size = params.input_shape
    C_out, C_g = w.shape[:2]
    G = params.groups
    M = C_out // G
    out = params.output_shape[2:]
    dys = dy.astype(np.float64).reshape((N, G, M) + tuple(out))
    ws = w.astype(np.float64).reshape((G, M, C_g, -1))
    dx = np.zeros((N, G, C_g) + tuple(size))
    box = tuple((0, o) for o in out)
    offsets = [-p_b for p_b, _ in params.pads]
    for t, q in enumerate(np.ndindex(*params.kernel_size)):
        spans = tap_spans(q, box, offsets, tuple(size), params.stride, params.dilation)
        if spans is None:
            continue
        sources, targets = spans
        share = np.einsum("gmc,ngm...->ngc...", ws[..., t], dys[(slice(None),) * 3 + targets])
        if overwrite:
            dx[(slice(None),) * 3 + sources] = share
        else:
            dx[(slice(None),) * 3 + sources] += share
    return dx.reshape(params.input_shape).astype(dy.dtype)


# -- the wrapper -------------------------------------------------------------------------------------


def validated(method: Any) -> Any:
    """Run the spec's checks of the op (``check_arrays``) before ``method``: the mutant refuses
    invalid configurations like the backend it wraps, so its only bug is the one it is about."""
    op = method.__name__

    @functools.wraps(method)
    def checked(self: Any, *args: Any) -> Any:
        *arrays, params = args
        check_arrays(op, params, dict(zip(OPS[op].inputs, arrays)))
        return method(self, *args)

    return checked



class Mutant:
    """The im2col backend behind a delegating wrapper: a subclass overrides one method.

    The base class itself is the correct backend (the control of every pure wrapper mutant).
    """

    def __init__(self, inner: Any = None, capabilities: Capabilities | None = None) -> None:
        self.inner = inner if inner is not None else Im2colBackend()
        self.name = f"mutant:{type(self).__name__}"
        self.capabilities = capabilities or self.inner.capabilities

    def __getattr__(self, attr: str) -> Any:
        if attr == "inner":  # not set yet (e.g. during unpickling): no recursion
            raise AttributeError(attr)
        return getattr(self.inner, attr)


# -- padding ------------------------------------------------------------------------------------------


class SameUpperPadsSwapped(Mutant):
    """'same_upper' resolved with the odd pad before (as 'same_lower') and vice versa (PAD-4, PAD-5):
    the ONNX auto_pad corner."""

    @staticmethod
    def swap(params: Any) -> Any:
        flipped = {"same_upper": "same_lower", "same_lower": "same_upper"}.get(params.padding)
        return rebuild(params, padding=flipped) if flipped else params

    @validated
    def conv(self, x, w, b, params):
        return self.inner.conv(x, w, b, self.swap(params))


class ReflectAsSymmetric(Mutant):
    """padding_mode='reflect' implemented with numpy 'symmetric', which repeats the edge (PAD-MODE-1)."""

    @validated
    def conv(self, x, w, b, params):
        if params.padding_mode != "reflect" or not any(map(any, params.pads)):
            return self.inner.conv(x, w, b, params)
        widths = ((0, 0), (0, 0)) + tuple(params.pads)
        return conv_of_padded(self.inner, np.pad(x, widths, mode="symmetric"), w, b, params)


class CircularOffByOne(Mutant):
    """padding_mode='circular' wraps one element too far: x̃[−1] = x[n−2], x̃[n] = x[1] (PAD-MODE-1)."""

    @staticmethod
    def source(u: np.ndarray, n: int) -> np.ndarray:
        return np.where(u < 0, (u - 1) % n, np.where(u >= n, (u + 1) % n, u))

    @validated
    def conv(self, x, w, b, params):
        if params.padding_mode != "circular" or not any(map(any, params.pads)):
            return self.inner.conv(x, w, b, params)
        return conv_of_padded(self.inner, pad_by_indices(np.asarray(x), params, self.source), w, b, params)


class PaddedCopyControl(Mutant):
    """Control: every padding mode by numpy.pad ('reflect', 'edge', 'wrap'), then an unpadded conv."""

    MODES: ClassVar[dict[str, str]] = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}

    @validated
    def conv(self, x, w, b, params):
        if params.padding_mode == "zeros" or not any(map(any, params.pads)):
            return self.inner.conv(x, w, b, params)
        widths = ((0, 0), (0, 0)) + tuple(params.pads)
        return conv_of_padded(self.inner, np.pad(x, widths, mode=self.MODES[params.padding_mode]), w, b, params)


# -- convolution -----------------------------------------------------------------------------------


class KernelFlipped(Mutant):
    """A true convolution: the kernel flipped along every spatial axis (CONV-DEF-1: cross-correlation)."""

    @validated
    def conv(self, x, w, b, params):
        return self.inner.conv(x, np.ascontiguousarray(np.flip(w, axis=spatial_axes(params))), b, params)


class Rank3DepthFlipped(Mutant):
    """Only the 3-D path is wrong: its depth loop runs the kernel backwards."""

    @validated
    def conv(self, x, w, b, params):
        if params.rank == 3:
            w = np.ascontiguousarray(np.flip(w, axis=2))
        return self.inner.conv(x, w, b, params)


class BiasTwice(Mutant):
    """The bias added in the kernel and again by the caller."""

    @validated
    def conv(self, x, w, b, params):
        y = self.inner.conv(x, w, b, params)
        return y if b is None else y + np.asarray(b).reshape((-1,) + (1,) * params.rank)


class ConvTransposeBiasMissing(Mutant):
    """conv_transpose forgets the bias."""

    @validated
    def conv_transpose(self, x, w, b, params):
        if b is None:
            return self.inner.conv_transpose(x, w, b, params)
        return self.inner.conv_transpose(x, w, None, rebuild(params, bias_shape=None))


class GroupsInterleaved(Mutant):
    """Output channels of a grouped conv laid out m·G + g instead of g·M + m (CONV-DEF-1, CONV-GROUPS-1)."""

    @validated
    def conv(self, x, w, b, params):
        y = self.inner.conv(x, w, b, params)
        N, C_out = y.shape[:2]
        G = params.groups
        return np.ascontiguousarray(
            y.reshape((N, G, C_out // G) + y.shape[2:]).swapaxes(1, 2).reshape(y.shape))


class Fp16Accumulation(Mutant):
    """float32 conv computed with float16 products and running sums, cast back to float32
    (declares float32 accumulation by default: ERR-BOUND-1 / ERR-STAT-1)."""

    @validated
    def conv(self, x, w, b, params):
        if np.asarray(x).dtype != np.float32 or params.padding_mode != "zeros":
            return self.inner.conv(x, w, b, params)
        return tap_conv(x, w, b, params, np.float16)


class TapConvControl(Mutant):
    """Control: the same term-by-term conv accumulating in float32 for float32 (and float64 for float64)."""

    @validated
    def conv(self, x, w, b, params):
        dtype = np.asarray(x).dtype
        if dtype not in (np.float32, np.float64) or params.padding_mode != "zeros":
            return self.inner.conv(x, w, b, params)
        return tap_conv(x, w, b, params, dtype)


class SparseSkipsZeroWeights(Mutant):
    """A "sparse" conv that skips the taps of zero weights: 0·NaN and 0·inf terms vanish instead of
    giving NaN (ERR-SPECIAL-1; TapConvControl is the same code without the shortcut)."""

    @validated
    def conv(self, x, w, b, params):
        dtype = np.asarray(x).dtype
        if dtype not in (np.float32, np.float64) or params.padding_mode != "zeros":
            return self.inner.conv(x, w, b, params)
        return tap_conv(x, w, b, params, dtype, skip_zero_weights=True)


class SilentTF32(Mutant):
    """float32 inputs rounded to TF32 (10 mantissa bits) before a float32 conv, undeclared
    (capabilities.input_precision stays None)."""

    @validated
    def conv(self, x, w, b, params):
        if np.asarray(x).dtype != np.float32:
            return self.inner.conv(x, w, b, params)
        return self.inner.conv(tf32(np.asarray(x)), tf32(np.asarray(w)), b, params)


class ConvTransposeOutputPaddingBefore(Mutant):
    """conv_transpose crops the full (uncropped) output at p_b − output_padding instead of p_b:
    output_padding's extra positions land before the output instead of after (CONVT-SHAPE-1)."""

    @validated
    def conv_transpose(self, x, w, b, params):
        if not any(params.output_padding):
            return self.inner.conv_transpose(x, w, b, params)
        uncropped = rebuild(params, padding=0, output_padding=0, bias_shape=None)
        full = self.inner.conv_transpose(x, w, None, uncropped)
        starts = [p_b - extra for (p_b, _), extra in zip(params.pads, params.output_padding)]
        y = crop(full, starts, params.output_shape[2:])
        if b is not None:
            y += np.asarray(b).reshape((-1,) + (1,) * params.rank)
        return y


class AcceptsStrideZero(Mutant):
    """No check of the stride: stride 0 returns an array (every output reads one position) instead
    of raising (PARAM-2)."""

    def conv(self, x, w, b, params):
        if any(s < 1 for s in params.stride):
            return np.zeros(params.output_shape, dtype=np.asarray(x).dtype)
        return self.inner.conv(x, w, b, params)


# -- convolution gradients -------------------------------------------------------------------------


class BackwardDxIgnoresStride(Mutant):
    """conv_backward's dx scatters dy[p] to p + q·d − p_b instead of p·s + q·d − p_b (CONV-GRAD-1)."""

    @validated
    def conv_backward(self, x, w, dy, params):
        dx, dw, db = self.inner.conv_backward(x, w, dy, params)
        if all(s == 1 for s in params.stride) or params.padding_mode != "zeros":
            return dx, dw, db
        dy = np.asarray(dy)
        unit = ConvTransposeParams(input_shape=dy.shape, weight_shape=np.shape(w), dilation=params.dilation,
                                   groups=params.groups)
        full = self.inner.conv_transpose(dy, w, None, unit)
        wrong = np.zeros_like(dx)
        target, source = [slice(None)] * 2, [slice(None)] * 2
        for n, size, (before, _) in zip(params.input_shape[2:], full.shape[2:], params.pads):
            length = max(0, min(n, size - before))
            target.append(slice(0, length))
            source.append(slice(before, before + length))
        wrong[tuple(target)] = full[tuple(source)]
        return wrong, dw, db


class BackwardDwIgnoresDilation(Mutant):
    """conv_backward's dw reads x̃ at p·s + q − p_b instead of p·s + q·d − p_b (CONV-GRAD-1)."""

    @validated
    def conv_backward(self, x, w, dy, params):
        dx, dw, db = self.inner.conv_backward(x, w, dy, params)
        if all(d == 1 for d in params.dilation):
            return dx, dw, db
        undilated = rebuild(params, dilation=1, padding=params.pads)
        dy = np.asarray(dy)
        wider = np.zeros(undilated.output_shape, dtype=dy.dtype)  # o' ≥ o: zeros past dy
        wider[tuple(slice(0, o) for o in dy.shape)] = dy
        _, wrong, _ = self.inner.conv_backward(x, w, wider, undilated)
        return dx, wrong, db


class Col2imOverwrites(Mutant):
    """conv_backward's col2im assigns each tap's share instead of adding it: where windows overlap
    only the last tap's contribution survives (CONV-GRAD-1)."""

    overwrite = True

    @validated
    def conv_backward(self, x, w, dy, params):
        dx, dw, db = self.inner.conv_backward(x, w, dy, params)
        if params.padding_mode != "zeros":
            return dx, dw, db
        return col2im_dx(w, dy, params, overwrite=self.overwrite), dw, db


class Col2imControl(Col2imOverwrites):
    """Control: the same hand-written col2im, accumulating."""

    overwrite = False


class ConvTransposeBackwardDxFlipped(Mutant):
    """conv_transpose_backward's dx = conv(dy) with the kernel flipped (a true convolution)
    instead of the cross-correlation (CONVT-GRAD-1)."""

    @validated
    def conv_transpose_backward(self, x, w, dy, params):
        _, dw, db = self.inner.conv_transpose_backward(x, w, dy, params)
        flipped = np.ascontiguousarray(np.flip(w, axis=spatial_axes(params)))
        wrong, _, _ = self.inner.conv_transpose_backward(x, flipped, dy, params)
        return wrong, dw, db


# -- max pool ----------------------------------------------------------------------------------------


class ScanMaxPool(Mutant):
    """Control: max_pool by an explicit scan over gathered windows (first NaN, else first maximum)."""

    scan: ClassVar[dict[str, Any]] = {}

    @validated
    def max_pool(self, x, params):
        return scan_max_pool(x, params, **self.scan)


class MaxPoolLastTie(ScanMaxPool):
    """Ties go to the last maximum in window order (``>=`` in the scan) instead of the first (MAXPOOL-TIE-1)."""

    scan: ClassVar[dict[str, Any]] = {"last_tie": True}


class MaxPoolDropsNaN(ScanMaxPool):
    """NaN ignored like np.fmax: a window with a NaN among numbers gives the largest number (MAXPOOL-NAN-1)."""

    scan: ClassVar[dict[str, Any]] = {"skip_nan": True}


class MaxPoolDilationIgnored(ScanMaxPool):
    """Pool windows read consecutive elements whatever the dilation (POOL windows, MAXPOOL-DEF-1)."""

    @validated
    def max_pool(self, x, params):
        return scan_max_pool(x, params, dilation=(1,) * params.rank)


class MaxPoolCeilKeepsDroppedWindow(ScanMaxPool):
    """ceil mode without POOL-CEIL-1's correction: o = ⌈(n + p_b + p_a − e)/s⌉ + 1 keeps a last
    window that starts in the right padding (an extra output of −inf)."""

    @validated
    def max_pool(self, x, params):
        if not params.ceil_mode:
            return scan_max_pool(x, params)
        out = tuple(-((e - n - p_b - p_a) // s) + 1  # ⌈(n + p_b + p_a − e)/s⌉ + 1
                    for n, (p_b, p_a), s, e in zip(params.input_shape[2:], params.pads, params.stride,
                                                   ((k - 1) * d + 1 for k, d in zip(params.kernel_size,
                                                                                     params.dilation))))
        return scan_max_pool(x, params, out_sizes=out)


class MaxPoolNegativeZeroLost(Mutant):
    """max_pool's y passes through ``+ 0.0`` (a fused zero bias): a −0.0 maximum comes back as +0.0
    (MAXPOOL-TIE-1 with signed zeros, ERR-EXACT-1)."""

    @validated
    def max_pool(self, x, params):
        y, indices = self.inner.max_pool(x, params)
        return y + np.zeros((), dtype=y.dtype), indices


class MaxPoolPaddedIndex(Mutant):
    """Indices flattened in the padded plane instead of the unpadded one (MAXPOOL-INDEX-1)."""

    @validated
    def max_pool(self, x, params):
        y, indices = self.inner.max_pool(x, params)
        spatial = params.input_shape[2:]
        coords = np.unravel_index(np.asarray(indices), spatial)
        padded = tuple(n + before + after for n, (before, after) in zip(spatial, params.pads))
        shifted = tuple(c + before for c, (before, _) in zip(coords, params.pads))
        return y, np.ravel_multi_index(shifted, padded).astype(np.int64)


class MaxPoolGlobalIndex(Mutant):
    """ONNX-style indices into the whole (N, C, *S) tensor instead of the (n, c) plane (MAXPOOL-INDEX-1)."""

    @validated
    def max_pool(self, x, params):
        y, indices = self.inner.max_pool(x, params)
        N, C, *spatial = params.input_shape
        plane = np.arange(N * C, dtype=np.int64).reshape((N, C) + (1,) * params.rank)
        return y, indices + plane * math.prod(spatial)


class MaxPoolBackwardAssigns(Mutant):
    """max_pool_backward assigns dy at the index instead of adding: overlapping windows that pick
    the same element keep only one gradient (MAXPOOL-GRAD-1)."""

    @validated
    def max_pool_backward(self, x, dy, params):
        _, indices = self.inner.max_pool(x, params)
        dy = np.asarray(dy)
        N, C = params.input_shape[:2]
        planes = np.zeros((N * C, math.prod(params.input_shape[2:])), dtype=dy.dtype)
        rows = np.arange(N * C)[:, None]
        positions = math.prod(params.output_shape[2:])
        planes[rows, indices.reshape(N * C, positions)] = dy.reshape(N * C, positions)
        return planes.reshape(params.input_shape)


# -- average pool --------------------------------------------------------------------------------------


class AvgPoolCeilModeAsFloor(Mutant):
    """ceil_mode not passed down: ceil-mode average pools come out in floor mode (POOL-CEIL-1)."""

    @validated
    def avg_pool(self, x, params):
        return self.inner.avg_pool(x, rebuild(params, ceil_mode=False) if params.ceil_mode else params)


class AvgPoolOverhangCounted(Mutant):
    """With count_include_pad, every window divided by Πk: the ceil-mode overhang past the right
    padding is counted (AVGPOOL-DEF-1)."""

    @validated
    def avg_pool(self, x, params):
        if params.count_include_pad and params.divisor_override is None:
            params = rebuild(params, divisor_override=math.prod(params.kernel_size))
        return self.inner.avg_pool(x, params)


class AvgPoolCountIncludePadIgnored(Mutant):
    """count_include_pad ignored: padding never counts in the divisor (ONNX's default) (AVGPOOL-DEF-1)."""

    @validated
    def avg_pool(self, x, params):
        return self.inner.avg_pool(x, rebuild(params, count_include_pad=False))


class AvgPoolDivisorOverrideIgnored(Mutant):
    """divisor_override ignored (AVGPOOL-DEF-1)."""

    @validated
    def avg_pool(self, x, params):
        return self.inner.avg_pool(x, rebuild(params, divisor_override=None))


class AvgPoolMaskMultiplied(Mutant):
    """Padding taps read a clamped element and are multiplied by a 0/1 mask: 0·inf = NaN where the
    clamped element is ±inf (ERR-SPECIAL-1)."""

    multiply_mask = True

    @validated
    def avg_pool(self, x, params):
        return masked_avg_pool(x, params, multiply_mask=self.multiply_mask)


class MaskedAvgPoolControl(AvgPoolMaskMultiplied):
    """Control: the same gathered-window average with padding taps dropped by np.where."""

    multiply_mask = False


class AvgPoolBackwardFullKernel(Mutant):
    """avg_pool_backward divides by Πk whatever the divisor rule says (AVGPOOL-GRAD-1)."""

    @validated
    def avg_pool_backward(self, x, dy, params):
        return self.inner.avg_pool_backward(x, dy, rebuild(params, divisor_override=math.prod(params.kernel_size)))


# -- hygiene -----------------------------------------------------------------------------------------


class AvgPoolBackwardScalesDyInPlace(Mutant):
    """avg_pool_backward divides the caller's dy by the divisor in place (``dy /= divisor``), then
    spreads it: dx is right, dy is not the caller's any more (HYGIENE-1)."""

    @validated
    def avg_pool_backward(self, x, dy, params):
        np.divide(dy, avg_divisor(params).astype(dy.dtype), out=dy)
        return self.inner.avg_pool_backward(x, dy, rebuild(params, divisor_override=1))


class Float64Output(Mutant):
    """Returns float64 whatever the input dtype (HYGIENE-2, DTYPE-1)."""

    @validated
    def conv(self, x, w, b, params):
        return self.inner.conv(x, w, b, params).astype(np.float64)


class NondeterministicNoise(Mutant):
    """Declares determinism but moves random outputs by one ulp (an atomics-order race) (HYGIENE-3)."""

    @validated
    def conv(self, x, w, b, params):
        y = self.inner.conv(x, w, b, params)
        rng = np.random.default_rng()  # unseeded: differs call to call
        up = rng.random(y.shape) < 0.25
        return np.where(up, np.nextafter(y, np.array(np.inf, dtype=y.dtype)), y).astype(y.dtype)


# -- backends for --isolate (tests/test_isolation.py) ---------------------------------------------------
#
# Each misbehaves only on inputs with batch size 2 (``affected``), so a run holds passing cases too.


def affected(x: Any) -> bool:
    return np.shape(x)[0] == 2


class SegfaultBackend(Mutant):
    """conv dies of SIGSEGV on a batch of 2 (a native kernel reading past its buffer)."""

    def conv(self, x, w, b, params):
        if affected(x):
            faulthandler.disable()  # no traceback dump from the child into the test output
            os.kill(os.getpid(), signal.SIGSEGV)
        return self.inner.conv(x, w, b, params)


class HangBackend(Mutant):
    """conv never returns on a batch of 2 (a deadlock)."""

    def conv(self, x, w, b, params):
        if affected(x):
            time.sleep(1000)
        return self.inner.conv(x, w, b, params)


class ExitBackend(Mutant):
    """conv calls os._exit(3) on a batch of 2 (a library that aborts the process)."""

    def conv(self, x, w, b, params):
        if affected(x):
            os._exit(3)
        return self.inner.conv(x, w, b, params)


class RunawayAllocationBackend(Mutant):
    """conv asks for an 8 TB workspace on a batch of 2 (np.ones(10**12): MemoryError at once)."""

    def conv(self, x, w, b, params):
        if affected(x):
            np.ones(10**12)
        return self.inner.conv(x, w, b, params)


class LargeWorkspaceBackend(Mutant):
    """conv reserves a 4 GiB workspace on a batch of 2 (address space only: never touched, so it
    is harmless without a memory limit and refused under one)."""

    workspace_bytes = 4 * 2**30

    def conv(self, x, w, b, params):
        if affected(x):
            workspace = np.empty(self.workspace_bytes, dtype=np.uint8)
            del workspace
        return self.inner.conv(x, w, b, params)


class MutatesInputBackend(Mutant):
    """conv zeroes its input after use on a batch of 2 (scratch reuse) (HYGIENE-1)."""

    def conv(self, x, w, b, params):
        y = self.inner.conv(x, w, b, params)
        if affected(x):
            x[...] = 0
        return y


class RaisesBackend(Mutant):
    """conv raises on a batch of 2 (a kernel launch failure) on a configuration it declares supported."""

    def conv(self, x, w, b, params):
        if affected(x):
            raise RuntimeError("kernel launch failed")
        return self.inner.conv(x, w, b, params)


__all__ = [name for name, value in dict(globals()).items() if isinstance(value, type) and issubclass(value, Mutant)]
