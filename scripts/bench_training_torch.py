#!/usr/bin/env python3
"""The PyTorch peer of `sparsity bench --training`: one dense training step of the same
squared-ReLU MLP block, on the same shapes, timed the same way.

    /work/venv/bin/python scripts/bench_training_torch.py [--threads 2] [--rounds 3] [--m 4096,16384] [--json out.json]

Block: fc1 = nn.Linear(d, h), fc2 = nn.Linear(h, d), y = fc2(relu(fc1(x)) ** 2), fp32, x [tokens, d]
standard normal, requiring a gradient (as any block past a network's first, and as xFormers'
benchmark_sp24.py). Step: forward, MSE loss against zeros (mean over every element),
loss.backward(), SGD(momentum=0.9, lr=1e-4).step(), with zero_grad(set_to_none=True) first —
what `sparsity bench --training` times for its `dense` variant. One untimed warm-up step, then
the median of --rounds steps. torch.set_num_threads(THREADS); OMP/MKL thread variables are set
before torch is imported. (PyTorch has no CPU kernels for 2:4 training: torchao's SemiSparseLinear
and xFormers' sp24 need CUDA, so the dense step is the peer.)
"""
import argparse
import json
import os
import statistics
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--rounds", type=int, default=3)
ap.add_argument("--m", default="4096,16384", help="token counts, comma-separated")
ap.add_argument("--json", help="write the records here")
args = ap.parse_args()
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[var] = str(args.threads)

import torch  # noqa: E402

torch.set_num_threads(args.threads)
torch.manual_seed(7)
records = []
for d, h in ((768, 3072), (1024, 4096)):
    for tokens in (int(t) for t in args.m.split(",")):
        fc1, fc2 = torch.nn.Linear(d, h), torch.nn.Linear(h, d)
        params = list(fc1.parameters()) + list(fc2.parameters())
        optimizer = torch.optim.SGD(params, lr=1e-4, momentum=0.9)
        x = torch.randn(tokens, d, requires_grad=True)
        target = torch.zeros(tokens, d)

        def step():
            optimizer.zero_grad(set_to_none=True)
            x.grad = None
            loss = torch.nn.functional.mse_loss(fc2(torch.relu(fc1(x)) ** 2), target)
            loss.backward()
            optimizer.step()

        step()
        times = []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        seconds = statistics.median(times)
        records.append({"dimension": d, "hidden": h, "tokens": tokens, "engine": f"PyTorch {torch.__version__}", "seconds": seconds})
        print(f"| {d}↔{h} | {tokens} | PyTorch {torch.__version__} dense | {seconds * 1000:.1f} |", flush=True)
if args.json:
    with open(args.json, "w") as f:
        json.dump(records, f, indent=1)
