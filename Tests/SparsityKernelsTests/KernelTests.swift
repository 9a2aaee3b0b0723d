import Foundation
import SparsityCore
import SparsityFormats
import Testing

@testable import SparsityKernels
import _SparsityKernelsImpl

/// Token counts: M = 1, the small-M paths, and ragged multiples of the 6-row and 64-token tiles.
let tokenCounts = [1, 2, 5, 7, 13, 64, 67, 130]

struct Shape: CustomTestStringConvertible, Sendable {
  var n: Int
  var k: Int
  var testDescription: String { "\(n)x\(k)" }
}

@Suite struct DenseKernelTests {
  @Test(arguments: [Shape(n: 1, k: 1), Shape(n: 16, k: 16), Shape(n: 17, k: 3), Shape(n: 40, k: 37), Shape(n: 33, k: 300)])
  func denseMatchesReference(shape: Shape) throws {
    let w = SyntheticWeights.dense(rows: shape.n, columns: shape.k, seed: 11)
    let weight = try LinearWeight(dense: w)
    for m in tokenCounts {
      expectAllKernelsMatch(weight, dense: w, m: m, seed: UInt64(m), "dense \(shape.testDescription)")
    }
  }

  @Test(arguments: [(256, 24), (1000, 48), (3100, 4)])
  func kBlockingAcrossSeveralBlocks(kc: Int, mcPanels: Int) throws {
    // k = 3,100 in k-blocks of `kc` (the last one ragged, or one block), rows in blocks of
    // `mcPanels` 6-row panels, whatever this machine's own blocking is.
    let (n, k, m) = (20, 3100, 150)
    let w = SyntheticWeights.dense(rows: n, columns: k, seed: 3)
    let x = activations(m, k, seed: 4)
    let b = biasVector(n, seed: 5)
    var blocking = DenseBlocking(k: k)
    (blocking.kc, blocking.mcPanels) = (kc, mcPanels)
    var y = Tensor(zeros: [m, n], dtype: .float32)
    w.withUnsafeBufferPointer(as: Float.self) { wp in
      let packed = PackedDenseWeight(weight: wp.baseAddress!, n: n, k: k)
      x.withUnsafeBufferPointer(as: Float.self) { xp in
        b.withUnsafeBufferPointer(as: Float.self) { bp in
          y.withUnsafeMutableBufferPointer(as: Float.self) { yp in
            denseLinear(
              weight: packed, x: xp.baseAddress!, m: m, y: yp.baseAddress!, bias: bp.baseAddress!, workers: 2,
              blocking: blocking)
          }
        }
      }
    }
    expectMatchesReference(y, x: x, weight: w, bias: b, "dense k=3100 in blocks of \(kc)")
  }

  @Test func blockingFollowsTheLevel2Cache() {
    #expect(DenseBlocking(k: 1536, level2: 512 * 1024).kc == 1536)
    #expect(DenseBlocking(k: 1536, level2: 1 << 20).kc == 1536)
    #expect(DenseBlocking(k: 4096, level2: 512 * 1024).kc == 256)
    #expect(DenseBlocking(k: 4096, level2: 1 << 20).kc == 4096)
    // Longer K: equal k-blocks of at most 4,096.
    #expect(DenseBlocking(k: 11008, level2: 1 << 20).kc == 3670)
  }

  @Test func emptyInnerDimensionGivesBias() throws {
    let weight = try LinearWeight(dense: Tensor(zeros: [5, 0], dtype: .float32))
    let b = biasVector(5, seed: 1)
    let y = weight.apply(x: Tensor(zeros: [3, 0], dtype: .float32), bias: b, kernel: .denseGEMM)
    #expect(y.shape == [3, 5])
    #expect(Array(y.floatValues[0..<5]) == b.floatValues)
  }

  @Test func leadingDimensionsAreTokens() throws {
    let w = SyntheticWeights.dense(rows: 9, columns: 10, seed: 5)
    let weight = try LinearWeight(dense: w)
    let x = activations(6, 10, seed: 6).reshaped([2, 3, 10])
    let y = weight.apply(x: x, bias: nil, kernel: .denseGEMM)
    #expect(y.shape == [2, 3, 9])
    expectMatchesReference(y, x: x, weight: w, bias: nil, "rank 3")
  }

  @Test func rejectsNonFloat32() {
    #expect(throws: KernelError.self) { try LinearWeight(dense: Tensor(zeros: [2, 2], dtype: .float16)) }
  }
}

@Suite struct BSRKernelTests {
  struct Case: CustomTestStringConvertible, Sendable {
    var r: Int
    var c: Int
    var n: Int
    var k: Int
    var sparsity: Double
    var testDescription: String { "\(r)x\(c) [\(n), \(k)] \(sparsity)" }
  }

  static let cases = [
    Case(r: 8, c: 8, n: 24, k: 40, sparsity: 0.5), Case(r: 16, c: 16, n: 48, k: 64, sparsity: 0.7),
    Case(r: 32, c: 32, n: 64, k: 96, sparsity: 0.5), Case(r: 64, c: 64, n: 128, k: 128, sparsity: 0.75),
    Case(r: 16, c: 8, n: 32, k: 24, sparsity: 0.3), Case(r: 8, c: 1, n: 16, k: 9, sparsity: 0.6),
    Case(r: 1, c: 16, n: 5, k: 32, sparsity: 0.5), Case(r: 4, c: 4, n: 12, k: 8, sparsity: 0.5),
    Case(r: 16, c: 16, n: 32, k: 32, sparsity: 1.0), Case(r: 16, c: 16, n: 32, k: 32, sparsity: 0.0),
  ]

  @Test(arguments: cases)
  func bsrMatchesReference(c: Case) throws {
    let w = SyntheticWeights.blockSparse(
      rows: c.n, columns: c.k, blockRows: c.r, blockColumns: c.c, sparsity: c.sparsity, seed: 21)
    let weight = try LinearWeight(BSRMatrix(dense: w, blockRows: c.r, blockColumns: c.c))
    #expect(weight.form == .bsr(c.r, c.c))
    for m in tokenCounts {
      expectAllKernelsMatch(weight, dense: w, m: m, seed: UInt64(m) &+ 100, "bsr \(c.testDescription)")
    }
    #expect(weight.dense() == w)
  }
}

@Suite struct CSRKernelTests {
  @Test(arguments: [
    (Shape(n: 1, k: 1), 0.0), (Shape(n: 17, k: 29), 0.5), (Shape(n: 40, k: 100), 0.9),
    (Shape(n: 64, k: 130), 0.99), (Shape(n: 9, k: 7), 1.0), (Shape(n: 33, k: 65), 0.2),
  ])
  func csrMatchesReference(shape: Shape, sparsity: Double) throws {
    let w = SyntheticWeights.unstructured(rows: shape.n, columns: shape.k, sparsity: sparsity, seed: 31)
    let weight = try LinearWeight(CSRMatrix(dense: w))
    for m in tokenCounts {
      expectAllKernelsMatch(weight, dense: w, m: m, seed: UInt64(m) &+ 200, "csr \(shape.testDescription) \(sparsity)")
    }
    #expect(weight.dense() == w)
  }

  @Test func columnBlocksSplitTheInputs() throws {
    // 3 column blocks of 40 (the last ragged): the block-local indices must add up.
    let w = SyntheticWeights.unstructured(rows: 21, columns: 100, sparsity: 0.7, seed: 32)
    let weight = try LinearWeight(CSRMatrix(dense: w), columnBlock: 40)
    for m in [1, 3, 70] {
      expectAllKernelsMatch(weight, dense: w, m: m, seed: 9, "csr blocks of 40")
    }
  }
}

extension CSRKernelTests {
  @Test func rowsEmptyInTheFirstColumnBlock() throws {
    // Row 0 has weights only in the second block of 40 inputs, row 1 only in the first, row 2
    // none: the first block must still write row 0's (and row 2's) accumulators.
    var values = [Float](repeating: 0, count: 3 * 100)
    values[0 * 100 + 50] = 1.5
    values[0 * 100 + 99] = -2
    values[1 * 100 + 5] = 0.25
    let w = Tensor(values, shape: [3, 100])
    let weight = try LinearWeight(CSRMatrix(dense: w), columnBlock: 40)
    for m in [1, 130] {
      expectAllKernelsMatch(weight, dense: w, m: m, seed: 10, "csr empty first block")
    }
  }
}

@Suite struct SemiStructuredKernelTests {
  @Test(arguments: [
    Shape(n: 1, k: 4), Shape(n: 8, k: 16), Shape(n: 19, k: 70), Shape(n: 24, k: 7), Shape(n: 5, k: 1),
    Shape(n: 40, k: 257), Shape(n: 16, k: 64),
  ])
  func semiStructuredMatchesReference(shape: Shape) throws {
    let w = SyntheticWeights.semiStructured(rows: shape.n, columns: shape.k, seed: 41)
    let weight = try LinearWeight(SemiStructuredMatrix(dense: w, n: 2, m: 4))
    for m in tokenCounts {
      expectAllKernelsMatch(weight, dense: w, m: m, seed: UInt64(m) &+ 300, "2:4 \(shape.testDescription)")
    }
    #expect(weight.dense() == w)
  }

  @Test func compactBytesAreUnder56PercentOfDense() throws {
    let w = SyntheticWeights.semiStructured(rows: 64, columns: 256, seed: 42)
    let weight = try LinearWeight(SemiStructuredMatrix(dense: w, n: 2, m: 4))
    let ratio = Double(weight.byteCount) / Double(64 * 256 * 4)
    #expect(ratio <= 0.56, "2:4 holds \(ratio) of the dense bytes")
    #expect(ratio >= 0.5)
  }

  @Test func rejectsOtherNM() throws {
    let w = SyntheticWeights.dense(rows: 4, columns: 8, seed: 1)
    let ones = try SemiStructuredMatrix(dense: w, n: 4, m: 4)
    #expect(throws: KernelError.self) { try LinearWeight(ones) }
  }
}

@Suite struct DispatchTests {
  @Test func dispatchPicksACandidateAndMatches() throws {
    let dispatcher = LinearDispatcher(cacheFile: nil, denseFallback: true)
    let own = LinearDispatcher(cacheFile: nil)
    let w = SyntheticWeights.blockSparse(rows: 64, columns: 64, block: 16, sparsity: 0.75, seed: 5)
    let weights = [
      (try LinearWeight(dense: w), w),
      (try LinearWeight(BSRMatrix(dense: w, blockRows: 16, blockColumns: 16)), w),
      (try LinearWeight(CSRMatrix(dense: w)), w),
    ]
    for (weight, dense) in weights {
      for m in [1, 3, 40] {
        let kernel = dispatcher.kernel(for: weight, tokens: m)
        #expect(weight.candidateKernels(tokens: m).contains(kernel))
        // Without the dense fallback a sparse weight runs only its own kernels.
        let ownKernel = own.kernel(for: weight, tokens: m)
        #expect(weight.ownKernels.contains(ownKernel), "\(weight.form) m=\(m): \(ownKernel)")
        let x = activations(m, 64, seed: 8)
        expectMatchesReference(
          weight.apply(x: x, bias: nil, dispatcher: dispatcher), x: x, weight: dense, bias: nil,
          "dispatch \(weight.form) m=\(m)")
      }
    }
    #expect(dispatcher.decisions.count >= 6)
  }

  @Test func decisionsPersistAcrossDispatchers() throws {
    let file = FileManager.default.temporaryDirectory
      .appendingPathComponent("sparsity-autotune-\(UUID().uuidString).json").path
    defer { try? FileManager.default.removeItem(atPath: file) }
    let w = SyntheticWeights.semiStructured(rows: 32, columns: 64, seed: 6)
    let weight = try LinearWeight(SemiStructuredMatrix(dense: w, n: 2, m: 4))
    let first = LinearDispatcher(cacheFile: file).kernel(for: weight, tokens: 8)
    #expect(FileManager.default.fileExists(atPath: file))
    // A dispatcher that may not measure must still know the decision from the file.
    let second = LinearDispatcher(cacheFile: file, measures: false)
    #expect(second.kernel(for: weight, tokens: 8) == first)
    #expect(second.decisions[second.key(for: weight, tokens: 8)] == first)
  }

  @Test func tokenBuckets() {
    #expect([1, 2, 3, 4, 5, 128, 129].map(LinearDispatcher.tokenBucket) == [1, 2, 4, 4, 8, 128, 256])
  }

  @Test func heuristicsPreferDenseForDenseishUnstructured() throws {
    let w = SyntheticWeights.unstructured(rows: 16, columns: 16, sparsity: 0.5, seed: 2)
    let weight = try LinearWeight(CSRMatrix(dense: w))
    #expect(LinearDispatcher.heuristicKernel(for: weight, tokens: 64, denseFallback: true) == .denseGEMM)
    #expect(LinearDispatcher.heuristicKernel(for: weight, tokens: 1, denseFallback: true) == .denseGEMV)
    #expect(LinearDispatcher.heuristicKernel(for: weight, tokens: 64) == .csrPanel)
    #expect(LinearDispatcher.heuristicKernel(for: weight, tokens: 1) == .csrSpMV)
  }
}

@Suite struct CPUFeatureTests {
  @Test func hostCanRunThisBuild() {
    // The test binary runs on the machine it was built for.
    #expect(CPUFeatures.host.kernelSupportProblem == nil, "\(CPUFeatures.host)")
    #expect(!CPUFeatures.host.brand.isEmpty)
  }

  @Test func requiredFeaturesMatchTheBuild() {
    switch CPUFeatures.kernelISA {
    case "portable": #expect(CPUFeatures.requiredFeatures.isEmpty)
    case "avx2": #expect(CPUFeatures.requiredFeatures.contains("avx2") && CPUFeatures.requiredFeatures.contains("fma"))
    default: #expect(CPUFeatures.requiredFeatures.contains("avx512f"))
    }
  }
}

@Suite struct OracleCheckTests {
  /// The comparison itself must fail on a result that is off by more than the tolerance.
  @Test func checkerCatchesAWrongElement() throws {
    let w = SyntheticWeights.dense(rows: 8, columns: 16, seed: 1)
    let x = activations(3, 16, seed: 2)
    var y = try LinearWeight(dense: w).apply(x: x, bias: nil, kernel: .denseGEMM)
    #expect(referenceMismatch(y, x: x, weight: w, bias: nil) == nil)
    y.withUnsafeMutableBufferPointer(as: Float.self) { $0[13] += 1e-3 }
    #expect(referenceMismatch(y, x: x, weight: w, bias: nil)?.index == 13)
  }
}

/// Large M with small weights: the kernels split the work by tokens instead of output rows.
@Suite struct TokenSplitTests {
  @Test func denseSplitsRowsWhenMExceedsN() throws {
    let w = SyntheticWeights.dense(rows: 8, columns: 300, seed: 61)
    expectAllKernelsMatch(try LinearWeight(dense: w), dense: w, m: 600, seed: 62, "dense m > n")
  }

  @Test func panelKernelsSplitTokenTiles() throws {
    let u = SyntheticWeights.unstructured(rows: 16, columns: 40, sparsity: 0.8, seed: 63)
    expectAllKernelsMatch(try LinearWeight(CSRMatrix(dense: u)), dense: u, m: 600, seed: 64, "csr tiles")
    let s = SyntheticWeights.semiStructured(rows: 17, columns: 42, seed: 65)
    expectAllKernelsMatch(
      try LinearWeight(SemiStructuredMatrix(dense: s, n: 2, m: 4)), dense: s, m: 600, seed: 66, "2:4 tiles")
  }

  @Test func panelKernelsRunLongInputsInPasses() throws {
    // K = 1,100: the 2:4 panel kernel takes the k-blocks in passes (panel slices of at most
    // 256 KiB) over spans of rows; with 400 tokens the work splits by token panels, so each
    // item runs all 1,030 rows: two spans of at most 1,024. CSR at K = 2,100: three column
    // blocks in one pass.
    let s = SyntheticWeights.semiStructured(rows: 1030, columns: 1100, seed: 69)
    let u = SyntheticWeights.unstructured(rows: 70, columns: 2100, sparsity: 0.9, seed: 70)
    let semi = try LinearWeight(SemiStructuredMatrix(dense: s, n: 2, m: 4))
    let csr = try LinearWeight(CSRMatrix(dense: u))
    let x = activations(400, 1100, seed: 71)
    let b = biasVector(1030, seed: 72)
    expectMatchesReference(
      semi.apply(x: x, bias: b, kernel: .semiStructuredPanel), x: x, weight: s, bias: b, "2:4 passes")
    let z = activations(130, 2100, seed: 73)
    expectMatchesReference(csr.apply(x: z, bias: nil, kernel: .csrPanel), x: z, weight: u, bias: nil, "csr passes")
  }

  @Test func bsrSplitsRowPanels() throws {
    let b = SyntheticWeights.blockSparse(rows: 32, columns: 2048, block: 16, sparsity: 0.9, seed: 67)
    expectAllKernelsMatch(
      try LinearWeight(BSRMatrix(dense: b, blockRows: 16, blockColumns: 16)), dense: b, m: 150, seed: 68, "bsr panels")
  }
}
