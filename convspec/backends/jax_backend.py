"""The JAX backend: ``jax.lax`` forward ops, ``jax.vjp`` gradients, on JAX's default (CPU) device.

y[n, o, p] = b[o] + Σ_c Σ_q w[o, c, q] · x̃[n, g(o)·C_g + c, p·s + q·d]   (CONV-DEF-1)

NumPy arrays go in (float16, float32, float64, ml_dtypes bfloat16: ``jnp.asarray`` takes them
directly) and NumPy arrays of the input dtype come out. Every gradient op is ``jax.vjp`` of the very
forward function computed here, applied to dy, so JAX's own derivative rules are what is checked.

float64: JAX computes in float32 unless ``jax_enable_x64`` is on. Every call runs inside the
context manager ``jax.enable_x64(True)``, which sets the flag for that call (thread-locally) and
restores the caller's setting after; nothing global is changed. It also makes int64 indices possible.

What lax expresses natively, and the transformations applied (each with its reason):

* conv: ``lax.conv_general_dilated`` with dimension_numbers (N, C, *S) / (O, I, *K) / (N, C, *S)
  for any spatial rank, ``rhs_dilation`` = dilation, ``feature_group_count`` = groups,
  ``precision=HIGHEST`` (no reduced-precision passes on accelerators). Padding: lax's
  ``padtype_to_pads`` defines 'SAME' as o = ⌈n/s⌉, total = max((o − 1)·s + k_eff − n, 0),
  (⌊total/2⌋, rest) with k_eff = d·(k − 1) + 1 the dilated kernel (conv_general_dilated passes the
  effective kernel shape), and 'SAME_LOWER' with the halves swapped: exactly PAD-4 and PAD-5 for
  every n, k, s, d. So a requested 'same'/'same_upper' is passed as 'SAME', 'same_lower' as
  'SAME_LOWER', 'valid' as 'VALID' (zeros padding mode); explicit pads go in as (lo, hi) pairs.
* padding modes reflect / replicate / circular: ``jnp.pad`` modes 'reflect', 'edge', 'wrap' first
  (numpy's semantics, PAD-MODE-1's index maps within the PAD-MODE-2 limits), then padding 0.
* conv_transpose: ``lax.conv_general_dilated`` with ``lhs_dilation`` = stride, rhs_dilation =
  dilation, the kernel flipped in every spatial dim and read as a conv weight
  (C_in, M, *K) → per group (M, C_g, *K) → (C_out, C_g, *K), feature_group_count = groups, and
  padding (d·(k − 1) − p_b, d·(k − 1) − p_a + output_padding), possibly negative (the form SPEC.md
  CONVT-DEF-1 quotes). ``lax.conv_transpose`` is not used: it has no feature_group_count, takes
  its kernel in conv layout with a ``transpose_kernel`` flag and its own padding convention, so
  groups and output_padding would need the same rewriting anyway. The bias is added after.
* max pool values: ``lax.reduce_window(x, −inf, lax.max, ...)`` with window_dilation and the
  explicit pads (reduce_window pads with the init value −inf, so padding never wins,
  MAXPOOL-DEF-1); ceil mode adds right padding up to the last window's end (a negative amount
  crops the input instead, which no window reaches). This is the function max_pool_backward
  differentiates, so JAX's own select-and-scatter gradient is checked (MAXPOOL-GRAD-1).
* max pool indices: lax returns none, so a second, variadic ``lax.reduce_window`` runs over
  (value, flat index) pairs with a reducer that prefers a NaN, then the larger value, then on
  equal values (and between two NaNs) the smaller flat index: the first maximum in row-major window
  order (MAXPOOL-TIE-1, MAXPOOL-NAN-1). Padding carries index int64 max and value −inf, so an
  in-input −inf always beats it. The reducer is commutative and associative, as reduce_window needs.
* avg pool: ``lax.reduce_window(x, 0, lax.add, ...)`` over the same padded window, divided by
  D(p) of AVGPOOL-DEF-1 (divisor_override; else the per-dim tap counts inside [−p_b, n + p_a) or
  inside [0, n), multiplied over dims), computed from the shapes with NumPy and cast to x's dtype.

Declared unsupported: max_pool_backward with dilation (``"max_pool_backward:dilation"``): JAX's
reverse-mode rule for a reduce_window max (the transpose of select_and_gather_add) raises
NotImplementedError "VJP not implemented for select_and_gather (MaxPool) with window dilation";
the forward max pool with dilation runs. Ranks: any m ≥ 1 (XLA convolutions and reduce_window take any
number of spatial dims).

Precision: measured on XLA CPU (jax 0.10.2) with K = 4096 positive terms: float16 and bfloat16
convs and float16 window sums are accumulated in float32 (error < 1 ulp of the result), but a
bfloat16 ``reduce_window`` add accumulates in bfloat16 itself (error ≈ 235 u). The declaration
``accumulation=None`` (the input dtype, ERR-BOUND-1) is therefore the honest upper bound. Every
algorithm is local; repeated calls are deterministic on CPU.

Known upstream deviations, left reported (no workaround here, since the gradients must be JAX's):
(1) ``lax.max`` returns +0.0 for max(−0.0, +0.0) in either order (IEEE 754-2019 maximum), so a
window holding both zeros yields +0.0 where MAXPOOL-TIE-1 selects the first tap's sign (the
indices follow the tie rule); (2) the max-pool VJP routes the gradient of a window containing NaN
to a non-NaN tap (MAXPOOL-NAN-1, MAXPOOL-GRAD-1), and (3) that of an all −∞ window into the −∞
padding, losing it (MAXPOOL-DEF-1); (4) XLA CPU grouped convolutions let ±∞ of one group turn the
outputs of other groups into NaN (a zero-filled block-diagonal kernel multiplies ∞ by 0), seen in
conv_transpose with groups on −∞ data (ERR-SPECIAL-1).

XLA aborts the process on some internal errors: run this backend with ``--isolate``.

jax is imported on the backend's first call: neither importing this module nor constructing the
backend imports it (construction only checks that it is installed). ``--isolate`` forks the process
after loading the backend (the loader imports jax to check it, which starts no XLA threads), so the
XLA runtime starts in the child. Do not fork (``--isolate``) from a process that already ran JAX
computations: JAX warns that fork after its threads started may deadlock.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..spec import AvgPoolParams, ConvParams, ConvTransposeParams, MaxPoolParams, Params, check_arrays
from .base import Capabilities

_JAX_MISSING = "jax is not installed: pip install 'convspec[jax]'"

#: padding_mode (PAD-MODE-1) -> the jnp.pad mode that extends x the same way.
_JNP_PAD_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}

#: requested padding string -> lax's padding string defining the same pads (module notes).
_LAX_PADDING_STRINGS = {"valid": "VALID", "same_upper": "SAME", "same_lower": "SAME_LOWER"}

_NO_INDEX = np.iinfo(np.int64).max

_MAX_POOL_GRAD_DILATION = ("jax.vjp of lax.reduce_window max raises NotImplementedError: 'VJP not implemented for "
                           "select_and_gather (MaxPool) with window dilation'")


def lax_padding(params: ConvParams, strings: dict[str, str] = _LAX_PADDING_STRINGS) -> str | list[tuple[int, int]]:
    """What conv passes to conv_general_dilated as ``padding``: lax's string where it names the
    requested form (zeros mode), else the explicit (lo, hi) pairs."""
    if params.padding_mode == "zeros" and isinstance(params.padding, str):
        return strings[params.padding]
    if params.padding_mode == "zeros":
        return [(int(before), int(after)) for before, after in params.pads]
    return [(0, 0)] * params.rank


def _window_pads(params: MaxPoolParams | AvgPoolParams) -> tuple[tuple[int, int], ...]:
    """Per dim (p_b, (o − 1)·s + d·(k − 1) + 1 − n − p_b): the window buffer, ceil-mode overhang
    included; a negative 'after' means input no window reaches."""
    return tuple(
        (before, (o - 1) * s + d * (k - 1) + 1 - n - before)
        for n, o, k, s, d, (before, _) in zip(params.input_shape[2:], params.output_shape[2:], params.kernel_size,
                                              params.stride, params.dilation, params.pads)
    )


def _divisor(params: AvgPoolParams) -> np.ndarray:
    """D(p) of AVGPOOL-DEF-1 over the output's spatial shape (float64)."""
    if params.divisor_override is not None:
        return np.full(params.output_shape[2:], float(params.divisor_override))
    divisor = np.ones((), np.float64)
    for n, o, k, s, d, (before, after) in zip(params.input_shape[2:], params.output_shape[2:], params.kernel_size,
                                              params.stride, params.dilation, params.pads):
        taps = (np.arange(o)[:, None] * s - before) + np.arange(k)[None, :] * d
        lo, hi = (-before, n + after) if params.count_include_pad else (0, n)
        counts = ((taps >= lo) & (taps < hi)).sum(axis=1).astype(np.float64)
        divisor = divisor[..., None] * counts
    return divisor


class JaxBackend:
    """JAX's lax conv and window ops, gradients by ``jax.vjp``.

    Examples
    --------
    >>> from convspec.spec import ConvParams
    >>> x, w = np.arange(5.0).reshape(1, 1, 5), np.array([[[1.0, -1.0]]])
    >>> JaxBackend().conv(x, w, None, ConvParams(input_shape=x.shape, weight_shape=w.shape))
    array([[[-1., -1., -1., -1.]]])
    """

    def __init__(self) -> None:
        import importlib.util

        if importlib.util.find_spec("jax") is None:
            raise ImportError(_JAX_MISSING)
        self._modules: tuple[Any, Any, Any] | None = None  # jax, jax.numpy, jax.lax: on first call
        self._padding_strings = dict(_LAX_PADDING_STRINGS)
        self.name = "jax"
        self.capabilities = Capabilities(
            ranks=None,
            dtypes=frozenset({"float16", "bfloat16", "float32", "float64"}),
            unsupported={"max_pool_backward:dilation": _MAX_POOL_GRAD_DILATION},
            accumulation=None,
            local=True,
            deterministic=True,
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _load(self) -> tuple[Any, Any, Any]:
        """jax, jax.numpy and jax.lax, imported on the first call, not at construction (module notes)."""
        if self._modules is None:
            try:
                import jax
                import jax.numpy as jnp
                from jax import lax
            except ImportError as exc:
                raise ImportError(_JAX_MISSING) from exc
            self._modules = (jax, jnp, lax)
        return self._modules

    @property
    def _jax(self) -> Any:
        return self._load()[0]

    @property
    def _jnp(self) -> Any:
        return self._load()[1]

    @property
    def _lax(self) -> Any:
        return self._load()[2]

    def _check(self, op: str, params: Params, arrays: dict[str, Any]) -> np.dtype[Any]:
        """Validate the arrays (LAYOUT-*, DTYPE-1) and refuse what is declared unsupported."""
        dtype_name = check_arrays(op, params, arrays)
        self.capabilities.refuse_unsupported(self.name, op, params, dtype_name)
        return np.asarray(arrays["x"]).dtype

    def _array(self, a: np.ndarray | None) -> Any:
        return None if a is None else self._jnp.asarray(np.asarray(a))

    @staticmethod
    def _numpy(y: Any, dtype: np.dtype[Any]) -> np.ndarray:
        return np.asarray(y).astype(dtype, copy=False)

    def _vjp(self, forward: Any, primals: list[Any], dy: Any) -> list[Any]:
        """∂ sum(forward(*primals)·dy) / ∂ primal for every primal (None stays None)."""
        wanted = [i for i, p in enumerate(primals) if p is not None]

        def f(*args: Any) -> Any:
            full = list(primals)
            for i, a in zip(wanted, args):
                full[i] = a
            return forward(*full)

        _, pullback = self._jax.vjp(f, *[primals[i] for i in wanted])
        grads = iter(pullback(dy))
        return [None if p is None else next(grads) for p in primals]

    def _dimension_numbers(self, rank: int) -> Any:
        spec = tuple(range(rank + 2))
        return self._lax.ConvDimensionNumbers(spec, spec, spec)

    # -- conv ----------------------------------------------------------------------------------

    def _conv(self, x: Any, w: Any, b: Any, params: ConvParams) -> Any:
        """conv_general_dilated; padding modes other than zeros through jnp.pad first."""
        jnp, lax = self._jnp, self._lax
        if params.padding_mode != "zeros":
            x = jnp.pad(x, ((0, 0), (0, 0)) + tuple(params.pads), mode=_JNP_PAD_MODES[params.padding_mode])
        y = lax.conv_general_dilated(x, w, window_strides=params.stride, padding=lax_padding(params, self._padding_strings),
                                     rhs_dilation=params.dilation, feature_group_count=params.groups,
                                     dimension_numbers=self._dimension_numbers(params.rank),
                                     precision=lax.Precision.HIGHEST)
        return y if b is None else y + b.reshape((-1,) + (1,) * params.rank)

    def conv(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, params: ConvParams) -> np.ndarray:
        """y[n, o, p] = b[o] + Σ_c Σ_q w[o, c, q] · x̃[n, g(o)·C_g + c, p·s + q·d]  (CONV-DEF-1)."""
        dtype = self._check("conv", params, {"x": x, "w": w, "b": b})
        with self._jax.enable_x64(True):
            y = self._conv(self._array(x), self._array(w), self._array(b), params)
            return self._numpy(y, dtype)

    def _bias_zeros(self, params: ConvParams | ConvTransposeParams, w: Any) -> Any:
        return None if params.bias_shape is None else self._jnp.zeros(params.bias_shape, w.dtype)

    def conv_backward(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                      params: ConvParams) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(dx, dw, db) = jax.vjp of conv at (x, w, b) applied to dy  (CONV-GRAD-1)."""
        dtype = self._check("conv_backward", params, {"x": x, "w": w, "dy": dy})
        with self._jax.enable_x64(True):
            xj, wj = self._array(x), self._array(w)
            dx, dw, db = self._vjp(lambda a, b_, c: self._conv(a, b_, c, params),
                                   [xj, wj, self._bias_zeros(params, wj)], self._array(dy))
            return self._numpy(dx, dtype), self._numpy(dw, dtype), None if db is None else self._numpy(db, dtype)

    # -- conv_transpose ------------------------------------------------------------------------

    def _conv_transpose(self, x: Any, w: Any, b: Any, params: ConvTransposeParams) -> Any:
        """conv_general_dilated with lhs_dilation = stride and the flipped, regrouped kernel."""
        jnp, lax = self._jnp, self._lax
        groups, rank = params.groups, params.rank
        c_in, m = w.shape[0], w.shape[1]
        kernel = w.shape[2:]
        # (C_in, M, *K) -> (G, C_g, M, *K) -> (G, M, C_g, *K) -> (G·M, C_g, *K), flipped spatially.
        w_conv = w.reshape((groups, c_in // groups, m) + kernel)
        w_conv = jnp.swapaxes(w_conv, 1, 2).reshape((groups * m, c_in // groups) + kernel)
        w_conv = jnp.flip(w_conv, axis=tuple(range(2, 2 + rank)))
        padding = [(d * (k - 1) - before, d * (k - 1) - after + op)
                   for k, d, (before, after), op in zip(kernel, params.dilation, params.pads, params.output_padding)]
        y = lax.conv_general_dilated(x, w_conv, window_strides=(1,) * rank, padding=padding,
                                     lhs_dilation=params.stride, rhs_dilation=params.dilation,
                                     feature_group_count=groups, dimension_numbers=self._dimension_numbers(rank),
                                     precision=lax.Precision.HIGHEST)
        return y if b is None else y + b.reshape((-1,) + (1,) * rank)

    def conv_transpose(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                       params: ConvTransposeParams) -> np.ndarray:
        """y[n, g·M+m, p·s + q·d − p_b] += Σ_c w[g·C_g+c, m, q] · x[n, g·C_g+c, p], then + b
        (CONVT-DEF-1)."""
        dtype = self._check("conv_transpose", params, {"x": x, "w": w, "b": b})
        with self._jax.enable_x64(True):
            y = self._conv_transpose(self._array(x), self._array(w), self._array(b), params)
            return self._numpy(y, dtype)

    def conv_transpose_backward(self, x: np.ndarray, w: np.ndarray, dy: np.ndarray,
                                params: ConvTransposeParams) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(dx, dw, db) = jax.vjp of conv_transpose applied to dy  (CONVT-GRAD-1)."""
        dtype = self._check("conv_transpose_backward", params, {"x": x, "w": w, "dy": dy})
        with self._jax.enable_x64(True):
            xj, wj = self._array(x), self._array(w)
            dx, dw, db = self._vjp(lambda a, b_, c: self._conv_transpose(a, b_, c, params),
                                   [xj, wj, self._bias_zeros(params, wj)], self._array(dy))
            return self._numpy(dx, dtype), self._numpy(dw, dtype), None if db is None else self._numpy(db, dtype)

    # -- pools ---------------------------------------------------------------------------------

    def _windowed(self, x: Any, params: MaxPoolParams | AvgPoolParams) -> tuple[Any, list[tuple[int, int]]]:
        """x cropped where no window reaches, and reduce_window's (lo, hi) pads for the rest."""
        pads = []
        for axis, (before, after) in enumerate(_window_pads(params), start=2):
            if after < 0:
                x = self._lax.slice_in_dim(x, 0, x.shape[axis] + after, axis=axis)
                after = 0
            pads.append((before, after))
        return x, [(0, 0), (0, 0)] + pads

    def _reduce(self, x: Any, init: Any, op: Any, params: MaxPoolParams | AvgPoolParams) -> Any:
        x, padding = self._windowed(x, params)
        return self._lax.reduce_window(x, init, op, (1, 1) + params.kernel_size, (1, 1) + params.stride,
                                       padding, window_dilation=(1, 1) + params.dilation)

    def _max_pool(self, x: Any, params: MaxPoolParams) -> Any:
        return self._reduce(x, self._jnp.array(-np.inf, x.dtype), self._lax.max, params)

    def max_pool(self, x: np.ndarray, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
        """y[n, c, p] = max_{q : 0 ≤ u < n} x[n, c, u], u = p·s − p_b + q·d, and the flat index of
        that u (MAXPOOL-DEF-1, MAXPOOL-NAN-1, MAXPOOL-TIE-1, MAXPOOL-INDEX-1)."""
        dtype = self._check("max_pool", params, {"x": x})
        with self._jax.enable_x64(True):
            xj = self._array(x)
            y = self._max_pool(xj, params)
            indices = self._indices(xj, params)
            return self._numpy(y, dtype), np.asarray(indices).astype(np.int64, copy=False)

    def _indices(self, x: Any, params: MaxPoolParams) -> Any:
        """Flat indices of the selected taps: a variadic reduce_window over (value, index) pairs."""
        jnp, lax = self._jnp, self._lax
        size = params.input_shape[2:]
        index = jnp.broadcast_to(jnp.arange(int(np.prod(size)), dtype=jnp.int64).reshape(size), x.shape)

        def pick(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[Any, Any]:
            (va, ia), (vb, ib) = a, b
            na, nb = jnp.isnan(va), jnp.isnan(vb)
            take_b = (nb & ~na) | (~na & ~nb & (vb > va)) | (((na & nb) | (va == vb)) & (ib < ia))
            return jnp.where(take_b, vb, va), jnp.where(take_b, ib, ia)

        x, padding = self._windowed(x, params)
        index, _ = self._windowed(index, params)
        _, selected = lax.reduce_window((x, index), (jnp.array(-np.inf, x.dtype), jnp.array(_NO_INDEX, jnp.int64)),
                                        pick, (1, 1) + params.kernel_size, (1, 1) + params.stride, padding,
                                        window_dilation=(1, 1) + params.dilation)
        return selected

    def max_pool_backward(self, x: np.ndarray, dy: np.ndarray, params: MaxPoolParams) -> np.ndarray:
        """dx = jax.vjp of the reduce_window max applied to dy  (MAXPOOL-GRAD-1)."""
        dtype = self._check("max_pool_backward", params, {"x": x, "dy": dy})
        with self._jax.enable_x64(True):
            (dx,) = self._vjp(lambda a: self._max_pool(a, params), [self._array(x)], self._array(dy))
            return self._numpy(dx, dtype)

    def _avg_pool(self, x: Any, params: AvgPoolParams) -> Any:
        total = self._reduce(x, self._jnp.array(0, x.dtype), self._lax.add, params)
        return total / self._jnp.asarray(_divisor(params), dtype=x.dtype)

    def avg_pool(self, x: np.ndarray, params: AvgPoolParams) -> np.ndarray:
        """y[n, c, p] = (Σ_{q : 0 ≤ u < n} x[n, c, u]) / divisor[p], u = p·s − p_b + q·d
        (AVGPOOL-DEF-1)."""
        dtype = self._check("avg_pool", params, {"x": x})
        with self._jax.enable_x64(True):
            return self._numpy(self._avg_pool(self._array(x), params), dtype)

    def avg_pool_backward(self, x: np.ndarray, dy: np.ndarray, params: AvgPoolParams) -> np.ndarray:
        """dx = jax.vjp of avg_pool applied to dy  (AVGPOOL-GRAD-1)."""
        dtype = self._check("avg_pool_backward", params, {"x": x, "dy": dy})
        with self._jax.enable_x64(True):
            (dx,) = self._vjp(lambda a: self._avg_pool(a, params), [self._array(x)], self._array(dy))
            return self._numpy(dx, dtype)
