import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing

struct Block: Sendable, CustomTestStringConvertible, Hashable {
  var rows: Int
  var columns: Int
  init(_ rows: Int, _ columns: Int) { (self.rows, self.columns) = (rows, columns) }
  var testDescription: String { "\(rows)x\(columns)" }
}

let blockShapes: [Block] = [
  Block(1, 1), Block(2, 2), Block(4, 4), Block(8, 8), Block(1, 4), Block(4, 1), Block(16, 16), Block(32, 32),
]
let bsrShapes: [Shape] = testShapes + [Shape(8, 12), Shape(32, 64), Shape(0, 8), Shape(96, 32)]

/// Reference BSR arrays of a dense matrix: occupied blocks in row-major block order.
func referenceBSR(_ dense: Tensor, block: Block) -> (offsets: [Int32], columns: [Int32], values: [UInt8]) {
  let (rows, columns) = (dense.shape[0], dense.shape[1])
  let w = width(dense.dtype)
  let b = bytes(of: dense)
  let nonzero = dense.nonzeroMask.scalars(as: Bool.self)
  var offsets: [Int32] = [0]
  var indices: [Int32] = []
  var values: [UInt8] = []
  for br in 0..<(rows / block.rows) {
    for bc in 0..<(columns / block.columns) {
      var occupied = false
      for r in 0..<block.rows {
        for c in 0..<block.columns where nonzero[(br * block.rows + r) * columns + bc * block.columns + c] {
          occupied = true
        }
      }
      guard occupied else { continue }
      indices.append(Int32(bc))
      for r in 0..<block.rows {
        let start = ((br * block.rows + r) * columns + bc * block.columns) * w
        values += b[start..<start + block.columns * w]
      }
    }
    offsets.append(Int32(indices.count))
  }
  return (offsets, indices, values)
}

@Suite("BSR")
struct BSRTests {
  @Test(arguments: formatDTypes, bsrShapes)
  func roundTripInvariantsAndByteCount(_ dtype: DType, _ shape: Shape) throws {
    for block in blockShapes where shape.rows % block.rows == 0 && shape.columns % block.columns == 0 {
      for (k, density) in densities.enumerated() {
        let keep = randomBlockKeep(
          rows: shape.rows, columns: shape.columns, br: block.rows, bc: block.columns, density: density,
          seed: UInt64(k * 31 + block.rows))
        try check(matrix(keeping: keep, rows: shape.rows, columns: shape.columns, dtype: dtype, seed: 5), block, "\(block) density \(density)")
      }
      // Unstructured nonzeros: most blocks are partly filled.
      try check(randomSparse(shape, dtype: dtype, density: 0.1, seed: 6), block, "\(block) unstructured")
    }
  }

  private func check(_ dense: Tensor, _ block: Block, _ note: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let (rows, columns) = (dense.shape[0], dense.shape[1])
    let bsr = try BSRMatrix(dense: dense, blockRows: block.rows, blockColumns: block.columns, name: "w")
    expectBitwiseEqual(bsr.dense(), dense, "\(note)", sourceLocation: sourceLocation)
    try bsr.checkInvariants()
    let reference = referenceBSR(dense, block: block)
    let blocks = reference.columns.count
    #expect(bsr.blockRows == block.rows && bsr.blockColumns == block.columns, sourceLocation: sourceLocation)
    #expect(bsr.rowOffsets == reference.offsets, "\(note)", sourceLocation: sourceLocation)
    #expect(bsr.columnIndices == reference.columns, "\(note)", sourceLocation: sourceLocation)
    #expect(bytes(of: bsr.values) == reference.values, "\(note)", sourceLocation: sourceLocation)
    #expect(bsr.values.shape == [blocks, block.rows, block.columns], sourceLocation: sourceLocation)
    #expect(bsr.storedBlockCount == blocks, sourceLocation: sourceLocation)
    #expect(bsr.storedValueCount == blocks * block.rows * block.columns, sourceLocation: sourceLocation)
    #expect(
      bsr.byteCount == blocks * block.rows * block.columns * width(dense.dtype) + 4 * (rows / block.rows + 1 + blocks),
      "\(note)", sourceLocation: sourceLocation)
    #expect(bsr.shape == [rows, columns], sourceLocation: sourceLocation)
    #expect(bsr.dtype == dense.dtype, sourceLocation: sourceLocation)
    let rebuilt = try BSRMatrix(
      shape: bsr.shape, rowOffsets: bsr.rowOffsets, columnIndices: bsr.columnIndices, values: bsr.values, name: "w")
    #expect(rebuilt == bsr, sourceLocation: sourceLocation)
  }

  @Test(arguments: extraDTypes)
  func everyByteAlignedDTypeRoundTrips(_ dtype: DType) throws {
    let dense = randomSparse(Shape(8, 12), dtype: dtype, density: 0.2, seed: 8)
    let bsr = try BSRMatrix(dense: dense, blockRows: 2, blockColumns: 4)
    expectBitwiseEqual(bsr.dense(), dense)
    try bsr.checkInvariants()
  }

  @Test func handExample() throws {
    // 4×6 with 2×3 blocks: blocks (0,1), (1,0) and (1,1) hold nonzeros.
    let dense = Tensor(
      [
        0, 0, 0, 1, 0, 0,
        0, 0, 0, 0, 0, 2,
        3, 0, 0, 0, 4, 0,
        0, 0, 0, 0, 0, 0,
      ] as [Float], shape: [4, 6])
    let bsr = try BSRMatrix(dense: dense, blockRows: 2, blockColumns: 3, name: "w")
    #expect(bsr.rowOffsets == [0, 1, 3])
    #expect(bsr.columnIndices == [1, 0, 1])
    #expect(bsr.values.shape == [3, 2, 3])
    #expect(bsr.values.scalars(as: Float.self) == [1, 0, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0])
    #expect(bsr.byteCount == 18 * 4 + 4 * (3 + 3))
    #expect(BSRMatrix.formatName == "bsr")
  }

  @Test func defaultBlockIs16x16() throws {
    let dense = randomSparse(Shape(32, 48), dtype: .float32, density: 0.05, seed: 1)
    let bsr = try BSRMatrix(dense: dense, name: "w")
    #expect(bsr.blockRows == 16 && bsr.blockColumns == 16)
    expectBitwiseEqual(bsr.dense(), dense)
    expectShapeRule(name: "tensor", shape: [3, 5]) { _ = try BSRMatrix(dense: Tensor(zeros: [3, 5])) }
  }

  @Test(arguments: [
    (Shape(3, 5), Block(2, 2)), (Shape(64, 128), Block(3, 3)), (Shape(17, 33), Block(16, 16)),
    (Shape(8, 12), Block(8, 8)), (Shape(8, 12), Block(16, 4)), (Shape(4, 4), Block(0, 4)),
    (Shape(4, 4), Block(4, -1)), (Shape(1, 7), Block(1, 4)),
  ])
  func indivisibleShapeBreaksTheShapeRule(_ shape: Shape, _ block: Block) {
    expectShapeRule(name: "w", shape: shape.dims, "\(block)") {
      _ = try BSRMatrix(dense: Tensor(zeros: shape.dims), blockRows: block.rows, blockColumns: block.columns, name: "w")
    }
  }

  struct Corruption: Sendable, CustomTestStringConvertible {
    var note: String
    var offsets: [Int32]
    var indices: [Int32]
    var values: Tensor
    var testDescription: String { note }
  }

  // Valid: shape [4, 6], 2×3 blocks (a 2×2 grid), offsets [0, 1, 3], block columns [1, 0, 1].
  static let blocks3 = Tensor(zeros: [3, 2, 3])
  static let corruptions: [Corruption] = [
    Corruption(note: "values of rank 2", offsets: [0, 1, 3], indices: [1, 0, 1], values: Tensor(zeros: [3, 6])),
    Corruption(note: "values of rank 1", offsets: [0, 1, 3], indices: [1, 0, 1], values: Tensor(zeros: [18])),
    Corruption(note: "fewer blocks than indices", offsets: [0, 1, 3], indices: [1, 0, 1], values: Tensor(zeros: [2, 2, 3])),
    Corruption(note: "offsets start at 1", offsets: [1, 1, 3], indices: [1, 0, 1], values: blocks3),
    Corruption(note: "offsets decrease", offsets: [0, 2, 1], indices: [1, 0, 1], values: blocks3),
    Corruption(note: "offset past the end, then back", offsets: [0, 9, 3], indices: [1, 0, 1], values: blocks3),
    Corruption(note: "last offset wrong", offsets: [0, 1, 2], indices: [1, 0, 1], values: blocks3),
    Corruption(note: "too many offsets", offsets: [0, 1, 3, 3], indices: [1, 0, 1], values: blocks3),
    Corruption(note: "block column = grid columns", offsets: [0, 1, 3], indices: [2, 0, 1], values: blocks3),
    Corruption(note: "negative block column", offsets: [0, 1, 3], indices: [1, -1, 1], values: blocks3),
    Corruption(note: "unsorted block columns", offsets: [0, 1, 3], indices: [1, 1, 0], values: blocks3),
    Corruption(note: "duplicate block column", offsets: [0, 1, 3], indices: [1, 1, 1], values: blocks3),
  ]

  @Test(arguments: corruptions)
  func componentInitRejectsCorruptArrays(_ c: Corruption) {
    expectInvalidEncoding(name: "w", format: "bsr", "\(c.note)") {
      _ = try BSRMatrix(shape: [4, 6], rowOffsets: c.offsets, columnIndices: c.indices, values: c.values, name: "w")
    }
  }

  @Test func componentInitChecksTheBlockShape() throws {
    let ok = try BSRMatrix(shape: [4, 6], rowOffsets: [0, 1, 3], columnIndices: [1, 0, 1], values: Self.blocks3, name: "w")
    #expect(ok.storedBlockCount == 3)
    expectShapeRule(name: "w", shape: [4, 6]) {
      _ = try BSRMatrix(shape: [4, 6], rowOffsets: [0, 1, 3], columnIndices: [1, 0, 1], values: Tensor(zeros: [3, 3, 3]), name: "w")
    }
    expectShapeRule(name: "w", shape: [4, 6, 1]) {
      _ = try BSRMatrix(shape: [4, 6, 1], rowOffsets: [0, 1, 3], columnIndices: [1, 0, 1], values: Self.blocks3, name: "w")
    }
  }
}
