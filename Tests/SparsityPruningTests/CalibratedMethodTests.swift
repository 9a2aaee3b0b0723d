import Foundation
import SparsityCore
import SparsityFormats
import Testing

@testable import SparsityPruning

/// Synthetic calibration data: correlated features with uneven scales and one outlier feature,
/// split into calibration and held-out tokens drawn from the same distribution.
struct SyntheticLayer {
  var weight: Tensor
  var calibration: Tensor
  var heldOut: Tensor

  init(out: Int, in features: Int, calibrationTokens: Int, heldOutTokens: Int, seed: UInt64) {
    var rng = SeededGenerator(seed: seed)
    weight = Tensor.randomNormal([out, features], standardDeviation: 0.1, using: &rng)
    // Mixing matrix: each feature is a combination of 8 latent factors plus its own noise.
    let factors = 8
    let mixing = (0..<(factors * features)).map { _ in rng.nextNormal() }
    let scales = (0..<features).map { j in j == 3 ? 20.0 : exp(0.7 * rng.nextNormal()) }
    func sample(_ tokens: Int) -> Tensor {
      var x = [Double](repeating: 0, count: tokens * features)
      for t in 0..<tokens {
        let z = (0..<factors).map { _ in rng.nextNormal() }
        for j in 0..<features {
          var v = 0.3 * rng.nextNormal()
          for f in 0..<factors { v += z[f] * mixing[f * features + j] }
          x[t * features + j] = scales[j] * v
        }
      }
      return Tensor(doubles: x, shape: [tokens, features], dtype: .float32)
    }
    calibration = sample(calibrationTokens)
    heldOut = sample(heldOutTokens)
  }
}


@Suite struct WandaTests {
  /// torchao `test_wanda`: W = 1…8, X = ones, 2:4 → [0,0,3,4,0,0,7,8].
  @Test func twoFourWithUniformActivations() throws {
    let w = Tensor((1...8).map { Float($0) }, shape: [1, 8])
    let stats = try LayerInputStatistics(inputs: Tensor(repeating: Float(1), shape: [3, 8]))
    let mask = try Wanda.mask(for: w, statistics: stats, pattern: .twoFour)
    expectMask(mask, equals: [[0, 0, 1, 1, 0, 0, 1, 1]])
  }

  /// torchao `test_wanda`: W = [1,2,3,4], X = [100,10,1,0.1], 50% → [1,2,0,0] (scores
  /// |W|·‖X‖: 100, 20, 3, 0.4).
  @Test func activationsOutweighMagnitudes() throws {
    let w = Tensor([1, 2, 3, 4] as [Float], shape: [1, 4])
    let stats = try LayerInputStatistics(inputs: Tensor([100, 10, 1, 0.1] as [Float], shape: [1, 4]))
    #expect(stats.columnNorms == [100, 10, 1, Double(Float(0.1))])
    let mask = try Wanda.mask(for: w, statistics: stats, pattern: .unstructured, sparsityLevel: 0.5)
    expectMask(mask, equals: [[1, 1, 0, 0]])
    // Magnitude alone would keep the other half.
    expectMask(try Magnitude.mask(for: w, pattern: .unstructured, sparsityLevel: 0.5), equals: [[0, 0, 1, 1]])
  }

  /// Exactly 50% per output row after calibration (the paper's comparison group).
  @Test func halfOfEveryRow() throws {
    let layer = SyntheticLayer(out: 20, in: 128, calibrationTokens: 100, heldOutTokens: 1, seed: 3)
    let stats = try LayerInputStatistics(inputs: layer.calibration)
    let mask = try Wanda.mask(for: layer.weight, statistics: stats, pattern: .unstructured, sparsityLevel: 0.5)
    let keep = mask.tensor.scalars(as: Bool.self)
    for r in 0..<20 { #expect(keep[(r * 128)..<((r + 1) * 128)].count { $0 } == 64) }
  }

  @Test func calibrationMustMatchTheWeight() {
    let w = randomMatrix(4, 8, seed: 1)
    let calibration = CalibrationInputs(["fc.weight": randomMatrix(5, 6, seed: 2)])
    #expect(throws: PruningError.self) { try calibration.inputs(forWeight: "fc.weight", shape: w.shape) }
    #expect(throws: PruningError.missingCalibration(tensor: "other.weight", expectedName: "other.weight:input")) {
      try calibration.inputs(forWeight: "other.weight", shape: w.shape)
    }
  }
}

@Suite struct SparseGPTTests {
  static func hessian(_ x: Tensor) throws -> [Double] { try LayerInputStatistics(inputs: x).hessian() }

  @Test func zeroSparsityLeavesTheWeightUnchanged() throws {
    let layer = SyntheticLayer(out: 12, in: 40, calibrationTokens: 200, heldOutTokens: 1, seed: 11)
    for options in [SparseGPTOptions(), SparseGPTOptions(blockSize: 7)] {
      let result = try SparseGPT.prune(
        weight: layer.weight, hessian: try Self.hessian(layer.calibration), pattern: .unstructured, sparsityLevel: 0,
        options: options)
      #expect(result.weight == layer.weight)
      #expect(result.mask.keptCount == layer.weight.count)
    }
  }

  @Test(arguments: [(2, 4), (1, 4), (4, 8), (2, 3)])
  func exactNOfMCounts(n: Int, m: Int) throws {
    // 30 columns: ragged last group for every m here.
    let layer = SyntheticLayer(out: 9, in: 30, calibrationTokens: 120, heldOutTokens: 1, seed: 12)
    let pattern = SparsityPattern.nOfM(n: n, m: m)
    let result = try SparseGPT.prune(
      weight: layer.weight, hessian: try Self.hessian(layer.calibration), pattern: pattern,
      options: SparseGPTOptions(blockSize: 16))
    #expect(result.mask.conforms(to: pattern))
    #expect(result.weight.conforms(to: pattern))
    let keep = result.mask.tensor.scalars(as: Bool.self)
    let values = result.weight.floatValues
    for r in 0..<9 {
      for g in stride(from: 0, to: 30, by: m) {
        let size = Swift.min(m, 30 - g)
        let kept = (g..<(g + size)).count { keep[r * 30 + $0] }
        #expect(kept == Swift.min(n, size), "row \(r), group at \(g)")
      }
    }
    for i in keep.indices where !keep[i] { #expect(values[i] == 0) }
  }

  @Test(arguments: [0.3, 0.5, 0.77])
  func exactUnstructuredCount(level: Double) throws {
    let layer = SyntheticLayer(out: 11, in: 50, calibrationTokens: 150, heldOutTokens: 1, seed: 13)
    for scope in [ComparisonScope.layer, .row] {
      let result = try SparseGPT.prune(
        weight: layer.weight, hessian: try Self.hessian(layer.calibration), pattern: .unstructured, sparsityLevel: level,
        scope: scope, options: SparseGPTOptions(blockSize: 16))
      let perRow = Mask.prunedCellCount(sparsityLevel: level, cells: 50)
      #expect(prunedCount(result.mask) == (scope == .row ? 11 * perRow : Mask.prunedCellCount(sparsityLevel: level, cells: 550)))
      if scope == .row {
        let keep = result.mask.tensor.scalars(as: Bool.self)
        for r in 0..<11 {
          #expect(keep[(r * 50)..<((r + 1) * 50)].count { !$0 } == Mask.prunedCellCount(sparsityLevel: level, cells: 50))
        }
      }
    }
  }

  /// With a mask that prunes only leading columns and no dampening, the update is the exact
  /// least-squares reconstruction on the kept columns (reference §3.8 check 2).
  @Test func leadingColumnsGiveLeastSquares() throws {
    let (out, d, pruned) = (5, 12, 4)
    let layer = SyntheticLayer(out: out, in: d, calibrationTokens: 200, heldOutTokens: 1, seed: 14)
    let h = try Self.hessian(layer.calibration)
    let keep = Tensor((0..<(out * d)).map { $0 % d >= pruned }, shape: [out, d])
    let result = try SparseGPT.prune(
      weight: layer.weight, hessian: h, pattern: .unstructured, options: SparseGPTOptions(dampening: 0, blockSize: 5),
      fixedMask: Mask(keep))
    // Least squares: Ŵ_K = W · H[:, K] · H[K, K]⁻¹ for K the kept columns.
    let k = d - pruned
    var hkk = [Double](repeating: 0, count: k * k)
    for a in 0..<k { for b in 0..<k { hkk[a * k + b] = h[(pruned + a) * d + pruned + b] } }
    let w = layer.weight.doubleValues
    let got = result.weight.doubleValues
    for r in 0..<out {
      var rhs = [Double](repeating: 0, count: k)  // (W H[:, K])_r
      for a in 0..<k { for j in 0..<d { rhs[a] += w[r * d + j] * h[j * d + pruned + a] } }
      let solution = solveSymmetric(hkk, rhs, n: k)
      for a in 0..<k {
        let value = got[r * d + pruned + a]
        #expect(Swift.abs(value - solution[a]) < 2e-5 * Swift.max(1, Swift.abs(solution[a])), "row \(r), column \(pruned + a)")
      }
      for j in 0..<pruned { #expect(got[r * d + j] == 0) }
    }
  }

  /// Gaussian elimination with partial pivoting (test oracle).
  func solveSymmetric(_ a: [Double], _ b: [Double], n: Int) -> [Double] {
    var m = a
    var x = b
    for col in 0..<n {
      let pivot = (col..<n).max { Swift.abs(m[$0 * n + col]) < Swift.abs(m[$1 * n + col]) }!
      if pivot != col {
        for j in 0..<n { m.swapAt(col * n + j, pivot * n + j) }
        x.swapAt(col, pivot)
      }
      for row in (col + 1)..<n {
        let f = m[row * n + col] / m[col * n + col]
        for j in col..<n { m[row * n + j] -= f * m[col * n + j] }
        x[row] -= f * x[col]
      }
    }
    for row in stride(from: n - 1, through: 0, by: -1) {
      var s = x[row]
      for j in (row + 1)..<n { s -= m[row * n + j] * x[j] }
      x[row] = s / m[row * n + row]
    }
    return x
  }

  /// On correlated inputs with an outlier feature, held-out output error orders
  /// SparseGPT < Wanda < magnitude at 2:4 and at 50% unstructured.
  @Test(arguments: [SparsityPattern.twoFour, .unstructured])
  func heldOutErrorOrdering(pattern: SparsityPattern) throws {
    let layer = SyntheticLayer(out: 32, in: 64, calibrationTokens: 512, heldOutTokens: 256, seed: 2024)
    let level = pattern == .twoFour ? 1 : 0.5
    let stats = try LayerInputStatistics(inputs: layer.calibration)
    let magnitude = layer.weight.masked(by: try Magnitude.mask(for: layer.weight, pattern: pattern, sparsityLevel: level).tensor)
    let wanda = layer.weight.masked(
      by: try Wanda.mask(for: layer.weight, statistics: stats, pattern: pattern, sparsityLevel: level).tensor)
    let sparseGPT = try SparseGPT.prune(weight: layer.weight, hessian: stats.hessian(), pattern: pattern, sparsityLevel: level).weight
    func error(_ pruned: Tensor) -> Double {
      PruningMetrics.relativeOutputError(original: layer.weight, pruned: pruned, inputs: layer.heldOut)
    }
    let (m, w, s) = (error(magnitude), error(wanda), error(sparseGPT))
    #expect(s < w, "SparseGPT \(s) vs Wanda \(w)")
    #expect(w < m, "Wanda \(w) vs magnitude \(m)")
    #expect(sparseGPT.conforms(to: pattern))
  }

  @Test func nOfMNeedsFullLevel() {
    let w = randomMatrix(4, 8, seed: 1)
    let h = (0..<64).map { $0 % 9 == 0 ? 1.0 : 0 }
    #expect(throws: PruningError.self) {
      try SparseGPT.prune(weight: w, hessian: h, pattern: .twoFour, sparsityLevel: 0.5)
    }
  }

  /// Always-zero inputs (H_jj = 0) are handled: the factorization succeeds and the result is
  /// finite with the exact count.
  @Test func deadInputsAreHandled() throws {
    var x = randomMatrix(64, 10, seed: 4).doubleValues
    for t in 0..<64 { x[t * 10 + 2] = 0 }
    let inputs = Tensor(doubles: x, shape: [64, 10], dtype: .float32)
    let w = randomMatrix(3, 10, seed: 5)
    let result = try SparseGPT.prune(weight: w, inputs: inputs, pattern: .unstructured, sparsityLevel: 0.5)
    #expect(result.weight.floatValues.allSatisfy { $0.isFinite })
    #expect(prunedCount(result.mask) == 15)
  }
}

@Suite struct LinearAlgebraTests {
  @Test(arguments: [1, 5, 33, 130])
  func upperFactorOfTheInverse(n: Int) throws {
    var rng = SeededGenerator(seed: UInt64(n))
    let x = Tensor.randomNormal([2 * n + 3, n], using: &rng)
    let stats = try LayerInputStatistics(inputs: x)
    var h = stats.hessian()
    for i in 0..<n { h[i * n + i] += 0.01 }
    let u = try #require(LinearAlgebra.upperCholeskyOfInverse(h, n: n))
    // Upper triangular with a positive diagonal, and (UᵀU)·H = I.
    var utu = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
      #expect(u[i * n + i] > 0)
      for j in 0..<i { #expect(u[i * n + j] == 0) }
      for k in 0..<n {
        for p in 0...Swift.min(i, k) { utu[i * n + k] += u[p * n + i] * u[p * n + k] }
      }
    }
    var worst = 0.0
    for i in 0..<n {
      for j in 0..<n {
        var v = 0.0
        for k in 0..<n { v += utu[i * n + k] * h[k * n + j] }
        worst = Swift.max(worst, Swift.abs(v - (i == j ? 1 : 0)))
      }
    }
    #expect(worst < 1e-9)
  }

  @Test func gramMatchesNaiveProducts() throws {
    let (tokens, d) = (517, 23)
    let x = randomMatrix(tokens, d, seed: 9)
    let g = LinearAlgebra.gram(x.floatValues, tokens: tokens, features: d)
    let v = x.doubleValues
    for i in 0..<d {
      for j in 0..<d {
        var s = 0.0
        for t in 0..<tokens { s += v[t * d + i] * v[t * d + j] }
        #expect(Swift.abs(g[i * d + j] - s) < 1e-4 * Swift.max(1, Swift.abs(s)), "(\(i), \(j))")
      }
    }
  }

  @Test func notPositiveDefiniteIsReported() {
    #expect(LinearAlgebra.upperCholeskyOfInverse([1, 2, 2, 1], n: 2) == nil)
  }

  @Test func relativeOutputErrorMatchesDefinition() {
    let w = randomMatrix(6, 10, seed: 1)
    let x = randomMatrix(7, 10, seed: 2)
    let pruned = w.masked(by: Tensor((0..<60).map { $0 % 3 != 0 }, shape: [6, 10]))
    let y = Tensor.referenceLinear(x.converted(to: .float64), weight: w.converted(to: .float64)).doubleValues
    let yp = Tensor.referenceLinear(x.converted(to: .float64), weight: pruned.converted(to: .float64)).doubleValues
    let num = zip(y, yp).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
    let den = y.reduce(0) { $0 + $1 * $1 }.squareRoot()
    #expect(Swift.abs(PruningMetrics.relativeOutputError(original: w, pruned: pruned, inputs: x) - num / den) < 1e-6)
  }
}
