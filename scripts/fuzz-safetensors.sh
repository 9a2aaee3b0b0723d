#!/usr/bin/env bash
# Fuzzes the safetensors reader and writer with libFuzzer, on one core.
#
#   scripts/fuzz-safetensors.sh [SECONDS]      # default 60
#
# Builds Fuzz/SafetensorsFuzz/main.swift with `swiftc -sanitize=fuzzer,address`, linking
# SparsityCore, SparsityFormats and the safetensors, sparse-convention (TensorArchive) and
# compressed-tensors sources of SparsityIO compiled as static libraries with the same flags. Seeds the corpus (fuzz-out/corpus, kept between runs) from the test fixtures,
# fuzzes for SECONDS, and prints the executions and time. Crashing inputs are written to
# fuzz-out/ (gitignored); the exit status is non-zero when one was found.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/.."
build=.build-fuzz
out=fuzz-out
mkdir -p "$build" "$out/corpus"

flags=(-sanitize=fuzzer,address -parse-as-library -O -g)
# SparsityCore imports the C module _SparsityCPUID for its spin-wait hint (a static inline
# function in the header: nothing to link); SwiftPM makes its module map, here we write one.
mkdir -p "$build/cpuid"
printf 'module _SparsityCPUID {\n  header "%s"\n  export *\n}\n' \
  "$PWD/Sources/_SparsityCPUID/include/_SparsityCPUID.h" > "$build/cpuid/module.modulemap"
swiftc "${flags[@]}" -module-name SparsityCore -I "$build/cpuid" -emit-module \
  -emit-module-path "$build/SparsityCore.swiftmodule" -emit-library -static -o "$build/libSparsityCore.a" \
  Sources/SparsityCore/*.swift
swiftc "${flags[@]}" -module-name SparsityFormats -I "$build" -I "$build/cpuid" -emit-module \
  -emit-module-path "$build/SparsityFormats.swiftmodule" -emit-library -static -o "$build/libSparsityFormats.a" \
  Sources/SparsityFormats/*.swift
swiftc "${flags[@]}" -module-name SparsityIO -I "$build" -I "$build/cpuid" -emit-module -emit-module-path "$build/SparsityIO.swiftmodule" \
  -emit-library -static -o "$build/libSparsityIO.a" \
  Sources/SparsityIO/{JSON,MappedFile,SafetensorsError,SafetensorsFile,SafetensorsWriter,TensorArchive,CompressedTensors}.swift
swiftc "${flags[@]}" -I "$build" -I "$build/cpuid" -o "$build/safetensors-fuzz" Fuzz/SafetensorsFuzz/main.swift \
  "$build/libSparsityIO.a" "$build/libSparsityFormats.a" "$build/libSparsityCore.a" 2>&1 | grep -v "Cannot export local symbol" >&2 || true
test -x "$build/safetensors-fuzz"

for seed in Tests/SparsityIOTests/Fixtures/*.sft Tests/SparsityIOTests/Fixtures/{malformed,sparse,compressed-tensors}/*.sft; do
  [ -e "$out/corpus/$(basename "$seed")" ] || cp "$seed" "$out/corpus/"
done
{
  for token in '{' '}' '[' ']' ':' ',' '"' '\\u' '\\ud83d\\ude00' ' ' '"__metadata__"' '"dtype"' '"shape"' \
    '"data_offsets"' '"__metadata__":{"sparsity:w":' '"format"' '"n_of_m"' '"csr"' '"bsr"' \
    '"semi_structured_cutlass"' '"blocksize"' '".positions"' '".values"' '".crow_indices"' '".col_indices"' \
    '".packed"' '".meta"' '".compressed"' '".bitmask"' '".shape"' '".row_offsets"' '".weight_scale"' \
    '".weight_zero_point"' '18446744073709551615' '9223372036854775807' '4294967296' '-1' '1e3' '0.5'; do
    printf '"%s"\n' "$(printf '%s' "$token" | sed 's/\\/\\\\/g; s/"/\\"/g')"
  done
  for dtype in BOOL F4 F6_E2M3 F6_E3M2 U8 I8 F8_E5M2 F8_E4M3 F8_E8M0 F8_E4M3FNUZ F8_E5M2FNUZ \
    I16 U16 F16 BF16 I32 U32 F32 C64 F64 I64 U64; do
    printf '"\\"%s\\""\n' "$dtype"
  done
} > "$build/safetensors.dict"

status=0
"$build/safetensors-fuzz" -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
  -dict="$build/safetensors.dict" -artifact_prefix="$out/" "$out/corpus" 2>&1 | tee "$out/last-run.log" \
  || status=$?
execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/last-run.log" | grep -o '[0-9]*$' || echo 0)
elapsed=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$out/last-run.log" | grep -o '[0-9]* second' | grep -o '[0-9]*' || echo "?")
echo "fuzz-safetensors: $execs executions in ${elapsed}s, corpus $(ls "$out/corpus" | wc -l) files, exit status $status"
exit "$status"
