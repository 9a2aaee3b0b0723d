// What bounds the 2:4 token-panel tile on an AVX-512 CPU: loads, not FMAs.
//
//   clang -O3 -march=native -o /tmp/token_panel_loads scripts/probes/token_panel_loads.c && /tmp/token_panel_loads
//
// Runs, from L1 (a 32-input k-block: a 16 KiB panel slice, 8 rows' yT tiles), the inner loop of
// `semiStructuredTile`/`semiStructuredBlockTiles` (Sources/_SparsityKernelsImpl/SemiStructured.swift)
// in C intrinsics, and prints zmm FMAs per ns against a register-only FMA loop (the peak):
//   row:   one row at a time, its two weights per group broadcast from memory and its code word
//          loaded per group (the kernel before stop 23): 16 panel loads + 3 other loads per 16 FMAs;
//   block: the 8 rows of a block, the k-block's 8 value lines and code words loaded once, each
//          row's weights taken out with vpermps (the kernel now): 16 panel loads per 16 FMAs;
//   reuse: NOT a 2:4 kernel — every panel vector feeds two rows' FMAs (8 loads per 16 FMAs), the
//          speed a tile would reach if rows could share their loads (2:4 rows keep different
//          inputs, so they cannot).
// Zen 4 VM, 2026-12-06, 3 runs: peak 3.60-3.65 (3.96 earlier in the day: the VM's clock moves),
// row 2.70-2.83, block 2.77-2.85, reuse 3.41-3.50 zmm FMA/ns: the tile runs at 75-78% of the FMA
// peak, held by its loads (halving them: +25%); the Swift block tile gained 5-10% in the kernel.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define T 128  // tokens per panel (8 zmm accumulators per row)
#define G 8    // groups of 4 inputs per k-block

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// values: per group a line of 16 floats (slot 0 of rows 0..7, slot 1 of rows 0..7); codes: per
// group 8 four-bit codes (i0 | i1 << 2 of row j at bits 4j); panel: 4G rows of T floats; acc: 8
// rows' tiles of T floats.
__attribute__((noinline)) static void row_tiles(const float *v, const uint32_t *c, const float *P, float *acc) {
  for (int lane = 0; lane < 8; lane++) {
    float *tile = acc + lane * T;
    __m512 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm512_loadu_ps(tile + 16 * i);
    for (int g = 0; g < G; g++) {
      uint32_t bits = c[g] >> (4 * lane);
      const float *p = P + (4 * g + (bits & 3)) * T, *q = P + (4 * g + ((bits >> 2) & 3)) * T;
      __m512 w = _mm512_set1_ps(v[16 * g + lane]), u = _mm512_set1_ps(v[16 * g + 8 + lane]);
      for (int i = 0; i < 8; i++) a[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(p + 16 * i), a[i]);
      for (int i = 0; i < 8; i++) a[i] = _mm512_fmadd_ps(u, _mm512_loadu_ps(q + 16 * i), a[i]);
    }
    for (int i = 0; i < 8; i++) _mm512_storeu_ps(tile + 16 * i, a[i]);
  }
}

__attribute__((noinline)) static void block_tiles(const float *v, const uint32_t *c, const float *P, float *acc) {
  __m512 line[G];
  for (int g = 0; g < G; g++) line[g] = _mm512_loadu_ps(v + 16 * g);
  // The 8 code words in four 64-bit registers.
  uint64_t codes[4] = {c[0] | (uint64_t)c[1] << 32, c[2] | (uint64_t)c[3] << 32, c[4] | (uint64_t)c[5] << 32,
                       c[6] | (uint64_t)c[7] << 32};
  for (int lane = 0; lane < 8; lane++) {
    float *tile = acc + lane * T;
    __m512i first = _mm512_set1_epi32(lane), second = _mm512_set1_epi32(lane + 8);
    __m512 a[8];
    for (int i = 0; i < 8; i++) a[i] = _mm512_loadu_ps(tile + 16 * i);
    uint64_t shifted[4] = {codes[0] >> (4 * lane), codes[1] >> (4 * lane), codes[2] >> (4 * lane), codes[3] >> (4 * lane)};
    for (int g = 0; g < G; g++) {
      uint32_t bits = (uint32_t)(shifted[g >> 1] >> (32 * (g & 1)));
      const float *p = P + (4 * g + (bits & 3)) * T, *q = P + (4 * g + ((bits >> 2) & 3)) * T;
      __m512 w = _mm512_permutexvar_ps(first, line[g]), u = _mm512_permutexvar_ps(second, line[g]);
      for (int i = 0; i < 8; i++) a[i] = _mm512_fmadd_ps(w, _mm512_loadu_ps(p + 16 * i), a[i]);
      for (int i = 0; i < 8; i++) a[i] = _mm512_fmadd_ps(u, _mm512_loadu_ps(q + 16 * i), a[i]);
    }
    for (int i = 0; i < 8; i++) _mm512_storeu_ps(tile + 16 * i, a[i]);
  }
}

// The same 8 rows × 128 tokens × 8 groups of FMAs, as pairs of rows over 64-token halves, both
// rows of a pair reading the same panel vectors.
__attribute__((noinline)) static void reuse_tiles(const float *v, const uint32_t *c, const float *P, float *acc) {
  for (int half = 0; half < 2; half++) {
    for (int pair = 0; pair < 4; pair++) {
      float *tile = acc + 2 * pair * T + 64 * half;
      const float *panel = P + 64 * half;
      __m512 a[4], b[4];
      for (int i = 0; i < 4; i++) a[i] = _mm512_loadu_ps(tile + 16 * i), b[i] = _mm512_loadu_ps(tile + T + 16 * i);
      for (int g = 0; g < G; g++) {
        uint32_t bits = c[g] >> (8 * pair);
        const float *p = panel + (4 * g + (bits & 3)) * T, *q = panel + (4 * g + ((bits >> 2) & 3)) * T;
        int r = 2 * pair;
        __m512 w = _mm512_set1_ps(v[16 * g + r]), u = _mm512_set1_ps(v[16 * g + 8 + r]);
        __m512 w2 = _mm512_set1_ps(v[16 * g + r + 1]), u2 = _mm512_set1_ps(v[16 * g + 9 + r]);
        for (int i = 0; i < 4; i++) {
          __m512 x = _mm512_loadu_ps(p + 16 * i);
          a[i] = _mm512_fmadd_ps(w, x, a[i]), b[i] = _mm512_fmadd_ps(w2, x, b[i]);
        }
        for (int i = 0; i < 4; i++) {
          __m512 x = _mm512_loadu_ps(q + 16 * i);
          a[i] = _mm512_fmadd_ps(u, x, a[i]), b[i] = _mm512_fmadd_ps(u2, x, b[i]);
        }
      }
      for (int i = 0; i < 4; i++) _mm512_storeu_ps(tile + 16 * i, a[i]), _mm512_storeu_ps(tile + T + 16 * i, b[i]);
    }
  }
}

static double peak(void) {
  __m512 a[12], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
  for (int i = 0; i < 12; i++) a[i] = _mm512_set1_ps((float)i);
  long n = 100000000;
  double t0 = now();
  for (long r = 0; r < n; r++) {
    for (int i = 0; i < 12; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    __asm__ volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]), "+v"(a[6]),
                     "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
  }
  return n * 12 / (now() - t0) / 1e9;
}

int main(void) {
  enum { blocks = 8 };  // 64 rows: their tiles (32 KiB) and the panel slice (16 KiB) as in the kernel
  float *v = aligned_alloc(64, blocks * G * 16 * 4), *P = aligned_alloc(64, 4 * G * T * 4);
  float *acc = aligned_alloc(64, blocks * 8 * T * 4);
  uint32_t *c = aligned_alloc(64, blocks * G * 4);
  srand(1);
  for (int i = 0; i < blocks * G * 16; i++) v[i] = 1e-3f;
  for (int i = 0; i < blocks * G; i++) c[i] = (uint32_t)rand() ^ ((uint32_t)rand() << 16);
  for (int i = 0; i < 4 * G * T; i++) P[i] = 1e-3f;
  for (int i = 0; i < blocks * 8 * T; i++) acc[i] = 0;
  void (*kernels[3])(const float *, const uint32_t *, const float *, float *) = {row_tiles, block_tiles, reuse_tiles};
  const char *names[3] = {"row", "block", "reuse"};
  printf("peak (register FMAs): %.2f zmm FMA/ns\n", peak());
  long reps = 1500000;
  for (int round = 0; round < 3; round++) {
    for (int k = 0; k < 3; k++) {
      double t0 = now();
      for (long r = 0; r < reps; r++) {
        int b = (int)(r % blocks);
        kernels[k](v + b * G * 16, c + b * G, P, acc + b * 8 * T);
      }
      printf("%-6s %.2f zmm FMA/ns\n", names[k], (double)reps * 8 * G * 16 / (now() - t0) / 1e9);
    }
  }
  return 0;
}
