import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing

/// Reference compressed rows of a keep-mask: offsets and column indices.
func referenceCSR(_ keep: [Bool], rows: Int, columns: Int) -> (offsets: [Int32], columns: [Int32]) {
  var offsets: [Int32] = [0]
  var indices: [Int32] = []
  for r in 0..<rows {
    for c in 0..<columns where keep[r * columns + c] { indices.append(Int32(c)) }
    offsets.append(Int32(indices.count))
  }
  return (offsets, indices)
}

/// The bytes of the kept elements in row-major order.
func keptBytes(_ dense: Tensor, _ keep: [Bool]) -> [UInt8] {
  let w = width(dense.dtype)
  let b = bytes(of: dense)
  return keep.indices.filter { keep[$0] }.flatMap { b[$0 * w..<($0 + 1) * w] }
}

/// Storage-only and wide dtypes that the formats also accept (every byte-aligned dtype is).
let extraDTypes: [DType] = [.float8E4M3, .float8E5M2FNUZ, .float8E8M0, .complex64, .int16, .uint64]

@Suite("CSR")
struct CSRTests {
  @Test(arguments: formatDTypes, testShapes)
  func roundTripInvariantsAndByteCount(_ dtype: DType, _ shape: Shape) throws {
    for (k, density) in densities.enumerated() {
      let keep = randomKeep(rows: shape.rows, columns: shape.columns, density: density, seed: UInt64(k))
      let dense = matrix(keeping: keep, rows: shape.rows, columns: shape.columns, dtype: dtype, seed: UInt64(k))
      let nnz = keep.filter { $0 }.count
      let csr = try CSRMatrix(dense: dense, name: "w")
      expectBitwiseEqual(csr.dense(), dense, "density \(density)")
      try csr.checkInvariants()
      #expect(csr.shape == shape.dims)
      #expect(csr.dtype == dtype)
      #expect(csr.storedValueCount == nnz)
      #expect(csr.byteCount == nnz * width(dtype) + 4 * (shape.rows + 1 + nnz))
      let reference = referenceCSR(keep, rows: shape.rows, columns: shape.columns)
      #expect(csr.rowOffsets == reference.offsets)
      #expect(csr.columnIndices == reference.columns)
      #expect(csr.values.shape == [nnz])
      #expect(bytes(of: csr.values) == keptBytes(dense, keep))
      // Reassembling from the arrays gives the same matrix.
      let rebuilt = try CSRMatrix(
        shape: csr.shape, rowOffsets: csr.rowOffsets, columnIndices: csr.columnIndices, values: csr.values, name: "w")
      #expect(rebuilt == csr)
      let denseBytes = shape.rows * shape.columns * width(dtype)
      #expect(csr.compressionRatio == (denseBytes == 0 ? 0 : Double(csr.byteCount) / Double(denseBytes)))
    }
  }

  @Test(arguments: extraDTypes)
  func everyByteAlignedDTypeRoundTrips(_ dtype: DType) throws {
    let dense = randomSparse(Shape(9, 13), dtype: dtype, density: 0.4, seed: 3)
    let csr = try CSRMatrix(dense: dense)
    expectBitwiseEqual(csr.dense(), dense)
    #expect(csr.storedValueCount == dense.nonzeroCount)
    try csr.checkInvariants()
  }

  @Test func negativeZeroIsDroppedAndComesBackPositive() throws {
    let dense = Tensor([1, -0.0, 0, -2, -0.0, 3] as [Float], shape: [2, 3])
    let csr = try CSRMatrix(dense: dense)
    #expect(csr.storedValueCount == 3)
    #expect(csr.dense().scalars(as: Float.self).map(\.bitPattern) == ([1, 0, 0, -2, 0, 3] as [Float]).map(\.bitPattern))
  }

  @Test func handExample() throws {
    let dense = Tensor([0, 5, 0, 0, 0, 0, 7, 8, 9] as [Int8], shape: [3, 3])
    let csr = try CSRMatrix(dense: dense, name: "fc.weight")
    #expect(csr.rowOffsets == [0, 1, 1, 4])
    #expect(csr.columnIndices == [1, 0, 1, 2])
    #expect(csr.values.scalars(as: Int8.self) == [5, 7, 8, 9])
    #expect(csr.byteCount == 4 + 4 * (4 + 4))
    #expect(CSRMatrix.formatName == "csr")
  }

  struct Corruption: Sendable, CustomTestStringConvertible {
    var note: String
    var offsets: [Int32]
    var indices: [Int32]
    var values: Tensor
    var testDescription: String { note }
  }

  // The valid matrix: shape [3, 4], offsets [0, 2, 2, 3], indices [0, 3, 1], values [1, 2, 3].
  static let values3 = Tensor([1, 2, 3] as [Float])
  static let corruptions: [Corruption] = [
    Corruption(note: "offsets start at 1", offsets: [1, 2, 2, 3], indices: [0, 3, 1], values: values3),
    Corruption(note: "offsets start negative", offsets: [-1, 2, 2, 3], indices: [0, 3, 1], values: values3),
    Corruption(note: "offsets decrease", offsets: [0, 2, 1, 3], indices: [0, 3, 1], values: values3),
    Corruption(note: "offsets go negative", offsets: [0, -1, 2, 3], indices: [0, 3, 1], values: values3),
    // Increasing indices, so that reading row 0's range would run past the index array.
    Corruption(note: "offset past the end, then back", offsets: [0, 5, 2, 3], indices: [0, 1, 2], values: values3),
    Corruption(note: "huge offset, then back", offsets: [0, .max, 3, 3], indices: [0, 1, 2], values: values3),
    Corruption(note: "last offset too small", offsets: [0, 2, 2, 2], indices: [0, 3, 1], values: values3),
    Corruption(note: "last offset too large", offsets: [0, 2, 2, 4], indices: [0, 3, 1], values: values3),
    Corruption(note: "too few offsets", offsets: [0, 2, 3], indices: [0, 3, 1], values: values3),
    Corruption(note: "too many offsets", offsets: [0, 2, 2, 3, 3], indices: [0, 3, 1], values: values3),
    Corruption(note: "no offsets", offsets: [], indices: [0, 3, 1], values: values3),
    Corruption(note: "column = columns", offsets: [0, 2, 2, 3], indices: [0, 4, 1], values: values3),
    Corruption(note: "negative column", offsets: [0, 2, 2, 3], indices: [0, 3, -1], values: values3),
    Corruption(note: "unsorted columns", offsets: [0, 2, 2, 3], indices: [3, 0, 1], values: values3),
    Corruption(note: "duplicate column", offsets: [0, 2, 2, 3], indices: [3, 3, 1], values: values3),
    Corruption(note: "too few values", offsets: [0, 2, 2, 3], indices: [0, 3, 1], values: Tensor([1, 2] as [Float])),
    Corruption(note: "too many values", offsets: [0, 2, 2, 3], indices: [0, 3, 1], values: Tensor([1, 2, 3, 4] as [Float])),
    Corruption(note: "values of rank 2", offsets: [0, 2, 2, 3], indices: [0, 3, 1], values: Tensor([1, 2, 3] as [Float], shape: [3, 1])),
    Corruption(note: "sub-byte values", offsets: [0, 2, 2, 4], indices: [0, 3, 1, 2], values: Tensor(zeros: [4], dtype: .float4E2M1)),
  ]

  @Test func validComponentsAssemble() throws {
    let csr = try CSRMatrix(shape: [3, 4], rowOffsets: [0, 2, 2, 3], columnIndices: [0, 3, 1], values: Self.values3, name: "w")
    #expect(csr.dense().scalars(as: Float.self) == [1, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0])
  }

  @Test(arguments: corruptions)
  func componentInitRejectsCorruptArrays(_ c: Corruption) {
    expectInvalidEncoding(name: "w", format: "csr", "\(c.note)") {
      _ = try CSRMatrix(shape: [3, 4], rowOffsets: c.offsets, columnIndices: c.indices, values: c.values, name: "w")
    }
  }

  @Test(arguments: [[3], [2, -1], [1, 2, 3], []] as [[Int]])
  func componentInitRejectsBadShapes(_ shape: [Int]) {
    expectShapeRule(name: "w", shape: shape) {
      _ = try CSRMatrix(shape: shape, rowOffsets: [0, 0], columnIndices: [], values: Tensor([] as [Float]), name: "w")
    }
  }
}

@Suite("COO")
struct COOTests {
  @Test(arguments: formatDTypes, testShapes)
  func roundTripInvariantsAndByteCount(_ dtype: DType, _ shape: Shape) throws {
    for (k, density) in densities.enumerated() {
      let keep = randomKeep(rows: shape.rows, columns: shape.columns, density: density, seed: UInt64(10 + k))
      let dense = matrix(keeping: keep, rows: shape.rows, columns: shape.columns, dtype: dtype, seed: UInt64(k))
      let nnz = keep.filter { $0 }.count
      let coo = try COOMatrix(dense: dense, name: "w")
      expectBitwiseEqual(coo.dense(), dense, "density \(density)")
      try coo.checkInvariants()
      #expect(coo.shape == shape.dims)
      #expect(coo.dtype == dtype)
      #expect(coo.storedValueCount == nnz)
      #expect(coo.byteCount == nnz * width(dtype) + 8 * nnz)
      let positions = keep.indices.filter { keep[$0] }
      #expect(coo.rowIndices == positions.map { Int32($0 / max(shape.columns, 1)) })
      #expect(coo.columnIndices == positions.map { Int32($0 % max(shape.columns, 1)) })
      #expect(bytes(of: coo.values) == keptBytes(dense, keep))
      let rebuilt = try COOMatrix(
        shape: coo.shape, rowIndices: coo.rowIndices, columnIndices: coo.columnIndices, values: coo.values, name: "w")
      #expect(rebuilt == coo)
    }
  }

  @Test(arguments: extraDTypes)
  func everyByteAlignedDTypeRoundTrips(_ dtype: DType) throws {
    let dense = randomSparse(Shape(9, 13), dtype: dtype, density: 0.4, seed: 4)
    let coo = try COOMatrix(dense: dense)
    expectBitwiseEqual(coo.dense(), dense)
    #expect(coo.storedValueCount == dense.nonzeroCount)
  }

  @Test func handExample() throws {
    let dense = Tensor([0, 5, 0, 0, 0, 0, 7, 8, 9] as [Int8], shape: [3, 3])
    let coo = try COOMatrix(dense: dense)
    #expect(coo.rowIndices == [0, 2, 2, 2])
    #expect(coo.columnIndices == [1, 0, 1, 2])
    #expect(coo.values.scalars(as: Int8.self) == [5, 7, 8, 9])
    #expect(coo.byteCount == 4 + 8 * 4)
    #expect(COOMatrix.formatName == "coo")
  }

  struct Corruption: Sendable, CustomTestStringConvertible {
    var note: String
    var rows: [Int32]
    var columns: [Int32]
    var values: Tensor
    var testDescription: String { note }
  }

  // The valid matrix: shape [3, 4], entries (0,0)=1, (0,3)=2, (2,1)=3.
  static let values3 = Tensor([1, 2, 3] as [Float])
  static let corruptions: [Corruption] = [
    Corruption(note: "fewer row indices", rows: [0, 0], columns: [0, 3, 1], values: values3),
    Corruption(note: "fewer column indices", rows: [0, 0, 2], columns: [0, 3], values: values3),
    Corruption(note: "fewer values", rows: [0, 0, 2], columns: [0, 3, 1], values: Tensor([1, 2] as [Float])),
    Corruption(note: "values of rank 2", rows: [0, 0, 2], columns: [0, 3, 1], values: Tensor([1, 2, 3] as [Float], shape: [1, 3])),
    Corruption(note: "row = rows", rows: [0, 0, 3], columns: [0, 3, 1], values: values3),
    Corruption(note: "negative row", rows: [-1, 0, 2], columns: [0, 3, 1], values: values3),
    Corruption(note: "column = columns", rows: [0, 0, 2], columns: [0, 4, 1], values: values3),
    Corruption(note: "negative column", rows: [0, 0, 2], columns: [0, 3, -1], values: values3),
    Corruption(note: "rows out of order", rows: [0, 2, 0], columns: [0, 1, 3], values: values3),
    Corruption(note: "columns out of order", rows: [0, 0, 2], columns: [3, 0, 1], values: values3),
    Corruption(note: "duplicate entry", rows: [0, 0, 2], columns: [3, 3, 1], values: values3),
    Corruption(note: "sub-byte values", rows: [0, 0, 2, 2], columns: [0, 3, 1, 2], values: Tensor(zeros: [4], dtype: .float4E2M1)),
  ]

  @Test(arguments: corruptions)
  func componentInitRejectsCorruptArrays(_ c: Corruption) {
    expectInvalidEncoding(name: "w", format: "coo", "\(c.note)") {
      _ = try COOMatrix(shape: [3, 4], rowIndices: c.rows, columnIndices: c.columns, values: c.values, name: "w")
    }
  }

  @Test func validComponentsAssemble() throws {
    let coo = try COOMatrix(shape: [3, 4], rowIndices: [0, 0, 2], columnIndices: [0, 3, 1], values: Self.values3, name: "w")
    #expect(coo.dense().scalars(as: Float.self) == [1, 0, 0, 2, 0, 0, 0, 0, 0, 3, 0, 0])
  }

  @Test(arguments: [[3], [2, -1], [1, 2, 3]] as [[Int]])
  func componentInitRejectsBadShapes(_ shape: [Int]) {
    expectShapeRule(name: "w", shape: shape) {
      _ = try COOMatrix(shape: shape, rowIndices: [], columnIndices: [], values: Tensor([] as [Float]), name: "w")
    }
  }
}

/// Errors shared by every format's dense initializer.
@Suite("Format input errors")
struct FormatInputErrorTests {
  enum Format: String, CaseIterable, Sendable {
    case csr, coo, bsr, semiStructured
    var formatName: String { self == .semiStructured ? "2:4" : rawValue }
    func make(_ dense: Tensor, name: String) throws {
      switch self {
      case .csr: _ = try CSRMatrix(dense: dense, name: name)
      case .coo: _ = try COOMatrix(dense: dense, name: name)
      case .bsr: _ = try BSRMatrix(dense: dense, blockRows: 1, blockColumns: 1, name: name)
      case .semiStructured: _ = try SemiStructuredMatrix(dense: dense, n: 2, m: 4, name: name)
      }
    }
  }

  @Test(arguments: Format.allCases, [[2, 2, 4], [8], [], [1, 1, 1, 4]] as [[Int]])
  func nonMatrixInputBreaksTheShapeRule(_ format: Format, _ shape: [Int]) {
    expectShapeRule(name: "layer.weight", shape: shape, "\(format)") {
      try format.make(Tensor(zeros: shape), name: "layer.weight")
    }
    // The rule names the format the caller asked for.
    if case let .shapeRule(_, _, rule) = thrownError({ try format.make(Tensor(zeros: shape), name: "w") }) {
      #expect(rule.hasPrefix(format.formatName + " "), "\(rule)")
    }
  }

  @Test(arguments: Format.allCases, [DType.float4E2M1, .float6E2M3, .float6E3M2])
  func subByteDTypesAreUnsupported(_ format: Format, _ dtype: DType) {
    let dense = Tensor(zeros: [4, 8], dtype: dtype)
    expectError(
      .unsupportedDType(
        tensor: "w", dtype: dtype, format: format.formatName,
        supported: DType.allCases.filter { $0.byteWidth != nil }), "\(format)"
    ) {
      try format.make(dense, name: "w")
    }
  }

  @Test func errorDescriptionsNameTheTensor() {
    let errors: [SparseFormatError] = [
      .patternViolation(tensor: "fc1.weight", pattern: "2:4", rows: 3..<4, columns: 8..<12, nonzeros: 3, allowed: 2),
      .partialBlock(tensor: "fc1.weight", pattern: "block:2x2", rows: 0..<2, columns: 4..<6, nonzeros: 1, size: 4),
      .shapeRule(tensor: "fc1.weight", shape: [3, 5], rule: "r"),
      .unsupportedDType(tensor: "fc1.weight", dtype: .float4E2M1, format: "csr", supported: [.float32]),
      .invalidEncoding(tensor: "fc1.weight", format: "csr", detail: "d"),
    ]
    for e in errors { #expect(e.description.contains("'fc1.weight'")) }
    #expect(
      errors[0].description
        == "tensor 'fc1.weight' is not 2:4: row 3, columns 8..<12 hold 3 nonzeros, at most 2 allowed")
  }
}
