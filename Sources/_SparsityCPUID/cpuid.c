#include "_SparsityCPUID.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

int sparsity_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t registers[4]) {
  unsigned int a = 0, b = 0, c = 0, d = 0;
  unsigned int highest = __get_cpuid_max(leaf & 0x80000000u, 0);
  if (highest == 0 || leaf > highest) {
    registers[0] = registers[1] = registers[2] = registers[3] = 0;
    return 0;
  }
  __cpuid_count(leaf, subleaf, a, b, c, d);
  registers[0] = a; registers[1] = b; registers[2] = c; registers[3] = d;
  return 1;
}

uint64_t sparsity_xgetbv0(void) {
  uint32_t r[4];
  if (!sparsity_cpuid(1, 0, r) || !(r[2] & (1u << 27))) return 0;  // OSXSAVE
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return ((uint64_t)hi << 32) | lo;
}

#else

int sparsity_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t registers[4]) {
  (void)leaf; (void)subleaf;
  registers[0] = registers[1] = registers[2] = registers[3] = 0;
  return 0;
}

uint64_t sparsity_xgetbv0(void) { return 0; }

#endif

#if defined(__GLIBC__)
#include <malloc.h>
int sparsity_retain_freed_memory(void) {
  int a = mallopt(M_MMAP_THRESHOLD, 1 << 30);
  int b = mallopt(M_TRIM_THRESHOLD, 1 << 30);
  return a == 1 && b == 1;
}
void sparsity_release_freed_memory(void) { malloc_trim(0); }
#else
int sparsity_retain_freed_memory(void) { return 0; }
void sparsity_release_freed_memory(void) {}
#endif
