import SparsityCore
import SparsityFormats
import Testing

// Helpers for the SparsityFormats tests: seeded sparse-matrix makers (random bits, so float
// values include NaNs, infinities and subnormals), structured masks, and `#expect`-based checks
// of thrown format errors (the tensor comparisons are in SparsityTestSupport).

/// The dtypes every format is tested with.
let formatDTypes: [DType] = [.float32, .float16, .bfloat16, .int8, .int32, .uint8, .bool, .float64]
/// Matrix shapes, ragged ones included.
let matrixShapes: [[Int]] = [[1, 1], [1, 7], [3, 5], [17, 33], [64, 128], [0, 5]]
/// Fractions of nonzero elements (or groups, or blocks).
let densities: [Double] = [0, 0.1, 0.5, 1]

/// A shape for test names.
struct Shape: Sendable, CustomTestStringConvertible, Hashable {
  var rows: Int
  var columns: Int
  init(_ rows: Int, _ columns: Int) { (self.rows, self.columns) = (rows, columns) }
  var dims: [Int] { [rows, columns] }
  var testDescription: String { "\(rows)x\(columns)" }
}
let testShapes: [Shape] = matrixShapes.map { Shape($0[0], $0[1]) }

/// A `rows × columns` matrix of `dtype` that is nonzero exactly where `keep` is true. Nonzero
/// elements have random bits (forced nonzero by the format's zero test: the lowest byte gets
/// its low bit set, which makes a float's magnitude nonzero); `bool` elements are `true`.
func matrix(keeping keep: [Bool], rows: Int, columns: Int, dtype: DType, seed: UInt64) -> Tensor {
  precondition(keep.count == rows * columns)
  var rng = SeededGenerator(seed: seed)
  let width = dtype.byteWidth!
  var t = Tensor(zeros: [rows, columns], dtype: dtype)
  t.withUnsafeMutableBytes { raw in
    for i in 0..<keep.count where keep[i] {
      if dtype == .bool {
        raw[i] = 1
        continue
      }
      let bits = rng.next()
      for j in 0..<width { raw[i * width + j] = UInt8(truncatingIfNeeded: bits >> (8 * UInt64(j % 8))) }
      raw[i * width] |= 1
    }
  }
  return t
}

/// An unstructured random keep-mask with about `density` kept.
func randomKeep(rows: Int, columns: Int, density: Double, seed: UInt64) -> [Bool] {
  var rng = SeededGenerator(seed: seed ^ 0x5EED)
  return (0..<rows * columns).map { _ in rng.nextUnitDouble() < density }
}

/// A random unstructured sparse matrix.
func randomSparse(_ shape: Shape, dtype: DType, density: Double, seed: UInt64) -> Tensor {
  matrix(
    keeping: randomKeep(rows: shape.rows, columns: shape.columns, density: density, seed: seed),
    rows: shape.rows, columns: shape.columns, dtype: dtype, seed: seed)
}

/// A keep-mask with at most `n` kept in every group of `m` along a row (the ragged last group
/// included); each group keeps a random count in `0...n` (all `n` with probability `density`).
func randomNOfMKeep(rows: Int, columns: Int, n: Int, m: Int, density: Double, seed: UInt64) -> [Bool] {
  var rng = SeededGenerator(seed: seed ^ 0x4E4D)
  var keep = [Bool](repeating: false, count: rows * columns)
  for r in 0..<rows {
    for c0 in stride(from: 0, to: columns, by: m) {
      let width = min(m, columns - c0)
      let count = rng.nextUnitDouble() < density ? n : Int(rng.next() % UInt64(n + 1))
      for j in Array(0..<width).shuffled(using: &rng).prefix(count) { keep[r * columns + c0 + j] = true }
    }
  }
  return keep
}

/// A keep-mask in which about `density` of the `br × bc` blocks (edge blocks cut short) hold
/// nonzeros; an occupied block keeps each element with probability 0.7, and at least one.
func randomBlockKeep(rows: Int, columns: Int, br: Int, bc: Int, density: Double, seed: UInt64) -> [Bool] {
  var rng = SeededGenerator(seed: seed ^ 0xB10C)
  var keep = [Bool](repeating: false, count: rows * columns)
  for r0 in stride(from: 0, to: rows, by: br) {
    for c0 in stride(from: 0, to: columns, by: bc) where rng.nextUnitDouble() < density {
      var any = false
      for r in r0..<min(r0 + br, rows) {
        for c in c0..<min(c0 + bc, columns) where rng.nextUnitDouble() < 0.7 {
          keep[r * columns + c] = true
          any = true
        }
      }
      if !any { keep[r0 * columns + c0] = true }
    }
  }
  return keep
}

/// A bool mask tensor from rows of `0`/`1` characters (other characters are ignored).
func mask(_ rows: [String]) -> Mask {
  let bits = rows.map { $0.compactMap { c -> Bool? in c == "1" ? true : c == "0" ? false : nil } }
  let columns = bits.first?.count ?? 0
  precondition(bits.allSatisfy { $0.count == columns }, "ragged mask rows")
  return Mask(Tensor(bits.flatMap { $0 }, shape: [bits.count, columns]))
}

/// An f32 matrix with nonzero values (1, 2, 3, …) where `rows` have a `1`.
func floatMatrix(_ rows: [String]) -> Tensor {
  let m = mask(rows).tensor
  var k: Float = 0
  let values = m.scalars(as: Bool.self).map { keep -> Float in
    if keep { k += 1; return k }
    return 0
  }
  return Tensor(values, shape: m.shape)
}

/// Checks that `body` throws exactly `expected`.
func expectError(
  _ expected: SparseFormatError, _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) {
  do {
    try body()
    Issue.record("expected \(expected), nothing was thrown. \(comment?.rawValue ?? "")", sourceLocation: sourceLocation)
  } catch {
    #expect(error as? SparseFormatError == expected, comment, sourceLocation: sourceLocation)
  }
}

/// The error `body` throws, or `nil` (recording an issue).
func thrownError(
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) -> SparseFormatError? {
  #expect(throws: SparseFormatError.self, sourceLocation: sourceLocation, performing: body)
}

/// Checks that `body` throws `.invalidEncoding` for tensor `name` and `format`.
func expectInvalidEncoding(
  name: String, format: String, _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) {
  guard let error = thrownError(sourceLocation: sourceLocation, body) else { return }
  guard case let .invalidEncoding(tensor, f, detail) = error else {
    Issue.record("expected .invalidEncoding, got \(error). \(comment?.rawValue ?? "")", sourceLocation: sourceLocation)
    return
  }
  #expect(tensor == name, comment, sourceLocation: sourceLocation)
  #expect(f == format, comment, sourceLocation: sourceLocation)
  #expect(!detail.isEmpty, sourceLocation: sourceLocation)
}

/// Checks that `body` throws `.shapeRule` for tensor `name` with `shape`.
func expectShapeRule(
  name: String, shape: [Int], _ comment: Comment? = nil,
  sourceLocation: SourceLocation = #_sourceLocation,
  _ body: () throws -> Void
) {
  guard let error = thrownError(sourceLocation: sourceLocation, body) else { return }
  guard case let .shapeRule(tensor, s, rule) = error else {
    Issue.record("expected .shapeRule, got \(error). \(comment?.rawValue ?? "")", sourceLocation: sourceLocation)
    return
  }
  #expect(tensor == name, comment, sourceLocation: sourceLocation)
  #expect(s == shape, comment, sourceLocation: sourceLocation)
  #expect(!rule.isEmpty, sourceLocation: sourceLocation)
}

/// The byte width of a dtype that is known to be byte-aligned.
func width(_ dtype: DType) -> Int { dtype.byteWidth! }
