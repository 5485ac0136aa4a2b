"""The PyTorch backend: ``torch.nn.functional`` forward ops, ``torch.autograd`` gradients.

y[n, o, p] = b[o] + Σ_c Σ_q w[o, c, q] · x̃[n, g(o)·C_g + c, p·s + q·d]   (CONV-DEF-1)

NumPy arrays go in and come out (float16, float32, float64 as themselves; ml_dtypes bfloat16 as
``torch.bfloat16`` through an int16 view). Every gradient is ``torch.autograd.grad(y, inputs, dy)``
— the gradient of sum(y·dy) — of the very forward computed here, except one case noted below.

What PyTorch cannot express directly is transformed, each transformation documented by PyTorch:

* conv padding: symmetric zero pads go to ``padding=``; asymmetric pads, 'same*' pads and the
  padding modes reflect / replicate / circular are applied first with ``F.pad`` (what
  ``torch.nn.ConvNd`` does for its ``padding_mode``), then ``padding=0`` (PAD-1, PAD-MODE-1).
* conv_transpose pads: torch takes one symmetric pad per dim. Asymmetric pads run with
  ``padding=0, output_padding=0`` (the full output, extent (n − 1)·s + d·(k − 1) + 1) and then
  ``F.pad`` with negative before/after crops it to [p_b, p_b + o), zero-extending past its end
  where output_padding exceeds p_a; the bias is added after (CONVT-DEF-1).
* max pool: torch accepts symmetric pads of at most kernel_size // 2 only ("pad should be at most
  half of kernel size"). Other pads, and 'same*', pad with ``F.pad(value=-inf)`` to the buffer every
  window lies in (ceil-mode overhang included) and pool in floor mode with ``padding=0``; indices
  are mapped from the padded plane back to the unpadded one (MAXPOOL-INDEX-1). Where a whole window
  is −inf, torch keeps the first tap of the padded window, which may be padding; the spec picks the
  first tap inside the input (MAXPOOL-DEF-1: padding never wins, MAXPOOL-TIE-1), so those indices
  are replaced by that tap. For the same reason the gradient of this path is routed with
  ``Tensor.scatter_add_`` at the corrected indices (what torch's own max-pool backward does), not by
  autograd through the −inf padding, which would send it into the padding.
* avg pool: same pad limit as max pool; in 3-D torch also refuses an input smaller than the kernel
  in any dim even when padding covers it. Such cases pad with zeros first and pool with
  ``padding=0``: count_include_pad=True then counts exactly the taps inside [−p_b, n + p_a)
  (AVGPOOL-DEF-1); count_include_pad=False divides avg(x̃) by avg(mask̃), mask = ones padded with
  zeros (the ratio of sums over the same window, sum / taps inside the input). Torch's ceil rule on
  the padded buffer, "drop the last window if it starts at or past the buffer end", can keep one
  window that starts inside the right padding; POOL-CEIL-1 drops it, so the output is cropped to the
  spec's size (the windows kept are identical). divisor_override exists only in avg_pool2d/3d, so a
  1-D pool with divisor_override runs as avg_pool2d over an extra size-1 axis. On CPU avg_pool3d has
  no float16/bfloat16 kernel ("avg_pool3d_out_frame" not implemented for 'Half'): those inputs are
  pooled in float32 (as avg_pool1d/2d accumulate them anyway) and rounded back.

Declared unsupported (Capabilities.unsupported): avg pool with dilation (no such argument in
``torch.nn.functional.avg_pool*d``). Ranks are 1, 2, 3 (``conv1d``…``conv3d``, ``*_pool1d``…``3d``).

Output sizes: torch's ceil-mode pooling size (``pooling_output_shape`` in ATen) is the spec's
POOL-CEIL-1 formula, "o −= 1 if (o − 1)·s ≥ n + p_b", dilation included; it matched on every
1-D, 2-D and 3-D case swept with padding ≤ kernel_size // 2.

Precision. CPU: float32 and float64 convs accumulate in their dtype; float16 and bfloat16 convs
were measured to accumulate in float32 (rounded once: error < 1 ulp at K = 4096), finer than the
declared ``accumulation=None`` (the input dtype), which keeps ERR-BOUND-1 an upper bound.
NNPACK (Winograd) is switched off for every call (``torch.backends.nnpack.flags(enabled=False)``),
so every algorithm is local. CUDA: cuDNN computes half and bfloat16 convs in float32, but several
CUDA kernels accumulate in the storage dtype (atomicAdd in max_pool3d / avg_pool3d backward, F.pad
backward, scatter_add_), so the declaration stays ``None``; cuDNN's heuristics may pick FFT or
Winograd algorithms, so CUDA declares ``local=False`` (ERR-NONLOCAL-1); those atomics also make it
non-deterministic (HYGIENE-3) although cuDNN itself runs with ``cudnn.deterministic=True``.
float32 on CUDA runs with TF32 off (``torch.backends.cuda.matmul.allow_tf32`` and
``torch.backends.cudnn.allow_tf32`` False); ``tf32=True`` turns both on and declares
``input_precision="tf32"``. Either way the flags are set for the call only and restored after.

torch is imported when the backend is constructed, never when this module is imported.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..spec import AvgPoolParams, ConvParams, ConvTransposeParams, MaxPoolParams, Pads, Params, check_arrays
from .base import Capabilities

_TORCH_MISSING = "torch is not installed: pip install 'convspec[torch]'"

#: padding_mode (PAD-MODE-1) -> the F.pad mode that extends x the same way.
_TORCH_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}

_AVG_POOL_DILATION = "torch.nn.functional.avg_pool1d/2d/3d take no dilation argument"


def _torch_pads(pads: Pads) -> list[int]:
    """F.pad's argument for per-dim (before, after) pads: last dim first."""
    return [side for pair in reversed(pads) for side in pair]


def _symmetric_within_half(pads: Pads, kernel_size: tuple[int, ...]) -> bool:
    """torch's pooling pad rule: one pad per dim, at most kernel_size // 2."""
    return all(before == after and before <= k // 2 for (before, after), k in zip(pads, kernel_size))


def _buffer_pads(params: MaxPoolParams | AvgPoolParams) -> Pads:
    """Per dim (p_b, (o − 1)·s + d·(k − 1) + 1 − n − p_b): the buffer every output window lies in,
    ceil-mode overhang included; a negative 'after' crops input that no window reaches."""
    return tuple(
        (before, (o - 1) * s + d * (k - 1) + 1 - n - before)
        for n, o, k, s, d, (before, _) in zip(params.input_shape[2:], params.output_shape[2:], params.kernel_size,
                                              params.stride, params.dilation, params.pads)
    )


def _first_inside(params: MaxPoolParams) -> np.ndarray:
    """Flat index of the first tap inside the input of every window, in row-major window order.

    Per dim the window starts at t = p·s − p_b; its first tap inside is t + j0·d with
    j0 = max(⌈−t / d⌉, 0) (POOL-WINDOW-1 guarantees it lies below n). Row-major order makes the
    first tap inside the window the one with the first such tap in every dim.
    """
    flat = np.zeros((), np.int64)
    for n, o, s, d, (before, _) in zip(params.input_shape[2:], params.output_shape[2:], params.stride,
                                       params.dilation, params.pads):
        t = np.arange(o) * s - before
        u = t + np.maximum(-(t // d), 0) * d
        flat = flat[..., None] * n + u
    return flat


class TorchBackend:
    """PyTorch's conv and pooling ops, gradients by autograd, on CPU or CUDA.

    Parameters
    ----------
    device : "cpu" (default) or "cuda".
    tf32 : on CUDA, let float32 convs use TF32 tensor cores (declared as ``input_precision="tf32"``);
        False (default) switches TF32 off explicitly for every call.

    Examples
    --------
    >>> from convspec.spec import ConvParams
    >>> x, w = np.arange(5.0).reshape(1, 1, 5), np.array([[[1.0, -1.0]]])
    >>> TorchBackend().conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    array([[[-1., -1., -1., -1.]]])
    """

    def __init__(self, device: str = "cpu", tf32: bool = False) -> None:
        try:
            import torch
            import torch.nn.functional
        except ImportError as exc:
            raise ImportError(_TORCH_MISSING) from exc
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device={device!r} must be 'cpu' or 'cuda'")
        if not isinstance(tf32, bool):
            raise ValueError(f"tf32={tf32!r} must be a bool")
        if tf32 and device != "cuda":
            raise ValueError("tf32=True needs device='cuda': TF32 is a CUDA tensor-core mode")
        if device == "cuda" and not torch.cuda.is_available():
            raise RuntimeError("device='cuda' needs CUDA, but torch.cuda.is_available() is False")
        self._torch: Any = torch
        self._F: Any = torch.nn.functional
        self.device = device
        self.tf32 = tf32
        self.name = "torch" if device == "cpu" else ("torch:cuda:tf32" if tf32 else "torch:cuda")
        cuda = device == "cuda"
        self.capabilities = Capabilities(
            ranks=frozenset({1, 2, 3}),
            # float64 is left to the CPU: on CUDA the half types and float32 are what is exercised.
            dtypes=frozenset({"float16", "bfloat16", "float32"} | (set() if cuda else {"float64"})),
            unsupported={"avg_pool:dilation": _AVG_POOL_DILATION},
            accumulation=None,
            input_precision="tf32" if tf32 else None,
            local=not cuda,
            deterministic=not cuda,
        )

    # -- plumbing ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _math_mode(self) -> Iterator[None]:
        """The numerics this backend declares, for one call; the caller's flags are restored after.

        CPU: NNPACK (Winograd) off, so the algorithm is local. CUDA: TF32 on or off as declared for
        both matmul and cuDNN, cuDNN deterministic and not benchmarking.
        """
        torch = self._torch
        if self.device == "cpu":
            with torch.backends.nnpack.flags(enabled=False):
                yield
            return
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        saved = (matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark)
        try:
            matmul.allow_tf32 = cudnn.allow_tf32 = self.tf32
            cudnn.deterministic, cudnn.benchmark = True, False
            yield
        finally:
            matmul.allow_tf32, cudnn.allow_tf32, cudnn.deterministic, cudnn.benchmark = saved

    def _check(self, op: str, params: Params, arrays: dict[str, Any]) -> np.dtype[Any]:
        """Validate the arrays (LAYOUT-*, DTYPE-1) and refuse what is declared unsupported."""
        dtype_name = check_arrays(op, params, arrays)
        self.capabilities.refuse_unsupported(self.name, op, params, dtype_name)
        return np.asarray(arrays["x"]).dtype

    def _tensor(self, a: np.ndarray | None, requires_grad: bool = False) -> Any:
        """A copy of ``a`` on the device (bfloat16 through an int16 view), or None."""
        if a is None:
            return None
        torch = self._torch
        a = np.array(a, copy=True, order="C")
        if a.dtype.name == "bfloat16":
            t = torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
        else:
            t = torch.from_numpy(a)
        return t.to(self.device).requires_grad_(requires_grad)

    def _array(self, t: Any, dtype: np.dtype[Any]) -> np.ndarray:
        """The tensor ``t`` as a NumPy array of ``dtype``."""
        torch = self._torch
        t = t.detach().to("cpu").contiguous()
        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(dtype)
        return np.asarray(t.numpy(), dtype=dtype)

    def _grads(self, y: Any, inputs: list[Any], dy: Any) -> list[Any]:
        """∂ sum(y·dy) / ∂ input for every input (None stays None)."""
        wanted = [t for t in inputs if t is not None]
        grads = iter(self._torch.autograd.grad(y, wanted, grad_outputs=dy))
        return [None if t is None else next(grads) for t in inputs]

    # -- conv ----------------------------------------------------------------------------------

    def _conv(self, x: Any, w: Any, b: Any, params: ConvParams) -> Any:
        """conv through F.conv{m}d; pads it cannot take go through F.pad first (PAD-1, PAD-MODE-1)."""
        F = self._F
        padding: int | tuple[int, ...]
        if params.padding_mode == "zeros" and all(before == after for before, after in params.pads):
            padding = tuple(before for before, _ in params.pads)
        else:
            x = F.pad(x, _torch_pads(params.pads), mode=_TORCH_PAD_MODES[params.padding_mode])
            padding = 0
        return getattr(F, f"conv{params.rank}d")(x, w, b, stride=params.stride, padding=padding,
                                                 dilation=params.dilation, groups=params.groups)

    def conv(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, params: ConvParams) -> np.ndarray:
        """y[n, o, p] = b[o] + Σ_c Σ_q w[o, c, q] · x̃[n, g(o)·C_g + c, p·s + q·d]  (CONV-DEF-1)."""
        dtype = self._check("conv", params, {"x": x, "w": w, "b": b})
        with self._math_mode(), self._torch.no_grad():
            y = self._conv(self._tensor(x), self._tensor(w), self._tensor(b), params)
        return self._array(y, dtype)

    def conv_backward(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                      params: ConvParams) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(dx, dw, db) = ∂ sum(conv(x, w, b)·dy) / ∂(x, w, b) by autograd  (CONV-GRAD-1)."""
        dtype = self._check("conv_backward", params, {"x": x, "w": w, "dy": dy})
        xt, wt = self._tensor(x, True), self._tensor(w, True)
        bt = None if params.bias_shape is None else self._torch.zeros(
            params.bias_shape, dtype=wt.dtype, device=self.device, requires_grad=True)
        with self._math_mode():
            y = self._conv(xt, wt, bt, params)
            dx, dw, db = self._grads(y, [xt, wt, bt], self._tensor(dy))
        return self._array(dx, dtype), self._array(dw, dtype), None if db is None else self._array(db, dtype)

    # -- conv_transpose ------------------------------------------------------------------------

    def _conv_transpose(self, x: Any, w: Any, b: Any, params: ConvTransposeParams) -> Any:
        """conv_transpose through F.conv_transpose{m}d; asymmetric pads crop its full output."""
        F = self._F
        conv_transpose = getattr(F, f"conv_transpose{params.rank}d")
        if all(before == after for before, after in params.pads):
            return conv_transpose(x, w, b, stride=params.stride, padding=tuple(before for before, _ in params.pads),
                                  output_padding=params.output_padding, groups=params.groups,
                                  dilation=params.dilation)
        full = conv_transpose(x, w, None, stride=params.stride, padding=0, output_padding=0, groups=params.groups,
                              dilation=params.dilation)
        # full covers targets [−p_b, o + p_a − output_padding); keep [0, o), zeros past its end.
        crop = tuple((-before, output_padding - after)
                     for (before, after), output_padding in zip(params.pads, params.output_padding))
        y = F.pad(full, _torch_pads(crop))
        return y if b is None else y + b.reshape((-1,) + (1,) * params.rank)

    def conv_transpose(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                       params: ConvTransposeParams) -> np.ndarray:
        """y[n, g·M+m, p·s + q·d − p_b] += Σ_c w[g·C_g+c, m, q] · x[n, g·C_g+c, p], then + b
        (CONVT-DEF-1)."""
        dtype = self._check("conv_transpose", params, {"x": x, "w": w, "b": b})
        with self._math_mode(), self._torch.no_grad():
            y = self._conv_transpose(self._tensor(x), self._tensor(w), self._tensor(b), params)
        return self._array(y, dtype)

    def conv_transpose_backward(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                                params: ConvTransposeParams) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(dx, dw, db) = ∂ sum(conv_transpose(x, w, b)·dy) / ∂(x, w, b) by autograd  (CONVT-GRAD-1)."""
        dtype = self._check("conv_transpose_backward", params, {"x": x, "w": w, "dy": dy})
        xt, wt = self._tensor(x, True), self._tensor(w, True)
        bt = None if params.bias_shape is None else self._torch.zeros(
            params.bias_shape, dtype=wt.dtype, device=self.device, requires_grad=True)
        with self._math_mode():
            y = self._conv_transpose(xt, wt, bt, params)
            dx, dw, db = self._grads(y, [xt, wt, bt], self._tensor(dy))
        return self._array(dx, dtype), self._array(dw, dtype), None if db is None else self._array(db, dtype)

    # -- max pool ------------------------------------------------------------------------------

    def _max_pool(self, x: Any, params: MaxPoolParams) -> tuple[Any, Any, bool]:
        """(y, indices, native): F.max_pool{m}d, natively when torch takes the pads, else over the
        −inf-padded buffer with indices mapped back and −inf windows corrected (module notes)."""
        torch, F = self._torch, self._F
        pool = getattr(F, f"max_pool{params.rank}d")
        if _symmetric_within_half(params.pads, params.kernel_size):
            y, indices = pool(x, params.kernel_size, params.stride, tuple(before for before, _ in params.pads),
                              params.dilation, params.ceil_mode, return_indices=True)
            return y, indices, True
        buffer = _buffer_pads(params)
        y, indices = pool(F.pad(x, _torch_pads(buffer), value=-math.inf), params.kernel_size, params.stride, 0,
                          params.dilation, False, return_indices=True)
        # Flat index into the padded plane -> coordinates -> flat index into the unpadded plane.
        size = params.input_shape[2:]
        padded = [n + before + after for n, (before, after) in zip(size, buffer)]
        rest, flat = indices, torch.zeros_like(indices)
        scale = 1
        for n, extent, (before, _) in reversed(list(zip(size, padded, buffer))):
            flat = flat + (rest % extent - before) * scale
            rest, scale = rest // extent, scale * n
        first = torch.from_numpy(_first_inside(params)).to(self.device)
        flat = torch.where(y == -math.inf, first, flat)
        return y, flat, False

    def max_pool(self, x: np.ndarray, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
        """y[n, c, p] = max_{q : 0 ≤ u < n} x[n, c, u], u = p·s − p_b + q·d, and the flat index of
        that u (MAXPOOL-DEF-1, MAXPOOL-NAN-1, MAXPOOL-TIE-1, MAXPOOL-INDEX-1).

        Ties: torch keeps the first maximum in row-major window order (it updates on ``>`` only).
        NaN: torch selects a NaN of the window (the last one it scans), which MAXPOOL-NAN-1 allows.
        """
        dtype = self._check("max_pool", params, {"x": x})
        with self._math_mode(), self._torch.no_grad():
            y, indices, _ = self._max_pool(self._tensor(x), params)
        return self._array(y, dtype), self._array(indices, np.dtype(np.int64))

    def max_pool_backward(self, x: np.ndarray, dy: np.ndarray, params: MaxPoolParams) -> np.ndarray:
        """dx[n, c, u] = Σ_{p : indices[n, c, p] = u} dy[n, c, p]  (MAXPOOL-GRAD-1): autograd of the
        native pool; scatter_add_ at the corrected indices on the padded path (module notes)."""
        dtype = self._check("max_pool_backward", params, {"x": x, "dy": dy})
        xt, dyt = self._tensor(x, True), self._tensor(dy)
        with self._math_mode():
            y, indices, native = self._max_pool(xt, params)
            if native:
                (dx,) = self._grads(y, [xt], dyt)
            else:
                batch, channels = params.input_shape[:2]
                dx = self._torch.zeros((batch, channels, math.prod(params.input_shape[2:])), dtype=dyt.dtype,
                                       device=self.device)
                dx.scatter_add_(2, indices.flatten(2), dyt.flatten(2))
                dx = dx.reshape(params.input_shape)
        return self._array(dx, dtype)

    # -- avg pool ------------------------------------------------------------------------------

    def _avg_pool_call(self, x: Any, params: AvgPoolParams, padding: tuple[int, ...], ceil_mode: bool,
                       count_include_pad: bool, divisor_override: int | None) -> Any:
        """F.avg_pool{m}d; 1-D with divisor_override (which avg_pool1d lacks) as avg_pool2d over an
        extra size-1 axis."""
        F = self._F
        if params.rank == 1:
            if divisor_override is None:
                return F.avg_pool1d(x, params.kernel_size, params.stride, padding, ceil_mode, count_include_pad)
            y = F.avg_pool2d(x.unsqueeze(2), (1,) + params.kernel_size, (1,) + params.stride, (0,) + padding,
                             ceil_mode, count_include_pad, divisor_override)
            return y.squeeze(2)
        return getattr(F, f"avg_pool{params.rank}d")(x, params.kernel_size, params.stride, padding, ceil_mode,
                                                     count_include_pad, divisor_override)

    def _avg_pool(self, x: Any, params: AvgPoolParams) -> Any:
        """avg pool through F.avg_pool{m}d, natively when torch takes the configuration, else over
        the zero-padded input (module notes)."""
        torch, F = self._torch, self._F
        half_on_cpu_3d = (self.device == "cpu" and params.rank == 3 and x.dtype in (torch.float16, torch.bfloat16))
        original = x.dtype
        if half_on_cpu_3d:
            x = x.to(torch.float32)
        size, count = params.input_shape[2:], params.output_shape[2:]
        native = _symmetric_within_half(params.pads, params.kernel_size) and not (
            params.rank == 3 and any(n < k for n, k in zip(size, params.kernel_size)))
        if native:
            y = self._avg_pool_call(x, params, tuple(before for before, _ in params.pads), params.ceil_mode,
                                    params.count_include_pad, params.divisor_override)
        else:
            zeros = (0,) * params.rank
            x_tilde = F.pad(x, _torch_pads(params.pads))
            if params.count_include_pad or params.divisor_override is not None:
                y = self._avg_pool_call(x_tilde, params, zeros, params.ceil_mode, True, params.divisor_override)
            else:
                mask = F.pad(torch.ones((1, 1) + size, dtype=x.dtype, device=x.device), _torch_pads(params.pads))
                y = self._avg_pool_call(x_tilde, params, zeros, params.ceil_mode, True, None) \
                    / self._avg_pool_call(mask, params, zeros, params.ceil_mode, True, None)
            # torch's ceil rule on the buffer may keep one more window than POOL-CEIL-1.
            y = y[(Ellipsis,) + tuple(slice(0, o) for o in count)]
        return y.to(original)

    def avg_pool(self, x: np.ndarray, params: AvgPoolParams) -> np.ndarray:
        """y[n, c, p] = (Σ_{q : 0 ≤ u < n} x[n, c, u]) / divisor[p], u = p·s − p_b + q·d
        (AVGPOOL-DEF-1)."""
        dtype = self._check("avg_pool", params, {"x": x})
        with self._math_mode(), self._torch.no_grad():
            y = self._avg_pool(self._tensor(x), params)
        return self._array(y, dtype)

    def avg_pool_backward(self, x: np.ndarray, dy: np.ndarray, params: AvgPoolParams) -> np.ndarray:
        """dx = ∂ sum(avg_pool(x)·dy) / ∂x by autograd  (AVGPOOL-GRAD-1)."""
        dtype = self._check("avg_pool_backward", params, {"x": x, "dy": dy})
        xt = self._tensor(x, True)
        with self._math_mode():
            y = self._avg_pool(xt, params)
            (dx,) = self._grads(y, [xt], self._tensor(dy))
        return self._array(dx, dtype)
