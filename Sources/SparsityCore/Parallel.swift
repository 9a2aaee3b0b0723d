import Dispatch

#if canImport(Glibc)
  import Glibc
#endif

/// Fork–join parallelism over a fixed number of workers.
public enum Parallel {
  /// The number of workers: the online processors, or `SPARSITY_THREADS` when set.
  public static let workerCount: Int = {
    #if canImport(Glibc)
      if let text = getenv("SPARSITY_THREADS"), let n = Int(String(cString: text)), n > 0 {
        return n
      }
      return Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
      return 1
    #endif
  }()

  /// Runs `body(chunk)` for every chunk in `0..<chunks`, concurrently, and returns when all
  /// have finished. With one chunk (or one worker) it runs inline.
  public static func forEach(chunks: Int, _ body: (Int) -> Void) {
    if chunks <= 0 { return }
    if chunks == 1 || workerCount == 1 {
      for c in 0..<chunks { body(c) }
      return
    }
    withoutActuallyEscaping(body) { body in
      let box = UncheckedSendable(body)
      DispatchQueue.concurrentPerform(iterations: chunks) { box.value($0) }
    }
  }

  /// Splits `0..<count` into about `workerCount` contiguous ranges and runs them concurrently.
  public static func forEachRange(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let chunks = Swift.max(1, Swift.min(workerCount, count / Swift.max(1, minimumChunk)))
    forEach(chunks: chunks) { c in
      let lo = count * c / chunks
      let hi = count * (c + 1) / chunks
      if lo < hi { body(lo..<hi) }
    }
  }
}

/// Carries a value into a concurrent closure whose callers guarantee race freedom (disjoint
/// writes per chunk).
struct UncheckedSendable<T>: @unchecked Sendable {
  let value: T
  init(_ value: T) { self.value = value }
}
