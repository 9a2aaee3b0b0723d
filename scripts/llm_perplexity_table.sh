#!/usr/bin/env bash
# The perplexity table of issue 13: SmolLM2-135M-Instruct dense, and pruned by magnitude, Wanda and
# SparseGPT to 2:4, 4:8 and 50% unstructured (sequential, `prune-model` defaults but --tokens),
# each measured by `sparsity perplexity` on the bundled held-out text (context 512).
#
#   scripts/llm_perplexity_table.sh [OUT_DIR]     # default /tmp/llm-table; ~20 min on 2 cores
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-/tmp/llm-table}"
mkdir -p "$out"
bin=.build/release/sparsity
model="${SPARSITY_SMOLLM2_GGUF:-$(python3 scripts/fetch_smollm2.py)}"
tokens="${TOKENS:-8192}"
ppl() { "$bin" perplexity --model "$model" "$@" --json | python3 -c 'import json,sys; print("%.3f" % json.load(sys.stdin)["perplexity"])'; }
echo "| method | pattern | perplexity | prune-model s | peak RSS MiB |" | tee "$out/table.md"
echo "|---|---|---:|---:|---:|" | tee -a "$out/table.md"
echo "| dense | — | $(ppl) | | |" | tee -a "$out/table.md"
for pattern in 2:4 4:8 unstructured; do
  for method in magnitude wanda sparsegpt; do
    file="$out/${method}-${pattern//:/of}.safetensors"
    "$bin" prune-model --model "$model" -o "$file" --pattern "$pattern" --sparsity 0.5 --method "$method" --tokens "$tokens" --json > "$file.json"
    read -r seconds rss < <(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print("%.0f %.0f" % (r["seconds"], r["peakResidentBytes"]/1048576))' "$file.json")
    echo "| $method | $pattern | $(ppl --weights "$file") | $seconds | $rss |" | tee -a "$out/table.md"
  done
done
