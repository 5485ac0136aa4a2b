"""Calling a backend: argument order, output normalisation, layout, hygiene, and isolation.

Everything that touches the implementation under test goes through :class:`Invoker`, so a crash,
a hang or an exception inside a backend becomes a status of one case, never a harness crash:
``NotImplementedError`` and :class:`~convspec.spec.Unsupported` (a missing feature) become
*unsupported (raised)*, :class:`~convspec.spec.NonConformingOutput` (an adapter found the outputs
break a clause) *failed* with that clause, anything else *errored*.
"""

from __future__ import annotations

import multiprocessing
import resource
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import Backend
from ..backends.base import is_adapter_refusal
from ..spec import OPS, NonConformingOutput, Params, Unsupported


class BackendFailure(Exception):
    """The backend did not return outputs; ``status`` is unsupported_raised, failed (with the
    ``clause`` its outputs broke), errored, crashed or timed_out.

    ``by_adapter`` is True when convspec's own adapter code refused the call before the
    implementation ran (see :func:`convspec.backends.base.refused_by_adapter`).
    """

    def __init__(self, status: str, message: str, type_name: str = "", clause: str = "",
                 by_adapter: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type_name = type_name
        self.clause = clause
        self.by_adapter = by_adapter


@dataclass
class Call:
    """What one call returned: outputs by name (None where absent), the inputs it modified,
    the seconds spent inside the backend, and why an output is missing where the backend said
    so (a str in place of max_pool's indices: "max_pool2d raised NotImplementedError: ...")."""

    outputs: dict[str, np.ndarray | None]
    mutated: list[str]
    seconds: float
    missing: dict[str, str] = field(default_factory=dict)


def _to_numpy(value: Any) -> np.ndarray | None:
    if value is None:
        return None
    if hasattr(value, "detach"):  # a torch tensor, possibly on a GPU
        value = value.detach().cpu()
        if str(value.dtype) == "torch.bfloat16":
            import ml_dtypes

            return value.view(__import__("torch").int16).numpy().view(ml_dtypes.bfloat16)
        return value.numpy()
    try:
        return np.asarray(value)
    except Exception:  # noqa: BLE001 - last resort for exotic array types
        return np.from_dlpack(value)


def _to_channels_last(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.moveaxis(array, 1, -1))


def _to_channels_first(array: np.ndarray) -> np.ndarray:
    return np.moveaxis(array, -1, 1)


def invoke(backend: Backend, op: str, arrays: dict[str, Any], params: Params) -> Call:
    """Call ``backend.<op>(*arrays, params)`` once and normalise what it returns.

    Activations (x, dy, and y, dx on the way back) are transposed for a channels-last backend;
    weights keep the canonical layout. Inputs are compared bit for bit before and after (HYGIENE-1).
    """
    info = OPS[op]
    channels_last = backend.capabilities.layout == "channels_last"
    originals = []
    for name in info.inputs:
        value = arrays.get(name)
        if value is not None and channels_last and name in ("x", "dy"):
            value = _to_channels_last(value)
        originals.append(value)
    # The backend works on copies: an implementation that writes into its inputs is reported
    # (HYGIENE-1) without corrupting the arrays the reference and later checks read.
    args = [None if a is None else a.copy() for a in originals]
    start = time.perf_counter()
    raw = getattr(backend, op)(*args, params)
    seconds = time.perf_counter() - start
    mutated = [name for name, a, b in zip(info.inputs, args, originals)
               if a is not None and b is not None and a.tobytes() != b.tobytes()]
    values = raw if isinstance(raw, (tuple, list)) else (raw,)
    outputs: dict[str, np.ndarray | None] = {}
    missing: dict[str, str] = {}
    for index, name in enumerate(info.outputs):
        value = values[index] if index < len(values) else None
        if isinstance(value, str) and name == "indices":  # the backend's reason for returning none
            missing[name], value = value, None
        value = _to_numpy(value)
        if value is not None and channels_last and name in ("y", "dx") and value.ndim >= 3:
            value = _to_channels_first(value)
        outputs[name] = value
    return Call(outputs, mutated, seconds, missing)


#: Frames of convspec's calling code, never where a backend's exception comes from.
_CALLING_CODE = (str(Path(__file__)), str(Path(__file__).parents[1] / "backends" / "adapters.py"))


def _describe(exc: BaseException) -> str:
    """``Type: message (at file:line)``, the line being the backend's innermost Python frame (none
    when the exception came straight out of compiled code, e.g. a torch builtin)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename not in _CALLING_CODE]
    where = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def failure_of(exc: BaseException) -> BackendFailure:
    """The status of a call that raised ``exc`` (see the module docstring)."""
    name = type(exc).__name__
    if isinstance(exc, NonConformingOutput):
        return BackendFailure("failed", exc.message, name, exc.clause)
    if isinstance(exc, (NotImplementedError, Unsupported)):
        return BackendFailure("unsupported_raised", f"raised {_describe(exc)}", name)
    if isinstance(exc, TimeoutError):  # what the command backend raises past its timeout
        return BackendFailure("timed_out", _describe(exc), name)
    return BackendFailure("errored", _describe(exc), name, by_adapter=is_adapter_refusal(exc))


def _worker(connection: Any, backend: Backend, memory_limit: int | None) -> None:  # pragma: no cover - child
    if memory_limit:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    while True:
        message = connection.recv()
        if message is None:
            return
        op, arrays, params = message
        try:
            reply: tuple[str, Any] = ("ok", invoke(backend, op, arrays, params))
        except MemoryError as exc:
            reply = ("crashed", f"runaway allocation: {_describe(exc)}")
        except BaseException as exc:  # noqa: BLE001 - everything a backend raises is reported
            failure = failure_of(exc)
            reply = ("raised", (failure.status, failure.message, failure.type_name, failure.clause,
                                failure.by_adapter))
        connection.send(reply)


class Invoker:
    """Calls one backend, in this process or (``isolate=True``) in a child process that is
    restarted after a crash or a time-out."""

    def __init__(self, backend: Backend, *, isolate: bool = False, timeout: float | None = None,
                 memory_limit: int | None = None) -> None:
        self.backend = backend
        self.isolate = isolate
        self.timeout = timeout
        self.memory_limit = memory_limit
        self._process: Any = None
        self._connection: Any = None

    def call(self, op: str, arrays: dict[str, Any], params: Params) -> Call:
        """Outputs of one call; BackendFailure if it raised, crashed or hung."""
        if not self.isolate:
            try:
                return invoke(self.backend, op, arrays, params)
            except Exception as exc:  # noqa: BLE001 - a backend's exception is a result
                raise failure_of(exc) from exc
        return self._call_isolated(op, arrays, params)

    def _start(self) -> None:
        context = multiprocessing.get_context("fork")
        parent, child = context.Pipe()
        self._process = context.Process(target=_worker, args=(child, self.backend, self.memory_limit), daemon=True)
        self._process.start()
        child.close()
        self._connection = parent

    def _call_isolated(self, op: str, arrays: dict[str, Any], params: Params) -> Call:
        if self._process is None or not self._process.is_alive():
            self._start()
        try:
            self._connection.send((op, arrays, params))
            if not self._connection.poll(self.timeout):
                self.close(kill=True)
                raise BackendFailure("timed_out", f"no answer within --timeout {self.timeout} s")
            status, payload = self._connection.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
            code = None
            if self._process is not None:
                self._process.join(timeout=5)  # reap the child: exitcode is None until then
                code = self._process.exitcode
            self.close(kill=True)
            signal = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            raise BackendFailure("crashed", f"backend process died ({signal})") from exc
        if status == "ok":
            return payload
        if status == "crashed":
            self.close(kill=True)
            raise BackendFailure("crashed", payload)
        raise BackendFailure(*payload)

    def close(self, kill: bool = False) -> None:
        if self._process is None:
            return
        try:
            if kill:
                self._process.kill()
            else:
                self._connection.send(None)
            self._process.join(timeout=5)
        except (OSError, BrokenPipeError):
            pass
        self._process = None
        self._connection = None
