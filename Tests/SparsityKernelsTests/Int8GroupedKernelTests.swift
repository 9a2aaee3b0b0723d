import SparsityCore
import SparsityFormats
import Testing

@testable import SparsityKernels
import _SparsityKernelsImpl

/// The grouped W8A8 kernels (a weight scale per row and 32-column block, as GGUF Q8_0 stores
/// them; activations quantized per token and block, as llama.cpp does) against
/// ``int8GroupedReference``: exact int32 block sums, the same float operations in the same
/// order, so every build must match it bit for bit.
@Suite struct Int8GroupedKernelTests {
  /// A random int8 matrix (−128 included) and positive scales `[n, k / group]`.
  static func grouped(n: Int, k: Int, group: Int, seed: UInt64) throws -> QuantizedMatrix {
    var rng = SeededGenerator(seed: seed)
    let values = (0..<(n * k)).map { _ in Int8.random(in: -128...127, using: &rng) }
    let scales = (0..<(n * k / group)).map { _ in Float.random(in: 0.0005...0.02, using: &rng) }
    return try QuantizedMatrix(
      values: .dense(Tensor(values, shape: [n, k])), scales: Tensor(scales, shape: [n, k / group]), activations: .dynamic, name: "w")
  }

  /// The reference on the matrix's values with its scales repeated per 32-column block.
  static func reference(_ w: QuantizedMatrix, x: Tensor, bias: Tensor?) -> [Float] {
    let (n, k, m) = (w.shape[0], w.shape[1], x.shape[0])
    let repeats = w.groupSize! / int8GroupedBlock
    let scales = w.scales.scalars(as: Float.self).flatMap { repeatElement($0, count: repeats) }
    let q = w.values.dense().scalars(as: Int8.self)
    var y = [Float](repeating: 0, count: m * n)
    x.withUnsafeBufferPointer(as: Float.self) { xp in
      if let bias {
        bias.withUnsafeBufferPointer(as: Float.self) { b in
          int8GroupedReference(x: xp.baseAddress!, m: m, q: q, s: scales, n: n, k: k, bias: b.baseAddress!, y: &y)
        }
      } else {
        int8GroupedReference(x: xp.baseAddress!, m: m, q: q, s: scales, n: n, k: k, bias: nil, y: &y)
      }
    }
    return y
  }

  @Test(
    "grouped W8A8 equals the naive reference bit for bit (groups of 32 and 64; k across several k-blocks)",
    arguments: [
      (Shape(n: 1, k: 32), 32), (Shape(n: 16, k: 64), 32), (Shape(n: 17, k: 96), 32), (Shape(n: 40, k: 416), 32),
      (Shape(n: 33, k: 800), 32), (Shape(n: 70, k: 128), 64), (Shape(n: 9, k: 768), 128),
    ])
  func matchesReference(shape: Shape, group: Int) throws {
    let w = try Self.grouped(n: shape.n, k: shape.k, group: group, seed: UInt64(shape.n * 1000 + shape.k))
    let weight = try LinearWeight(.quantized(w), as: WeightForm(.dense, encoding: .int8Dynamic), name: "w")
    #expect(weight.ownKernels == [.int8DynamicGroupedGEMM, .int8DynamicGroupedGEMV])
    for m in tokenCounts {
      var x = activations(m, shape.k, seed: UInt64(m) &+ 3)
      // An all-zero block of activations (scale 0) in the first row.
      x.withUnsafeMutableBufferPointer(as: Float.self) { $0[0..<32].update(repeating: 0) }
      let b = biasVector(shape.n, seed: UInt64(m) &+ 9)
      for bias in [nil, b] {
        let expected = Self.reference(w, x: x, bias: bias)
        for kernel in weight.ownKernels {
          let y = weight.apply(x: x, bias: bias, kernel: kernel).floatValues
          if let i = y.indices.first(where: { y[$0].bitPattern != expected[$0].bitPattern }) {
            Issue.record("\(shape.testDescription) g\(group) m=\(m) \(kernel) bias=\(bias != nil): element \(i) is \(y[i]), reference \(expected[i])")
          }
        }
      }
    }
  }

  @Test("grouped W8A8 at the extremes: −128 weights against ±127 activations over 4,096 inputs do not overflow")
  func extremes() throws {
    let (n, k, m) = (20, 4096, 7)
    let values = (0..<(n * k)).map { i in (i / k + i % k) % 3 == 0 ? Int8(-128) : Int8(127) }
    let w = try QuantizedMatrix(
      values: .dense(Tensor(values, shape: [n, k])), scales: Tensor([Float](repeating: 0.01, count: n * k / 32), shape: [n, k / 32]),
      activations: .dynamic, name: "w")
    let x = Tensor((0..<(m * k)).map { i in (i % k) % 2 == 0 ? Float(-3) : 3 }, shape: [m, k])
    let weight = try LinearWeight(.quantized(w), as: WeightForm(.dense, encoding: .int8Dynamic), name: "w")
    let expected = Self.reference(w, x: x, bias: nil)
    for kernel in weight.ownKernels {
      #expect(weight.apply(x: x, kernel: kernel).floatValues == expected, "\(kernel)")
    }
  }

  @Test("the packed grouped weight gives back its exact values and scales, stacks, and rejects forms it cannot run")
  func storedAndErrors() throws {
    let a = try Self.grouped(n: 20, k: 64, group: 32, seed: 1)
    let b = try Self.grouped(n: 12, k: 64, group: 32, seed: 2)
    let form = WeightForm(.dense, encoding: .int8Dynamic)
    let (wa, wb) = (try LinearWeight(.quantized(a), as: form, name: "a"), try LinearWeight(.quantized(b), as: form, name: "b"))
    #expect(wa.stored() == .quantized(a))
    #expect(wa.dense().floatValues == a.dequantized().floatValues)
    #expect(wa.byteCount < 20 * 64 * 2)
    let stacked = try LinearWeight.stacking([wa, wb])
    #expect(stacked.ownKernels == [.int8DynamicGroupedGEMM, .int8DynamicGroupedGEMV])
    #expect(stacked.dense().floatValues == a.dequantized().floatValues + b.dequantized().floatValues)
    // Weight-only, 2:4 and groups that are not whole 32-column blocks are refused by name.
    for (matrix, target) in [
      (a, WeightForm(.dense, encoding: .int8)), (a, WeightForm(.nOfM(n: 2, m: 4), encoding: .int8Dynamic)),
      (try Self.grouped(n: 4, k: 48, group: 16, seed: 3), form),
    ] {
      #expect(throws: KernelError.self) { try LinearWeight(.quantized(matrix), as: target, name: "blk.0.ffn_up.weight") }
    }
    // A per-row matrix does not stack with a grouped one.
    let perRow = try LinearWeight(.dense(SyntheticWeights.dense(rows: 4, columns: 64, seed: 4)), as: form, name: "c")
    #expect(throws: (any Error).self) { try LinearWeight.stacking([wa, perRow]) }
  }

  @Test("grouped scales are checked: shape, divisibility, positive and finite")
  func scaleValidation() throws {
    let values = StoredTensor.dense(Tensor([Int8](repeating: 1, count: 4 * 64), shape: [4, 64]))
    #expect(throws: SparseFormatError.self) {
      try QuantizedMatrix(values: values, scales: Tensor([Float](repeating: 1, count: 12), shape: [4, 3]), activations: .dynamic, name: "w")
    }
    var bad = [Float](repeating: 1, count: 8)
    bad[5] = 0
    do {
      _ = try QuantizedMatrix(values: values, scales: Tensor(bad, shape: [4, 2]), activations: .dynamic, name: "w")
      Issue.record("a zero scale was accepted")
    } catch {
      #expect("\(error)".contains("row 2, group 1"), "\(error)")
    }
    let ok = try QuantizedMatrix(values: values, scales: Tensor([Float](repeating: 0.5, count: 8), shape: [4, 2]), activations: .dynamic, name: "w")
    #expect(ok.groupSize == 32)
    #expect(ok.dequantized().floatValues.allSatisfy { $0 == 0.5 })
  }
}
