import SparsityCore
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// One 8-lane vector of `Float` (a ymm register with AVX2).
package typealias Vec8 = SIMD8<Float>

/// `acc + a·b`, fused where the build targets a CPU with FMA (`SPARSITY_FMA`), otherwise a
/// multiply and an add: without FMA hardware `addingProduct` becomes one libm `fmaf` call per
/// lane (about 150× slower), so the portable build must not use it.
@inline(__always)
package func fma(_ acc: Vec8, _ a: Vec8, _ b: Vec8) -> Vec8 {
  #if SPARSITY_FMA
    return acc.addingProduct(a, b)
  #else
    return acc + a * b
  #endif
}

@inline(__always)
package func fmaScalar(_ acc: Float, _ a: Float, _ b: Float) -> Float {
  #if SPARSITY_FMA
    return acc.addingProduct(a, b)
  #else
    return acc + a * b
  #endif
}

@inline(__always)
package func load8(_ p: UnsafePointer<Float>) -> Vec8 {
  UnsafeRawPointer(p).loadUnaligned(as: Vec8.self)
}

@inline(__always)
package func store8(_ v: Vec8, _ p: UnsafeMutablePointer<Float>) {
  UnsafeMutableRawPointer(p).storeBytes(of: v, as: Vec8.self)
}

/// A 64-byte-aligned, zero-initialised `Float` buffer that frees itself.
package final class FloatBuffer: @unchecked Sendable {
  package let pointer: UnsafeMutablePointer<Float>
  package let count: Int

  /// - Parameter zeroed: `false` when the caller writes every element itself (saves a pass).
  package init(count: Int, zeroed: Bool = true) {
    self.count = count
    MemoryLedger.recordAllocation(bytes: count * 4)
    let raw = UnsafeMutableRawPointer.allocate(byteCount: Swift.max(1, count) * 4, alignment: 64)
    if zeroed { raw.initializeMemory(as: UInt8.self, repeating: 0, count: Swift.max(1, count) * 4) }
    pointer = raw.bindMemory(to: Float.self, capacity: Swift.max(1, count))
  }

  deinit { UnsafeMutableRawPointer(pointer).deallocate() }
}

/// Reusable scratch buffers (packed activations, transposed tiles), so a kernel call does not
/// page-fault a fresh allocation every time. Thread-safe; a buffer is owned by one call at a time.
package enum Scratch {
  private static let pool = Mutex<[FloatBuffer]>([])

  /// Runs `body` with a buffer of at least `count` floats (contents unspecified).
  package static func with<R>(count: Int, _ body: (UnsafeMutablePointer<Float>) -> R) -> R {
    let reused: FloatBuffer? = pool.withLock { pool in
      guard let i = pool.firstIndex(where: { $0.count >= count }) else { return nil }
      return pool.remove(at: i)
    }
    let buffer = reused ?? FloatBuffer(count: count)
    let result = body(buffer.pointer)
    pool.withLock { pool in
      pool.append(buffer)
      pool.sort { $0.count < $1.count }
      if pool.count > 6 { pool.removeFirst() }
    }
    return result
  }
}

/// Carries a value into a concurrent closure whose work items write disjoint memory.
package struct Unchecked<T>: @unchecked Sendable {
  package let value: T
  package init(_ value: T) { self.value = value }
}

/// Work items for `workers` threads: four per thread, so that the pool balances
/// uneven items and a thread slowed by another process (a shared VM) does not hold the rest up.
package func workItems(_ workers: Int) -> Int { workers <= 1 ? 1 : workers * 4 }

/// Fork–join over `workers` items (inline when 1) on the shared pool (`Parallel.forEach`).
package func parallelFor(_ workers: Int, _ body: (Int) -> Void) {
  Parallel.forEach(chunks: workers, body)
}

/// Splits `0..<count` into `parts` contiguous ranges of about equal weight, where `prefix`
/// gives the cumulative weight before each index (`prefix.count == count + 1`).
package func balancedRanges(count: Int, parts: Int, prefix: (Int) -> Int) -> [Range<Int>] {
  let total = prefix(count)
  var ranges: [Range<Int>] = []
  var start = 0
  for p in 0..<parts {
    var end = start
    if p == parts - 1 {
      end = count
    } else {
      let target = total * (p + 1) / parts
      // First index whose prefix reaches the target (binary search).
      var lo = start
      var hi = count
      while lo < hi {
        let mid = (lo + hi) / 2
        if prefix(mid) < target { lo = mid + 1 } else { hi = mid }
      }
      end = lo
    }
    ranges.append(start..<end)
    start = end
  }
  return ranges
}

/// Runs `body` with `x [m, k]` copied into rows of `ldx ≥ k` floats, zero past `k`.
func withPaddedRows<R>(x: UnsafePointer<Float>, m: Int, k: Int, ldx: Int, _ body: (UnsafePointer<Float>) -> R) -> R {
  Scratch.with(count: Swift.max(1, m * ldx)) { padded in
    for r in 0..<m {
      (padded + r * ldx).update(from: x + r * k, count: k)
      (padded + r * ldx + k).update(repeating: 0, count: ldx - k)
    }
    return body(UnsafePointer(padded))
  }
}
