#!/usr/bin/env bash
# Fuzzes the GGUF reader (parsing, metadata accessors, dequantization) with libFuzzer, on one core.
#
#   scripts/fuzz-gguf.sh [SECONDS]      # default 60
#
# Builds Fuzz/GGUFFuzz/main.swift with `swiftc -sanitize=fuzzer,address`, linking SparsityCore
# and the GGUF sources of SparsityIO compiled as static libraries with the same flags. Seeds the
# corpus (fuzz-out/gguf/corpus, kept between runs) from the GGUF fixtures, the malformed corpus
# and the accepted edge cases, fuzzes for SECONDS with a dictionary of GGUF tokens, and prints
# the executions and time. Crashing inputs are written to fuzz-out/gguf/ (gitignored); the exit
# status is non-zero when one was found.
set -euo pipefail
seconds="${1:-60}"
cd "$(dirname "$0")/.."
build=.build-fuzz-gguf
out=fuzz-out/gguf
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
swiftc "${flags[@]}" -module-name SparsityIO -I "$build" -I "$build/cpuid" -emit-module -emit-module-path "$build/SparsityIO.swiftmodule" \
  -emit-library -static -o "$build/libSparsityIO.a" \
  Sources/SparsityIO/{MappedFile,GGUFError,GGUFTypes,GGUFFile,GGUFDequantization}.swift
swiftc "${flags[@]}" -I "$build" -I "$build/cpuid" -o "$build/gguf-fuzz" Fuzz/GGUFFuzz/main.swift \
  "$build/libSparsityIO.a" "$build/libSparsityCore.a" 2>&1 | grep -v "Cannot export local symbol" >&2 || true
test -x "$build/gguf-fuzz"

fixtures=Tests/SparsityIOTests/Fixtures/gguf
for seed in "$fixtures"/*.gguf "$fixtures"/malformed/*.gguf "$fixtures"/accepted/*.gguf; do
  [ -e "$out/corpus/$(basename "$seed")" ] || cp "$seed" "$out/corpus/"
done
{
  # Magic, versions, little-endian u32/u64 values that sit on limits.
  for token in 'GGUF' '\x03\x00\x00\x00' '\x02\x00\x00\x00' '\x00\x00\x00\x03' '\x00\x00\x00\x00' \
    '\x01\x00\x00\x00\x00\x00\x00\x00' '\x00\x00\x00\x00\x00\x00\x00\x00' '\xff\xff\xff\xff\xff\xff\xff\xff' \
    '\xff\xff\xff\xff\xff\xff\xff\x7f' '\x00\x00\x00\x00\x00\x00\x00\x80' '\x00\x00\x00\x40\x00\x00\x00\x00' \
    '\x01\x00\x00\x40\x00\x00\x00\x00' '\x20\x00\x00\x00' '\x40\x00\x00\x00' '\x00\x00\x10\x00' '\xff\xff\xff\xff' \
    '\x00\x7c' '\x01\x7c' '\x00\xfc' '\xff\x7f' '\x01\x00' '\x00\x80' \
    'general.alignment' 'general.architecture' 'tokenizer.ggml.tokens' '.weight' 'blk.0.' \
    '\xc0\xaf' '\xed\xa0\x80' '\xf0\x9f\x99\x82' '\xe9' '\x00'; do
    printf '"%s"\n' "$token"
  done
  # Value type ids 0-13 and ggml type ids as u32.
  for id in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 24 28 29 30 34 39 40 41 42; do
    printf '"\\x%02x\\x00\\x00\\x00"\n' "$id"
  done
} > "$build/gguf.dict"

status=0
"$build/gguf-fuzz" -max_total_time="$seconds" -max_len=12288 -timeout=10 -print_final_stats=1 \
  -dict="$build/gguf.dict" -artifact_prefix="$out/" "$out/corpus" 2>&1 | tee "$out/last-run.log" \
  || status=$?
execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/last-run.log" | grep -o '[0-9]*$' || echo 0)
elapsed=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$out/last-run.log" | grep -o '[0-9]* second' | grep -o '[0-9]*' || echo "?")
echo "fuzz-gguf: $execs executions in ${elapsed}s, corpus $(ls "$out/corpus" | wc -l) files, exit status $status"
exit "$status"
