"""The ONNX backends: one-node ONNX models (opset 22) run by ``onnx.reference.ReferenceEvaluator``
(``onnx:reference``) or by onnxruntime (``onnx:onnxruntime``, CPUExecutionProvider;
``onnx:onnxruntime:<ExecutionProvider>`` for any other provider).

Each call builds (and caches per op, parameters and dtype) a model with a single Conv,
ConvTranspose, MaxPool (with its optional ``Indices`` output) or AveragePool node, in the case's
dtype, and runs it. ONNX's own conventions are used natively, not convspec's or torch's transforms:

* padding: explicit pads go to ``pads`` as [b1..bm, e1..em]; 'valid' goes to ``auto_pad=VALID``;
  'same_upper' / 'same_lower' go to ``auto_pad=SAME_UPPER`` / ``SAME_LOWER`` for every stride and
  dilation, as ONNX defines them. Where ONNX's (or a runtime's) SAME formula differs from PAD-4 /
  PAD-5 (e.g. not accounting for dilation), the conformance run reports it: the native string is
  passed anyway, nothing is corrected here.
* AveragePool: ``count_include_pad``, ``ceil_mode``, ``dilations`` (AveragePool-19+) natively.
  MaxPool: ``ceil_mode``, ``dilations``, ``storage_order=0``.
* ConvTranspose: ``output_padding``, ``group``, ``dilations``, ``strides``, explicit ``pads``.
* MaxPool indices: ONNX returns flat indices over the whole (N, C, *S) tensor (row-major with
  storage_order 0); the spec's index is per (n, c) plane (MAXPOOL-INDEX-1), so the index is taken
  modulo Π S (idx_onnx = (n·C + c)·Π n_i + idx). This is the only transformation.

Declared unsupported (Capabilities.unsupported): divisor_override (no such attribute in ONNX
AveragePool) and the conv padding modes reflect / replicate / circular (ONNX Conv pads with zeros
only; a Pad node would be an emulation). Gradient ops are not offered (Capabilities.ops lists the
forward ops only): ONNX inference has no gradient operators. Empty batches (N = 0) are left to
the runtime.

onnx and onnxruntime are imported when a backend is constructed, never when this module is
imported.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..spec import (
    AvgPoolParams,
    ConvParams,
    ConvTransposeParams,
    MaxPoolParams,
    Params,
    Unsupported,
    check_arrays,
)
from .base import Capabilities

OPSET = 22
FORWARD = frozenset({"conv", "conv_transpose", "max_pool", "avg_pool"})

_UNSUPPORTED = {
    "avg_pool:divisor_override": "ONNX AveragePool has no divisor_override attribute",
    "conv:padding_mode.reflect": "ONNX Conv pads with zeros only (no padding_mode attribute)",
    "conv:padding_mode.replicate": "ONNX Conv pads with zeros only (no padding_mode attribute)",
    "conv:padding_mode.circular": "ONNX Conv pads with zeros only (no padding_mode attribute)",
}

_AUTO_PAD = {"valid": "VALID", "same_upper": "SAME_UPPER", "same_lower": "SAME_LOWER"}


def _pad_attributes(params: Params) -> dict[str, Any]:
    """``auto_pad`` for a padding string, else explicit ``pads`` [b1..bm, e1..em]."""
    if isinstance(params.padding, str):
        return {"auto_pad": _AUTO_PAD[params.padding]}
    return {"pads": [before for before, _ in params.pads] + [after for _, after in params.pads]}


class OnnxBackend:
    """ONNX one-node models run by the ONNX reference evaluator or by onnxruntime."""

    def __init__(self, runtime: str = "reference", provider: str | None = None) -> None:
        import onnx  # noqa: F401  (lazy: only when a backend is built)

        self._onnx = onnx
        self.runtime = runtime
        self._cache: dict[Any, Any] = {}
        #: (op, params, dtype) -> the ModelProto built for it (kept for inspection).
        self.models: dict[Any, Any] = {}
        if runtime == "reference":
            from onnx.reference import ReferenceEvaluator

            self._evaluator = ReferenceEvaluator
            self.name = "onnx:reference"
            self.provider = None
        elif runtime == "onnxruntime":
            import onnxruntime

            self._ort = onnxruntime
            onnxruntime.set_default_logger_severity(3)  # errors surface as exceptions, not log lines
            provider = provider or "CPUExecutionProvider"
            available = onnxruntime.get_available_providers()
            if provider not in available:
                raise ValueError(f"execution provider {provider!r} is not available in onnxruntime "
                                 f"{onnxruntime.__version__} (available: {', '.join(available)})")
            self.provider = provider
            self.name = "onnx:onnxruntime" if provider == "CPUExecutionProvider" else f"onnx:onnxruntime:{provider}"
        else:
            raise ValueError(f"unknown ONNX runtime {runtime!r} (reference or onnxruntime)")
        # Checked by running (onnx 1.23.2, onnxruntime 1.32.0): the reference evaluator computes in
        # NumPy for every dtype, bfloat16 included (ml_dtypes). onnxruntime's CPU provider has no
        # bfloat16 kernel for any of the four ops and a float64 kernel for MaxPool only.
        dtypes = {"float16", "float32", "float64", "bfloat16"} if runtime == "reference" else {"float16", "float32"}
        self.capabilities = Capabilities(
            ops=FORWARD,
            dtypes=frozenset(dtypes),
            unsupported=dict(_UNSUPPORTED),
            accumulation=None,
            deterministic=True,
        )

    # -- plumbing ------------------------------------------------------------------------------

    def _check(self, op: str, params: Params, arrays: dict[str, Any]) -> str:
        dtype_name = check_arrays(op, params, arrays)
        self.capabilities.refuse_unsupported(self.name, op, params, dtype_name)
        return dtype_name

    def _model(self, op_type: str, inputs: list[tuple[str, tuple[int, ...]]],
               outputs: list[tuple[str, tuple[int, ...] | None, bool]], attributes: dict[str, Any],
               dtype: np.dtype[Any]) -> Any:
        onnx = self._onnx
        from onnx import TensorProto, helper

        elem = helper.np_dtype_to_tensor_dtype(dtype)
        node = helper.make_node(op_type, [name for name, _ in inputs], [name for name, _, _ in outputs],
                                **attributes)
        graph = helper.make_graph(
            [node], f"convspec_{op_type}",
            [helper.make_tensor_value_info(name, elem, list(shape)) for name, shape in inputs],
            [helper.make_tensor_value_info(name, TensorProto.INT64 if is_index else elem, None if shape is None else list(shape))
             for name, shape, is_index in outputs],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        model.ir_version = min(model.ir_version, 10)
        onnx.checker.check_model(model)
        return model

    def _session(self, key: Any, build: Any) -> Any:
        session = self._cache.get(key)
        if session is None:
            model = build()
            self.models[key] = model
            session = self._build_session(model)
            self._cache[key] = session
        return session

    def _run(self, session: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return list(session.run(None, feeds))

    def _build_session(self, model: Any) -> Any:
        if self.runtime == "reference":
            return self._evaluator(model)
        options = self._ort.SessionOptions()
        options.log_severity_level = 3
        try:
            return self._ort.InferenceSession(model.SerializeToString(), options, providers=[self.provider])
        except Exception as exc:
            # A provider without a kernel for this op and dtype: a valid case it cannot run.
            if "Could not find an implementation" in str(exc):
                raise Unsupported(f"backend {self.name!r}: {str(exc).strip()}") from exc
            raise

    def pad_attributes(self, params: Params) -> dict[str, Any]:
        """``auto_pad`` for a padding string, else explicit ``pads`` [b1..bm, e1..em]."""
        return _pad_attributes(params)

    # -- ops -----------------------------------------------------------------------------------

    def _conv_like(self, op: str, op_type: str, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                   params: ConvParams | ConvTransposeParams, extra: dict[str, Any]) -> np.ndarray:
        dtype_name = self._check(op, params, {"x": x, "w": w, "b": b})
        dtype = np.asarray(x).dtype
        attributes = {"kernel_shape": list(params.kernel_size), "strides": list(params.stride),
                      "dilations": list(params.dilation), "group": params.groups, **self.pad_attributes(params),
                      **extra}
        inputs = [("X", params.input_shape), ("W", params.weight_shape)]
        if b is not None:
            inputs.append(("B", tuple(np.shape(b))))
        key = (op, params, dtype_name)
        session = self._session(key, lambda: self._model(op_type, inputs, [("Y", params.output_shape, False)], attributes, dtype))
        feeds = {"X": np.ascontiguousarray(x), "W": np.ascontiguousarray(w)}
        if b is not None:
            feeds["B"] = np.ascontiguousarray(b)
        (y,) = self._run(session, feeds)
        return np.asarray(y)

    def conv(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None, params: ConvParams) -> np.ndarray:
        """ONNX Conv (CONV-DEF-1)."""
        return self._conv_like("conv", "Conv", x, w, b, params, {})

    def conv_transpose(self, x: np.ndarray, w: np.ndarray, b: np.ndarray | None,
                       params: ConvTransposeParams) -> np.ndarray:
        """ONNX ConvTranspose with output_padding (CONVT-DEF-1)."""
        return self._conv_like("conv_transpose", "ConvTranspose", x, w, b, params,
                               {"output_padding": list(params.output_padding)})

    def _pool_attributes(self, params: MaxPoolParams | AvgPoolParams) -> dict[str, Any]:
        return {"kernel_shape": list(params.kernel_size), "strides": list(params.stride),
                "dilations": list(params.dilation), "ceil_mode": int(params.ceil_mode),
                **self.pad_attributes(params)}

    def max_pool(self, x: np.ndarray, params: MaxPoolParams) -> tuple[np.ndarray, np.ndarray]:
        """ONNX MaxPool with Indices; indices mapped to the (n, c) plane (MAXPOOL-INDEX-1)."""
        dtype_name = self._check("max_pool", params, {"x": x})
        dtype = np.asarray(x).dtype
        attributes = {**self._pool_attributes(params), "storage_order": 0}
        session = self._session(("max_pool", params, dtype_name), lambda: self._model(
            "MaxPool", [("X", params.input_shape)], [("Y", params.output_shape, False), ("Indices", params.output_shape, True)], attributes,
            dtype))
        y, indices = self._run(session, {"X": np.ascontiguousarray(x)})
        plane = math.prod(params.input_shape[2:])
        return np.asarray(y), np.asarray(indices).astype(np.int64) % plane

    def avg_pool(self, x: np.ndarray, params: AvgPoolParams) -> np.ndarray:
        """ONNX AveragePool with count_include_pad (AVGPOOL-DEF-1)."""
        dtype_name = self._check("avg_pool", params, {"x": x})
        dtype = np.asarray(x).dtype
        attributes = {**self._pool_attributes(params), "count_include_pad": int(params.count_include_pad)}
        session = self._session(("avg_pool", params, dtype_name), lambda: self._model(
            "AveragePool", [("X", params.input_shape)], [("Y", params.output_shape, False)], attributes, dtype))
        (y,) = self._run(session, {"X": np.ascontiguousarray(x)})
        return np.asarray(y)
