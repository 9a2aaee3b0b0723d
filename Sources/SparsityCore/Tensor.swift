/// An n-dimensional, row-major array of elements of one ``DType``, with value semantics.
///
/// A tensor is a shape, a dtype and a reference to a byte buffer. Copies share the buffer
/// until one of them is mutated, which copies first (copy-on-write), so
///
/// ```swift
/// var a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
/// let b = a
/// a.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 9 }
/// // b still holds 1, 2, 3, 4
/// ```
///
/// Elements are always contiguous in row-major order (no strides): `transposed()` and slicing
/// produce new buffers. Weight matrices follow PyTorch's `nn.Linear`: `[out, in]`.
public struct Tensor: Sendable {
  /// The extent of each dimension; `[]` for a scalar.
  public internal(set) var shape: [Int]
  /// The element type.
  public let dtype: DType
  @usableFromInline internal var storage: TensorStorage

  /// Creates a zero-filled tensor.
  public init(zeros shape: [Int], dtype: DType = .float32) {
    let count = Tensor.elementCount(shape)
    guard let bytes = dtype.byteCount(elements: count) else {
      preconditionFailure("\(count) elements of \(dtype) do not fill whole bytes")
    }
    self.shape = shape
    self.dtype = dtype
    self.storage = TensorStorage(zeroedByteCount: bytes)
  }

  /// Creates a tensor from elements in row-major order.
  ///
  /// - Precondition: `scalars.count` equals the product of `shape` (default: a vector).
  public init<S: TensorScalar>(_ scalars: [S], shape: [Int]? = nil) {
    let shape = shape ?? [scalars.count]
    precondition(
      Tensor.elementCount(shape) == scalars.count,
      "\(scalars.count) elements cannot have shape \(shape)")
    self.shape = shape
    self.dtype = S.dtype
    self.storage = TensorStorage(uninitializedByteCount: MemoryLayout<S>.stride * scalars.count)
    scalars.withUnsafeBytes { source in
      if let base = source.baseAddress, source.count > 0 {
        storage.baseAddress.copyMemory(from: base, byteCount: source.count)
      }
    }
  }

  /// Creates a tensor filled with one value.
  public init<S: TensorScalar>(repeating value: S, shape: [Int]) {
    self.init(zeros: shape, dtype: S.dtype)
    withUnsafeMutableBufferPointer(as: S.self) { $0.update(repeating: value) }
  }

  /// Drops the resident pages of mapped file bytes this tensor borrows (after a weight has
  /// been packed from them); the values stay readable (see ``TensorStorage/evictPages()``).
  public func evictPages() { storage.evictPages() }

  /// Maps the pages of mapped file bytes this tensor borrows before they are all read
  /// (see ``TensorStorage/populatePages()``).
  public func populatePages() { storage.populatePages() }

  /// Creates a tensor over existing storage.
  ///
  /// - Precondition: the storage holds exactly the bytes of `shape` × `dtype`.
  public init(shape: [Int], dtype: DType, storage: TensorStorage) {
    precondition(
      dtype.byteCount(elements: Tensor.elementCount(shape)) == storage.byteCount,
      "storage of \(storage.byteCount) bytes does not hold \(shape) × \(dtype)")
    self.shape = shape
    self.dtype = dtype
    self.storage = storage
  }

  /// Creates a tensor by copying raw little-endian bytes.
  ///
  /// - Precondition: `bytes.count` is the byte size of `shape` × `dtype`.
  public init(shape: [Int], dtype: DType, copying bytes: UnsafeRawBufferPointer) {
    let storage = TensorStorage(uninitializedByteCount: bytes.count)
    if let base = bytes.baseAddress, bytes.count > 0 {
      storage.baseAddress.copyMemory(from: base, byteCount: bytes.count)
    }
    self.init(shape: shape, dtype: dtype, storage: storage)
  }

  /// A rank-0 tensor.
  public init<S: TensorScalar>(scalar: S) { self.init([scalar], shape: []) }

  // MARK: Properties

  /// The number of dimensions.
  @inlinable public var rank: Int { shape.count }
  /// The number of elements (1 for a scalar).
  @inlinable public var count: Int { Tensor.elementCount(shape) }
  /// The number of bytes of element data.
  @inlinable public var byteCount: Int { storage.byteCount }

  /// The product of a shape's extents.
  @inlinable
  public static func elementCount(_ shape: [Int]) -> Int {
    var n = 1
    for d in shape {
      precondition(d >= 0, "negative dimension in shape \(shape)")
      n *= d
    }
    return n
  }

  // MARK: Access

  /// Calls `body` with the elements, typed as `S`.
  ///
  /// - Precondition: `S.dtype == dtype`.
  @inlinable
  public func withUnsafeBufferPointer<S: TensorScalar, R>(
    as type: S.Type, _ body: (UnsafeBufferPointer<S>) throws -> R
  ) rethrows -> R {
    precondition(S.dtype == dtype, "tensor has dtype \(dtype), accessed as \(S.dtype)")
    let pointer = storage.baseAddress.assumingMemoryBound(to: S.self)
    return try body(UnsafeBufferPointer(start: pointer, count: count))
  }

  /// Calls `body` with mutable typed elements, copying the storage first when it is shared or
  /// borrowed.
  ///
  /// - Precondition: `S.dtype == dtype`.
  @inlinable
  public mutating func withUnsafeMutableBufferPointer<S: TensorScalar, R>(
    as type: S.Type, _ body: (UnsafeMutableBufferPointer<S>) throws -> R
  ) rethrows -> R {
    precondition(S.dtype == dtype, "tensor has dtype \(dtype), accessed as \(S.dtype)")
    makeUnique()
    let pointer = storage.baseAddress.assumingMemoryBound(to: S.self)
    return try body(UnsafeMutableBufferPointer(start: pointer, count: count))
  }

  /// Calls `body` with the raw element bytes.
  @inlinable
  public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
    try body(UnsafeRawBufferPointer(start: storage.baseAddress, count: storage.byteCount))
  }

  /// Calls `body` with the mutable raw element bytes (copy-on-write as above).
  @inlinable
  public mutating func withUnsafeMutableBytes<R>(
    _ body: (UnsafeMutableRawBufferPointer) throws -> R
  ) rethrows -> R {
    makeUnique()
    return try body(
      UnsafeMutableRawBufferPointer(start: storage.baseAddress, count: storage.byteCount))
  }

  /// The elements as an array of `S`.
  @inlinable
  public func scalars<S: TensorScalar>(as type: S.Type) -> [S] {
    withUnsafeBufferPointer(as: S.self) { Array($0) }
  }

  /// The elements of a numeric tensor as `Double`s.
  public var doubleValues: [Double] {
    guard let type = dtype.scalarType else {
      preconditionFailure("dtype \(dtype) has no element access")
    }
    return Tensor.doubles(of: self, as: type)
  }

  private static func doubles<S: TensorScalar>(of tensor: Tensor, as: S.Type) -> [Double] {
    tensor.withUnsafeBufferPointer(as: S.self) { $0.map(\.doubleValue) }
  }

  /// The elements of a numeric tensor converted to `Float`.
  public var floatValues: [Float] {
    if dtype == .float32 { return scalars(as: Float.self) }
    return converted(to: .float32).scalars(as: Float.self)
  }

  /// Whether the tensors have the same shape, dtype and bytes.
  public func isBitwiseEqual(to other: Tensor) -> Bool {
    guard shape == other.shape, dtype == other.dtype else { return false }
    return withUnsafeBytes { a in other.withUnsafeBytes { b in a.elementsEqual(b) } }
  }

  /// Ensures this tensor is the sole owner of writable storage.
  @inlinable
  public mutating func makeUnique() {
    if !isKnownUniquelyReferenced(&storage) || !storage.isWritable {
      storage = storage.copy()
    }
  }

  /// The row-major strides of `shape`, in elements.
  @inlinable
  public static func strides(of shape: [Int]) -> [Int] {
    var strides = [Int](repeating: 1, count: shape.count)
    var s = 1
    for i in stride(from: shape.count - 1, through: 0, by: -1) {
      strides[i] = s
      s *= shape[i]
    }
    return strides
  }
}

extension Tensor: Equatable {
  /// Whether two tensors have the same shape, dtype and bytes (bitwise: `-0.0 != 0.0`, and a
  /// NaN equals the same NaN). For numeric closeness use ``isClose(to:relativeTolerance:absoluteTolerance:)``.
  public static func == (a: Tensor, b: Tensor) -> Bool { a.isBitwiseEqual(to: b) }
}

extension Tensor: CustomStringConvertible {
  /// A one-line summary: dtype, shape, and the first few elements.
  public var description: String {
    let head: String
    if let type = dtype.scalarType, count > 0 {
      let values = Tensor.firstValues(of: self, as: type, limit: 8)
      head = values.map { v in v == v.rounded() && Swift.abs(v) < 1e15 ? String(Int64(v)) : "\(v)" }
        .joined(separator: ", ") + (count > 8 ? ", …" : "")
    } else {
      head = "\(byteCount) bytes"
    }
    return "Tensor<\(dtype)>\(shape)[\(head)]"
  }

  private static func firstValues<S: TensorScalar>(of t: Tensor, as: S.Type, limit: Int)
    -> [Double]
  {
    t.withUnsafeBufferPointer(as: S.self) { $0.prefix(limit).map(\.doubleValue) }
  }
}
