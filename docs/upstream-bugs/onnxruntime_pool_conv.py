"""onnxruntime 1.32.0 CPU vs ONNX operator semantics (numpy + onnx + onnxruntime)."""
import numpy as np, onnxruntime as ort
from onnx import helper, TensorProto

def run(op, x, outs=("Y",), w=None, **attrs):
    inputs = [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))]
    feeds = {"X": x}
    if w is not None:
        inputs.append(helper.make_tensor_value_info("W", TensorProto.FLOAT, list(w.shape))); feeds["W"] = w
    node = helper.make_node(op, list(feeds), list(outs), **attrs)
    g = helper.make_graph([node], "g", inputs, [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 22)]); m.ir_version = 10
    try:
        return ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    except Exception as e:
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"

x = np.arange(3, dtype=np.float32).reshape(1, 1, 3)
# 1. SAME_UPPER with dilation: ONNX: output = ceil(3/1) = 3
print("MaxPool k=2 d=2 SAME_UPPER n=3 ->", np.shape(run("MaxPool", x, kernel_shape=[2], dilations=[2], auto_pad="SAME_UPPER")), "(ONNX: 3)")
print("AveragePool k=2 d=2 SAME_UPPER n=3 ->", np.shape(run("AveragePool", x, kernel_shape=[2], dilations=[2], auto_pad="SAME_UPPER")), "(ONNX: 3)")
print("Conv k=2 d=2 SAME_UPPER ->", run("Conv", x, w=np.ones((1, 1, 2), np.float32), dilations=[2], auto_pad="SAME_UPPER"))
# 2. VALID with dilation: o = floor((3 - 3)/1) + 1 = 1? n=3,k=2,d=2 -> effective 3 -> o = 1
print("AveragePool k=2 d=2 VALID n=3 ->", run("AveragePool", x, kernel_shape=[2], dilations=[2], auto_pad="VALID"), "(expect shape (1,1,1), value (0+2)/2=1)")
# 3. pads >= kernel refused although windows are non-empty with dilation
print("MaxPool k=2 d=2 pads=[2,2] n=2 ->", run("MaxPool", x[..., :2].copy(), kernel_shape=[2], dilations=[2], pads=[2, 2]))
# 4. NaN does not propagate in MaxPool
xn = np.array([[[np.nan, 1.0, 2.0]]], np.float32)
print("MaxPool k=2 x=[nan,1,2] ->", run("MaxPool", xn, kernel_shape=[2], strides=[1]), "(spec MAXPOOL-NAN-1: [nan, 2])")
# 5. ConvTranspose output_padding >= stride (but < dilation)
print("ConvTranspose s=1 d=2 output_padding=1 ->", run("ConvTranspose", x, w=np.ones((1, 1, 2), np.float32), dilations=[2], output_padding=[1]))
