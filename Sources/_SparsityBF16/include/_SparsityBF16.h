#ifndef SPARSITY_BF16_H
#define SPARSITY_BF16_H

// The AVX512-BF16 dot product for Swift: the `__m512bh` type of `_mm512_dpbf16_ps` does not
// import, so this wrapper takes the bf16 pairs as integer vectors. It is compiled for the
// instruction's own target and inlined into the (znver4-built) kernels that call it; other
// builds never call it.
#if defined(__x86_64__)
#include <immintrin.h>

/// `acc[i] += a.bf16[2i+1]·b.bf16[2i+1] + a.bf16[2i]·b.bf16[2i]` (`vdpbf16ps`).
static inline __attribute__((always_inline, target("avx512bf16,avx512f")))
__m512 sparsity_dpbf16ps(__m512 acc, __m512i a, __m512i b) {
  return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b);
}
#endif

#endif
