#!/usr/bin/env bash
# Regenerates BENCHMARKS.md and docs/bench/ (HTML report with plots, JSON records, peer timings):
# PyTorch and OpenBLAS first (scripts/bench_peers.py, OPENBLAS_CORETYPE/L2_SIZE unset so the
# native kernels run), then `sparsity bench` on the same shapes, minutes apart, 2 threads.
# Run it on a quiet machine (`uptime`): the numbers are only as good as the machine is idle.
#
#   scripts/bench_report.sh [extra `sparsity bench` options, e.g. --formats 2:4 --m 1,128]
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-/work/venv/bin/python}
[ -x "$python" ] || python=python3
mkdir -p docs/bench
# SPARSITY_BIN: an already built release `sparsity` (default: build one in .build).
bin=${SPARSITY_BIN:-}
if [ -z "$bin" ]; then
  swift build -c release --product sparsity
  bin=$(swift build -c release --show-bin-path)/sparsity
fi
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE SPARSITY_THREADS=2 "$python" scripts/bench_peers.py \
  --threads 2 -o docs/bench/peers.json --formats "${FORMATS:-dense,2:4,bsr,csr,w8a8+dense,bf16+dense}" "$@"
SPARSITY_THREADS=2 "$bin" bench --formats "${FORMATS:-dense,2:4,bsr,csr,w8a8+dense,w8a8+2:4,w8a8+bsr:32x32,int8+dense,bf16+dense,bf16+2:4}" --peers docs/bench/peers.json \
  --html docs/bench/benchmarks.html --json-output docs/bench/results.json --markdown "$@" > BENCHMARKS.md
# The hand-written reading of the numbers (bottlenecks, next ideas) follows the tables.
if [ -f docs/bench/analysis.md ]; then
  { echo; cat docs/bench/analysis.md; } >> BENCHMARKS.md
fi
echo "wrote BENCHMARKS.md, docs/bench/benchmarks.html, docs/bench/results.json, docs/bench/peers.json"
