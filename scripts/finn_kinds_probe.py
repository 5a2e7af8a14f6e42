import sys, traceback
from pathlib import Path
import torch
from codesign.data import load_dataset
from codesign.net import Add, Conv2d, Conv1d, Dense, DepthwiseConv2d, GlobalAvgPool, Input, MaxPool, NetSpec, AvgPool
from codesign.model import build_model
from codesign.train import train
from codesign.config import TrainingConfig
from flows.qonnx import export_qonnx_file
from flows.finn import to_hw_dataflow, finn_environment

which = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "/tmp/finnx"
data = load_dataset("mnist1d" if which == "conv1d" else "digits")
x = Input(data)
if which == "gap":
    x = Conv2d(4, 3, weight_bits=2, act_bits=2)(x); x = GlobalAvgPool()(x)
elif which == "dw":
    x = Conv2d(4, 3, weight_bits=2, act_bits=2)(x); x = DepthwiseConv2d(3, weight_bits=2, act_bits=2)(x)
elif which == "res":
    x = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(x); y = Conv2d(4, 3, padding=1, weight_bits=2, act_bits=2)(x); x = Add(act_bits=2)(x, y)
    x = MaxPool(2)(x)
elif which == "conv1d":
    x = Conv1d(4, 5, weight_bits=2, act_bits=2)(x); x = MaxPool(2)(x)
elif which == "avg":
    x = Conv2d(4, 3, weight_bits=2, act_bits=2)(x); x = AvgPool(2)(x)
spec = NetSpec.from_output(Dense(data.n_classes, weight_bits=2)(x), data)
model = build_model(spec, seed=0)
train(model, data, TrainingConfig(epochs=1, patience=1), seed=0)
model.eval()
p, _ = export_qonnx_file(model, Path(out) / f"{which}.onnx")
with finn_environment() as tmp:
    try:
        df = to_hw_dataflow(p, "xc7z020clg400-1", Path(tmp))
        print("OK", [n.op_type for n in df.graph.node])
    except Exception as e:
        print("FAIL", str(e)[:1500])
