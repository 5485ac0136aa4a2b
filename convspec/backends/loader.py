"""Finding a backend from a name: built-ins, entry points, ``module:attr`` and ``file.py:attr``.

Built-ins are registered by dotted path and imported on first use, so naming one never imports
the others or their dependencies (after Hypothesis' ``AVAILABLE_PROVIDERS``). Third
parties register under the entry-point group ``convspec.backends``::

    [project.entry-points."convspec.backends"]
    mylib = "mylib.convspec_backend:MyBackend"

Whatever is named — a backend instance, a class, a factory, or a module of
torch.nn.functional-style functions — ends up as a validated :class:`~convspec.backends.Backend`,
or as one :class:`BackendLoadError` line saying what was tried and why it failed.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..spec import CORE_OPS, DTYPE_NAMES, OPS, ConvSpecError
from .adapters import FunctionalBackend, looks_functional
from .base import Backend, Capabilities

#: The entry-point group third-party backends register under.
ENTRY_POINT_GROUP = "convspec.backends"

#: How to install an optional dependency of a built-in, for the error message.
INSTALL_HINTS = {"torch": "pip install 'convspec[torch]'", "scipy": "pip install scipy",
                 "onnx": "pip install 'convspec[onnx]'", "onnxruntime": "pip install 'convspec[onnx]'",
                 "jax": "pip install 'convspec[jax]'"}


@dataclass(frozen=True)
class BuiltinBackend:
    """A built-in backend: ``target`` ("module:Class") called with ``kwargs``.

    ``requires`` are modules imported first, so a missing one is named with its install hint;
    ``needs_cuda`` also requires ``torch.cuda.is_available()``.
    """

    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    requires: tuple[str, ...] = ()
    needs_cuda: bool = False

    def __str__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.kwargs.items())
        return f"{self.target}({arguments})" if arguments else self.target


_TORCH = "convspec.backends.torch_backend:TorchBackend"
_JAX = "convspec.backends.jax_backend:JaxBackend"
_SCIPY = "convspec.backends.scipy_backend:ScipyBackend"
_ONNX = "convspec.backends.onnx_backend:OnnxBackend"
#: ``onnx:onnxruntime:<ExecutionProvider>`` names any onnxruntime execution provider.
ONNXRUNTIME_PREFIX = "onnx:onnxruntime:"

#: Built-in backend name -> where it lives. Imported only when loaded.
BUILTIN_BACKENDS: dict[str, BuiltinBackend] = {
    "naive": BuiltinBackend("convspec.backends.naive:NaiveBackend"),
    "im2col": BuiltinBackend("convspec.backends.im2col:Im2colBackend"),
    "scipy": BuiltinBackend(_SCIPY, requires=("scipy",)),
    "scipy:fft": BuiltinBackend(_SCIPY, {"method": "fft"}, requires=("scipy",)),
    "torch": BuiltinBackend(_TORCH, requires=("torch",)),
    "torch:cuda": BuiltinBackend(_TORCH, {"device": "cuda"}, requires=("torch",), needs_cuda=True),
    "torch:cuda:tf32": BuiltinBackend(_TORCH, {"device": "cuda", "tf32": True}, requires=("torch",), needs_cuda=True),
    "onnx:reference": BuiltinBackend(_ONNX, {"runtime": "reference"}, requires=("onnx",)),
    "onnx:onnxruntime": BuiltinBackend(_ONNX, {"runtime": "onnxruntime"}, requires=("onnx", "onnxruntime")),
    "jax": BuiltinBackend(_JAX, requires=("jax",)),
}


class BackendLoadError(ConvSpecError):
    """A backend could not be loaded. The message is one line: what was tried, and why it failed.

    Attributes
    ----------
    spec : what was asked for (the string, or a description of the object).
    reason : why it failed, without the ``cannot load backend ...:`` prefix.
    """

    def __init__(self, spec: str, reason: str, *, unknown: bool = False) -> None:
        self.spec = spec
        self.reason = reason
        self.unknown = unknown
        prefix = "no backend named" if unknown else "cannot load backend"
        super().__init__(f"{prefix} {spec!r}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across process boundaries
        return (_rebuild_error, (self.spec, self.reason, self.unknown))


def _rebuild_error(spec: str, reason: str, unknown: bool) -> BackendLoadError:
    return BackendLoadError(spec, reason, unknown=unknown)


def _one_line(exc: BaseException) -> str:
    """``Type: first line of the message``, so an error message stays on one line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _describe(obj: Any) -> str:
    """A short description of what was found: 'module m', 'class C', 'function f', 'int 3'..."""
    if inspect.ismodule(obj):
        return f"module {obj.__name__!r}"
    if inspect.isclass(obj):
        return f"class {obj.__qualname__}"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or inspect.ismethod(obj):
        return f"function {obj.__qualname__}"
    if isinstance(obj, (int, float, str, bytes, bool, type(None))):
        return f"{type(obj).__name__} {obj!r}"[:80]
    return f"{type(obj).__qualname__} object"


# --------------------------------------------------------------------------------------------
# From whatever was named to a validated backend
# --------------------------------------------------------------------------------------------


def _call(spec: str, what: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    arguments = ", ".join(f"{key}={value!r}" for key, value in kwargs.items())
    try:
        return fn(**kwargs)
    except Exception as exc:
        raise BackendLoadError(spec, f"calling {what}({arguments}) failed: {_one_line(exc)}") from exc


def _needs_arguments(fn: Callable[..., Any]) -> str | None:
    """The parameter list of ``fn`` when it cannot be called without arguments, else None."""
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return None
    try:
        signature.bind()
    except TypeError:
        return str(signature)
    return None


def _build(spec: str, obj: Any, *, name: str) -> Any:
    """The backend ``obj`` stands for: itself, an instance of it, what it returns, or its
    torch.nn.functional-style functions wrapped by :class:`FunctionalBackend` (named ``name``)."""
    if inspect.isclass(obj):
        return _call(spec, obj.__qualname__, obj)
    if hasattr(obj, "capabilities"):
        return obj
    if looks_functional(obj):
        try:
            return FunctionalBackend(obj, name=name)
        except TypeError as exc:
            raise BackendLoadError(spec, f"wrapping {_describe(obj)} as torch.nn.functional look-alike failed: "
                                         f"{exc}") from exc
    if callable(obj) and not inspect.ismodule(obj):
        parameters = _needs_arguments(obj)
        if parameters is not None:
            raise BackendLoadError(
                spec, f"{_describe(obj)}{parameters} is neither a backend nor a factory taking no arguments; "
                      "wrap plain functions with convspec.backends.FunctionBackend")
        result = _call(spec, getattr(obj, "__qualname__", "factory"), obj)
        if not hasattr(result, "capabilities") and looks_functional(result):
            return _build(spec, result, name=name)
        return result
    return obj


def _validated(spec: str, candidate: Any) -> Backend:
    """``candidate`` if it meets the backend protocol, else BackendLoadError."""
    what = _describe(candidate)
    capabilities = getattr(candidate, "capabilities", None)
    if capabilities is None:
        raise BackendLoadError(
            spec, f"{what} is not a backend: it has no 'capabilities' (a convspec.backends.Capabilities) "
                  "and no torch.nn.functional-style functions")
    if not isinstance(capabilities, Capabilities):
        raise BackendLoadError(
            spec, f"{what} is not a backend: its 'capabilities' is a {type(capabilities).__name__}, "
                  "not a convspec.backends.Capabilities")
    name = getattr(candidate, "name", None)
    if not isinstance(name, str) or not name:
        raise BackendLoadError(spec, f"{what} is not a backend: its 'name' is {name!r}, not a non-empty str")
    missing = [op for op in OPS if op in capabilities.ops and not callable(getattr(candidate, op, None))]
    if missing:
        raise BackendLoadError(
            spec, f"{what} ({name!r}) declares ops {', '.join(missing)} in capabilities.ops but has no "
                  "callable method of that name")
    return candidate  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------
# Each form of spec
# --------------------------------------------------------------------------------------------


def _load_builtin(name: str, builtin: BuiltinBackend) -> Backend:
    for dependency in builtin.requires:
        try:
            importlib.import_module(dependency)
        except ModuleNotFoundError as exc:
            if exc.name != dependency:
                raise BackendLoadError(name, f"importing {dependency} failed: {_one_line(exc)}") from exc
            hint = INSTALL_HINTS.get(dependency, f"pip install {dependency}")
            raise BackendLoadError(name, f"{dependency} is not installed ({hint})") from exc
        except Exception as exc:
            raise BackendLoadError(name, f"importing {dependency} failed: {_one_line(exc)}") from exc
    if builtin.needs_cuda and not sys.modules["torch"].cuda.is_available():
        raise BackendLoadError(name, "CUDA is not available (torch.cuda.is_available() is False)")
    module_name, _, attribute = builtin.target.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
    except Exception as exc:
        raise BackendLoadError(name, f"importing {builtin.target} failed: {_one_line(exc)}") from exc
    return _validated(name, _call(name, attribute, cls, **builtin.kwargs))


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_point(name: str, entry: importlib.metadata.EntryPoint) -> Backend:
    distribution = getattr(entry.dist, "name", None) or "unknown distribution"
    try:
        obj = entry.load()
    except Exception as exc:
        raise BackendLoadError(
            name, f"loading entry point {entry.name} = {entry.value} (group {ENTRY_POINT_GROUP}, "
                  f"{distribution}) failed: {_one_line(exc)}") from exc
    return _validated(name, _build(name, obj, name=name))


def _split_file(spec: str) -> tuple[str, str | None] | None:
    """``(path, attribute or None)`` for ``path.py:attr`` or ``path.py``; None for other forms.

    The last colon splits, so a Windows drive letter (``C:\\x.py:attr``) stays in the path.
    """
    head, colon, tail = spec.rpartition(":")
    if colon and head.endswith(".py"):
        return head, tail or None
    if spec.endswith(".py"):
        return spec, None
    return None


def _attribute(spec: str, obj: Any, dotted: str, owner: str) -> Any:
    for part in dotted.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise BackendLoadError(spec, f"{owner} has no attribute {dotted!r}") from exc
    return obj


def _load_file(spec: str, path_text: str, attribute: str | None) -> Backend:
    path = Path(path_text)
    if not path.is_file():
        reason = f"file {path_text!r} does not exist" if not path.exists() else f"{path_text!r} is not a file"
        raise BackendLoadError(spec, reason)
    resolved = path.resolve()
    # A unique module name per file, so two files called backend.py never collide in sys.modules.
    stem = "".join(c if c.isalnum() else "_" for c in resolved.stem)
    module_name = f"_convspec_file_backend_{stem}_{hashlib.sha1(str(resolved).encode()).hexdigest()[:12]}"
    module_spec = importlib.util.spec_from_file_location(module_name, resolved)
    if module_spec is None or module_spec.loader is None:
        raise BackendLoadError(spec, f"cannot import {path_text!r} as a Python module")
    module = importlib.util.module_from_spec(module_spec)
    # Modules beside the file import as they do under `python file.py`, which puts its folder
    # first on sys.path; kept there, for imports the backend makes when it is called.
    if str(resolved.parent) not in sys.path:
        sys.path.insert(0, str(resolved.parent))
    sys.modules[module_name] = module  # before running it: dataclasses and pickling look it up
    try:
        module_spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[module_name]
        if not isinstance(exc, Exception):
            raise
        raise BackendLoadError(spec, f"running {path_text} failed: {_one_line(exc)}") from exc
    obj = module if attribute is None else _attribute(spec, module, attribute, f"file {path_text!r}")
    return _validated(spec, _build(spec, obj, name=spec))


def _unknown(spec: str) -> BackendLoadError:
    return BackendLoadError(
        spec, f"not a built-in ({', '.join(BUILTIN_BACKENDS)}), no entry point in group {ENTRY_POINT_GROUP}, "
              "and not of the form module:attr or file.py:attr", unknown=True)


def _load_module(spec: str) -> Backend:
    module_name, colon, attribute = spec.partition(":")
    if not module_name or not all(part.isidentifier() for part in module_name.split(".")):
        raise _unknown(spec)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing and (module_name == missing or module_name.startswith(missing + ".")):
            if not colon and "." not in module_name:  # a bare word: more likely a mistyped built-in
                raise _unknown(spec) from exc
            raise BackendLoadError(spec, f"no module named {missing!r} (is it installed, or on sys.path? The "
                                         "convspec command does not search the current directory: run it "
                                         "with PYTHONPATH=. or name path/to/file.py:attr)") from exc
        raise BackendLoadError(spec, f"importing module {module_name!r} failed: {_one_line(exc)}") from exc
    except Exception as exc:
        raise BackendLoadError(spec, f"importing module {module_name!r} failed: {_one_line(exc)}") from exc
    if colon and not attribute:
        raise BackendLoadError(spec, "nothing after ':'; the form is module:attr")
    obj = _attribute(spec, module, attribute, f"module {module_name!r}") if attribute else module
    return _validated(spec, _build(spec, obj, name=spec))


def load(spec: str | object) -> Backend:
    """The backend ``spec`` names, validated against the backend protocol.

    ``spec`` is tried, in this order, as:

    1. a built-in name: ``naive``, ``im2col``, ``scipy``, ``scipy:fft``, ``torch``, ``torch:cuda``,
       ``torch:cuda:tf32``, ``onnx:reference``, ``onnx:onnxruntime``, ``jax`` (:data:`BUILTIN_BACKENDS`),
       and ``onnx:onnxruntime:<ExecutionProvider>`` for any onnxruntime execution provider;
    2. ``cmd:PROGRAM ARGS``: an external program run on batches of cases (:class:`CommandBackend`);
    3. the name of an entry point in the group ``convspec.backends``;
    4. ``path/to/file.py:attr`` or ``path/to/file.py`` (the file runs as a module of its own, with
       its folder first on ``sys.path`` as under ``python path/to/file.py``, so that it can import
       the modules beside it);
    5. ``package.module:attr`` or ``package.module``.

    A non-string ``spec`` is the backend object itself. What is named may be a backend instance,
    a backend class (called with no arguments), a factory (likewise), or a module/object of
    torch.nn.functional-style functions (wrapped by :class:`FunctionalBackend`). A module with
    module-level ``name``, ``capabilities`` and op functions is a backend as it stands.

    Raises
    ------
    BackendLoadError
        One line saying what was tried and why it failed, chained to the original exception.

    Examples
    --------
    >>> load("no_such_backend")
    Traceback (most recent call last):
    ...
    convspec.backends.loader.BackendLoadError: no backend named 'no_such_backend': not a built-in (naive, im2col, scipy, scipy:fft, torch, torch:cuda, torch:cuda:tf32, onnx:reference, onnx:onnxruntime, jax), no entry point in group convspec.backends, and not of the form module:attr or file.py:attr
    """
    if not isinstance(spec, str):
        label = f"<{_describe(spec)}>"
        return _validated(label, _build(label, spec, name=getattr(spec, "__name__", type(spec).__name__)))
    if spec in BUILTIN_BACKENDS:
        return _load_builtin(spec, BUILTIN_BACKENDS[spec])
    if spec.startswith(ONNXRUNTIME_PREFIX) and spec != ONNXRUNTIME_PREFIX:
        provider = spec[len(ONNXRUNTIME_PREFIX):]
        return _load_builtin(spec, BuiltinBackend(_ONNX, {"runtime": "onnxruntime", "provider": provider},
                                                  requires=("onnx", "onnxruntime")))
    if spec.startswith("cmd:"):
        from .command import CommandBackend

        try:
            return _validated(spec, CommandBackend(spec[len("cmd:"):], name=spec))
        except (ValueError, OSError) as exc:
            raise BackendLoadError(spec, str(exc)) from exc
    for entry in _entry_points():
        if entry.name == spec:
            return _load_entry_point(spec, entry)
    file_form = _split_file(spec)
    if file_form is not None:
        return _load_file(spec, *file_form)
    return _load_module(spec)


# --------------------------------------------------------------------------------------------
# What is there: the `convspec backends` listing
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BackendInfo:
    """One row of :func:`available_backends`.

    Attributes
    ----------
    name : what ``load`` takes.
    source : "built-in" or "entry point".
    target : where it lives ("module:attr", with arguments for built-ins).
    available : whether it loaded here.
    reason : why it did not load; None when it did.
    capabilities : what it declares; None when it did not load.
    """

    name: str
    source: Literal["built-in", "entry point"]
    target: str
    available: bool
    reason: str | None = None
    capabilities: Capabilities | None = None


def _probe(name: str, source: Literal["built-in", "entry point"], target: str,
           loader: Callable[[], Backend]) -> BackendInfo:
    try:
        backend = loader()
    except BackendLoadError as exc:
        return BackendInfo(name, source, target, False, exc.reason)
    return BackendInfo(name, source, target, True, None, backend.capabilities)


def available_backends() -> list[BackendInfo]:
    """Every built-in and every entry point of the group ``convspec.backends``, each loaded once.

    An entry point whose name is taken (by a built-in, or an earlier entry point) is listed as
    unavailable: ``load(name)`` never reaches it.
    """
    infos = [
        _probe(name, "built-in", str(builtin), functools.partial(_load_builtin, name, builtin))
        for name, builtin in BUILTIN_BACKENDS.items()
    ]
    taken = {name: "the built-in" for name in BUILTIN_BACKENDS}
    for entry in _entry_points():
        if entry.name in taken:
            infos.append(BackendInfo(entry.name, "entry point", entry.value, False,
                                     f"shadowed by {taken[entry.name]} backend of the same name"))
            continue
        taken[entry.name] = f"entry point {entry.value}"
        infos.append(_probe(entry.name, "entry point", entry.value,
                            functools.partial(_load_entry_point, entry.name, entry)))
    return infos


_DTYPE_SHORT = {"float16": "f16", "bfloat16": "bf16", "float32": "f32", "float64": "f64"}


def _ops_cell(ops: Iterable[str]) -> str:
    """'all 8' (the core ops), or forward ops with '+grad' where their gradient op is there too."""
    present = set(ops)
    if present == set(CORE_OPS):
        return f"all {len(CORE_OPS)}"
    cells = []
    for op, info in OPS.items():
        if info.is_gradient:
            if op in present and info.forward not in present:
                cells.append(op)
            continue
        if op in present:
            cells.append(op + ("+grad" if info.backward in present else ""))
    return ", ".join(cells)


def _row(info: BackendInfo) -> list[str]:
    caps = info.capabilities
    if caps is None:
        return [info.name, info.source, "no"] + ["-"] * 8
    if isinstance(caps.accumulation, Mapping):
        accumulation = ", ".join(f"{_DTYPE_SHORT[d]}→{_DTYPE_SHORT[a]}" for d, a in caps.accumulation.items())
    else:
        accumulation = caps.accumulation or "input dtype"
    if caps.input_precision:
        accumulation += f" ({caps.input_precision} inputs)"
    return [
        info.name,
        info.source,
        "yes",
        _ops_cell(caps.ops),
        "any" if caps.ranks is None else ",".join(map(str, sorted(caps.ranks))),
        " ".join(_DTYPE_SHORT[d] for d in DTYPE_NAMES if d in caps.dtypes),
        accumulation,
        "yes" if caps.local else "no",
        "yes" if caps.deterministic else "no",
        caps.layout,
        str(len(caps.unsupported)),
    ]


def capability_table(infos: Iterable[BackendInfo]) -> str:
    """A plain-text table, one row per backend, with unsupported features and unavailability
    reasons listed below it; generated from the capabilities, so it cannot drift.

    Examples
    --------
    >>> print(capability_table([BackendInfo("mine", "entry point", "m:B", True, None,
    ...                                     Capabilities(ops={"conv"}, ranks={2}, unsupported={"groups": "no"}))]))
    backend  source       available  ops   ranks  dtypes       accumulation  local  deterministic  layout          unsupported
    -------  -----------  ---------  ----  -----  -----------  ------------  -----  -------------  --------------  -----------
    mine     entry point  yes        conv  2      f16 f32 f64  input dtype   yes    yes            channels_first  1
    <BLANKLINE>
    Unsupported features:
      mine
        groups: no
    """
    infos = list(infos)
    header = ["backend", "source", "available", "ops", "ranks", "dtypes", "accumulation", "local",
              "deterministic", "layout", "unsupported"]
    rows = [header] + [_row(info) for info in infos]
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    unsupported = [
        f"  {info.name}\n" + "\n".join(f"    {key}: {reason}" for key, reason in sorted(caps.unsupported.items()))
        for info in infos
        if (caps := info.capabilities) is not None and caps.unsupported
    ]
    if unsupported:
        lines += ["", "Unsupported features:", *unsupported]
    unavailable = [info for info in infos if not info.available]
    if unavailable:
        lines += ["", "Unavailable:"]
        lines += [f"  {info.name} ({info.target}): {info.reason}" for info in unavailable]
    return "\n".join(lines)
