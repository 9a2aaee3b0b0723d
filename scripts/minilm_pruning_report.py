#!/usr/bin/env python3
"""Prune all-MiniLM-L6-v2's encoder Linear layers with `sparsity prune` and compare methods on
held-out activations.

First capture the data (outside the repository):

    /work/venv/bin/python scripts/capture_minilm_calibration.py            # -> /work/cache/minilm/
    swift build -c release --product sparsity

then

    python3 scripts/minilm_pruning_report.py [--sparsity PATH] [--data /work/cache/minilm] [--permute]

For every pattern (2:4 and 50% unstructured) and method (magnitude, Wanda, SparseGPT) it runs
`sparsity prune weights.safetensors --calibration calibration.safetensors --evaluate
heldout.safetensors --include <the 36 encoder Linear weights> --json` and reports the relative
output error ‖XWᵀ − XŴᵀ‖/‖XWᵀ‖ on the held-out rows: the mean over layers, a few layers, and
whether SparseGPT < Wanda < magnitude holds (on the mean and per layer). With --permute it also
runs 2:4 magnitude with the channel-permutation search and reports the kept-magnitude gain.
Pruned files go to a temporary directory and are deleted. Only standard-library Python.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

INCLUDE = r"^encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)\.weight$"
PATTERNS = [("2:4", ["--pattern", "2:4"]), ("50%", ["--pattern", "unstructured", "--sparsity", "0.5"])]
METHODS = ["magnitude", "wanda", "sparsegpt"]
SHOWN = [
    "encoder.layer.0.attention.self.query.weight",
    "encoder.layer.0.intermediate.dense.weight",
    "encoder.layer.3.output.dense.weight",
    "encoder.layer.5.attention.output.dense.weight",
]


def run(binary, data, workdir, extra):
    out = os.path.join(workdir, "pruned.safetensors")
    command = [binary, "prune", os.path.join(data, "weights.safetensors"), "-o", out, "--include", INCLUDE,
               "--calibration", os.path.join(data, "calibration.safetensors"),
               "--evaluate", os.path.join(data, "heldout.safetensors"), "--json"] + extra
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)}\n{done.stderr}")
    os.remove(out)
    return json.loads(done.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.join(os.path.dirname(__file__), "..")
    parser.add_argument("--sparsity", default=os.path.join(root, ".build", "release", "sparsity"))
    parser.add_argument("--data", default="/work/cache/minilm")
    parser.add_argument("--permute", action="store_true")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for label, pattern in PATTERNS:
            for method in METHODS:
                report = run(args.sparsity, args.data, workdir, ["--method", method] + pattern)
                results[(label, method)] = report
                s = report["summary"]
                print(f"{label:4} {method:10} mean held-out {s['mean_held_out_error']:.4f}  calibration "
                      f"{s['mean_calibration_error']:.4f}  ({s['tensors']} layers, {s['seconds']:.1f} s)", flush=True)
        permuted = run(args.sparsity, args.data, workdir, ["--pattern", "2:4", "--permute"]) if args.permute else None

    print("\nRelative output error on held-out rows (mean over layers, then selected layers):")
    print(f"{'pattern':8}{'method':11}{'mean':>8}" + "".join(f"{n.split('.weight')[0][8:]:>34}" for n in SHOWN))
    ok = True
    for label, _ in PATTERNS:
        means = {}
        per_layer = {}
        for method in METHODS:
            report = results[(label, method)]
            layers = {l["tensor"]: l["held_out_error"] for l in report["layers"]}
            per_layer[method] = layers
            means[method] = report["summary"]["mean_held_out_error"]
            print(f"{label:8}{method:11}{means[method]:8.4f}" + "".join(f"{layers[n]:34.4f}" for n in SHOWN))
        ordered = means["sparsegpt"] < means["wanda"] < means["magnitude"]
        holds = sum(per_layer["sparsegpt"][n] < per_layer["wanda"][n] < per_layer["magnitude"][n] for n in per_layer["wanda"])
        print(f"{label}: SparseGPT < Wanda < magnitude on the mean: {'yes' if ordered else 'NO'}; "
              f"per layer in {holds} of {len(per_layer['wanda'])}")
        ok = ok and ordered
    if permuted:
        layers = permuted["layers"]
        gains = [l["permutation_gain"] for l in layers]
        print(f"\n2:4 magnitude with channel permutation: kept-magnitude gain mean {100 * sum(gains) / len(gains):+.2f}% "
              f"(min {100 * min(gains):+.2f}%, max {100 * max(gains):+.2f}%), mean efficacy "
              f"{100 * sum(l['permutation_efficacy'] for l in layers) / len(layers):.1f}%; mean held-out error "
              f"{permuted['summary']['mean_held_out_error']:.4f} vs {results[('2:4', 'magnitude')]['summary']['mean_held_out_error']:.4f} unpermuted")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
