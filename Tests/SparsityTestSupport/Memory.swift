// Memory for the test targets: byte buffers that tensors borrow.

/// A 64-byte-aligned buffer for a `TensorStorage` to borrow (as it would a memory-mapped file).
public final class ByteOwner {
  /// The owned bytes.
  public let pointer: UnsafeMutableRawBufferPointer

  /// A buffer of `byteCount` uninitialized bytes.
  public init(byteCount: Int) { pointer = .allocate(byteCount: byteCount, alignment: 64) }

  /// A buffer holding a copy of `bytes`.
  public convenience init(_ bytes: [UInt8]) {
    self.init(byteCount: bytes.count)
    bytes.withUnsafeBytes { pointer.copyMemory(from: $0) }
  }

  deinit { pointer.deallocate() }
}
