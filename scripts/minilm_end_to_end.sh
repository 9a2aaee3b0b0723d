#!/usr/bin/env bash
# all-MiniLM-L6-v2 end to end (issue 6): calibrate, prune with magnitude / Wanda / SparseGPT
# to each pattern, evaluate fidelity (and, with --speed, end-to-end speed per pattern), prune 2:4
# sequentially with SparseGPT and distill it (masked fine-tune toward the dense model; with --speed
# its end-to-end speed too), and time
# sentence-transformers on PyTorch on the same workload when a Python with it is given.
#   scripts/minilm_end_to_end.sh OUT_DIR [--speed] [--python PYTHON]
# Needs the release binary (swift build -c release) and the model (scripts/fetch_minilm.py).
set -euo pipefail
out=${1:?usage: scripts/minilm_end_to_end.sh OUT_DIR [--speed] [--python PYTHON]}
shift
speed=0
python=""
while [ $# -gt 0 ]; do
  case "$1" in
    --speed) speed=1 ;;
    --python) python=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
cd "$(dirname "$0")/.."
bin=.build/release/sparsity
model=${SPARSITY_MINILM_DIR:-$HOME/.cache/swift-sparsity/models/all-MiniLM-L6-v2}
mkdir -p "$out"
[ -f "$out/calibration.safetensors" ] || $bin calibrate --model "$model" -o "$out/calibration.safetensors" --tokens 4096

# pattern label, prune options
patterns=(
  "2of4|--pattern 2:4"
  "unstructured50|--pattern unstructured --sparsity 0.5"
  "block16-50|--pattern block:16x16 --sparsity 0.5"
)
for entry in "${patterns[@]}"; do
  label=${entry%%|*}
  options=${entry#*|}
  for method in magnitude wanda sparsegpt; do
    pruned="$out/$label-$method.safetensors"
    # shellcheck disable=SC2086
    $bin prune "$model/model.safetensors" -o "$pruned" --include encoder $options --method $method \
      --calibration "$out/calibration.safetensors" > /dev/null
    extra=(--skip-speed)
    if [ "$speed" = 1 ] && [ "$method" = sparsegpt ]; then extra=(--repeats 3); fi
    $bin eval --model "$model" --weights "$pruned" --json "${extra[@]}" > "$out/$label-$method.json"
    echo "$label $method: $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('mean %.4f min %.4f top5 %.3f' % (r['mean_cosine'], r['min_cosine'], r['top5_overlap']) + ('  dense %.1f sparse %.1f s/s (%.2fx), batch 1 %.2fx' % (r['dense_sentences_per_s'], r['sparse_sentences_per_s'], r['speedup'], r['batch1_speedup']) if 'speedup' in r else ''))" "$out/$label-$method.json")"
    rm -f "$pruned"
  done
done
# The best 2:4 recipe: sequential SparseGPT, then masked distillation toward the dense model.
$bin prune-encoder --model "$model" -o "$out/2of4-sequential.safetensors" --pattern 2:4 --method sparsegpt \
  --tokens 12000 > /dev/null
$bin distill --model "$model" --weights "$out/2of4-sequential.safetensors" -o "$out/2of4-distilled.safetensors" \
  > "$out/2of4-distilled.log"
for label in 2of4-sequential 2of4-distilled; do
  extra=(--skip-speed)
  if [ "$speed" = 1 ] && [ "$label" = 2of4-distilled ]; then extra=(--repeats 5); fi
  $bin eval --model "$model" --weights "$out/$label.safetensors" --json "${extra[@]}" > "$out/$label.json"
  echo "$label sparsegpt: $(python3 -c "import json,sys; r=json.load(open(sys.argv[1])); print('mean %.4f min %.4f top5 %.3f' % (r['mean_cosine'], r['min_cosine'], r['top5_overlap']) + ('  dense %.1f sparse %.1f s/s (%.2fx), batch 1 %.2fx' % (r['dense_sentences_per_s'], r['sparse_sentences_per_s'], r['speedup'], r['batch1_speedup']) if 'speedup' in r else ''))" "$out/$label.json")"
  rm -f "$out/$label.safetensors"
done
if [ -n "$python" ]; then
  "$python" scripts/bench_sentence_transformers.py --model "$model" --repeats 3 --json > "$out/sentence-transformers.json"
  cat "$out/sentence-transformers.json"
fi
