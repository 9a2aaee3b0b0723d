#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif

/// The byte buffer behind one or more ``Tensor`` values.
///
/// Storage either owns a 64-byte-aligned allocation, or borrows read-only bytes that another
/// object keeps alive (for example a memory-mapped file); a tensor over borrowed bytes copies
/// them before its first mutation.
public final class TensorStorage: @unchecked Sendable {
  /// Start of the bytes.
  public let baseAddress: UnsafeMutableRawPointer
  /// Number of bytes.
  public let byteCount: Int
  /// Whether the bytes may be written (owned storage) or must be copied first (borrowed).
  public let isWritable: Bool
  private let owner: AnyObject?

  /// Allocates `byteCount` zeroed bytes, aligned to 64 bytes.
  public init(zeroedByteCount byteCount: Int) {
    precondition(byteCount >= 0, "negative byte count \(byteCount)")
    MemoryLedger.recordAllocation(bytes: byteCount)
    let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(byteCount, 1), alignment: 64)
    pointer.initializeMemory(as: UInt8.self, repeating: 0, count: max(byteCount, 1))
    self.baseAddress = pointer
    self.byteCount = byteCount
    self.isWritable = true
    self.owner = nil
  }

  /// Allocates `byteCount` bytes without initializing them; the caller writes every byte.
  public init(uninitializedByteCount byteCount: Int) {
    precondition(byteCount >= 0, "negative byte count \(byteCount)")
    MemoryLedger.recordAllocation(bytes: byteCount)
    self.baseAddress = UnsafeMutableRawPointer.allocate(
      byteCount: max(byteCount, 1), alignment: 64)
    self.byteCount = byteCount
    self.isWritable = true
    self.owner = nil
  }

  /// Wraps read-only bytes that `owner` keeps alive for as long as this storage lives.
  public init(borrowing bytes: UnsafeRawBufferPointer, owner: AnyObject) {
    self.baseAddress = UnsafeMutableRawPointer(mutating: bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 64)!)
    self.byteCount = bytes.count
    self.isWritable = false
    self.owner = owner
  }

  /// A writable copy of the bytes.
  public func copy() -> TensorStorage {
    let result = TensorStorage(uninitializedByteCount: byteCount)
    if byteCount > 0 {
      result.baseAddress.copyMemory(from: baseAddress, byteCount: byteCount)
    }
    return result
  }

  /// Drops the resident pages of borrowed bytes that a memory-mapped owner can read again
  /// (``PageEvicting``): after a weight is packed from a mapped file, its source pages need not
  /// stay in memory. The bytes remain readable. Does nothing for owned storage.
  public func evictPages() {
    guard let owner = owner as? any PageEvicting else { return }
    owner.evictPages(UnsafeRawBufferPointer(start: baseAddress, count: byteCount))
  }

  /// Maps the pages of borrowed file bytes in one call before they are all read (packing a
  /// weight): cheaper than a page fault per page. Does nothing for owned storage.
  public func populatePages() {
    guard let owner = owner as? any PageEvicting else { return }
    owner.populatePages(UnsafeRawBufferPointer(start: baseAddress, count: byteCount))
  }

  deinit {
    if owner == nil { baseAddress.deallocate() }
  }
}

/// An owner of borrowed bytes (a read-only file mapping) that can drop their resident pages
/// and fault them in again from the file when read.
public protocol PageEvicting: AnyObject {
  /// Drops the whole pages inside `bytes` from memory.
  func evictPages(_ bytes: UnsafeRawBufferPointer)
  /// Maps the pages of `bytes` in one call (instead of a fault per page) before they are read.
  func populatePages(_ bytes: UnsafeRawBufferPointer)
}
