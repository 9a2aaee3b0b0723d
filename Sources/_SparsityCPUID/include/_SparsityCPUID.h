#ifndef SPARSITY_CPUID_H
#define SPARSITY_CPUID_H

#include <stdint.h>

/// Runs CPUID for `leaf`/`subleaf` and stores EAX, EBX, ECX, EDX in `registers`.
/// Returns 0 when the leaf is above the highest one the CPU reports (or on a non-x86 CPU),
/// 1 otherwise. Compiled for baseline x86-64, so it runs on every CPU.
int sparsity_cpuid(uint32_t leaf, uint32_t subleaf, uint32_t registers[4]);

/// XCR0, the register state the OS saves (XGETBV 0); 0 when OSXSAVE is off or not x86.
uint64_t sparsity_xgetbv0(void);

/// Asks the C allocator to keep freed large blocks for reuse instead of returning them to the
/// OS (glibc: mmap and trim thresholds of 1 GiB); a no-op elsewhere. Returns 1 when applied.
int sparsity_retain_freed_memory(void);
void sparsity_release_freed_memory(void);

/// A spin-wait hint (`pause` on x86) for busy-waiting threads; nothing elsewhere.
static inline void sparsity_spin_pause(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

/// A hint to bring the cache line at `address` into the caches ahead of its use (`prefetcht0`
/// on x86): the 2:4 sparsify kernel asks for the rows of its next blocks while it works.
static inline void sparsity_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
