import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing
import _SparsityKernelsImpl

@testable import SparsityKernels

// Sparse24 ("sparsify both ways") against a plain scalar reference written here: per 4×4 tile,
// the in-bounds elements sorted by key (|x| or x, larger first, compared to 19 mantissa bits —
// the float's order-preserving bit pattern without its lowest 4 bits — lower `column + 4·row`
// first among equal keys), kept greedily while the row (and column) keeps fewer than 2.

/// The rank of `x`'s key: its order-preserving unsigned bit pattern (of |x|, or of x with −0 as
/// +0) without the lowest 4 bits.
func referenceRank(_ x: Float, signed: Bool) -> UInt32 {
  guard signed else { return x.magnitude.bitPattern >> 4 }
  let bits = (x == 0 ? Float(0) : x).bitPattern
  return (x < 0 ? ~bits : bits | 0x8000_0000) >> 4
}

/// The reference tile masks of `a [rows, columns]`.
func referenceTileMask(_ a: [Float], rows: Int, columns: Int, algorithm: Sparse24.Algorithm) -> [UInt16] {
  let (tileRows, tileColumns) = ((rows + 3) / 4, (columns + 3) / 4)
  var masks = [UInt16](repeating: 0, count: tileRows * tileColumns)
  for i in 0..<tileRows {
    for j in 0..<tileColumns {
      var elements: [(key: UInt32, index: Int)] = []
      for r in 0..<4 {
        for c in 0..<4 where 4 * i + r < rows && 4 * j + c < columns {
          let x = a[(4 * i + r) * columns + 4 * j + c]
          elements.append((referenceRank(x, signed: algorithm == .largestValuesGreedy), c + 4 * r))
        }
      }
      elements.sort { $0.key > $1.key || ($0.key == $1.key && $0.index < $1.index) }
      var rowCount = [0, 0, 0, 0]
      var columnCount = [0, 0, 0, 0]
      var mask: UInt16 = 0
      for (_, e) in elements {
        let (r, c) = (e / 4, e % 4)
        guard rowCount[r] < 2 else { continue }
        guard algorithm == .largestAbsPerRow || columnCount[c] < 2 else { continue }
        rowCount[r] += 1
        columnCount[c] += 1
        mask |= 1 << e
      }
      masks[i * tileColumns + j] = mask
    }
  }
  return masks
}

/// `a` with the unkept elements set to +0.
func maskedByTiles(_ a: [Float], rows: Int, columns: Int, _ masks: [UInt16]) -> [Float] {
  let tileColumns = (columns + 3) / 4
  var out = [Float](repeating: 0, count: rows * columns)
  for r in 0..<rows {
    for c in 0..<columns where masks[(r / 4) * tileColumns + c / 4] >> (c % 4 + 4 * (r % 4)) & 1 != 0 {
      out[r * columns + c] = a[r * columns + c]
    }
  }
  return out
}

func transposedValues(_ a: [Float], rows: Int, columns: Int) -> [Float] {
  var out = [Float](repeating: 0, count: rows * columns)
  for r in 0..<rows {
    for c in 0..<columns { out[c * rows + r] = a[r * columns + c] }
  }
  return out
}

/// The packed buffers (all values, the padding included, and all code words) of a 2:4 weight.
func packedContents(_ p: PackedSemiStructuredWeight) -> ([UInt32], [UInt32]) {
  let values = (0..<(p.rowBlocks * p.groups * 16 + 16)).map { p.values.pointer[$0].bitPattern }
  let codes = (0..<(p.rowBlocks * p.groups)).map { p.codes[$0] }
  return (values, codes)
}

/// Matrices with ties, zeros, −0 and negatives: normal values rounded to halves, a quarter of
/// them squared-ReLU-like zeros (some −0).
func tiedValues(_ count: Int, seed: UInt64) -> [Float] {
  randomNormalFloats(count, seed: seed).enumerated().map { i, x in
    switch i % 7 {
    case 0: 0
    case 3: -0.0
    default: (x * 2).rounded() / 2
    }
  }
}

struct Sparse24Shape: CustomTestStringConvertible, Sendable {
  var rows: Int
  var columns: Int
  var testDescription: String { "\(rows)x\(columns)" }
}

/// Ragged shapes, and shapes with whole 8 × 64 blocks (the vector path) plus ragged edges; 1032
/// rows give each of the 8 work items more than 8 row blocks (Aᵀ's code words staged in lines).
let sparse24Shapes = [
  (1, 1), (3, 5), (4, 4), (7, 13), (8, 64), (16, 128), (64, 96), (130, 67), (9, 200), (72, 130), (33, 257),
  (1032, 130),
].map { Sparse24Shape(rows: $0.0, columns: $0.1) }

@Suite struct Sparsify24Tests {
  /// Everything one result must satisfy against the reference for `a`.
  func expectBothWaysMatchReference(
    _ a: [Float], _ shape: Sparse24Shape, algorithm: Sparse24.Algorithm, _ what: String,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    let (rows, columns) = (shape.rows, shape.columns)
    let tensor = Tensor(a, shape: [rows, columns])
    let result = try Sparse24.sparsifyBothWays(tensor, algorithm: algorithm)
    let expectedMask = referenceTileMask(a, rows: rows, columns: columns, algorithm: algorithm)
    #expect(result.mask.bits == expectedMask, "\(what): tile masks", sourceLocation: sourceLocation)
    // The mask is valid (≤ 2 per tile row, nothing outside), and transposable when promised.
    let checked = try Sparse24.TileMask(rows: rows, columns: columns, bits: result.mask.bits)
    #expect(checked.isTransposable == result.mask.isTransposable, "\(what)", sourceLocation: sourceLocation)
    if algorithm.isTransposable { #expect(result.mask.isTransposable, "\(what)", sourceLocation: sourceLocation) }

    let masked = maskedByTiles(a, rows: rows, columns: columns, expectedMask)
    let forward = try SemiStructuredMatrix(dense: Tensor(masked, shape: [rows, columns]), name: "masked")
    #expect(result.matrix == forward, "\(what): A's 2:4 form", sourceLocation: sourceLocation)
    let reference = forward.values.withUnsafeBufferPointer(as: Float.self) { v in
      PackedSemiStructuredWeight(n: rows, k: columns, values: v.baseAddress!, positions: forward.indices)
    }
    #expect(packedContents(result.packed) == packedContents(reference), "\(what): A's packed form", sourceLocation: sourceLocation)

    if result.mask.isTransposable {
      // Aᵀ is exactly 2:4 (SemiStructuredMatrix(dense:) throws otherwise) and equals the form.
      let t = try SemiStructuredMatrix(
        dense: Tensor(transposedValues(masked, rows: rows, columns: columns), shape: [columns, rows]), name: "maskedᵀ")
      #expect(result.transposedMatrix == t, "\(what): Aᵀ's 2:4 form", sourceLocation: sourceLocation)
      let referenceT = t.values.withUnsafeBufferPointer(as: Float.self) { v in
        PackedSemiStructuredWeight(n: columns, k: rows, values: v.baseAddress!, positions: t.indices)
      }
      if let packedT = result.packedTransposed {
        #expect(packedContents(packedT) == packedContents(referenceT), "\(what): Aᵀ's packed form", sourceLocation: sourceLocation)
      } else {
        Issue.record("\(what): no transposed form for a transposable mask", sourceLocation: sourceLocation)
      }
    } else {
      #expect(result.transposedWeight == nil, "\(what): a transposed form of a non-transposable mask", sourceLocation: sourceLocation)
    }

    // The same mask applied to A reproduces both forms; the dense output is A masked.
    let applied = try Sparse24.apply(result.mask, to: tensor)
    #expect(applied.matrix == result.matrix, "\(what): apply(mask)", sourceLocation: sourceLocation)
    #expect(packedContents(applied.packed) == packedContents(result.packed), "\(what): apply(mask) packed", sourceLocation: sourceLocation)
    #expect(applied.transposedMatrix == result.transposedMatrix, "\(what): apply(mask)ᵀ", sourceLocation: sourceLocation)
    let dense = try Sparse24.applyDense(result.mask, to: tensor)
    #expect(dense == Tensor(masked, shape: [rows, columns]), "\(what): applyDense", sourceLocation: sourceLocation)
  }

  @Test(arguments: sparse24Shapes, Sparse24.Algorithm.allCases)
  func randomMatricesMatchTheReference(shape: Sparse24Shape, algorithm: Sparse24.Algorithm) throws {
    let a = randomNormalFloats(shape.rows * shape.columns, seed: UInt64(shape.rows * 1000 + shape.columns))
    try expectBothWaysMatchReference(a, shape, algorithm: algorithm, "random \(shape.testDescription) \(algorithm)")
  }

  @Test(arguments: sparse24Shapes, Sparse24.Algorithm.allCases)
  func tiesZerosAndNegativesMatchTheReference(shape: Sparse24Shape, algorithm: Sparse24.Algorithm) throws {
    let a = tiedValues(shape.rows * shape.columns, seed: UInt64(shape.rows + 7 * shape.columns))
    try expectBothWaysMatchReference(a, shape, algorithm: algorithm, "tied \(shape.testDescription) \(algorithm)")
    // Post-ReLU² activations: mostly exact zeros, the rest positive.
    let relu2 = randomNormalFloats(shape.rows * shape.columns, seed: 5).map { $0 > 0.8 ? $0 * $0 : 0 }
    try expectBothWaysMatchReference(relu2, shape, algorithm: algorithm, "relu² \(shape.testDescription) \(algorithm)")
  }

  @Test func infinitiesRankAboveEverything() throws {
    var a = randomNormalFloats(16 * 128, seed: 9)
    for i in stride(from: 0, to: a.count, by: 11) { a[i] = i % 2 == 0 ? .infinity : -.infinity }
    for algorithm in Sparse24.Algorithm.allCases {
      try expectBothWaysMatchReference(a, Sparse24Shape(rows: 16, columns: 128), algorithm: algorithm, "±∞ \(algorithm)")
    }
  }

  @Test func equalValuesKeepTheEarliestElements() throws {
    // 16 equal values: the greedy goes in index order. Row 0 keeps columns 0, 1; row 1 the same,
    // closing columns 0 and 1; rows 2 and 3 keep columns 2, 3.
    for algorithm in Sparse24.Algorithm.allCases where algorithm.isTransposable {
      for value: Float in [1, -1, 0] {
        let r = try Sparse24.sparsifyBothWays(Tensor([Float](repeating: value, count: 16), shape: [4, 4]), algorithm: algorithm)
        #expect(r.mask.bits == [0xCC33], "\(algorithm) all \(value)")
      }
    }
    let perRow = try Sparse24.sparsifyBothWays(Tensor([Float](repeating: 2, count: 16), shape: [4, 4]), algorithm: .largestAbsPerRow)
    #expect(perRow.mask.bits == [0x3333])
    #expect(!perRow.mask.isTransposable && perRow.transposedWeight == nil && perRow.transposedMatrix == nil)
  }

  @Test func allZerosGiveFillerPositions() throws {
    let r = try Sparse24.sparsifyBothWays(Tensor(zeros: [5, 6], dtype: .float32))
    // Every group is empty: positions 2, 3 with zero values, as SemiStructuredMatrix fills them.
    #expect(r.matrix.indices.allSatisfy { $0 == 2 || $0 == 3 })
    #expect(r.matrix.values.floatValues.allSatisfy { $0 == 0 })
    #expect(r.matrix == (try SemiStructuredMatrix(dense: Tensor(zeros: [5, 6], dtype: .float32), name: "z")))
    #expect(r.transposedMatrix == (try SemiStructuredMatrix(dense: Tensor(zeros: [6, 5], dtype: .float32), name: "z")))
  }

  @Test("keys rank to 19 mantissa bits: closer values tie (lower index first), farther ones order", arguments: Sparse24.Algorithm.allCases)
  func rankingPrecision(algorithm: Sparse24.Algorithm) throws {
    func ulps(_ k: UInt32) -> Float { Float(bitPattern: Float(1).bitPattern + k) }
    // Row 0: three values within 16 ulps of 1 (one rank) and 0.5; row 1: 1 + 16 ulps ranks above 1.
    var tile = [Float](repeating: 0.25, count: 16)
    tile[0] = 1; tile[1] = ulps(8); tile[2] = ulps(7); tile[3] = 0.5
    tile[4] = 1; tile[5] = 0.5; tile[6] = ulps(16); tile[7] = 0.25
    // The same tile in a 64-column matrix (the vector path) and alone (the per-tile path).
    var wide = [Float](repeating: 0, count: 8 * 64)
    for r in 0..<4 { for c in 0..<4 { wide[r * 64 + c] = tile[4 * r + c] } }
    for (values, rows, columns) in [(tile, 4, 4), (wide, 8, 64)] {
      let mask = try Sparse24.sparsifyBothWays(Tensor(values, shape: [rows, columns]), algorithm: algorithm).mask
      #expect(mask.bits[0] & 0xF == 0b0011, "\(algorithm), \(rows)×\(columns): row 0 keeps the first two of the tied")
      #expect(mask.bits[0] >> 4 & 0xF == 0b0101, "\(algorithm), \(rows)×\(columns): row 1 keeps 1 + 16 ulps and 1")
      #expect(mask.bits[0] == referenceTileMask(values, rows: rows, columns: columns, algorithm: algorithm)[0])
    }
  }

  @Test func magnitudeAndSignedRankingsDiffer() throws {
    // Row 0: one large negative. |x| keeps it; the signed ranking keeps the two largest values.
    let a: [Float] = [-9, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    let magnitude = try Sparse24.sparsifyBothWays(Tensor(a, shape: [4, 4]), algorithm: .largestAbsValuesGreedy)
    let signed = try Sparse24.sparsifyBothWays(Tensor(a, shape: [4, 4]), algorithm: .largestValuesGreedy)
    #expect(magnitude.mask.bits[0] & 0xF == 0b1001)  // −9 and 3
    #expect(signed.mask.bits[0] & 0xF == 0b1100)  // 2 and 3
    #expect(magnitude.matrix.values.floatValues.prefix(2) == [-9, 3])
  }

  @Test func theGreedyCanKeepFewerThanTwoPerRow() throws {
    // Ranked order (row, column): (0,0) (0,1) (1,0) (2,1) (1,2) (2,2) (1,3) (2,3) (3,3), then the
    // rest. Rows 0–2 and columns 0–2 close before row 3 gets more than (3,3): 7 kept.
    let order = [(0, 0), (0, 1), (1, 0), (2, 1), (1, 2), (2, 2), (1, 3), (2, 3), (3, 3)]
    var a = [Float](repeating: 0.5, count: 16)
    for (rank, (r, c)) in order.enumerated() { a[c + 4 * r] = Float(100 - rank) }
    let result = try Sparse24.sparsifyBothWays(Tensor(a, shape: [4, 4]))
    #expect(result.mask.bits == [0x8653])
    #expect(result.mask.keptCount == 7)
    try expectBothWaysMatchReference(a, Sparse24Shape(rows: 4, columns: 4), algorithm: .largestAbsValuesGreedy, "7 kept")
  }

  @Test func outOfRangeElementsAreNeverKept() throws {
    // 5 × 6: the edge tiles hold one row / two columns; huge values can't pull in phantom ones.
    let a = (0..<30).map { Float(1000 - $0) }
    let r = try Sparse24.sparsifyBothWays(Tensor(a, shape: [5, 6]))
    #expect(r.mask.bits.count == 4)
    #expect(r.mask.bits[1] & 0b1100_1100_1100_1100 == 0)  // columns 6, 7 do not exist
    #expect(r.mask.bits[2] & 0xFFF0 == 0)  // rows 5…7 do not exist
    #expect(r.mask.bits[2] == 0b0011 && r.mask.bits[3] == 0b0011)
  }

  @Test func aPerRowMaskThatIsTransposableGetsItsTransposedForm() throws {
    // Row r's two largest sit in columns r and r + 1 (mod 4): 2 per column.
    var a = [Float](repeating: 0, count: 16)
    for r in 0..<4 {
      a[4 * r + r] = 5
      a[4 * r + (r + 1) % 4] = 4
    }
    let result = try Sparse24.sparsifyBothWays(Tensor(a, shape: [4, 4]), algorithm: .largestAbsPerRow)
    #expect(result.mask.isTransposable)
    try expectBothWaysMatchReference(a, Sparse24Shape(rows: 4, columns: 4), algorithm: .largestAbsPerRow, "per-row transposable")
  }

  @Test func bothPackedFormsRunInTheKernels() throws {
    let (rows, columns) = (72, 130)
    let a = randomNormalFloats(rows * columns, seed: 3)
    let result = try Sparse24.sparsifyBothWays(Tensor(a, shape: [rows, columns]))
    let masked = maskedByTiles(a, rows: rows, columns: columns, result.mask.bits)
    let w = Tensor(masked, shape: [rows, columns])
    let wT = Tensor(transposedValues(masked, rows: rows, columns: columns), shape: [columns, rows])
    for m in [1, 5, 70] {
      let x = activations(m, columns, seed: UInt64(m))
      expectMatchesReference(result.weight.apply(x: x), x: x, weight: w, bias: nil, "x·Aᵀ m=\(m)")
      let g = activations(m, rows, seed: UInt64(m) + 1)
      let transposed = try #require(result.transposedWeight)
      expectMatchesReference(transposed.apply(x: g), x: g, weight: wT, bias: nil, "g·A m=\(m)")
    }
    #expect(result.weight.form == .twoFour && result.weight.outFeatures == rows && result.weight.inFeatures == columns)
    // The logical form packs into the same LinearWeight.
    let repacked = try LinearWeight(result.matrix)
    let x = activations(9, columns, seed: 4)
    #expect(repacked.apply(x: x, kernel: .semiStructuredPanel) == result.weight.apply(x: x, kernel: .semiStructuredPanel))
  }

  @Test func resultsAreReproducibleAndThreadIndependent() throws {
    let a = SyntheticWeights.dense(rows: 200, columns: 320, seed: 42)
    for algorithm in Sparse24.Algorithm.allCases {
      let one = try Sparse24.sparsify(a, algorithm: algorithm, workers: 1, name: "a")
      let two = try Sparse24.sparsify(a, algorithm: algorithm, workers: 2, name: "a")
      let again = try Sparse24.sparsifyBothWays(a, algorithm: algorithm)
      #expect(one.mask == two.mask && one.mask == again.mask)
      #expect(packedContents(one.packed) == packedContents(two.packed))
      #expect(packedContents(one.packed) == packedContents(again.packed))
      #expect(one.packedTransposed.map(packedContents)?.0 == two.packedTransposed.map(packedContents)?.0)
    }
  }

  @Test func theTransposedMaskIsTheMaskOfTheTranspose() throws {
    let (rows, columns) = (13, 22)
    let a = randomNormalFloats(rows * columns, seed: 8)
    let r = try Sparse24.sparsifyBothWays(Tensor(a, shape: [rows, columns]))
    let t = try #require(r.mask.transposed)
    #expect(t.rows == columns && t.columns == rows)
    for i in 0..<rows {
      for j in 0..<columns { #expect(r.mask[i, j] == t[j, i]) }
    }
    #expect(r.mask.elementMask.keptCount == r.mask.keptCount)
  }

  @Test("bfloat16 and float16 inputs are sparsified as the float32 values they hold", arguments: [DType.bfloat16, .float16])
  func halfPrecisionInputs(dtype: DType) throws {
    let a = Tensor(randomNormalFloats(10 * 23, seed: 31), shape: [10, 23]).converted(to: dtype)
    let exact = a.converted(to: .float32)
    let (half, single) = (try Sparse24.sparsifyBothWays(a), try Sparse24.sparsifyBothWays(exact))
    #expect(half.mask == single.mask)
    #expect(half.matrix.values.isBitwiseEqual(to: single.matrix.values))
    #expect(half.transposedMatrix!.values.isBitwiseEqual(to: single.transposedMatrix!.values))
    #expect(try Sparse24.applyDense(single.mask, to: a).isBitwiseEqual(to: try Sparse24.applyDense(single.mask, to: exact)))
  }

  @Test("the raw-buffer entry points equal the tensor ones; applyInPlace equals applyDense")
  func rawBuffers() throws {
    let (rows, columns) = (14, 27)
    let values = randomNormalFloats(rows * columns, seed: 33)
    let tensor = Tensor(values, shape: [rows, columns])
    let fromTensor = try Sparse24.sparsifyBothWays(tensor)
    let fromBuffer = try values.withUnsafeBufferPointer { try Sparse24.sparsifyBothWays($0, rows: rows, columns: columns) }
    #expect(fromBuffer.mask == fromTensor.mask)
    #expect(fromBuffer.matrix.values.isBitwiseEqual(to: fromTensor.matrix.values))
    let applied = try values.withUnsafeBufferPointer { try Sparse24.apply(fromTensor.mask, to: $0) }
    #expect(applied.transposedMatrix!.values.isBitwiseEqual(to: fromTensor.transposedMatrix!.values))
    var inPlace = values
    try inPlace.withUnsafeMutableBufferPointer { try Sparse24.applyInPlace(fromTensor.mask, to: $0) }
    #expect(inPlace == (try Sparse24.applyDense(fromTensor.mask, to: tensor)).floatValues)
    #expect(throws: Sparse24Error.maskMismatch(tensor: "g", shape: [10], maskShape: [rows, columns])) {
      try [Float](repeating: 0, count: 10).withUnsafeBufferPointer { try Sparse24.apply(fromTensor.mask, to: $0, name: "g") }
    }
  }

  @Test func badInputsThrowNamedErrors() throws {
    #expect(throws: Sparse24Error.notAMatrix(tensor: "x", shape: [2, 3, 4])) {
      try Sparse24.sparsifyBothWays(Tensor(zeros: [2, 3, 4], dtype: .float32), name: "x")
    }
    #expect(throws: Sparse24Error.unsupportedDType(tensor: "x", dtype: .float64)) {
      try Sparse24.sparsifyBothWays(Tensor(zeros: [4, 4], dtype: .float64), name: "x")
    }
    var a = [Float](repeating: 1, count: 9 * 130)
    a[5 * 130 + 77] = .nan  // inside a vector block
    #expect(throws: Sparse24Error.notANumber(tensor: "w", row: 5, column: 77)) {
      try Sparse24.sparsifyBothWays(Tensor(a, shape: [9, 130]), name: "w")
    }
    a[5 * 130 + 77] = 1
    a[8 * 130 + 129] = .nan  // in the ragged edge
    #expect(throws: Sparse24Error.notANumber(tensor: "w", row: 8, column: 129)) {
      try Sparse24.sparsifyBothWays(Tensor(a, shape: [9, 130]), algorithm: .largestValuesGreedy, name: "w")
    }
    let mask = try Sparse24.sparsifyBothWays(Tensor(zeros: [4, 8], dtype: .float32)).mask
    #expect(throws: Sparse24Error.maskMismatch(tensor: "g", shape: [8, 4], maskShape: [4, 8])) {
      try Sparse24.apply(mask, to: Tensor(zeros: [8, 4], dtype: .float32), name: "g")
    }
    #expect(throws: Sparse24Error.maskMismatch(tensor: "g", shape: [4, 9], maskShape: [4, 8])) {
      try Sparse24.applyDense(mask, to: Tensor(zeros: [4, 9], dtype: .float32), name: "g")
    }
    #expect(throws: Sparse24Error.self) { try Sparse24.TileMask(rows: 4, columns: 4, bits: [0x0007]) }  // 3 in row 0
    #expect(throws: Sparse24Error.self) { try Sparse24.TileMask(rows: 3, columns: 4, bits: [0x1000]) }  // row 3 is outside
    #expect(throws: Sparse24Error.self) { try Sparse24.TileMask(rows: 4, columns: 3, bits: [0x0008]) }  // column 3 is outside
    #expect(throws: Sparse24Error.self) { try Sparse24.TileMask(rows: 4, columns: 8, bits: [0]) }  // 2 tiles
    let perRowOnly = try Sparse24.TileMask(rows: 4, columns: 4, bits: [0x3333])
    #expect(!perRowOnly.isTransposable && perRowOnly.transposed == nil)
    // A NaN in a gradient is masked like any value.
    let g = try Sparse24.apply(perRowOnly, to: Tensor([Float.nan] + [Float](repeating: 1, count: 15), shape: [4, 4]))
    #expect(g.matrix.values.floatValues[0].isNaN && g.transposedWeight == nil)
  }

  @Test func emptyMatricesGiveEmptyForms() throws {
    for shape in [[0, 5], [6, 0]] {
      let r = try Sparse24.sparsifyBothWays(Tensor(zeros: shape, dtype: .float32))
      #expect(r.mask.bits.isEmpty && r.shape == shape)
      #expect(r.matrix.values.count == 0 && r.transposedMatrix?.values.count == 0)
      #expect(try Sparse24.applyDense(r.mask, to: Tensor(zeros: shape, dtype: .float32)).shape == shape)
    }
  }

  @Test func positionCodesFollowTheFillRule() {
    // The table equals SemiStructuredMatrix's rule: chosen positions, then 2, 3, 0, 1.
    for chosen in 0..<16 where chosen.nonzeroBitCount <= 2 {
      var picked = (0..<4).filter { chosen >> $0 & 1 != 0 }
      for j in [2, 3, 0, 1] where picked.count < 2 && !picked.contains(j) { picked.append(j) }
      picked.sort()
      #expect(sparse24PositionCode(UInt32(chosen)) == UInt32(picked[0] | picked[1] << 2), "chosen \(chosen)")
    }
  }
  @Test(
    "the streaming copy (the sparsifier benchmark's bandwidth reference) copies every element",
    arguments: [(0, 0), (1, 3), (5, 17), (3, 4096), (0, 20_000), (7, 65_541)])
  func streamingCopyCopiesEveryElement(offset: Int, count: Int) {
    // Offsets of a few floats put the destination off its 64-byte lines: the head and the tail
    // go through the scalar path, the body through the vector one.
    let source = (0..<(count + offset)).map { Float($0) * 0.5 - 7 }
    for workers in [1, 2] {
      var destination = [Float](repeating: .nan, count: count + offset + 3)
      source.withUnsafeBufferPointer { s in
        destination.withUnsafeMutableBufferPointer { d in
          streamingCopy(s.baseAddress! + offset, to: d.baseAddress! + offset, count: count, workers: workers)
        }
      }
      #expect(Array(destination[offset..<(offset + count)]) == Array(source[offset...]), "\(count) floats at +\(offset), \(workers) workers")
      #expect(destination[..<offset].allSatisfy(\.isNaN) && destination[(offset + count)...].allSatisfy(\.isNaN))
    }
  }
}

@Suite("Sparse24 products in every layout")
struct Sparse24ProductTests {
  /// The token-panel tile takes a block's 8 rows at once where it can (AVX-512): its sums must be
  /// the per-row tile's bit for bit (the same FMAs in the same order), so training runs do not
  /// depend on which rows share a call.
  @Test func theBlockTileEqualsThePerRowTileBitForBit() {
    var g = SeededGenerator(seed: 23)
    let (n, k) = (16, 96)
    let a = Tensor.randomNormal([n, k], using: &g)
    let weight = try! Sparse24.sparsifyBothWays(a).packed
    let panel = (0..<(weight.paddedK * panelTokens)).map { _ in Float.random(in: -1...1, using: &g) }
    for first in [true, false] {
      let start = (0..<(n * panelTokens)).map { _ in Float.random(in: -1...1, using: &g) }
      var (together, single) = (start, start)
      panel.withUnsafeBufferPointer { p in
        for block in 0..<(weight.paddedK / weight.kBlock) {
          let isFirst = first && block == 0
          together.withUnsafeMutableBufferPointer { acc in
            weight.accumulate(rows: 0..<n, block: block, first: isFirst, panel: p.baseAddress!, acc: acc.baseAddress!)
          }
          single.withUnsafeMutableBufferPointer { acc in
            for r in 0..<n {
              weight.accumulate(
                rows: r..<(r + 1), block: block, first: isFirst, panel: p.baseAddress!, acc: acc.baseAddress! + r * panelTokens)
            }
          }
        }
      }
      #expect(together.map(\.bitPattern) == single.map(\.bitPattern), "first \(first)")
    }
  }

  /// `x · Sᵀ + bias` with S = A or Aᵀ made 2:4, x and y held either way, against the reference
  /// linear on the masked dense matrix; token counts span one row, a ragged panel and several
  /// panels (both of the kernel's work splits).
  @Test(arguments: [(1, 8, 12), (37, 12, 20), (300, 16, 8), (700, 6, 10)])
  func productsMatchReference(tokens: Int, rows: Int, columns: Int) throws {
    var g = SeededGenerator(seed: UInt64(tokens * 131 + rows * 7 + columns))
    let a = Tensor.randomNormal([rows, columns], using: &g)
    let sparse = try Sparse24.sparsifyBothWays(a)
    let masked = try Sparse24.applyDense(sparse.mask, to: a)
    for side in [Sparse24.BothWays.Side.matrix, .transposed] {
      let s = side == .matrix ? masked : masked.transposed()
      let (n, k) = (s.shape[0], s.shape[1])
      let x = Tensor.randomNormal([tokens, k], using: &g), bias = Tensor.randomNormal([n], using: &g)
      let expected = Tensor.referenceLinear(x, weight: s, bias: bias).floatValues
      let scale = max(expected.map { abs($0) }.max() ?? 0, 1)
      for xTransposed in [false, true] {
        for yTransposed in [false, true] {
          let held = (xTransposed ? x.transposed() : x).floatValues
          var y = [Float](repeating: .nan, count: tokens * n)
          held.withUnsafeBufferPointer { xb in
            y.withUnsafeMutableBufferPointer { yb in
              bias.withUnsafeBufferPointer(as: Float.self) { bb in
                sparse.multiply(
                  side, x: xb.baseAddress!, tokens: tokens, xTransposed: xTransposed, into: yb.baseAddress!,
                  yTransposed: yTransposed, bias: bb.baseAddress)
              }
            }
          }
          let result = yTransposed ? Tensor(y, shape: [n, tokens]).transposed().floatValues : y
          #expect(
            zip(result, expected).allSatisfy { abs($0 - $1) <= 1e-5 * scale },
            "\(side), \(tokens) tokens, x transposed \(xTransposed), y transposed \(yTransposed)")
        }
      }
    }
  }
}
