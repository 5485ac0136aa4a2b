"""An external program as a backend: ``convspec check 'cmd:PROGRAM ARGS'``.

The program never links against Python. For a batch of calls the backend writes, into a fresh
temporary directory ``DIR``::

    manifest.json             one entry per call: op, explicit parameters, shapes, dtype, files
    cases.txt                 the same, one line of key=value words per call (no JSON parser needed)
    <id>.<input>.npy          the inputs: x, w, b, dy (NumPy .npy, C order, little-endian)

and runs ``PROGRAM ARGS DIR`` once. The program writes ``DIR/<id>.<output>.npy`` for each output
(y, indices, dx, dw, db) in the input dtype (indices: int64), or ``DIR/<id>.unsupported`` holding a
one-line reason for a call it cannot run. This is the golden-vector format of ``docs/vectors.md``
without the reference outputs, so one program serves both workflows.

Arrays and parameters are validated (``convspec.spec.check_arrays``) before anything is written,
so the program only ever sees valid configurations with resolved pads; an invalid one raises
:class:`~convspec.spec.InvalidParams` naming its clause.

Capabilities come from ``PROGRAM ARGS --capabilities``: a program that prints a JSON object there
declares what it runs (the fields of :class:`~convspec.backends.Capabilities`)::

    {"ops": ["conv", "max_pool", "avg_pool"], "ranks": [1, 2, 3], "dtypes": ["float32"],
     "unsupported": {"padding_mode.reflect": "zeros padding only"}}

A program that exits non-zero or prints nothing gets :data:`DEFAULT_CAPABILITIES`: the forward
conv and both pools, any rank, float32 — what a first implementation in another language usually
has. Start-ups are kept few by :meth:`CommandBackend.prefetch`, which runs a whole batch in one
process (twice, for the determinism check) and caches the outputs until the matching calls ask.

Imports only ``convspec.spec`` and ``convspec.backends.base`` (never the reference).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import (
    OPS,
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    Params,
    Unsupported,
    check_arrays,
    dtype_name,
    init_kwargs,
    to_dtype,
)
from ..spec.features import features_of
from .base import Capabilities, refused_by_adapter

__all__ = [
    "DEFAULT_CAPABILITIES",
    "MANIFEST_FORMAT",
    "MANIFEST_VERSION",
    "CommandBackend",
    "ProgramTimeout",
    "case_line",
    "explicit_params",
    "load_array",
    "manifest_case",
    "save_array",
    "write_batch",
]

MANIFEST_FORMAT = "convspec-vectors"
MANIFEST_VERSION = "1.0"

#: What a program that does not answer ``--capabilities`` is assumed to run.
DEFAULT_CAPABILITIES = Capabilities(ops=frozenset({"conv", "max_pool", "avg_pool"}), dtypes=frozenset({"float32"}))

#: Fields a program may declare with ``--capabilities`` (those of Capabilities, minus layout).
_CAPABILITY_FIELDS = ("ops", "ranks", "dtypes", "unsupported", "accumulation", "input_precision", "local",
                      "deterministic", "speed")

#: Outputs a program may leave unwritten (the backend protocol lets max_pool omit its indices).
_OPTIONAL_OUTPUTS = ("indices",)


# -- the file format, shared with golden vectors (convspec.conformance.vectors) ---------------------

def _ints(values: Iterable[int] | None) -> list[int] | None:
    return None if values is None else [int(v) for v in values]


def explicit_params(params: Params) -> dict[str, Any]:
    """Every parameter of ``params`` spelled out, so no convention has to be guessed.

    Pads are explicit ``[[before, after], ...]`` per spatial dim (``padding_requested`` only
    records what form was asked for). Keys that do not apply to the op are ``None``.

    >>> explicit_params(MaxPoolParams(input_shape=(1, 1, 5), kernel_size=2, padding="same"))["pads"]
    [[0, 1]]
    """
    conv = params if isinstance(params, (ConvParams, ConvTransposeParams)) else None
    return {
        "rank": params.rank,
        "input_shape": _ints(params.input_shape),
        "weight_shape": _ints(conv.weight_shape) if conv else None,
        "bias_shape": _ints(conv.bias_shape) if conv and conv.bias_shape is not None else None,
        "output_shape": _ints(params.output_shape),
        "kernel_size": _ints(params.kernel_size),
        "stride": _ints(params.stride),
        "dilation": _ints(params.dilation),
        "pads": [[int(before), int(after)] for before, after in params.pads],
        "groups": int(conv.groups) if conv else None,
        "padding_mode": getattr(conv, "padding_mode", "zeros") if conv else None,
        "output_padding": _ints(params.output_padding) if isinstance(params, ConvTransposeParams) else None,
        "ceil_mode": bool(params.ceil_mode) if isinstance(params, (MaxPoolParams, AvgPoolParams)) else None,
        "count_include_pad": bool(params.count_include_pad) if isinstance(params, AvgPoolParams) else None,
        "divisor_override": params.divisor_override if isinstance(params, AvgPoolParams) else None,
        "padding_requested": params.padding if isinstance(params.padding, str) else "explicit",
    }


def _array_dtype(name: str, dtype: str) -> str:
    return "int64" if name == "indices" else dtype


def manifest_case(case_id: str, op: str, params: Params, dtype: str,
                  shapes: Mapping[str, tuple[int, ...] | None]) -> dict[str, Any]:
    """The manifest entry of one call: op, explicit params, features, clauses and file names.

    ``shapes`` maps every input and output name of ``OPS[op]`` to its shape (None: absent, e.g.
    no bias). Files are ``<case_id>.<name>.npy``.
    """
    info = OPS[op]

    def files(names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        return {name: None if shapes.get(name) is None else
                {"file": f"{case_id}.{name}.npy", "shape": _ints(shapes[name]), "dtype": _array_dtype(name, dtype)}
                for name in names}

    return {"id": case_id, "op": op, "dtype": dtype, "params": explicit_params(params),
            "features": sorted(features_of(op, params)), "clauses": list(info.clauses),
            "inputs": files(info.inputs), "outputs": files(info.outputs)}


def _words(values: Iterable[int] | None) -> str:
    values = list(values or ())
    return ",".join(str(int(v)) for v in values) if values else "-"


def case_line(entry: Mapping[str, Any]) -> str:
    """One line of ``cases.txt``: every key on every line, ``-`` for an absent list.

    ``id op dtype rank x w b y k s d pads g mode outpad ceil cip div`` (see docs/vectors.md); ``pads``
    lists ``before,after`` per dim in dim order, ``b`` is the bias length or ``-``, ``div`` 0 for none.
    """
    p = entry["params"]
    mode = p["padding_mode"] or "zeros"
    words = [
        f"id={entry['id']}", f"op={entry['op']}", f"dtype={entry['dtype']}", f"rank={p['rank']}",
        f"x={_words(p['input_shape'])}", f"w={_words(p['weight_shape'])}", f"b={_words(p['bias_shape'])}",
        f"y={_words(p['output_shape'])}", f"k={_words(p['kernel_size'])}", f"s={_words(p['stride'])}",
        f"d={_words(p['dilation'])}", f"pads={_words(v for pair in p['pads'] for v in pair)}",
        f"g={p['groups'] or 1}", f"mode={mode}", f"outpad={_words(p['output_padding'])}",
        f"ceil={int(bool(p['ceil_mode']))}", f"cip={int(bool(p['count_include_pad']))}",
        f"div={p['divisor_override'] or 0}",
    ]
    return " ".join(words)


def save_array(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as a version-1 .npy file, C order, little-endian.

    bfloat16 (which .npy cannot name) is written as its uint16 bit patterns; the manifest says
    ``"dtype": "bfloat16"``.
    """
    array = np.ascontiguousarray(array)
    if array.dtype.name == "bfloat16":
        array = array.view(np.uint16)
    array = array.astype(array.dtype.newbyteorder("<"), copy=False)
    with open(path, "wb") as handle:
        np.lib.format.write_array(handle, array, version=(1, 0), allow_pickle=False)


def load_array(path: str | os.PathLike[str], dtype: str | None = None) -> np.ndarray:
    """Read a .npy file (no pickles); with ``dtype="bfloat16"`` a uint16 file is read as bit patterns."""
    array = np.load(path, allow_pickle=False)
    if dtype == "bfloat16" and array.dtype == np.uint16:
        return array.view(to_dtype("bfloat16"))
    return array


def write_batch(directory: str | os.PathLike[str], entries: Sequence[Mapping[str, Any]],
                header: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Write ``manifest.json`` and ``cases.txt`` for ``entries`` into ``directory``; returns the manifest."""
    manifest = {"format": MANIFEST_FORMAT, "format_version": MANIFEST_VERSION, **(header or {}),
                "cases": list(entries)}
    root = Path(directory)
    (root / "manifest.json").write_text(json.dumps(manifest, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    (root / "cases.txt").write_text("".join(case_line(e) + "\n" for e in entries), encoding="utf-8")
    return manifest


# -- the backend -----------------------------------------------------------------------------------

def _key(op: str, arrays: Mapping[str, Any], params: Params) -> str:
    """Cache key: op, parameter object and every input's dtype, shape and bytes."""
    digest = hashlib.sha256(op.encode())
    digest.update(repr(sorted(init_kwargs(params).items())).encode())
    for name in OPS[op].inputs:
        value = arrays.get(name)
        if value is None:
            digest.update(f"{name}:none".encode())
            continue
        value = np.ascontiguousarray(value)
        digest.update(f"{name}:{value.dtype.str}:{value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


class ProgramTimeout(TimeoutError):
    """The program ran past the backend's ``timeout`` and was killed (the runner reports the call
    as timed_out)."""


def _run_killable(argv: Sequence[str], timeout: float | None) -> subprocess.CompletedProcess[str]:
    """``subprocess.run(argv)`` in a session of its own, so that past ``timeout`` the program and
    every process it started are killed (a child holding the output pipes would otherwise keep
    the wait going); TimeoutExpired then."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True) as process:
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                process.kill()
            process.communicate()
            raise
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


class CommandBackend:
    """Runs ``command`` (a program and its arguments) on batches of calls written as .npy files.

    Parameters
    ----------
    command : ``"PROGRAM ARGS"`` (split like a shell would, with :func:`shlex.split`) or a list.
    name : the backend's name in reports; default ``cmd:<command>``.
    capabilities : overrides what ``--capabilities`` declares.
    timeout : seconds one run of the program may take (None: no limit); past it the program and
        its children are killed and the call raises :class:`ProgramTimeout` (a ``TimeoutError``,
        reported *timed_out*). A batch that runs past it is dropped and its calls run one by one.
        ``convspec check cmd:... --timeout S`` sets it.

    >>> backend = CommandBackend("false")  # doctest: +SKIP
    >>> sorted(backend.capabilities.ops)  # doctest: +SKIP
    ['avg_pool', 'conv', 'max_pool']
    """

    def __init__(self, command: str | Sequence[str], *, name: str | None = None,
                 capabilities: Capabilities | None = None, timeout: float | None = None) -> None:
        self.argv = shlex.split(command) if isinstance(command, str) else [str(a) for a in command]
        if not self.argv:
            raise ValueError("command='' names no program; the form is cmd:PROGRAM ARGS")
        self.name = name or "cmd:" + shlex.join(self.argv)
        self.timeout = timeout
        self.runs = 0  # program start-ups so far (batching keeps this low)
        self._cache: dict[str, list[dict[str, np.ndarray | None] | str]] = {}
        self.capabilities = capabilities or self._ask_capabilities()

    def __repr__(self) -> str:
        return f"CommandBackend({shlex.join(self.argv)!r}, name={self.name!r})"

    # -- capabilities ------------------------------------------------------------------------
    def _ask_capabilities(self) -> Capabilities:
        try:
            done = subprocess.run([*self.argv, "--capabilities"], capture_output=True, text=True,
                                  timeout=self.timeout or 60)
        except FileNotFoundError as exc:
            raise ValueError(f"command={shlex.join(self.argv)!r}: program {self.argv[0]!r} not found") from exc
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ValueError(f"command={shlex.join(self.argv)!r}: running it with --capabilities failed: "
                             f"{exc}") from exc
        text = done.stdout.strip()
        if done.returncode != 0 or not text:
            return DEFAULT_CAPABILITIES
        try:
            declared = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{shlex.join(self.argv)} --capabilities printed {_tail(text, 3)!r}, which is not "
                             "a JSON object (print one, or exit non-zero for the defaults)") from exc
        return capabilities_from_json(declared, where=f"{shlex.join(self.argv)} --capabilities")

    # -- running batches -----------------------------------------------------------------------
    def prefetch(self, requests: Iterable[tuple[str, Mapping[str, Any], Params]], *,
                 repeats: int | None = None) -> int:
        """Run the program on every supported, not yet cached request as one batch; cache the outputs.

        The batch runs ``repeats`` times (default: 2 for a backend declaring determinism, so the
        runner's repeated call — HYGIENE-3 — compares two separate runs of the program; else 1).
        Each later call of the op with the same inputs and parameters takes the next cached result;
        once they are used up, a call runs the program on its own. When a batch run fails, nothing
        is cached and each call later runs alone, so one bad case reports its own error. Returns
        the number of requests cached.
        """
        repeats = (2 if self.capabilities.deterministic else 1) if repeats is None else repeats
        batch: dict[str, tuple[str, Mapping[str, Any], Params]] = {}
        for op, arrays, params in requests:
            try:
                dtype = check_arrays(op, params, dict(arrays))
            except (ValueError, TypeError):
                continue  # refused when called
            if self.capabilities.unsupported_reason(op, params, dtype) is not None:
                continue
            key = _key(op, arrays, params)
            if key not in self._cache:
                batch.setdefault(key, (op, arrays, params))
        if not batch:
            return 0
        runs = []
        for _ in range(repeats):
            try:
                runs.append(self._run(list(batch.values())))
            except (RuntimeError, ProgramTimeout):  # each call runs alone later (and times out alone)
                return 0
        for index, key in enumerate(batch):
            self._cache[key] = [run[index] for run in runs]
        return len(batch)

    def _call(self, op: str, arrays: Mapping[str, Any], params: Params) -> Any:
        # The program only ever sees valid, resolved parameters: an invalid configuration is
        # refused here, citing its clause (InvalidParams), before the program runs — reported as
        # "validated by the adapter", since the program's own validation is not exercised.
        try:
            check_arrays(op, params, dict(arrays))
        except (ValueError, TypeError) as exc:
            raise refused_by_adapter(exc)
        key = _key(op, arrays, params)
        cached = self._cache.get(key)
        if cached:
            result = cached.pop(0)
            if not cached:
                del self._cache[key]
        else:
            result = self._run([(op, arrays, params)])[0]
        if isinstance(result, str):
            raise Unsupported(f"{self.argv[0]}: {result}")
        values = tuple(result[name] for name in OPS[op].outputs)
        return values[0] if len(values) == 1 else values

    def _run(self, calls: Sequence[tuple[str, Mapping[str, Any], Params]]) -> list[dict[str, np.ndarray | None] | str]:
        """Write ``calls`` into a temporary directory, run the program once, read what it wrote.

        Each result is the outputs by name, or the reason the program gave in ``<id>.unsupported``.
        RuntimeError when the program fails or leaves a required output unwritten.
        """
        with tempfile.TemporaryDirectory(prefix="convspec-cmd-") as directory:
            root = Path(directory)
            entries = []
            for number, (op, arrays, params) in enumerate(calls):
                case_id = f"c{number:05d}"
                dtype = _dtype_of(op, arrays) or "float32"
                shapes = {name: None if arrays.get(name) is None else tuple(np.shape(arrays[name]))
                          for name in OPS[op].inputs}
                shapes.update(_output_shapes(op, params))
                entry = manifest_case(case_id, op, params, dtype, shapes)
                for name, spec in entry["inputs"].items():
                    if spec is not None:
                        save_array(root / spec["file"], np.asarray(arrays[name]))
                entries.append(entry)
            write_batch(root, entries, {"purpose": "command backend batch: write the outputs next to the inputs"})
            self.runs += 1
            try:
                done = _run_killable([*self.argv, str(root)], self.timeout)
            except subprocess.TimeoutExpired as exc:
                raise ProgramTimeout(f"{shlex.join(self.argv)} ran past --timeout {self.timeout:g} s on "
                                     f"{len(calls)} call(s) and was killed") from exc
            except OSError as exc:
                raise RuntimeError(f"cannot run {shlex.join(self.argv)}: {exc}") from exc
            if done.returncode != 0:
                raise RuntimeError(f"{shlex.join(self.argv)} exited with status {done.returncode} on "
                                   f"{len(calls)} call(s); stderr: {_tail(done.stderr) or '(empty)'}")
            return [self._read(root, entry, done.stderr) for entry in entries]

    def _read(self, root: Path, entry: Mapping[str, Any], stderr: str) -> dict[str, np.ndarray | None] | str:
        marker = root / f"{entry['id']}.unsupported"
        if marker.exists():
            return marker.read_text(encoding="utf-8", errors="replace").strip() or "declared unsupported"
        outputs: dict[str, np.ndarray | None] = {}
        for name, spec in entry["outputs"].items():
            if spec is None:
                outputs[name] = None
                continue
            path = root / spec["file"]
            if not path.exists():
                if name in _OPTIONAL_OUTPUTS:
                    outputs[name] = None
                    continue
                raise RuntimeError(f"{shlex.join(self.argv)} wrote no {spec['file']} for {entry['op']} "
                                   f"(and no {entry['id']}.unsupported); stderr: {_tail(stderr) or '(empty)'}")
            try:
                outputs[name] = load_array(path, spec["dtype"])
            except (OSError, ValueError) as exc:
                raise RuntimeError(f"{shlex.join(self.argv)} wrote an unreadable {spec['file']}: {exc}") from exc
        return outputs

    # -- the ops (backend protocol) ------------------------------------------------------------
    def conv(self, x: Any, w: Any, b: Any, params: ConvParams) -> Any:
        return self._call("conv", {"x": x, "w": w, "b": b}, params)

    def conv_backward(self, x: Any, w: Any, dy: Any, params: ConvParams) -> Any:
        return self._call("conv_backward", {"x": x, "w": w, "dy": dy}, params)

    def conv_transpose(self, x: Any, w: Any, b: Any, params: ConvTransposeParams) -> Any:
        return self._call("conv_transpose", {"x": x, "w": w, "b": b}, params)

    def conv_transpose_backward(self, x: Any, w: Any, dy: Any, params: ConvTransposeParams) -> Any:
        return self._call("conv_transpose_backward", {"x": x, "w": w, "dy": dy}, params)

    def max_pool(self, x: Any, params: MaxPoolParams) -> Any:
        return self._call("max_pool", {"x": x}, params)

    def max_pool_backward(self, x: Any, dy: Any, params: MaxPoolParams) -> Any:
        return self._call("max_pool_backward", {"x": x, "dy": dy}, params)

    def avg_pool(self, x: Any, params: AvgPoolParams) -> Any:
        return self._call("avg_pool", {"x": x}, params)

    def avg_pool_backward(self, x: Any, dy: Any, params: AvgPoolParams) -> Any:
        return self._call("avg_pool_backward", {"x": x, "dy": dy}, params)


def capabilities_from_json(declared: Any, *, where: str = "capabilities") -> Capabilities:
    """A :class:`Capabilities` from the JSON object a program prints for ``--capabilities``."""
    if not isinstance(declared, dict):
        raise ValueError(f"{where}: expected a JSON object, got {type(declared).__name__}")
    unknown = sorted(set(declared) - set(_CAPABILITY_FIELDS) - {"name"})
    if unknown:
        raise ValueError(f"{where}: unknown keys {unknown}; known: {list(_CAPABILITY_FIELDS)}")
    fields = {key: declared[key] for key in _CAPABILITY_FIELDS if key in declared}
    for key in ("ops", "dtypes"):
        if key in fields:
            fields[key] = frozenset(fields[key])
    if fields.get("ranks") is not None:
        fields["ranks"] = frozenset(int(r) for r in fields["ranks"])
    try:
        return Capabilities(**{**_default_fields(), **fields})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _default_fields() -> dict[str, Any]:
    return {"ops": DEFAULT_CAPABILITIES.ops, "dtypes": DEFAULT_CAPABILITIES.dtypes}


def _dtype_of(op: str, arrays: Mapping[str, Any]) -> str | None:
    for name in OPS[op].inputs:
        value = arrays.get(name)
        if value is not None:
            try:
                return dtype_name(np.asarray(value).dtype)
            except ValueError:
                return None
    return None


def _output_shapes(op: str, params: Params) -> dict[str, tuple[int, ...] | None]:
    from ..spec import expected_shapes

    shapes = expected_shapes(op, params)
    return {name: shapes[name] for name in OPS[op].outputs}
