"""ONNX reference-evaluator MaxPool Indices vs onnxruntime (numpy + onnx + onnxruntime)."""
import numpy as np, onnx, onnxruntime as ort
from onnx import helper, TensorProto
from onnx.reference import ReferenceEvaluator

def run(pads, shape, kernel, x):
    node = helper.make_node("MaxPool", ["X"], ["Y", "I"], kernel_shape=kernel, strides=[1]*len(kernel), pads=pads)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("X", TensorProto.FLOAT, shape)],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None),
                           helper.make_tensor_value_info("I", TensorProto.INT64, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 22)]); m.ir_version = 10
    out = {}
    for name, f in [("reference", lambda: ReferenceEvaluator(m).run(None, {"X": x})),
                    ("onnxruntime", lambda: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"X": x}))]:
        try:
            y, i = f(); out[name] = (y.ravel().tolist(), i.ravel().tolist())
        except Exception as e:
            out[name] = f"{type(e).__name__}: {str(e)[:100]}"
    return out

x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
print("x =", x.reshape(3, 4).tolist())
for pads in ([0, 0, 0, 0], [1, 1, 1, 1], [1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0]):
    print("2-D k=2 s=1 pads", pads, run(pads, [1, 1, 3, 4], [2, 2], x))
x1 = np.array([[[1, 5, 2, 4, 3]]], np.float32)
for pads in ([1, 1], [1, 0], [0, 1]):
    print("1-D x=[1 5 2 4 3] k=2 s=1 pads", pads, run(pads, [1, 1, 5], [2], x1))
