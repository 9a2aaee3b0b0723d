#!/usr/bin/env python3
"""Writes Tests/SparsityFormatsTests/Fixtures/quantization.safetensors: torchao's int8
quantization of weights and activations and its linear outputs, the reference the Swift
quantizer and int8 kernels are checked against.

For each case `c` (a weight W [n, k], a bias, activations X [m, k]):
  c.w, c.b, c.x                     the float inputs
  c.w_q (I8 [n, k]), c.w_scale      Int8Tensor.from_hp(W, PerRow()): symmetric per output row
  c.x_q (I8 [m, k]), c.x_scale      the per-token activation quantization of
                                    Int8DynamicActivationInt8WeightConfig (the same from_hp)
  c.y_dynamic                       F.linear(X, W, b) after quantize_(…, Int8DynamicActivationInt8WeightConfig())
  c.y_weight_only                   the same after Int8WeightOnlyConfig()
Cases cover ragged shapes, M = 1, rows of zeros, ties at .5 and outliers.

    python3 scripts/make_quantization_fixtures.py   # torch (CPU wheel) + torchao 0.18 + safetensors
"""
import os

import torch
import torchao
from safetensors.torch import save_file
from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_
from torchao.quantization.granularity import PerRow
from torchao.quantization.quantize_.workflows.int8.int8_tensor import Int8Tensor

OUT = os.path.join(os.path.dirname(__file__), "..", "Tests", "SparsityFormatsTests", "Fixtures", "quantization.safetensors")


def case(generator, n, k, m, special=False):
    w = torch.randn(n, k, generator=generator) * 0.05
    x = torch.randn(m, k, generator=generator) * 2
    b = torch.randn(n, generator=generator) * 0.1
    if special:
        w[0] = 0  # a zero row: scale = eps
        w[1, :] = torch.linspace(-1, 1, k)  # exact ties at .5 after scaling
        w[2, 3 % k] = 40.0  # an outlier
        x[0] = 0
        if m > 2:
            x[1, :] = torch.arange(k, dtype=torch.float32) - k / 2  # integers: ties
    return w, b, x


def main():
    g = torch.Generator().manual_seed(0)
    tensors = {}
    shapes = {"a": (16, 64, 8, False), "ragged": (37, 70, 5, True), "m1": (24, 100, 1, False), "wide": (64, 384, 33, True)}
    for name, (n, k, m, special) in shapes.items():
        w, b, x = case(g, n, k, m, special)
        wq = Int8Tensor.from_hp(w, PerRow())
        xq = Int8Tensor.from_hp(x, PerRow())
        dyn = torch.nn.Linear(k, n)
        dyn.weight.data, dyn.bias.data = w.clone(), b.clone()
        quantize_(dyn, Int8DynamicActivationInt8WeightConfig())
        wo = torch.nn.Linear(k, n)
        wo.weight.data, wo.bias.data = w.clone(), b.clone()
        quantize_(wo, Int8WeightOnlyConfig())
        with torch.no_grad():
            y_dyn = dyn(x)
            y_wo = wo(x)
        # The layers hold the same quantized weight as from_hp.
        assert torch.equal(dyn.weight.qdata, wq.qdata) and torch.equal(dyn.weight.scale, wq.scale)
        tensors.update({
            f"{name}.w": w, f"{name}.b": b, f"{name}.x": x,
            f"{name}.w_q": wq.qdata.contiguous(), f"{name}.w_scale": wq.scale.reshape(-1).contiguous(),
            f"{name}.x_q": xq.qdata.contiguous(), f"{name}.x_scale": xq.scale.reshape(-1).contiguous(),
            f"{name}.y_dynamic": y_dyn.contiguous(), f"{name}.y_weight_only": y_wo.contiguous(),
        })
    save_file(tensors, OUT, metadata={"torch": torch.__version__, "torchao": torchao.__version__})
    print("wrote", OUT, len(tensors), "tensors")


if __name__ == "__main__":
    main()
