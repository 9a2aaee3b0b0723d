import SparsityCore
import SparsityFormats
import Testing

@testable import SparsityPruning

/// Channel permutations for 2:4: search quality, exact bookkeeping, and model equivalence.
@Suite struct PermutationTests {
  /// Rows whose large values sit together in one group: the identity keeps half, an
  /// interleaving keeps everything a per-row 50% mask keeps.
  @Test func recoversAKnownOptimum() throws {
    let w = matrix([
      [9, 8, 7, 6, 0.1, 0.2, 0.3, 0.4],
      [5, 4, 3, 2.5, 0.5, 0.6, 0.7, 0.8],
    ])
    let result = try PermutationSearch.run(scores: w.abs(), escapeAttempts: 0)
    #expect(Swift.abs(result.keptBefore - (17 + 0.7 + 9 + 1.5)) < 1e-5)
    #expect(Swift.abs(result.keptAfter - result.upperBound) < 1e-6)
    #expect(result.efficacy > 0.999)
    let permuted = result.permutation.permutingColumns(of: w)
    let mask = try Magnitude.mask(for: permuted, pattern: .twoFour)
    #expect(Swift.abs(PruningMetrics.keptNormFraction(original: permuted, mask: mask) - 1) < 0.01)
  }

  @Test(arguments: [(16, 32, 1 as UInt64), (24, 64, 2), (40, 36, 3)])
  func raisesKeptMagnitudeAndReportsItExactly(rows: Int, columns: Int, seed: UInt64) throws {
    let w = randomMatrix(rows, columns, seed: seed)
    let result = try PermutationSearch.run(scores: w.abs(), seed: seed)
    #expect(result.keptAfter > result.keptBefore)
    #expect(result.keptAfter <= result.upperBound + 1e-9)
    // The reported numbers are what 2:4 magnitude pruning keeps, before and after.
    func kept(_ t: Tensor) throws -> Double {
      let mask = try Magnitude.mask(for: t, pattern: .twoFour).tensor.scalars(as: Bool.self)
      return zip(t.doubleValues, mask).reduce(0) { $0 + ($1.1 ? Swift.abs($1.0) : 0) }
    }
    #expect(Swift.abs(try kept(w) - result.keptBefore) < 1e-9 * result.keptBefore)
    #expect(Swift.abs(try kept(result.permutation.permutingColumns(of: w)) - result.keptAfter) < 1e-9 * result.keptAfter)
    // A final partial group (36 = 9 groups, no remainder; 4·9) stays in place when present.
    if columns % 4 != 0 {
      let tail = (columns / 4 * 4)..<columns
      #expect(tail.allSatisfy { result.permutation.order[$0] == $0 })
    }
  }

  @Test func sameSeedSameResult() throws {
    let w = randomMatrix(16, 48, seed: 9).abs()
    let a = try PermutationSearch.run(scores: w, seed: 5)
    let b = try PermutationSearch.run(scores: w, seed: 5)
    #expect(a.permutation == b.permutation)
  }

  /// `fc1 → ReLU → fc2`: permuting fc1's output rows and bias and fc2's input columns leaves
  /// the outputs unchanged, dense and after pruning fc2 to 2:4 in the permuted order.
  @Test func permutedModelComputesTheSameFunction() throws {
    let x = randomMatrix(5, 12, seed: 1).converted(to: .float64)
    let fc1 = randomMatrix(16, 12, seed: 2).converted(to: .float64)
    let bias1 = randomMatrix(1, 16, seed: 3).reshaped([16]).converted(to: .float64)
    let fc2 = randomMatrix(6, 16, seed: 4).converted(to: .float64)
    func forward(_ fc1: Tensor, _ bias1: Tensor, _ fc2: Tensor) -> Tensor {
      let hidden = Tensor.referenceLinear(x, weight: fc1, bias: bias1).map { Swift.max($0, 0) }
      return Tensor.referenceLinear(hidden, weight: fc2)
    }
    let permutation = try PermutationSearch.run(scores: fc2.abs()).permutation
    #expect(!permutation.isIdentity)
    let p1 = permutation.permutingRows(of: fc1)
    let pb = permutation.permutingVector(bias1)
    let p2 = permutation.permutingColumns(of: fc2)
    let dense = forward(fc1, bias1, fc2)
    let permuted = forward(p1, pb, p2)
    #expect(permuted.isClose(to: dense, relativeTolerance: 1e-12, absoluteTolerance: 1e-12))
    // Inputs gathered at run time instead: x[:, order] · W[:, order]ᵀ = x · Wᵀ.
    let hidden = Tensor.referenceLinear(x, weight: fc1, bias: bias1).map { Swift.max($0, 0) }
    let gathered = Tensor.referenceLinear(permutation.permutingColumns(of: hidden), weight: p2)
    #expect(gathered.isClose(to: dense, relativeTolerance: 1e-12, absoluteTolerance: 1e-12))
    // Pruned in the permuted order, the model equals the restored (unpermuted) pruned weight.
    let pruned = p2.masked(by: try Magnitude.mask(for: p2, pattern: .twoFour).tensor)
    #expect(pruned.conforms(to: .twoFour))
    let restored = permutation.restoringColumns(of: pruned)
    #expect(forward(p1, pb, pruned).isClose(to: forward(fc1, bias1, restored), relativeTolerance: 1e-12, absoluteTolerance: 1e-12))
  }

  @Test func storedAsI32AndValidated() throws {
    let p = try ChannelPermutation(order: [2, 0, 3, 1])
    #expect(p.tensor.dtype == .int32)
    #expect(try ChannelPermutation(tensor: p.tensor) == p)
    #expect(p.inverse.order == [1, 3, 0, 2])
    let w = Tensor((0..<8).map { Float($0) }, shape: [2, 4])
    #expect(p.permutingColumns(of: w).scalars(as: Float.self) == [2, 0, 3, 1, 6, 4, 7, 5])
    #expect(p.restoringColumns(of: p.permutingColumns(of: w)) == w)
    #expect(p.permutingRows(of: Tensor((0..<8).map { Float($0) }, shape: [4, 2])).scalars(as: Float.self) == [4, 5, 0, 1, 6, 7, 2, 3])
    #expect(throws: PruningError.self) { try ChannelPermutation(order: [0, 0, 1]) }
    #expect(throws: PruningError.self) { try ChannelPermutation(order: [0, 3]) }
    #expect(throws: PruningError.self) { try ChannelPermutation(tensor: Tensor([0, 1] as [Float])) }
  }

  @Test func rejectsBadInputs() {
    #expect(throws: PruningError.self) { try PermutationSearch.run(scores: randomMatrix(2, 8, seed: 1)) }  // negative scores
    #expect(throws: PruningError.self) { try PermutationSearch.run(scores: randomMatrix(2, 8, seed: 1).abs(), n: 4, m: 4) }
  }

  @Test func generalNOfM() throws {
    let w = randomMatrix(12, 24, seed: 21).abs()
    let result = try PermutationSearch.run(scores: w, n: 1, m: 3, escapeAttempts: 2)
    #expect(result.keptAfter > result.keptBefore)
    let permuted = result.permutation.permutingColumns(of: w)
    let mask = try Magnitude.mask(for: permuted, pattern: .nOfM(n: 1, m: 3)).tensor.scalars(as: Bool.self)
    let kept = zip(permuted.doubleValues, mask).reduce(0) { $0 + ($1.1 ? $1.0 : 0) }
    #expect(Swift.abs(kept - result.keptAfter) < 1e-9 * kept)
  }
}
