"""The backend protocol: what an implementation under test looks like to convspec.

A backend is any object with a ``name``, a frozen :class:`Capabilities` and one method per op of
the spec's op table (``convspec.spec.OPS``), called as ``method(*arrays, params)`` with NumPy
arrays in the order of ``OPS[op].inputs`` (an absent bias is ``None``) and the spec's parameter
object, whose ``pads`` are always explicit. A method returns the op's outputs: one array-like for
a single output, a tuple otherwise (``db`` is ``None`` without a bias; max_pool's ``indices`` may be
``None`` when the backend declares ``max_pool:indices`` unsupported, or a str saying why it cannot
return them for this call: its values are checked either way). Anything ``np.asarray`` converts is
accepted.

A backend raises for invalid configurations (any exception; ``InvalidParams`` preferred) and may
raise :class:`~convspec.spec.Unsupported` for a valid one it declared unsupported. Raising
``NotImplementedError`` or ``Unsupported`` for a case it did not declare is reported *unsupported
(raised)*, never as a failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, Protocol, runtime_checkable

from ..spec import CORE_OPS, DTYPE_NAMES, OPS, Params, Unsupported
from ..spec.features import FEATURES, features_of

Layout = Literal["channels_first", "channels_last"]


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, kw_only=True)
class Capabilities:
    """What a backend declares it can run, and how it computes.

    Attributes
    ----------
    ops : ops of the op table it implements (forward and gradient ops separately; default: the core ops, no extension op).
    ranks : spatial ranks it runs; ``None`` means any rank m ≥ 1.
    dtypes : spec dtype names it accepts.
    unsupported : feature (``convspec.spec.features.FEATURES``) -> why it cannot run it; a key
        ``"op:feature"`` limits it to one op: a forward op and its gradient
        (``"avg_pool:dilation"``), or a gradient op alone (``"conv_backward:padding_mode.reflect"``,
        for a feature supported forward only). A case using such a feature is reported
        *unsupported* with this reason. ``"max_pool:indices"`` declares a max_pool that returns no
        indices: its values are still checked, its indices reported as not compared.
    accumulation : dtype name it accumulates in, for every input dtype; or a mapping input dtype ->
        accumulation dtype, the dtypes not in it accumulating in themselves (``{"float16":
        "float32", "bfloat16": "float32"}`` for a backend that widens half types); ``None`` means
        the input dtype (ERR-BOUND-1). See :meth:`accumulation_for`.
    input_precision : a reduced precision it rounds inputs to before multiplying ("tf32"), or None.
    local : False for FFT/Winograd-style algorithms (ERR-NONLOCAL-1).
    deterministic : repeated calls give bitwise identical results.
    layout : "channels_last" makes the harness pass (N, *S, C) inputs and read (N, *S, C) outputs.
    speed : "fast" or "slow"; the runner sizes cases smaller for a slow backend.
    """

    ops: frozenset[str] = CORE_OPS
    ranks: frozenset[int] | None = None
    dtypes: frozenset[str] = frozenset({"float16", "float32", "float64"})
    unsupported: Mapping[str, str] = field(default_factory=dict)
    accumulation: str | Mapping[str, str] | None = None
    input_precision: str | None = None
    local: bool = True
    deterministic: bool = True
    layout: Layout = "channels_first"
    speed: Literal["fast", "slow"] = "fast"

    def __post_init__(self) -> None:
        accumulation = self.accumulation
        valid_map = isinstance(accumulation, Mapping) and all(
            isinstance(key, str) and isinstance(value, str) for key, value in accumulation.items())
        if not (accumulation is None or isinstance(accumulation, str) or valid_map):
            raise ValueError(f"Capabilities accumulation={accumulation!r} must be a dtype name, a mapping of "
                             "input dtype names to dtype names, or None")
        if isinstance(accumulation, Mapping) and not accumulation:
            object.__setattr__(self, "accumulation", None)  # no entry: every dtype in itself
        bad_keys = [problem for problem in map(_unsupported_key_problem, self.unsupported) if problem]
        if bad_keys:
            raise ValueError(f"Capabilities unsupported {'; '.join(bad_keys)}; keys are 'feature' or "
                             f"'op:feature', ops {sorted(OPS)}, features {sorted(FEATURES)}")
        unknown_ops = set(self.ops) - set(OPS)
        accumulation_names = (set(self._accumulation_map()) | set(self._accumulation_map().values())
                              | ({self.accumulation} if isinstance(self.accumulation, str) else set()))
        unknown_dtypes = (set(self.dtypes) | accumulation_names) - set(DTYPE_NAMES)
        if unknown_ops or unknown_dtypes:
            raise ValueError(
                f"Capabilities names unknown ops {sorted(unknown_ops, key=repr)} or dtypes "
                f"{sorted(unknown_dtypes, key=repr)}; known: ops {sorted(OPS)}, dtypes {list(DTYPE_NAMES)}"
            )
        object.__setattr__(self, "ops", frozenset(self.ops))
        object.__setattr__(self, "dtypes", frozenset(self.dtypes))
        if self.ranks is not None:
            object.__setattr__(self, "ranks", frozenset(self.ranks))
        object.__setattr__(self, "unsupported", _frozen(self.unsupported))
        if isinstance(self.accumulation, Mapping):
            object.__setattr__(self, "accumulation", _frozen(self.accumulation))

    def _accumulation_map(self) -> Mapping[str, str]:
        return self.accumulation if isinstance(self.accumulation, Mapping) else {}

    def accumulation_for(self, dtype: str) -> str:
        """The dtype inputs of ``dtype`` are accumulated in: u_acc of ERR-BOUND-1.

        >>> caps = Capabilities(accumulation={"float16": "float32"})
        >>> caps.accumulation_for("float16"), caps.accumulation_for("float64")
        ('float32', 'float64')
        """
        if isinstance(self.accumulation, Mapping):
            return self.accumulation.get(dtype, dtype)
        return self.accumulation or dtype

    def unsupported_reason(self, op: str, params: Params, dtype: str) -> str | None:
        """Why this backend cannot run ``op`` on ``params`` in ``dtype``; None when it can."""
        if op not in self.ops:
            return f"op {op} not implemented"
        if self.ranks is not None and params.rank not in self.ranks:
            return f"spatial rank {params.rank} not supported (ranks {sorted(self.ranks)})"
        if dtype not in self.dtypes:
            return f"dtype {dtype} not supported (dtypes {sorted(self.dtypes)})"
        for feature in sorted(features_of(op, params)):
            reason = self.declared_unsupported(op, feature)
            if reason is not None:
                return reason
        return None

    def refuse_unsupported(self, backend: str, op: str, params: Params, dtype: str) -> None:
        """Raise :class:`~convspec.spec.Unsupported` ("backend 'NAME': reason") when
        :meth:`unsupported_reason` gives a reason: what a backend does before running a call."""
        reason = self.unsupported_reason(op, params, dtype)
        if reason is not None:
            raise Unsupported(f"backend {backend!r}: {reason}")

    def declared_unsupported(self, op: str, feature: str) -> str | None:
        """``"key: reason"`` when ``feature`` is declared unsupported for ``op``, else None.

        The keys that apply: ``feature``, ``"<forward op>:feature"`` (the op and its gradient) and
        ``"<op>:feature"`` (a gradient op alone).

        >>> caps = Capabilities(unsupported={"conv_backward:padding_mode.reflect": "forward only"})
        >>> caps.declared_unsupported("conv", "padding_mode.reflect") is None
        True
        >>> caps.declared_unsupported("conv_backward", "padding_mode.reflect")
        'conv_backward:padding_mode.reflect: forward only'
        """
        forward = OPS[op].forward or op
        for key in dict.fromkeys((feature, f"{forward}:{feature}", f"{op}:{feature}")):
            if key in self.unsupported:
                return f"{key}: {self.unsupported[key]}"
        return None


def _unsupported_key_problem(key: object) -> str:
    """What is wrong with a key of ``Capabilities.unsupported`` ('' when nothing)."""
    if not isinstance(key, str):
        return f"key {key!r} is not a str"
    op, _, feature = key.rpartition(":")
    if op and op not in OPS:
        return f"key {key!r} names unknown op {op!r}"
    if feature not in FEATURES:
        return f"key {key!r} names unknown feature {feature!r}"
    return ""


@runtime_checkable
class Backend(Protocol):
    """An implementation under test. Methods of ops not in ``capabilities.ops`` need not exist.

    Signatures (arrays are NumPy arrays, ``params`` the spec's parameter object of the op)::

        conv(x, w, b, params) -> y                       b may be None
        conv_backward(x, w, dy, params) -> (dx, dw, db)  db None without bias
        conv_transpose(x, w, b, params) -> y
        conv_transpose_backward(x, w, dy, params) -> (dx, dw, db)
        max_pool(x, params) -> (y, indices)              indices may be None or a str reason
        max_pool_backward(x, dy, params) -> dx
        avg_pool(x, params) -> y
        avg_pool_backward(x, dy, params) -> dx
    """

    name: str
    capabilities: Capabilities


#: The attribute :func:`refused_by_adapter` sets on an exception.
_ADAPTER_MARK = "convspec_refused_by_adapter"


def refused_by_adapter(exc: BaseException) -> BaseException:
    """Mark ``exc`` as raised by convspec's adapter code (the command backend, ``FunctionBackend``)
    before the implementation under test ran, e.g. the spec's validation of an invalid
    configuration; reports then say "validated by the adapter" rather than credit the
    implementation with rejecting it. Returns ``exc``."""
    setattr(exc, _ADAPTER_MARK, True)
    return exc


def is_adapter_refusal(exc: BaseException) -> bool:
    """Whether :func:`refused_by_adapter` marked ``exc``."""
    return bool(getattr(exc, _ADAPTER_MARK, False))
