#!/usr/bin/env bash
# Times two builds of `sparsity` against each other in one run, interleaved (A, B, A, B, …), so
# that a refactoring can show it lost no speed: the kernel bench's sparse-vs-dense ratios on a
# subset of the talk's shapes, and MiniLM end to end (sentences/s, dense and pruned).
#
# Usage: scripts/compare_builds.sh BASELINE_BINARY [NEW_BINARY] [--rounds N] [--model DIR] [--weights FILE]
#   NEW_BINARY defaults to .build/release/sparsity. --weights is a pruned MiniLM file (e.g. from
#   `sparsity prune … --pattern 2:4 --compress auto`); without it the MiniLM part is skipped.
#   Build a baseline with: git worktree add /tmp/base REV && (cd /tmp/base && swift build -c release --product sparsity)
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "compare_builds: error: $*" >&2; exit 2; }
[ $# -ge 1 ] || die "usage: scripts/compare_builds.sh BASELINE_BINARY [NEW_BINARY] [--rounds N] [--model DIR] [--weights FILE]"
base=$1; shift
new=.build/release/sparsity
if [ $# -ge 1 ] && [[ $1 != --* ]]; then new=$1; shift; fi
rounds=3
model="$HOME/.cache/swift-sparsity/models/all-MiniLM-L6-v2"
weights=""
while [ $# -gt 0 ]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --weights) weights=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done
for b in "$base" "$new"; do [ -x "$b" ] || die "$b is not an executable"; done
[ -z "$weights" ] || [ -f "$weights" ] || die "--weights $weights does not exist"

CB_BASE=$base CB_NEW=$new CB_ROUNDS=$rounds CB_MODEL=$model CB_WEIGHTS=$weights python3 - <<'PY'
import json, os, statistics, subprocess, sys

base, new = os.environ["CB_BASE"], os.environ["CB_NEW"]
rounds = int(os.environ["CB_ROUNDS"])
model, weights = os.environ["CB_MODEL"], os.environ["CB_WEIGHTS"]
bench_runs = [
    ["--formats", "2:4", "--shapes", "3072x768,768x3072,4096x1024,1024x4096", "--m", "1,128,2048"],
    ["--formats", "bsr", "--blocks", "32", "--sparsities", "0.9", "--m", "1,128,1024"],
    ["--formats", "csr", "--sparsities", "0.9", "--m", "1,128,1024"],
]

def bench(binary):
    records = []
    for args in bench_runs:
        out = subprocess.run([binary, "bench", *args, "--runs", "5", "--json"], capture_output=True, text=True, check=True).stdout
        records += json.loads(out)["records"]
    return {(r["table"], r["n"], r["k"], r["m"], r.get("block")): r["speedup"] for r in records}

def minilm(binary):
    out = subprocess.run([binary, "eval", "--model", model, "--weights", weights, "--repeats", "3", "--json"],
                         capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    return {k: d[k] for k in ["dense_sentences_per_s", "sparse_sentences_per_s", "speedup",
                              "dense_batch1_sentences_per_s", "sparse_batch1_sentences_per_s", "batch1_speedup"]}

samples = {"A": [], "B": []}
eval_samples = {"A": [], "B": []}
for r in range(rounds):
    order = [("A", base), ("B", new)] if r % 2 == 0 else [("B", new), ("A", base)]
    for label, binary in order:
        print(f"compare_builds: round {r + 1}/{rounds}: bench, {label}", file=sys.stderr)
        samples[label].append(bench(binary))
        if weights:
            print(f"compare_builds: round {r + 1}/{rounds}: MiniLM eval, {label}", file=sys.stderr)
            eval_samples[label].append(minilm(binary))

print(f"# Baseline (A) `{base}` vs new (B) `{new}`, {rounds} interleaved rounds, medians\n")
print("## Kernel bench: sparse speedup over our dense (same run)\n")
print("| table | OUTxIN | M | A | B | B/A |")
print("|---|---|---:|---:|---:|---:|")
ratios = []
for key in sorted(samples["A"][0]):
    a = statistics.median(s[key] for s in samples["A"])
    b = statistics.median(s[key] for s in samples["B"] if key in s)
    ratios.append(b / a)
    table, n, k, m, block = key
    print(f"| {table}{'' if block is None else f' {block}'} | {n}x{k} | {m} | {a:.2f}× | {b:.2f}× | {b / a:.3f} |")
print(f"\nB/A over {len(ratios)} cases: median {statistics.median(ratios):.3f}, range {min(ratios):.3f}–{max(ratios):.3f}\n")
if weights:
    print("## MiniLM end to end (`sparsity eval`, 2 threads)\n")
    print("| measure | A | B | B/A |")
    print("|---|---:|---:|---:|")
    for key in eval_samples["A"][0]:
        a = statistics.median(s[key] for s in eval_samples["A"])
        b = statistics.median(s[key] for s in eval_samples["B"])
        print(f"| {key} | {a:.2f} | {b:.2f} | {b / a:.3f} |")
PY
