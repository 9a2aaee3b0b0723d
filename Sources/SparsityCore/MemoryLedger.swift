import Synchronization

/// The library's own allocation accounting: while ``measure(_:)`` runs, every buffer the
/// library allocates for tensors, packed kernel weights and scratch is counted, so a test can
/// show what a step allocated — for example that loading a sparse weight never made a dense
/// `[out, in]` buffer. (Swift arrays are not buffers of the library and are not counted.)
///
/// ```swift
/// let (model, ledger) = MemoryLedger.measure { try load() }
/// ledger.largestAllocation   // bytes of the biggest single buffer
/// ```
public final class MemoryLedger: Sendable {
  private struct State {
    var allocations = 0
    var totalBytes = 0
    var largest = 0
  }
  private let state = Mutex(State())

  /// The ledger that allocations of the current task record into (nil outside ``measure(_:)``).
  @TaskLocal static var active: MemoryLedger?

  init() {}

  /// Number of buffers allocated.
  public var allocationCount: Int { state.withLock { $0.allocations } }
  /// Bytes of all buffers allocated (freed ones included).
  public var totalBytes: Int { state.withLock { $0.totalBytes } }
  /// Bytes of the largest single buffer.
  public var largestAllocation: Int { state.withLock { $0.largest } }

  /// Runs `body` and returns what it allocated in the calling task. Allocations made on the
  /// library's worker threads on behalf of `body` are not seen (packing runs on the caller).
  public static func measure<R>(_ body: () throws -> R) rethrows -> (R, MemoryLedger) {
    let ledger = MemoryLedger()
    let result = try $active.withValue(ledger, operation: body)
    return (result, ledger)
  }

  /// Counts a buffer of `bytes` in the active ledger, if any. Every allocation site of the
  /// library's buffers calls this.
  @inline(__always)
  public static func recordAllocation(bytes: Int) {
    guard let ledger = active else { return }
    ledger.state.withLock {
      $0.allocations += 1
      $0.totalBytes += bytes
      $0.largest = max($0.largest, bytes)
    }
  }
}
