"""The im2col backend: convolution as one matrix product per chunk of output positions.

    X̂_g[(c, q), (n, p)] = x̃[n, g·C_g + c, p·s + q·d − p_b]     the column matrix of group g
    Y_g = W_g · X̂_g + b                                          (CONV-DEF-1)
    ∂W_g = ∂Y_g · X̂_gᵀ,   ∂X̂_g = W_gᵀ · ∂Y_g, then col2im       (CONV-GRAD-1)
    conv_transpose(x) = col2im(W_gᵀ · X_g) + b                   (CONVT-DEF-1, the adjoint)

Rows of X̂_g run over (channel of the group, tap) — C_g·ΠK of them — and columns over (image,
output position) of the chunk, so W_g (M × C_g·ΠK) multiplies it in one BLAS call per group
(``np.matmul`` batched over groups). im2col copies one strided slice of the input per kernel tap
into a preallocated buffer; col2im, its adjoint, adds the slices back tap by tap, so overlapping
windows accumulate without ``np.add.at``. Taps that read zero padding are zeroed in the buffer
(no padded copy of the input); the other padding modes first gather the chunk's padded region.
Pooling reduces over the same tap slices — the rows of the column matrix — one at a time, so its
columns are never stored whole: max with the first-maximum and NaN rules, average with the divisor.

Memory
------
``memory_budget_bytes`` (default 256 MiB) bounds the scratch memory of one chunk: column buffer,
matrix-product result or transposed gradient slice, padded region (pooling: its running maximum,
tap indices, sums and masks). Chunks are whole images when one image fits, else runs of output
rows (then of single positions) of one image; so the budget holds down to one output position's
columns, C_in·ΠK·itemsize. Not counted: the outputs, weight-sized gradient temporaries, and for
float16/bfloat16 the float32 results and ``dx`` accumulator that are rounded at the end.
Chunks are also kept under ``CHUNK_TARGET_BYTES`` (16 MiB) whatever the budget, so the columns
are still in cache when BLAS reads them (and a pool's running results while the taps stream by). A 1×1, stride-1, unpadded convolution with
at least ``POINTWISE_MIN_POSITIONS`` positions per image skips the copy: an image *is* its
column matrix.

Precision
---------
float32 and float64 are computed in their own precision (BLAS); float16 and bfloat16 are widened
to float32 for every product and sum and rounded once at the end. The declared accumulation is
therefore ``{"float16": "float32", "bfloat16": "float32"}`` (the other dtypes in themselves), which
gives the half types ERR-BOUND-1's float32 u_acc.

Independent of the reference and of every other backend: it imports only ``convspec.spec``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from ..spec import (
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    Pads,
    Shape,
    bfloat16_available,
    ceil_div,
    check_arrays,
    effective_kernel,
    to_dtype,
)
from .base import Capabilities

#: An output box: one [start, stop) range per spatial dim.
Box = tuple[tuple[int, int], ...]
#: A chunk: a range of images and a box of output positions.
Chunk = tuple[tuple[int, int], Box]

DEFAULT_MEMORY_BUDGET = 256 * 2**20


#: The declared accumulation: half types widened to float32, the others in themselves.
HALF_TYPES_IN_FLOAT32 = {"float16": "float32", "bfloat16": "float32"}


def compute_dtype(dtype: np.dtype[Any]) -> np.dtype[Any]:
    """float32 and float64 compute natively; float16 and bfloat16 are widened to float32."""
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)


# -- chunking ----------------------------------------------------------------------------------


def largest(limit: int, fits: Callable[[int], bool]) -> int:
    """The largest r in [1, limit] with fits(r) (fits is monotone decreasing); 1 if none fits."""
    low, high = 1, limit
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def chunks(batch: int, out: Shape, cost: Callable[[int, Shape], int], budget: int) -> Iterator[Chunk]:
    """Cover (batch × output positions) with chunks whose ``cost(images, box shape)`` fits ``budget``.

    Whole images when one fits; otherwise one image at a time, split along the first output dim
    into runs of rows, and if one row does not fit either, along the next dim, and so on: level j
    fixes the output indices of dims < j, takes a run along dim j and all of dims > j.
    """
    full = tuple((0, o) for o in out)
    if batch == 0:
        return
    if cost(1, out) <= budget:
        images = largest(batch, lambda nb: cost(nb, out) <= budget)
        for n0 in range(0, batch, images):
            yield (n0, min(batch, n0 + images)), full
        return
    for j in range(len(out)):
        rest = out[j + 1:]
        if j < len(out) - 1 and cost(1, (1,) * (j + 1) + rest) > budget:
            continue
        run = largest(out[j], lambda r: cost(1, (1,) * j + (r,) + rest) <= budget)
        for n in range(batch):
            for fixed in np.ndindex(*out[:j]):
                for a in range(0, out[j], run):
                    yield (n, n + 1), tuple((f, f + 1) for f in fixed) + ((a, min(a + run, out[j])),) + full[j + 1:]
        return


def box_shape(box: Box) -> Shape:
    return tuple(b - a for a, b in box)


def box_slices(box: Box) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in box)


class Buffer:
    """A flat scratch array reused across chunks: ``take(shape)`` views its first Πshape elements."""

    def __init__(self, dtype: np.dtype[Any]) -> None:
        self.dtype = dtype
        self.data = np.empty(0, dtype=dtype)

    def take(self, shape: Shape) -> np.ndarray:
        size = math.prod(shape)
        if size > self.data.size:
            self.data = np.empty(0, dtype=self.dtype)  # release before allocating the larger one
            self.data = np.empty(size, dtype=self.dtype)
        return self.data[:size].reshape(shape)


# -- the tap slices: im2col and col2im ---------------------------------------------------------


def tap_spans(
    q: Shape, box: Box, offsets: Sequence[int], extent: Shape, stride: Shape, dilation: Shape
) -> tuple[tuple[slice, ...], tuple[slice, ...]] | None:
    """Where tap q of the positions p in ``box`` reads: u = p·s + q·d + offset, kept if 0 ≤ u < extent.

    Returns (source slices, slices of the box) — the valid positions form a sub-box, and their
    sources a strided box — or None when no position of the box reads inside the source.
    """
    sources, targets = [], []
    for q_i, (a, b), offset, n, s, d in zip(q, box, offsets, extent, stride, dilation):
        shift = q_i * d + offset
        lo, hi = max(a, ceil_div(-shift, s)), min(b, ceil_div(n - shift, s))
        if hi <= lo:
            return None
        start = lo * s + shift
        sources.append(slice(start, start + (hi - lo - 1) * s + 1, s))
        targets.append(slice(lo - a, hi - a))
    return tuple(sources), tuple(targets)


def im2col(
    columns: np.ndarray, source: np.ndarray, box: Box, offsets: Sequence[int],
    kernel_size: Shape, stride: Shape, dilation: Shape,
) -> None:
    """columns[c, t, n, p] = source[n, c, p·s + q_t·d + offset], 0 where that is outside ``source``.

    ``columns`` is (C, ΠK, images, *box shape), ``source`` (images, C, *extent). One strided slice
    copy per tap; the positions of a tap that fall into the zero padding are zeroed.
    """
    extent, shape = source.shape[2:], box_shape(box)
    for t, q in enumerate(np.ndindex(*kernel_size)):
        row = columns[:, t]
        spans = tap_spans(q, box, offsets, extent, stride, dilation)
        if spans is None:
            row[...] = 0
            continue
        sources, targets = spans
        row[(slice(None), slice(None), *targets)] = source[(slice(None), slice(None), *sources)].swapaxes(0, 1)
        for i, (target, size) in enumerate(zip(targets, shape)):
            lead = (slice(None),) * (2 + i)
            row[lead + (slice(0, target.start),)] = 0
            row[lead + (slice(target.stop, size),)] = 0


def col2im(
    target: np.ndarray, columns: np.ndarray, box: Box, offsets: Sequence[int],
    kernel_size: Shape, stride: Shape, dilation: Shape,
) -> None:
    """target[n, c, p·s + q_t·d + offset] += columns[c, t, n, p] — the adjoint of :func:`im2col`.

    Taps are added one strided slice at a time, so positions shared by overlapping windows
    accumulate; sources outside ``target`` (zero padding) are dropped.
    """
    extent = target.shape[2:]
    for t, q in enumerate(np.ndindex(*kernel_size)):
        spans = tap_spans(q, box, offsets, extent, stride, dilation)
        if spans is None:
            continue
        sources, targets = spans
        view = target[(slice(None), slice(None), *sources)]
        view += columns[:, t][(slice(None), slice(None), *targets)].swapaxes(0, 1)


# -- padding modes other than zeros: the chunk's padded region ---------------------------------


def source_indices(u: np.ndarray, n: int, mode: str) -> np.ndarray:
    """The input index x̃ reads at unpadded coordinates u (PAD-MODE-1): reflect mirrors without
    repeating the edge (numpy 'reflect'), replicate clamps ('edge'), circular wraps ('wrap')."""
    if mode == "replicate":
        return np.clip(u, 0, n - 1)
    if mode == "circular":
        return u % n
    if mode == "reflect" and n > 1:  # PAD-MODE-2: n == 1 allows no reflect padding at all
        period = 2 * (n - 1)
        r = u % period
        return np.where(r < n, r, period - r)
    return u


def source_runs(src: np.ndarray) -> list[tuple[slice, slice]]:
    """Split the map r -> src[r] into maximal runs along which src steps by +1 or −1, as pairs
    (slice of r, slice of src): the inside of the input is one run, a reflected or wrapped border
    another; a replicated border repeats its edge, one position per run."""
    runs, start = [], 0
    while start < len(src):
        end, step = start + 1, 1
        if end < len(src) and abs(int(src[end]) - int(src[start])) == 1:
            step = int(src[end]) - int(src[start])
            while end < len(src) and int(src[end]) - int(src[end - 1]) == step:
                end += 1
        first, stop = int(src[start]), int(src[end - 1]) + step
        runs.append((slice(start, end), slice(first, stop if stop >= 0 else None, step)))
        start = end
    return runs


def region_pieces(box: Box, geometry: Geometry) -> tuple[Shape, list[tuple[tuple[slice, ...], tuple[slice, ...]]]]:
    """The padded region read by the chunk's ``box`` and how it maps onto the input.

    Along dim i the region covers padded coordinates a·s to (b−1)·s + d·(k−1), i.e. unpadded
    u = r + a·s − p_b for r in [0, R), and x̃ there is x at source_indices(u). Returns R and the
    pieces (region slices, input slices) — one box per combination of per-dim runs — so that
    region[piece] = x[source piece] fills the region.
    """
    extents, per_dim = [], []
    for (a, b), n, k, s, d, (p_b, _) in zip(box, geometry.size, geometry.kernel_size, geometry.stride,
                                            geometry.dilation, geometry.pads):
        extent = (b - 1 - a) * s + effective_kernel(k, d)
        u = np.arange(extent) + a * s - p_b
        extents.append(extent)
        per_dim.append(source_runs(source_indices(u, n, geometry.padding_mode)))
    combined = [tuple(zip(*combo)) for combo in itertools.product(*per_dim)]
    return tuple(extents), [(tuple(region), tuple(source)) for region, source in combined]


def gather_region(region: np.ndarray, x: np.ndarray, pieces: list[Any]) -> None:
    """region = x̃ over the chunk's padded region, one box copy per piece."""
    for region_slices, source_slices in pieces:
        region[(slice(None), slice(None), *region_slices)] = x[(slice(None), slice(None), *source_slices)]


def fold_region(target: np.ndarray, region: np.ndarray, pieces: list[Any]) -> None:
    """target[source of r] += region[r] — the adjoint of :func:`gather_region`: a padded copy's
    gradient folds back onto its source element."""
    for region_slices, source_slices in pieces:
        view = target[(slice(None), slice(None), *source_slices)]
        view += region[(slice(None), slice(None), *region_slices)]


# -- convolution -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """The index geometry of a convolution: input (N, C_in, *size) -> output (N, C_out, *out).

    conv_transpose is run as the adjoint of the conv whose input is its output: that conv's
    weight (C_out, C_in/g, *K) is the transposed conv's weight (C_in_T, C_out_T/g, *K) as given.
    """

    batch: int
    in_channels: int
    out_channels: int
    size: Shape
    out: Shape
    kernel_size: Shape
    stride: Shape
    dilation: Shape
    pads: Pads
    groups: int
    padding_mode: str

    @classmethod
    def of_conv(cls, params: ConvParams) -> Geometry:
        N, C_in, *size = params.input_shape
        return cls(N, C_in, params.output_shape[1], tuple(size), params.output_shape[2:], params.kernel_size,
                   params.stride, params.dilation, params.pads, params.groups, params.padding_mode)

    @classmethod
    def of_conv_transpose(cls, params: ConvTransposeParams) -> Geometry:
        N, C_in, *size = params.input_shape
        return cls(N, params.output_shape[1], C_in, params.output_shape[2:], tuple(size), params.kernel_size,
                   params.stride, params.dilation, params.pads, params.groups, "zeros")

    @property
    def taps(self) -> int:
        return math.prod(self.kernel_size)

    @property
    def pointwise(self) -> bool:
        """1×1 kernel, stride 1, no padding: the columns of an image are the image itself."""
        return self.taps == 1 and all(s == 1 for s in self.stride) and not any(map(any, self.pads))

    @property
    def padded_region(self) -> bool:
        """A non-zeros padding mode with some padding: columns come from a gathered padded region."""
        return self.padding_mode != "zeros" and any(map(any, self.pads))

    def chunks(self, budget: int, itemsize: int) -> Iterator[Chunk]:
        """Chunks whose column buffer, product (or gradient) slice and padded region fit ``budget``."""

        def cost(images: int, shape: Shape) -> int:
            positions = images * math.prod(shape)
            total = (self.in_channels * self.taps + self.out_channels) * positions
            if self.padded_region:
                total += images * self.in_channels * math.prod(
                    (o - 1) * s + effective_kernel(k, d)
                    for o, k, s, d in zip(shape, self.kernel_size, self.stride, self.dilation)
                )
            return total * itemsize

        return chunks(self.batch, self.out, cost, budget)


class ConvKernels:
    """The three products of a convolution geometry, chunked: forward, input gradient, weight gradient."""

    def __init__(self, geometry: Geometry, dtype: np.dtype[Any], budget: int) -> None:
        self.geometry = geometry
        self.compute = compute_dtype(dtype)
        self.widens = self.compute != dtype
        # ∂W_g sums over every position of the batch: a long inner dim. On a busy machine OpenBLAS's
        # two-thread product of that shape can stall for a second when its result has fewer rows
        # than columns (measured, OpenBLAS 0.3.31), so the result is taken as the taller of ∂W_g
        # (M × C_g·ΠK) and ∂W_gᵀ = X̂_g · ∂Y_gᵀ — the same products either way.
        self.transposed = geometry.in_channels // geometry.groups * geometry.taps > geometry.out_channels // geometry.groups
        self.budget = min(budget, CHUNK_TARGET_BYTES)

    def _columns(self, x: np.ndarray, images: slice, box: Box, buffer: Buffer, regions: Buffer) -> np.ndarray:
        """X̂ of the chunk as (C_in, ΠK, images, *box), written into ``buffer``."""
        geo = self.geometry
        shape = box_shape(box)
        columns = buffer.take((geo.in_channels, geo.taps, images.stop - images.start) + shape)
        if geo.padded_region:
            extents, pieces = region_pieces(box, geo)
            region = regions.take((images.stop - images.start, geo.in_channels) + extents)
            gather_region(region, x[images], pieces)
            offsets = [-a * s for (a, _), s in zip(box, geo.stride)]
            im2col(columns, region, box, offsets, geo.kernel_size, geo.stride, geo.dilation)
        else:
            offsets = [-p_b for p_b, _ in geo.pads]
            im2col(columns, x[images], box, offsets, geo.kernel_size, geo.stride, geo.dilation)
        return columns

    def _gradient_slice(self, dy: np.ndarray, images: slice, box: Box, buffer: Buffer) -> np.ndarray:
        """∂Y of the chunk as (g, M, images·Πbox): the channel-major layout of the columns."""
        geo = self.geometry
        shape = (geo.out_channels, images.stop - images.start) + box_shape(box)
        grad = buffer.take(shape)
        grad[...] = dy[(images, slice(None), *box_slices(box))].swapaxes(0, 1)
        return grad.reshape(geo.groups, geo.out_channels // geo.groups, -1)

    def _pointwise_images(self) -> int:
        """Images per product of the 1×1 shortcut (columns = the image itself), or 0 when it does not
        apply: not pointwise, too few positions per image, or a float16/bfloat16 widening of one image
        that would not fit the budget."""
        geo = self.geometry
        positions = math.prod(geo.out)
        if not geo.pointwise or positions < POINTWISE_MIN_POSITIONS:
            return 0
        per_image = (geo.in_channels + geo.out_channels) * positions * self.compute.itemsize
        if per_image > self.budget and self.widens:
            return 0
        return max(1, self.budget // per_image)

    def forward(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """y[n, g·M+m, p] = Σ_(c,q) W_g[m, (c, q)] · X̂_g[(c, q), (n, p)], in the compute dtype."""
        geo = self.geometry
        g, M = geo.groups, geo.out_channels // geo.groups
        weights = w.astype(self.compute, copy=False).reshape(g, M, -1)
        y = np.empty((geo.batch, geo.out_channels) + geo.out, dtype=self.compute)
        pointwise = self._pointwise_images()
        if pointwise:  # Y_n = W_g · X_n per image, straight from x into y
            for n0 in range(0, geo.batch, pointwise):
                n1 = min(geo.batch, n0 + pointwise)
                X = x[n0:n1].reshape(n1 - n0, g, -1, math.prod(geo.out)).astype(self.compute, copy=False)
                np.matmul(weights, X, out=y[n0:n1].reshape(n1 - n0, g, M, -1))
            return y
        columns, regions, products = Buffer(self.compute), Buffer(self.compute), Buffer(self.compute)
        for (n0, n1), box in geo.chunks(self.budget, self.compute.itemsize):
            images, shape = slice(n0, n1), box_shape(box)
            X_hat = self._columns(x, images, box, columns, regions).reshape(g, -1, (n1 - n0) * math.prod(shape))
            Y = np.matmul(weights, X_hat, out=products.take((g, M, X_hat.shape[-1])))
            y[(images, slice(None), *box_slices(box))] = Y.reshape((geo.out_channels, n1 - n0) + shape).swapaxes(0, 1)
        return y

    def gradients(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(∂X, ∂W) of Σ y·dy, in the compute dtype."""
        dx, dw = self._backward(x, w, dy, input_grad=True, weight_grad=True)
        return cast(np.ndarray, dx), cast(np.ndarray, dw)

    def input_gradient(self, w: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """∂X = col2im(W_gᵀ · ∂Y_g): also conv_transpose, the adjoint."""
        return cast(np.ndarray, self._backward(None, w, dy, input_grad=True, weight_grad=False)[0])

    def weight_gradient(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray) -> np.ndarray:
        """∂W_g = Σ_chunks ∂Y_g · X̂_gᵀ."""
        return cast(np.ndarray, self._backward(x, w, dy, input_grad=False, weight_grad=True)[1])

    def _backward(
        self, x: np.ndarray | None, w: np.ndarray, dy: np.ndarray, *, input_grad: bool, weight_grad: bool
    ) -> tuple[np.ndarray | None, np.ndarray | None]:
        """∂X = col2im(W_gᵀ · ∂Y_g) and ∂W_g = Σ_chunks ∂Y_g · X̂_gᵀ, in one pass over the chunks."""
        geo = self.geometry
        g, M = geo.groups, geo.out_channels // geo.groups
        weights = w.astype(self.compute, copy=False).reshape(g, M, -1)
        dx = np.zeros((geo.batch, geo.in_channels) + geo.size, dtype=self.compute) if input_grad else None
        dw_shape = weights.swapaxes(1, 2).shape if self.transposed else weights.shape
        dw_acc = np.zeros(dw_shape, dtype=self.compute) if weight_grad else None
        pointwise = self._pointwise_images()
        if pointwise:
            self._pointwise_backward(x, weights, dy, dx, dw_acc, pointwise)
        else:
            columns, regions, grads, products = (Buffer(self.compute) for _ in range(4))
            for (n0, n1), box in geo.chunks(self.budget, self.compute.itemsize):
                images, shape = slice(n0, n1), box_shape(box)
                dY = self._gradient_slice(dy, images, box, grads)
                if dw_acc is not None and x is not None:
                    X = self._columns(x, images, box, columns, regions).reshape(g, -1, dY.shape[-1])
                    dw_acc += self._weight_product(X, dY, products.take(dw_acc.shape))
                if dx is not None:
                    dX = np.matmul(weights.swapaxes(1, 2), dY, out=columns.take((g, weights.shape[2], dY.shape[-1])))
                    self._col2im(dx[images], dX.reshape((geo.in_channels, geo.taps, n1 - n0) + shape), box, regions)
        if dw_acc is None:
            return dx, None
        dw = dw_acc.swapaxes(1, 2) if self.transposed else dw_acc
        return dx, dw.reshape((geo.out_channels, -1) + geo.kernel_size)

    def _weight_product(self, X: np.ndarray, dY: np.ndarray, out: np.ndarray) -> np.ndarray:
        """∂Y_g · X̂_gᵀ, or its transpose X̂_g · ∂Y_gᵀ when accumulating ∂W_gᵀ."""
        if self.transposed:
            return np.matmul(X, dY.swapaxes(-1, -2), out=out)
        return np.matmul(dY, X.swapaxes(-1, -2), out=out)

    def _pointwise_backward(
        self, x: np.ndarray | None, weights: np.ndarray, dy: np.ndarray, dx: np.ndarray | None,
        dw_acc: np.ndarray | None, images: int,
    ) -> None:
        """1×1 shortcut: ∂X_n = W_gᵀ · ∂Y_n straight into dx, ∂W_g += ∂Y_n · X_nᵀ image by image."""
        geo = self.geometry
        g, P = geo.groups, math.prod(geo.out)
        product = np.empty_like(dw_acc) if dw_acc is not None else None
        for n0 in range(0, geo.batch, images):
            n1 = min(geo.batch, n0 + images)
            dY = dy[n0:n1].reshape(n1 - n0, g, -1, P).astype(self.compute, copy=False)
            if dx is not None:
                np.matmul(weights.swapaxes(1, 2), dY, out=dx[n0:n1].reshape(n1 - n0, g, -1, P))
            if dw_acc is not None and product is not None and x is not None:
                X = x[n0:n1].reshape(n1 - n0, g, -1, P).astype(self.compute, copy=False)
                for n in range(n1 - n0):
                    dw_acc += self._weight_product(X[n], dY[n], product)

    def _col2im(self, dx: np.ndarray, dX: np.ndarray, box: Box, regions: Buffer) -> None:
        geo = self.geometry
        if geo.padded_region:
            extents, pieces = region_pieces(box, geo)
            region = regions.take((dX.shape[2], geo.in_channels) + extents)
            region[...] = 0
            offsets = [-a * s for (a, _), s in zip(box, geo.stride)]
            col2im(region, dX, box, offsets, geo.kernel_size, geo.stride, geo.dilation)
            fold_region(dx, region, pieces)
        else:
            offsets = [-p_b for p_b, _ in geo.pads]
            col2im(dx, dX, box, offsets, geo.kernel_size, geo.stride, geo.dilation)


#: Chunks are kept this small even under a larger budget: the columns written by im2col are then
#: still in cache when the matrix product reads them, and the reused buffers are not re-faulted.
CHUNK_TARGET_BYTES = 16 * 2**20

#: The pointwise shortcut makes one BLAS call per image; below this many positions per image one
#: product over the whole chunk (through a column copy) is faster, and far steadier on a busy
#: machine, where every extra two-thread OpenBLAS call risks a stall.
POINTWISE_MIN_POSITIONS = 4096


# -- pooling -----------------------------------------------------------------------------------


def pool_chunks(params: MaxPoolParams | AvgPoolParams, budget: int, bytes_per_position: int) -> Iterator[Chunk]:
    """Chunks over (N·C planes × output positions): pooling treats every (n, c) plane alike."""
    N, C = params.input_shape[:2]
    return chunks(N * C, params.output_shape[2:], lambda images, shape: images * math.prod(shape) * bytes_per_position,
                  min(budget, CHUNK_TARGET_BYTES))


def pool_taps(params: MaxPoolParams | AvgPoolParams, box: Box) -> Iterator[tuple[int, tuple[slice, ...], tuple[slice, ...]]]:
    """(t, source slices, box slices) for each tap t of the windows in ``box`` that reads inside the
    input; taps in the padding are left out (MAXPOOL-DEF-1, AVGPOOL-DEF-1)."""
    offsets = [-p_b for p_b, _ in params.pads]
    for t, q in enumerate(np.ndindex(*params.kernel_size)):
        spans = tap_spans(q, box, offsets, params.input_shape[2:], params.stride, params.dilation)
        if spans is not None:
            yield (t, *spans)


def plane_index_parts(params: MaxPoolParams, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Flat row-major plane index (MAXPOOL-INDEX-1) of tap t at p as base[p] + offset[t]:
    base[p] = Σ_i (p_i·s_i − p_b,i)·stride_i of the plane, offset[t] = Σ_i q_i·d_i·stride_i."""
    size = params.input_shape[2:]
    plane_strides = [math.prod(size[i + 1:]) for i in range(len(size))]
    base = np.zeros(box_shape(box), dtype=np.int64)
    for i, ((a, b), s, (p_b, _), stride) in enumerate(zip(box, params.stride, params.pads, plane_strides)):
        axis = [1] * len(size)
        axis[i] = b - a
        base += ((np.arange(a, b) * s - p_b) * stride).reshape(axis)
    taps = np.array(list(np.ndindex(*params.kernel_size)), dtype=np.int64).reshape(-1, len(size))
    offset = taps @ (np.array(params.dilation, dtype=np.int64) * np.array(plane_strides, dtype=np.int64))
    return base, offset


def first_taps(params: MaxPoolParams, box: Box) -> np.ndarray:
    """The first tap inside the input of each window in ``box``, flat in row-major window order.

    Inside-ness is a product over dims, so the first such tap is the per-dim first one,
    q_i = max(0, ⌈(p_b − p·s)/d⌉), raveled; POOL-WINDOW-1 guarantees it exists.
    """
    first = np.zeros(box_shape(box), dtype=np.int32)
    for i, ((a, b), k, s, d, (p_b, _)) in enumerate(zip(box, params.kernel_size, params.stride, params.dilation,
                                                          params.pads)):
        q = np.maximum(0, -((np.arange(a, b) * s - p_b) // d))
        axis = [1] * params.rank
        axis[i] = b - a
        first += (q * math.prod(params.kernel_size[i + 1:])).astype(np.int32).reshape(axis)
    return first


def staged(value: np.ndarray, scratch: Buffer) -> np.ndarray:
    """A tap slice as the next row of the column matrix: copied (and widened to the scratch dtype)
    into ``scratch`` unless it already has that dtype and a unit-stride last axis. NumPy's
    vectorised loops want unit strides; a strided slice is copied once, then reduced fast."""
    if value.dtype == scratch.dtype and (value.strides[-1] == value.itemsize or value.shape[-1] == 1):
        return value
    row = scratch.take(value.shape)
    row[...] = value
    return row


def max_taps(
    planes: np.ndarray, params: MaxPoolParams, images: slice, box: Box, *, nan_free: bool, compute: np.dtype[Any]
) -> np.ndarray:
    """The tap holding the maximum of each window in ``box``, scanning taps in row-major window order
    from the window's first tap inside the input: a strictly greater value takes over (MAXPOOL-TIE-1:
    the first maximum stays, −inf included), a NaN takes over a non-NaN and then stays
    (MAXPOOL-NAN-1), and a tap in the padding is never looked at (MAXPOOL-DEF-1).

    Values are compared in ``compute``, into which x's dtype widens exactly, so the order is x's
    own; the running maximum is ``np.maximum`` (which keeps a NaN) and the tap update is a
    branch-free blend. ``nan_free`` skips the NaN rule when the caller knows x holds no NaN.
    """
    shape = (images.stop - images.start,) + box_shape(box)
    best = np.full(shape, -np.inf, dtype=compute)
    tap = np.broadcast_to(first_taps(params, box), shape).copy()  # kept where every value is −inf
    rows, masks, steps = Buffer(compute), Buffer(np.dtype(bool)), Buffer(np.dtype(np.int32))
    with np.errstate(invalid="ignore"):
        for t, sources, targets in pool_taps(params, box):
            value = staged(planes[(images, *sources)], rows)
            best_here, tap_here = best[(slice(None), *targets)], tap[(slice(None), *targets)]
            better = np.greater(value, best_here, out=masks.take(value.shape))
            if not nan_free:
                better |= np.isnan(value) & ~np.isnan(best_here)
            np.maximum(best_here, value, out=best_here)
            step = np.subtract(t, tap_here, out=steps.take(value.shape))  # tap = better ? t : tap
            step *= better
            tap_here += step
    return tap


def holds_nan(x: np.ndarray) -> bool:
    """Whether x holds a NaN, in one pass without a temporary (max propagates NaN)."""
    with np.errstate(invalid="ignore"):
        return x.size > 0 and bool(np.isnan(np.max(x)))


def avg_divisor(params: AvgPoolParams, box: Box, dtype: np.dtype[Any]) -> np.ndarray | float:
    """AVGPOOL-DEF-1: divisor_override; else the product over dims of the taps inside
    [−p_b, n + p_a) (count_include_pad) or inside [0, n), per output position of ``box``."""
    if params.divisor_override is not None:
        return float(params.divisor_override)
    divisor = np.ones(box_shape(box), dtype=dtype)
    for i, ((a, b), n, k, s, d, (p_b, p_a)) in enumerate(zip(box, params.input_shape[2:], params.kernel_size,
                                                             params.stride, params.dilation, params.pads)):
        low, high = (-p_b, n + p_a) if params.count_include_pad else (0, n)
        coords = np.arange(a, b)[:, None] * s - p_b + np.arange(k)[None, :] * d
        count = np.count_nonzero((coords >= low) & (coords < high), axis=1)
        axis = [1] * params.rank
        axis[i] = b - a
        divisor *= count.reshape(axis).astype(dtype)
    return divisor


class Im2colBackend:
    """The fast NumPy backend: im2col + BLAS for convolutions, tap-slice reductions for pooling.

    Parameters
    ----------
    memory_budget_bytes : int, default 256 MiB
        Upper bound on the scratch memory of one chunk (see the module docstring).

    Examples
    --------
    >>> from convspec.spec import ConvParams
    >>> x = np.arange(5.0).reshape(1, 1, 5); w = np.ones((1, 1, 3))
    >>> Im2colBackend().conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape, padding=1))
    array([[[1., 3., 6., 9., 7.]]])
    """

    name = "im2col"

    def __init__(self, *, memory_budget_bytes: int = DEFAULT_MEMORY_BUDGET) -> None:
        if isinstance(memory_budget_bytes, bool) or not isinstance(memory_budget_bytes, (int, np.integer)) \
                or memory_budget_bytes < 1:
            raise ValueError(f"memory_budget_bytes={memory_budget_bytes!r} must be a positive int (bytes)")
        self.memory_budget_bytes = int(memory_budget_bytes)
        dtypes = {"float16", "float32", "float64"} | ({"bfloat16"} if bfloat16_available() else set())
        self.capabilities = Capabilities(dtypes=frozenset(dtypes), accumulation=HALF_TYPES_IN_FLOAT32)

    def __repr__(self) -> str:
        return f"Im2colBackend(memory_budget_bytes={self.memory_budget_bytes})"

    def _kernels(self, geometry: Geometry, dtype: np.dtype[Any]) -> ConvKernels:
        return ConvKernels(geometry, dtype, self.memory_budget_bytes)

    @staticmethod
    def _bias_sum(dy: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
        """db[o] = Σ_n Σ_p dy[n, o, p], summed in the compute dtype."""
        return dy.sum(axis=(0, *range(2, dy.ndim)), dtype=compute_dtype(dtype)).astype(dtype)

    # -- convolution ---------------------------------------------------------------------------

    def conv(self, x: Any, w: Any, b: Any, params: ConvParams) -> np.ndarray:
        """y = W_g · X̂_g + b per group and chunk  (CONV-DEF-1)."""
        dtype = to_dtype(check_arrays("conv", params, {"x": x, "w": w, "b": b}))
        kernels = self._kernels(Geometry.of_conv(params), dtype)
        y = kernels.forward(np.asarray(x), np.asarray(w))
        if b is not None:
            y += np.asarray(b).astype(kernels.compute).reshape((-1,) + (1,) * params.rank)
        return y.astype(dtype, copy=False)

    def conv_backward(self, x: Any, w: Any, dy: Any, params: ConvParams) -> tuple[np.ndarray, np.ndarray, Any]:
        """dx = col2im(W_gᵀ · ∂Y_g), dw = ∂Y_g · X̂_gᵀ, db = Σ dy  (CONV-GRAD-1)."""
        dtype = to_dtype(check_arrays("conv_backward", params, {"x": x, "w": w, "dy": dy}))
        dy = np.asarray(dy)
        kernels = self._kernels(Geometry.of_conv(params), dtype)
        dx, dw = kernels.gradients(np.asarray(x), np.asarray(w), dy)
        db = None if params.bias_shape is None else self._bias_sum(dy, dtype)
        return dx.astype(dtype, copy=False), dw.astype(dtype, copy=False), db

    def conv_transpose(self, x: Any, w: Any, b: Any, params: ConvTransposeParams) -> np.ndarray:
        """y = col2im(W_gᵀ · X_g) + b: the adjoint of the conv whose input y is  (CONVT-DEF-1)."""
        dtype = to_dtype(check_arrays("conv_transpose", params, {"x": x, "w": w, "b": b}))
        kernels = self._kernels(Geometry.of_conv_transpose(params), dtype)
        y = kernels.input_gradient(np.asarray(w), np.asarray(x))
        if b is not None:
            y += np.asarray(b).astype(kernels.compute).reshape((-1,) + (1,) * params.rank)
        return y.astype(dtype, copy=False)

    def conv_transpose_backward(
        self, x: Any, w: Any, dy: Any, params: ConvTransposeParams
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """dx = conv(dy) with w; dw = X_g · ∂Ŷ_gᵀ (the adjoint conv's weight gradient with the
        roles of x and dy swapped); db = Σ dy  (CONVT-GRAD-1)."""
        dtype = to_dtype(check_arrays("conv_transpose_backward", params, {"x": x, "w": w, "dy": dy}))
        x, dy = np.asarray(x), np.asarray(dy)
        kernels = self._kernels(Geometry.of_conv_transpose(params), dtype)
        dx = kernels.forward(dy, np.asarray(w))
        dw = kernels.weight_gradient(dy, np.asarray(w), x)
        db = None if params.bias_shape is None else self._bias_sum(dy, dtype)
        return dx.astype(dtype, copy=False), dw.astype(dtype, copy=False), db

    # -- pooling -------------------------------------------------------------------------------

    def max_pool(self, x: Any, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
        """y = max over each window's taps inside the input, with the tap's flat plane index
        (MAXPOOL-DEF-1, MAXPOOL-NAN-1, MAXPOOL-TIE-1, MAXPOOL-INDEX-1)."""
        check_arrays("max_pool", params, {"x": x})
        x = np.asarray(x)
        planes = x.reshape((-1,) + params.input_shape[2:])
        N, C, *o = params.output_shape
        indices = np.empty((N * C, *o), dtype=np.int64)
        nan_free = not holds_nan(planes)
        compute = compute_dtype(x.dtype)
        for (n0, n1), box in pool_chunks(params, self.memory_budget_bytes, 2 * compute.itemsize + 40):
            tap = max_taps(planes, params, slice(n0, n1), box, nan_free=nan_free, compute=compute)
            base, offset = plane_index_parts(params, box)
            np.add(base, offset[tap], out=indices[(slice(n0, n1), *box_slices(box))])
        # y is the input at the index: one of the inputs, bit for bit (ERR-EXACT-1)
        flat = planes.reshape(planes.shape[0], math.prod(params.input_shape[2:]))
        y = np.take_along_axis(flat, indices.reshape(flat.shape[0], math.prod(o)), axis=1)
        return y.reshape(params.output_shape), indices.reshape(params.output_shape)

    def max_pool_backward(self, x: Any, dy: Any, params: MaxPoolParams) -> np.ndarray:
        """dx[plane index of the winning tap] += dy, tap by tap (MAXPOOL-GRAD-1)."""
        dtype = to_dtype(check_arrays("max_pool_backward", params, {"x": x, "dy": dy}))
        x, dy = np.asarray(x), np.asarray(dy)
        planes = x.reshape((-1,) + params.input_shape[2:])
        grads = dy.reshape((-1,) + params.output_shape[2:])
        compute = compute_dtype(dtype)
        dx = np.zeros(planes.shape, dtype=compute)
        nan_free = not holds_nan(planes)
        # gradient·[won] routes exactly when every gradient is finite (0·inf would be NaN)
        finite = grads.size == 0 or bool(np.isfinite(np.max(grads)) and np.isfinite(np.min(grads)))
        masks, routed = Buffer(np.dtype(bool)), Buffer(compute)
        for (n0, n1), box in pool_chunks(params, self.memory_budget_bytes, 4 * compute.itemsize + 40):
            images = slice(n0, n1)
            tap = max_taps(planes, params, images, box, nan_free=nan_free, compute=compute)
            grad = grads[(images, *box_slices(box))].astype(compute, copy=False)
            for t, sources, targets in pool_taps(params, box):
                view, grad_here = dx[(images, *sources)], grad[(slice(None), *targets)]
                won = np.equal(tap[(slice(None), *targets)], t, out=masks.take(grad_here.shape))
                if finite:  # branch-free: add gradient·[won]
                    view += np.multiply(grad_here, won, out=routed.take(grad_here.shape))
                else:
                    np.add(view, grad_here, out=view, where=won)
        return dx.reshape(params.input_shape).astype(dtype, copy=False)

    def avg_pool(self, x: Any, params: AvgPoolParams) -> np.ndarray:
        """y = (Σ over each window's taps inside the input) / divisor  (AVGPOOL-DEF-1)."""
        dtype = to_dtype(check_arrays("avg_pool", params, {"x": x}))
        x = np.asarray(x)
        planes = x.reshape((-1,) + params.input_shape[2:])
        compute = compute_dtype(dtype)
        N, C, *o = params.output_shape
        y = np.empty((N * C, *o), dtype=dtype)
        rows = Buffer(compute)
        for (n0, n1), box in pool_chunks(params, self.memory_budget_bytes, 3 * compute.itemsize):
            total = np.zeros((n1 - n0,) + box_shape(box), dtype=compute)
            for _, sources, targets in pool_taps(params, box):
                view = total[(slice(None), *targets)]
                view += staged(planes[(slice(n0, n1), *sources)], rows)
            total /= avg_divisor(params, box, compute)
            y[(slice(n0, n1), *box_slices(box))] = total
        return y.reshape(params.output_shape)

    def avg_pool_backward(self, x: Any, dy: Any, params: AvgPoolParams) -> np.ndarray:
        """dx[u] += dy[p] / divisor[p] for every input element u of window p, tap by tap (AVGPOOL-GRAD-1)."""
        dtype = to_dtype(check_arrays("avg_pool_backward", params, {"x": x, "dy": dy}))
        grads = np.asarray(dy).reshape((-1,) + params.output_shape[2:])
        compute = compute_dtype(dtype)
        dx = np.zeros((grads.shape[0],) + params.input_shape[2:], dtype=compute)
        for (n0, n1), box in pool_chunks(params, self.memory_budget_bytes, 3 * compute.itemsize):
            share = grads[(slice(n0, n1), *box_slices(box))].astype(compute)
            share /= avg_divisor(params, box, compute)
            for _, sources, targets in pool_taps(params, box):
                view = dx[(slice(n0, n1), *sources)]
                view += share[(slice(None), *targets)]
        return dx.reshape(params.input_shape).astype(dtype, copy=False)
