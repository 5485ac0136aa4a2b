"""Adapters: code that was not written for convspec, run as a :class:`~convspec.backends.Backend`.

Two ways in, from no glue at all to a few lines:

* :class:`FunctionalBackend` wraps a module (or any object) whose functions have the names and
  signatures of ``torch.nn.functional`` — ``conv2d(input, weight, bias=None, stride=1, padding=0,
  dilation=1, groups=1)``, ``max_pool1d``, ``avg_pool3d``... — and infers its capabilities from
  which functions exist and which parameters they take.
* :class:`FunctionBackend` turns plain functions with any signature into a backend: one callable
  per op, each taking the op's arrays and the spec's parameter object, plus what it supports::

      backend = FunctionBackend("mine", conv=lambda x, w, b, p: my_conv2d(x, w, p.stride[0]), ranks={2},
                                unsupported={"padding": "my_conv2d does not pad"})

Both check every call against the declared capabilities first and raise
:class:`~convspec.spec.Unsupported` for a feature they declared they cannot run, so a function
that would silently ignore, say, ``dilation`` never returns a wrong answer. Results are converted
to NumPy (``np.asarray``; torch tensors through ``.detach().cpu().numpy()``) and otherwise left as
the wrapped code returned them — their dtype included: DTYPE-1 is checked by the harness, not
patched here.

What the wrapped code raises reaches the harness unchanged (``NotImplementedError`` is reported as
*unsupported (raised)*). Where the adapter's own conversion of what it returned fails — an index
outside the plane it was given, an output of a shape that cannot be cropped — the adapter raises
:class:`~convspec.spec.NonConformingOutput` with the clause those outputs break: the backend's
non-conformance, never an error inside convspec.
"""

from __future__ import annotations

import copy
import inspect
import math
import re
import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..spec import (
    CORE_OPS,
    FORWARD_OPS,
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    NonConformingOutput,
    Params,
    Unsupported,
    check_arrays,
    dtype_name,
)
from ..spec.features import FEATURES
from .base import Capabilities, refused_by_adapter

#: The three padding-mode features (PAD-MODE-1), for ``dict.fromkeys(PADDING_MODE_FEATURES, reason)``.
PADDING_MODE_FEATURES = ("padding_mode.reflect", "padding_mode.replicate", "padding_mode.circular")

#: Spatial ranks that have a function ``<op><m>d`` in torch.nn.functional.
FUNCTIONAL_RANKS = (1, 2, 3)

#: Parameters of the torch.nn.functional functions, by op (the documented signatures). Used when
#: ``inspect.signature`` cannot see a function's parameters (C builtins, ``*args, **kwargs``).
TORCH_PARAMETERS: dict[str, tuple[str, ...]] = {
    "conv": ("input", "weight", "bias", "stride", "padding", "dilation", "groups"),
    "conv_transpose": ("input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"),
    "max_pool": ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
    "avg_pool": ("input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"),
}

#: Parameters a function must take to be used at all: without them its behaviour is unknown.
_REQUIRED_PARAMETERS = {
    "conv": ("input", "weight"),
    "conv_transpose": ("input", "weight"),
    "max_pool": ("input", "kernel_size", "stride"),
    "avg_pool": ("input", "kernel_size", "stride"),
}

#: (op, parameter) -> the feature that cannot be run without that parameter, when the adapter
#: has no exact transformation to stand in for it.
_FEATURE_OF_PARAMETER = {
    ("conv", "bias"): "bias",
    ("conv", "stride"): "stride",
    ("conv", "dilation"): "dilation",
    ("conv", "groups"): "groups",
    ("conv_transpose", "bias"): "bias",
    ("conv_transpose", "stride"): "stride",
    ("conv_transpose", "dilation"): "dilation",
    ("conv_transpose", "groups"): "groups",
    ("max_pool", "dilation"): "dilation",
    ("max_pool", "ceil_mode"): "ceil_mode",
    ("avg_pool", "padding"): "padding",
    ("avg_pool", "ceil_mode"): "ceil_mode",
    ("avg_pool", "count_include_pad"): "padding",
    ("avg_pool", "dilation"): "dilation",
    ("avg_pool", "divisor_override"): "divisor_override",
}

#: Spec padding mode (PAD-MODE-1) -> the ``np.pad`` mode that defines it.
_NUMPY_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}

#: PARAM-3: the value a torch-style argument takes when it is left out; a pool's stride defaults to
#: its kernel_size. count_include_pad has none in the spec (AVGPOOL-PARAM-1): it is always passed.
ARGUMENT_DEFAULTS: dict[str, Any] = {
    "bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1, "output_padding": 0,
    "ceil_mode": False, "divisor_override": None, "return_indices": False,
}


class _Raised(Exception):
    """Carries what the wrapped code raised through the adapter's own code, so the two are told
    apart: the first reaches the harness unchanged, the second is a NonConformingOutput."""

    def __init__(self, original: Exception) -> None:
        super().__init__(str(original))
        self.original = original


def _guarded(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, its exception carried as :class:`_Raised`."""
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - re-raised unchanged by _Adapter._run
        raise _Raised(exc) from exc


def to_numpy(result: Any) -> Any:
    """``result`` as NumPy: a tensor through ``.detach().cpu().numpy()``, tuples element-wise, None
    and str (a reason in place of max_pool's indices) kept."""
    if result is None or isinstance(result, str):
        return result
    if isinstance(result, tuple):
        return tuple(to_numpy(item) for item in result)
    if hasattr(result, "detach") and hasattr(result, "numpy"):
        result = result.detach()
        if hasattr(result, "cpu"):
            result = result.cpu()
        return result.numpy()
    return np.asarray(result)


class _Adapter:
    """One method per op of the op table, each checked against ``capabilities`` and dispatched
    to ``self._ops[op]`` (a callable with the backend calling convention; those of ``_own`` are the
    adapter's methods, which call the wrapped code through :func:`_guarded` themselves)."""

    name: str
    capabilities: Capabilities
    _ops: dict[str, Callable[..., Any]]
    _own: frozenset[str] = frozenset()
    _validate: bool = False

    def _run(self, op: str, *arguments: Any) -> Any:
        *arrays, params = arguments
        if self._validate:  # the spec refuses invalid configurations before the wrapped code runs
            try:
                check_arrays(op, params, dict(zip(OPS[op].inputs, arrays)))
            except (ValueError, TypeError) as exc:
                raise refused_by_adapter(exc)
        dtype = dtype_name(np.asarray(arrays[0]).dtype)
        self.capabilities.refuse_unsupported(self.name, op, params, dtype)
        fn = self._ops[op]
        try:
            result = fn(*arrays, params) if op in self._own else _guarded(fn, *arrays, params)
            return to_numpy(result)
        except _Raised as raised:
            raise raised.original from None
        except (NonConformingOutput, MemoryError):
            raise
        except Exception as exc:  # noqa: BLE001 - the adapter's own code failed on what it was given
            raise NonConformingOutput(
                "HYGIENE-2", f"{self.name}: {op} returned outputs the adapter cannot convert to the op table's "
                f"({type(exc).__name__}: {exc})") from exc

    def conv(self, x: Any, w: Any, b: Any, params: ConvParams) -> Any:
        return self._run("conv", x, w, b, params)

    def conv_backward(self, x: Any, w: Any, dy: Any, params: ConvParams) -> Any:
        return self._run("conv_backward", x, w, dy, params)

    def conv_transpose(self, x: Any, w: Any, b: Any, params: ConvTransposeParams) -> Any:
        return self._run("conv_transpose", x, w, b, params)

    def conv_transpose_backward(self, x: Any, w: Any, dy: Any, params: ConvTransposeParams) -> Any:
        return self._run("conv_transpose_backward", x, w, dy, params)

    def max_pool(self, x: Any, params: MaxPoolParams) -> Any:
        return self._run("max_pool", x, params)

    def max_pool_backward(self, x: Any, dy: Any, params: MaxPoolParams) -> Any:
        return self._run("max_pool_backward", x, dy, params)

    def avg_pool(self, x: Any, params: AvgPoolParams) -> Any:
        return self._run("avg_pool", x, params)

    def avg_pool_backward(self, x: Any, dy: Any, params: AvgPoolParams) -> Any:
        return self._run("avg_pool_backward", x, dy, params)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ops={sorted(self.capabilities.ops)}>"


# --------------------------------------------------------------------------------------------
# Plain functions with their own signatures
# --------------------------------------------------------------------------------------------


class FunctionBackend(_Adapter):
    """A backend made of plain callables, one per op, each called as ``fn(*arrays, params)``.

    ``ops`` of the capabilities are the ops given; every other keyword is a field of
    :class:`Capabilities` (``ranks``, ``dtypes``, ``unsupported``, ``accumulation``, ``local``,
    ``deterministic``, ``layout``, ``speed``, ``input_precision``).

    Parameters
    ----------
    name : the backend's name in reports.
    conv, conv_backward, conv_transpose, conv_transpose_backward, max_pool, max_pool_backward,
    avg_pool, avg_pool_backward : callables with the backend calling convention of the op
        (``conv(x, w, b, params) -> y``, ``max_pool(x, params) -> (y, indices)``...), usually a
        lambda that maps the spec's parameter object onto the wrapped function's own arguments.
        A max_pool that cannot return indices declares ``unsupported={"max_pool:indices": why}``
        and returns ``y`` alone (or ``(y, None)``): its values are checked, its indices reported
        as not compared (MAXPOOL-INDEX-1). A callable that raises ``NotImplementedError`` (or
        :class:`~convspec.spec.Unsupported`) is reported *unsupported (raised)* for that case,
        with its message, never as a failure.
    validate : True (default): arrays and parameters are checked with the spec's
        ``check_arrays`` before a callable runs, so invalid configurations raise InvalidParams
        (the conformance "invalid" family then passes on the adapter's behalf). False: the
        callables see invalid configurations too, to check your own validation.

    Examples
    --------
    >>> import numpy as np
    >>> from convspec.spec import ConvParams
    >>> backend = FunctionBackend(
    ...     "correlate1d",
    ...     conv=lambda x, w, b, p: np.correlate(x[0, 0], w[0, 0], mode="valid")[None, None],
    ...     ranks={1}, unsupported={"padding": "valid only", "stride": "no stride", "bias": "no bias",
    ...                             "groups": "one channel", "dilation": "no dilation"})
    >>> backend.conv(np.arange(4.0)[None, None], np.ones((1, 1, 2)), None,
    ...              ConvParams(input_shape=(1, 1, 4), weight_shape=(1, 1, 2)))
    array([[[1., 3., 5.]]])
    """

    def __init__(
        self,
        name: str,
        *,
        conv: Callable[..., Any] | None = None,
        conv_backward: Callable[..., Any] | None = None,
        conv_transpose: Callable[..., Any] | None = None,
        conv_transpose_backward: Callable[..., Any] | None = None,
        max_pool: Callable[..., Any] | None = None,
        max_pool_backward: Callable[..., Any] | None = None,
        avg_pool: Callable[..., Any] | None = None,
        avg_pool_backward: Callable[..., Any] | None = None,
        validate: bool = True,
        **capability_fields: Any,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(f"name={name!r} must be a non-empty str")
        self._validate = validate
        given = {
            "conv": conv, "conv_backward": conv_backward, "conv_transpose": conv_transpose,
            "conv_transpose_backward": conv_transpose_backward, "max_pool": max_pool,
            "max_pool_backward": max_pool_backward, "avg_pool": avg_pool, "avg_pool_backward": avg_pool_backward,
        }
        for op, fn in given.items():
            if fn is not None and not callable(fn):
                raise TypeError(f"{op}={fn!r} must be callable")
        if "ops" in capability_fields:
            raise TypeError("ops= is not accepted: the ops are those given as callables (conv=..., max_pool=...)")
        self._ops = {op: fn for op, fn in given.items() if fn is not None}
        self._own = frozenset()
        if not self._ops:
            raise TypeError(f"give at least one op as a callable: {', '.join(OPS)}")
        self.name = name
        self.capabilities = Capabilities(ops=frozenset(self._ops), **capability_fields)


# --------------------------------------------------------------------------------------------
# torch.nn.functional look-alikes
# --------------------------------------------------------------------------------------------


def _parameters(fn: Callable[..., Any], op: str, rank: int) -> frozenset[str]:
    """Parameter names ``fn`` takes; the documented torch.nn.functional ones when it does not say."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # C builtins such as torch.conv2d have no signature
        signature = None
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    if signature is None or any(p.kind in variadic for p in signature.parameters.values()):
        names = set(TORCH_PARAMETERS[op])
        if op == "avg_pool" and rank == 1:  # torch.nn.functional.avg_pool1d has no divisor_override
            names.discard("divisor_override")
        return frozenset(names)
    return frozenset(signature.parameters)


def _takes_padding_strings(fn: Callable[..., Any]) -> bool:
    """Whether ``fn``'s ``padding`` takes 'same' and 'valid' as torch's conv does: its annotation
    names ``str`` or its default is a str; True where only torch's documented signature is known."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):  # C builtins: torch's documented signature
        return True
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    if any(p.kind in variadic for p in signature.parameters.values()):
        return True
    padding = signature.parameters.get("padding")
    if padding is None:
        return False
    annotation = padding.annotation
    named = annotation is str or (annotation is not inspect.Parameter.empty
                                  and re.search(r"\bstr\b", str(annotation)) is not None)
    return named or isinstance(padding.default, str)


def _same_value(value: Any, default: Any) -> bool:
    """``value`` equals ``default`` as torch-style per-dim arguments: 2 == (2, 2), (1, 2) == (1, 2)."""
    if value is None or default is None or isinstance(value, str) or isinstance(default, str):
        return value is default or (isinstance(value, str) and value == default)
    values = value if isinstance(value, tuple) else (value,)
    defaults = default if isinstance(default, tuple) else (default,)
    return set(values) == set(defaults) if 1 in (len(values), len(defaults)) else values == defaults


def _native_converter(functions: Any) -> Callable[[np.ndarray], Any] | None:
    """torch.from_numpy for objects that live in torch (torch.nn.functional itself), else None."""
    module_name = functions.__name__ if inspect.ismodule(functions) else type(functions).__module__
    if module_name.partition(".")[0] != "torch" or "torch" not in sys.modules:
        return None
    torch = sys.modules["torch"]
    return lambda array: torch.from_numpy(np.ascontiguousarray(array))


def _per_dim(values: Iterable[int]) -> int | tuple[int, ...]:
    """One int when every spatial dim agrees (what any torch-style function takes), else a tuple."""
    entries = tuple(values)
    return entries[0] if len(set(entries)) == 1 else entries


def _symmetric(params: Params) -> bool:
    return all(before == after for before, after in params.pads)


def _within_half_kernel(params: MaxPoolParams | AvgPoolParams) -> bool:
    """torch pools refuse a pad over half the kernel (feature pool_padding_over_half_kernel)."""
    return all(max(pair) <= k // 2 for pair, k in zip(params.pads, params.kernel_size))


def _pad(x: np.ndarray, pads: Iterable[tuple[int, int]], mode: str, value: float = 0.0) -> np.ndarray:
    """x̃: x extended by ``pads`` in its spatial dims, by the spec's padding ``mode`` (PAD-MODE-1)."""
    widths = ((0, 0), (0, 0), *pads)
    if mode == "zeros":
        return np.pad(x, widths, mode="constant", constant_values=value)
    return np.pad(x, widths, mode=_NUMPY_PAD_MODES[mode])  # type: ignore[call-overload]


def _first_taps_inside(params: MaxPoolParams) -> np.ndarray:
    """Flat index (MAXPOOL-INDEX-1) of the first tap inside the input of every window, shape (*o).

    Window p of a dim starts at t = p·s − p_b; its first tap inside is t + j₀·d,
    j₀ = max(⌈−t/d⌉, 0) (it exists: POOL-WINDOW-1).
    """
    coordinates = []
    for o, s, d, (p_b, _) in zip(params.output_shape[2:], params.stride, params.dilation, params.pads):
        t = np.arange(o) * s - p_b
        j0 = np.maximum(-(t // d), 0)  # -(t // d) = ⌈−t/d⌉
        coordinates.append(t + j0 * d)
    grid = np.meshgrid(*coordinates, indexing="ij")
    return np.ravel_multi_index(tuple(grid), params.input_shape[2:]).astype(np.int64)


def _function_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__name__", None) or repr(fn))


def _unpadded_indices(indices: np.ndarray, padded_shape: tuple[int, ...], params: MaxPoolParams,
                      fn: Callable[..., Any]) -> np.ndarray:
    """Indices into the −inf pre-padded plane mapped to the unpadded one (MAXPOOL-INDEX-1), in the
    dtype the function returned (MAXPOOL-INDEX-2 is the harness's to check). A window that only −inf
    padding won gets its first tap inside the input (padding never wins, MAXPOOL-DEF-1)."""
    size = math.prod(padded_shape)
    if not np.issubdtype(indices.dtype, np.integer):
        raise NonConformingOutput("HYGIENE-2", f"{_function_name(fn)} returned indices of dtype {indices.dtype}")
    outside = (indices < 0) | (indices >= size)
    if outside.any():
        where = tuple(int(i) for i in np.unravel_index(int(np.argmax(outside)), outside.shape))
        raise NonConformingOutput(
            "MAXPOOL-INDEX-1", f"{_function_name(fn)} returned index {int(indices[where])} at {where}, outside the "
            f"{'×'.join(map(str, padded_shape))} plane it was given ({int(outside.sum())} such indices)")
    coordinates = np.unravel_index(indices.astype(np.int64), padded_shape)
    spatial = params.input_shape[2:]
    unpadded = tuple(c - before for c, (before, _) in zip(coordinates, params.pads))
    inside = np.logical_and.reduce([(u >= 0) & (u < n) for u, n in zip(unpadded, spatial)])
    clipped = tuple(np.clip(u, 0, n - 1) for u, n in zip(unpadded, spatial))
    mapped = np.ravel_multi_index(clipped, spatial)
    return np.where(inside, mapped, _first_taps_inside(params)).astype(indices.dtype)


class FunctionalBackend(_Adapter):
    """A backend from an object whose functions look like torch.nn.functional's.

    Functions ``conv{m}d``, ``conv_transpose{m}d``, ``max_pool{m}d`` and ``avg_pool{m}d``
    (m = 1, 2, 3) are used with torch's signatures, NumPy arrays in. A function named exactly as
    an op of the op table (``conv``, ``conv_backward``, ``max_pool_backward``...) is used directly
    with convspec's calling convention; this is the only way to declare gradients, since
    torch.nn.functional has none.

    Capabilities are inferred:

    * ops: the forward ops with at least one ``<op>{m}d`` function, plus the directly named ones;
    * ranks: the ranks every such forward op has a function for (None when only direct ops exist);
    * unsupported: a feature a function has no parameter for (``inspect.signature``; the documented
      torch signature where it cannot tell), and the limits of torch-style signatures that no exact
      transformation removes. The adapter does transform, exactly:

      - conv with asymmetric pads, pads without a ``padding`` parameter, or a padding mode other
        than zeros: pads x itself (``np.pad``, the mode's definition in PAD-MODE-1), then calls with
        ``padding=0`` — except that 'valid', and 'same' (= 'same_upper', PAD-4) at stride 1 with
        zero padding, go to the function as the strings ``padding='valid'`` / ``padding='same'``
        when it takes them (as torch's conv does, whose 'same' is stride 1 only and puts the odd
        pad after), so its own 'same' code runs;
      - conv_transpose with asymmetric pads: calls with ``padding=0`` and crops p_b before and p_a
        after (CONVT-DEF-1: the pads only crop the full output); output_padding beyond what the
        crop leaves is passed on or, without that parameter, filled with the bias (no tap lands
        there, CONVT-SHAPE-1);
      - max_pool with asymmetric pads or pads over half the kernel: pads x with −inf, calls with
        ``padding=0``, maps the indices back to the unpadded plane (MAXPOOL-INDEX-1) and crops the
        extra ceil-mode window torch's rule allows at zero padding (POOL-CEIL-1). Where −inf
        padding tied an all −inf window, the index is moved to the window's first tap inside the
        input (padding never wins, MAXPOOL-DEF-1);
      - avg_pool1d without divisor_override: runs avg_pool2d on (N, C, 1, L) when that takes one.

      avg_pool keeps torch's limits: zero pre-padding changes the divisor when count_include_pad
      is False, so asymmetric pads and pads over half the kernel stay unsupported.

    A max_pool function asked for ``return_indices=True`` that raises ``NotImplementedError`` (or
    :class:`~convspec.spec.Unsupported`) is called again without: its values are checked, and its
    indices reported as not compared, with what it raised. :meth:`with_defaults_omitted` gives the
    same backend calling the functions with every argument at its default (PARAM-3) left out, for
    the ``defaults`` check.
    Parameters
    ----------
    functions : module or object with the functions (torch.nn.functional, a NumPy port, a namespace).
    name : name in reports; default ``"functional:<module name>"``.
    to_native : converts each NumPy input before the call (e.g. ``torch.from_numpy``); by default
        ``torch.from_numpy`` for objects of the torch package, so ``torch.nn.functional`` itself
        needs no glue, and the identity otherwise.
    padding_strings : whether the conv functions take ``padding='same'`` / ``'valid'``; by default
        inferred per function: its ``padding`` annotation names ``str`` or defaults to a str, or
        only torch's documented signature is known (torch.nn.functional itself, ``*args`` wrappers).
    **capability_fields : override inferred :class:`Capabilities` fields (``dtypes``,
        ``accumulation``...); ``unsupported`` entries are added to the inferred ones; declare
        ``"max_pool:indices"`` and return_indices is never asked for.

    Examples
    --------
    >>> import types, numpy as np
    >>> functional = types.SimpleNamespace(conv1d=lambda input, weight, stride=1:
    ...     np.stack([np.correlate(input[0, 0], weight[0, 0], "valid")])[None][:, :, ::stride])
    >>> backend = FunctionalBackend(functional, name="mini")
    >>> sorted(backend.capabilities.ops), sorted(backend.capabilities.ranks)
    (['conv'], [1])
    >>> sorted(backend.capabilities.unsupported)
    ['conv:bias', 'conv:dilation', 'conv:groups']
    """

    def __init__(
        self,
        functions: Any,
        name: str | None = None,
        *,
        to_native: Callable[[np.ndarray], Any] | None = None,
        validate: bool = True,
        padding_strings: bool | None = None,
        **capability_fields: Any,
    ) -> None:
        # The adapter translates the spec's parameter object into keyword arguments; an invalid
        # configuration cannot travel faithfully through that translation, so by default the spec
        # refuses it first (validate=False hands the translated call to the functions regardless).
        self._validate = validate
        self._omit_defaults = False
        self._padding_strings = padding_strings
        self.functions = functions
        self.name = name or f"functional:{getattr(functions, '__name__', type(functions).__name__)}"
        self._to_native = to_native or _native_converter(functions) or (lambda array: array)
        #: op -> {rank: (function, the parameter names it takes)}
        self._kernels: dict[str, dict[int, tuple[Callable[..., Any], frozenset[str]]]] = {}
        # The torch.nn.functional conventions below cover the core ops: an extension op such as
        # lp_pool (torch has lp_pool1d/2d/3d, with other arguments) is not picked up by its name.
        direct = {op: getattr(functions, op) for op in CORE_OPS if callable(getattr(functions, op, None))}
        for op in (op for op in FORWARD_OPS if op in CORE_OPS):
            if op in direct:
                continue
            for rank in FUNCTIONAL_RANKS:
                fn = getattr(functions, f"{op}{rank}d", None)
                if callable(fn):
                    self._kernels.setdefault(op, {})[rank] = (fn, _parameters(fn, op, rank))
        if not direct and not self._kernels:
            raise TypeError(
                f"{self.name}: {functions!r} has none of the functions of a torch.nn.functional look-alike "
                f"({', '.join(f'{op}1d..3d' for op in TORCH_PARAMETERS)}) nor any named as an op ({', '.join(OPS)})"
            )
        ranks = self._common_ranks()
        self._kernels = {op: {m: by_rank[m] for m in ranks} for op, by_rank in self._kernels.items()}
        self._check_required()
        self._ops = dict(direct)
        self._ops.update({op: getattr(self, f"_{op}_functional") for op in self._kernels})
        self._own = frozenset(self._kernels)
        unsupported = self._infer_unsupported()
        unsupported.update(capability_fields.pop("unsupported", {}))
        self.capabilities = Capabilities(
            ops=frozenset(self._ops), ranks=frozenset(ranks) if self._kernels else None,
            unsupported=unsupported, **capability_fields,
        )

    @property
    def ops_with_defaults(self) -> frozenset[str]:
        """The ops called through torch-style functions, whose arguments have defaults (PARAM-3)."""
        return frozenset(self._kernels)

    def with_defaults_omitted(self) -> FunctionalBackend:
        """This backend, calling its torch-style functions with every argument that equals its
        default (ARGUMENT_DEFAULTS, PARAM-3: a pool's stride its kernel_size) left out."""
        view = copy.copy(self)
        view._omit_defaults = True
        view._ops = {op: getattr(view, f"_{op}_functional") if op in self._own else fn for op, fn in self._ops.items()}
        return view

    # ---- inference ----------------------------------------------------------------------

    def _common_ranks(self) -> set[int]:
        """Ranks every forward op with functions has one for: Capabilities.ranks is backend-wide."""
        if not self._kernels:
            return set()
        per_op = {op: set(by_rank) for op, by_rank in self._kernels.items()}
        common = set.intersection(*per_op.values())
        if not common:
            found = ", ".join(f"{op}: {sorted(ranks)}" for op, ranks in per_op.items())
            raise TypeError(
                f"{self.name}: no spatial rank has a function for every op ({found}); capabilities declare "
                "one set of ranks for all ops, so wrap the functions you want with FunctionBackend"
            )
        return common

    def _check_required(self) -> None:
        for op, by_rank in self._kernels.items():
            for rank, (fn, accepted) in by_rank.items():
                missing = [p for p in _REQUIRED_PARAMETERS[op] if p not in accepted]
                if missing:
                    raise TypeError(
                        f"{self.name}: {op}{rank}d{inspect.signature(fn)} lacks parameter(s) {', '.join(missing)} "
                        f"of torch.nn.functional.{op}{rank}d; wrap it with FunctionBackend instead"
                    )

    def _infer_unsupported(self) -> dict[str, str]:
        unsupported: dict[str, str] = {}
        for op, by_rank in self._kernels.items():
            lacking: dict[tuple[str, str], list[str]] = {}  # (feature, parameter) -> functions without it
            for rank, (_, accepted) in sorted(by_rank.items()):
                for (feature_op, parameter), feature in _FEATURE_OF_PARAMETER.items():
                    if feature_op != op or parameter in accepted:
                        continue
                    if parameter == "divisor_override" and rank == 1 and self._lifts_avg_pool1d():
                        continue
                    lacking.setdefault((feature, parameter), []).append(f"{op}{rank}d")
            for (feature, parameter), functions in lacking.items():
                verb = "takes" if len(functions) == 1 else "take"
                unsupported.setdefault(f"{op}:{feature}", f"{', '.join(functions)} {verb} no {parameter}")
            if op == "max_pool" and "indices" in FEATURES and not all(
                "return_indices" in accepted for _, accepted in by_rank.values()
            ):  # forward-compatible: the spec has no "indices" feature yet
                unsupported["max_pool:indices"] = "max_pool takes no return_indices"
            if op == "avg_pool":
                reason = ("torch-style avg_pool takes one symmetric pad per dim of at most kernel_size // 2, "
                          "and zero pre-padding would change the divisor when count_include_pad=False")
                unsupported.setdefault("avg_pool:asymmetric_padding", reason)
                unsupported.setdefault("avg_pool:pool_padding_over_half_kernel", reason)
        return unsupported

    def _lifts_avg_pool1d(self) -> bool:
        """avg_pool1d without divisor_override runs as avg_pool2d over (N, C, 1, L) if that takes it."""
        two_d = getattr(self.functions, "avg_pool2d", None)
        return callable(two_d) and "divisor_override" in _parameters(two_d, "avg_pool", 2)

    # ---- calls --------------------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], accepted: frozenset[str], arrays: tuple[Any, ...],
              **arguments: Any) -> Any:
        """``fn(*arrays, **arguments)`` with the arguments it takes; the others are at their defaults
        (the capability check before the call guarantees it), and with ``with_defaults_omitted``
        so are those equal to their default (PARAM-3). Arrays go through ``to_native``; what ``fn``
        raises is carried as :class:`_Raised`."""
        natives = tuple(self._to_native(np.asarray(a)) for a in arrays)
        keywords = {key: value for key, value in arguments.items() if key in accepted}
        if self._omit_defaults:
            defaults = dict(ARGUMENT_DEFAULTS, stride=arguments.get("kernel_size", 1))
            keywords = {key: value for key, value in keywords.items()
                        if key not in defaults or not _same_value(value, defaults[key])}
        if "bias" in keywords and keywords["bias"] is not None:
            keywords["bias"] = self._to_native(np.asarray(keywords["bias"]))
        return _guarded(fn, *natives, **keywords)

    def _takes_strings(self, fn: Callable[..., Any]) -> bool:
        return _takes_padding_strings(fn) if self._padding_strings is None else self._padding_strings

    def _conv_functional(self, x: Any, w: Any, b: Any, params: ConvParams) -> np.ndarray:
        """y = conv(x̃, w) + b: x is padded here unless the function can pad it itself (PAD-MODE-1),
        'valid' and stride-1 'same' given as strings to a function that takes them (PAD-3, PAD-4)."""
        fn, accepted = self._kernels["conv"][params.rank]
        same = params.padding == "same_upper" and params.padding_mode == "zeros" and set(params.stride) == {1}
        padding: str | int | tuple[int, ...]
        if (same or params.padding == "valid") and "padding" in accepted and self._takes_strings(fn):
            x_in, padding = x, "same" if same else "valid"
        elif params.padding_mode == "zeros" and _symmetric(params) and "padding" in accepted:
            x_in, padding = x, _per_dim(before for before, _ in params.pads)
        else:
            x_in, padding = _pad(np.asarray(x), params.pads, params.padding_mode), 0
        y = self._call(
            fn, accepted, (x_in, w), bias=b, stride=_per_dim(params.stride), padding=padding,
            dilation=_per_dim(params.dilation), groups=params.groups,
        )
        return to_numpy(y)

    def _conv_transpose_functional(self, x: Any, w: Any, b: Any, params: ConvTransposeParams) -> np.ndarray:
        """The torch-style call when the pads are symmetric; else the uncropped output, cropped
        by (p_b, p_a) here (CONVT-DEF-1, CONVT-SHAPE-1)."""
        fn, accepted = self._kernels["conv_transpose"][params.rank]
        arguments = dict(bias=b, stride=_per_dim(params.stride), dilation=_per_dim(params.dilation),
                         groups=params.groups)
        native_output_padding = "output_padding" in accepted or not any(params.output_padding)
        if _symmetric(params) and "padding" in accepted and native_output_padding:
            y = self._call(fn, accepted, (x, w), padding=_per_dim(before for before, _ in params.pads),
                           output_padding=_per_dim(params.output_padding), **arguments)
            return to_numpy(y)
        # The full output ends at o_full = (n−1)·s + d·(k−1) + 1; the crop needs up to p_b + o.
        extra = tuple(max(op - after, 0) for op, (_, after) in zip(params.output_padding, params.pads))
        output_padding = extra if "output_padding" in accepted else (0,) * params.rank
        full = to_numpy(self._call(fn, accepted, (x, w), padding=0,
                                   output_padding=_per_dim(output_padding), **arguments))
        full_shape = params.output_shape[:2] + tuple(
            (n - 1) * s + d * (k - 1) + 1 + extra for n, s, d, k, extra in zip(
                params.input_shape[2:], params.stride, params.dilation, params.weight_shape[2:], output_padding))
        if np.shape(full) != full_shape:  # CONVT-SHAPE-1 with zero pads: the crop below needs exactly this
            raise NonConformingOutput("HYGIENE-2", f"{_function_name(fn)} returned shape {np.shape(full)} with "
                                      f"padding=0, expected {full_shape} (CONVT-SHAPE-1)")
        window = tuple(slice(before, before + o) for (before, _), o in zip(params.pads, params.output_shape[2:]))
        y = full[(slice(None), slice(None)) + window]
        if y.shape == params.output_shape:
            return y
        # Without output_padding: the positions past the full output receive no tap, only the bias.
        filled = np.zeros(params.output_shape, dtype=y.dtype)
        if b is not None:
            filled[...] = np.asarray(b).reshape((-1,) + (1,) * params.rank)
        filled[(slice(None), slice(None)) + tuple(slice(0, size) for size in y.shape[2:])] = y
        return filled

    def _max_pool_functional(self, x: Any, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray | str | None]:
        """(y, indices); x is padded with −inf here when torch-style padding cannot express the pads.
        Indices are None when not asked for, or a str saying what the function raised when asked."""
        fn, accepted = self._kernels["max_pool"][params.rank]
        native = _symmetric(params) and _within_half_kernel(params) and (
            "padding" in accepted or not any(before for before, _ in params.pads)
        )
        x = np.asarray(x)
        x_in = x if native else _pad(x, params.pads, "zeros", value=-np.inf)
        arguments: dict[str, Any] = dict(
            kernel_size=_per_dim(params.kernel_size), stride=_per_dim(params.stride),
            padding=_per_dim(before for before, _ in params.pads) if native else 0,
            dilation=_per_dim(params.dilation), ceil_mode=params.ceil_mode)
        asks = "return_indices" in accepted and self.capabilities.declared_unsupported("max_pool", "indices") is None
        refusal: str | None = None
        try:
            result = self._call(fn, accepted, (x_in,), return_indices=asks, **arguments)
        except _Raised as raised:
            if not (asks and isinstance(raised.original, (NotImplementedError, Unsupported))):
                raise
            refusal = f"{_function_name(fn)}(return_indices=True) raised {type(raised.original).__name__}: {raised.original}"
            asks, result = False, self._call(fn, accepted, (x_in,), return_indices=False, **arguments)
        y, indices = to_numpy(result) if asks else (to_numpy(result), refusal)
        if native:
            return y, indices
        # Zero padding lets torch's ceil-mode rule keep a window starting in the right padding
        # that POOL-CEIL-1 drops: crop to the spec's output size.
        crop = (slice(None), slice(None)) + tuple(slice(0, o) for o in params.output_shape[2:])
        y = y[crop]
        if indices is None or isinstance(indices, str):
            return y, indices
        return y, _unpadded_indices(np.asarray(indices)[crop], x_in.shape[2:], params, fn)

    def _avg_pool_functional(self, x: Any, params: AvgPoolParams) -> np.ndarray:
        """y = Σ x / divisor by the torch-style function; rank 1 with divisor_override via 2-D."""
        fn, accepted = self._kernels["avg_pool"][params.rank]
        x_in = np.asarray(x)
        kernel, stride, dilation = params.kernel_size, params.stride, params.dilation
        padding = tuple(before for before, _ in params.pads)
        lifted = params.rank == 1 and params.divisor_override is not None and "divisor_override" not in accepted
        if lifted:  # 1-D is 2-D with a size-1 leading spatial axis: kernel 1, stride 1, no padding there
            fn = self.functions.avg_pool2d
            accepted = _parameters(fn, "avg_pool", 2)
            x_in = x_in[:, :, None, :]
            kernel, stride, dilation, padding = (1, *kernel), (1, *stride), (1, *dilation), (0, *padding)
        arguments: dict[str, Any] = dict(
            kernel_size=_per_dim(kernel), stride=_per_dim(stride), padding=_per_dim(padding),
            ceil_mode=params.ceil_mode, count_include_pad=params.count_include_pad,
        )
        if any(d > 1 for d in dilation):
            arguments["dilation"] = _per_dim(dilation)
        if params.divisor_override is not None:
            arguments["divisor_override"] = params.divisor_override
        y = to_numpy(self._call(fn, accepted, (x_in,), **arguments))
        return y[:, :, 0, :] if lifted else y


def looks_functional(candidate: Any) -> bool:
    """True when ``candidate`` has a torch.nn.functional-style function or one named as an op."""
    names = [f"{op}{m}d" for op in TORCH_PARAMETERS for m in FUNCTIONAL_RANKS] + list(OPS)
    return any(callable(getattr(candidate, attribute, None)) for attribute in names)

