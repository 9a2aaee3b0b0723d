#!/usr/bin/env python3
"""The accuracy table of 2:4 sparse training on the digits models: for every model, mode and seed,
`sparsity train --model M --sparse-training MODE --seed S --json` (the model trained 2:4 from
scratch next to the same model trained dense, same schedule; with activations, squared ReLU in
both), then the mean test accuracy over the seeds and the sparse-minus-dense gap in points.

    python3 scripts/sparse_training_accuracy.py [--binary .build/release/sparsity] [--models mlp,vit]
        [--modes weights,activations,both] [--seeds 0,1,2] [--json out.json]
"""
import argparse
import json
import statistics
import subprocess
import sys
import time

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--binary", default=".build/release/sparsity")
ap.add_argument("--models", default="mlp,vit")
ap.add_argument("--modes", default="weights,activations,both")
ap.add_argument("--seeds", default="0,1,2")
ap.add_argument("--json")
args = ap.parse_args()

rows = []
for model in args.models.split(","):
    for mode in args.modes.split(","):
        for seed in args.seeds.split(","):
            start = time.time()
            out = subprocess.run([args.binary, "train", "--model", model, "--sparse-training", mode, "--seed", seed, "--json"],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                sys.exit(f"{model} {mode} seed {seed}: {out.stderr.strip()[-400:]}")
            records = json.loads(out.stdout)
            dense, sparse = records[0], records[1]
            rows.append({"model": model, "mode": mode, "seed": int(seed), "dense": dense["accuracy"], "sparse": sparse["accuracy"]})
            print(f"{model} {mode} seed {seed}: dense {dense['accuracy']:.4f}, 2:4 {sparse['accuracy']:.4f} "
                  f"({time.time() - start:.0f} s)", file=sys.stderr, flush=True)

print("| model | 2:4 training | dense (mean of seeds) | 2:4 (mean) | gap, points | per seed: dense / 2:4 |")
print("|---|---|---:|---:|---:|---|")
for model in args.models.split(","):
    for mode in args.modes.split(","):
        sel = [r for r in rows if r["model"] == model and r["mode"] == mode]
        d, s = statistics.mean(r["dense"] for r in sel), statistics.mean(r["sparse"] for r in sel)
        per = ", ".join(f"{r['dense'] * 100:.1f} / {r['sparse'] * 100:.1f}" for r in sel)
        print(f"| {model} | {mode} | {d * 100:.2f}% | {s * 100:.2f}% | {(s - d) * 100:+.2f} | {per} |")
if args.json:
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=1)
