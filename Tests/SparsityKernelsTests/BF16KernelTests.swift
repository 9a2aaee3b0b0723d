import SparsityCore
import SparsityFormats
import Testing

@testable import SparsityKernels
import _SparsityKernelsImpl

/// The bf16 kernels against the fp32 reference of the bf16-rounded operands (every product is
/// exact in fp32, so only the order of the sums differs): within 1e-5 of Σ|x|·|w|.
@Suite struct BF16KernelTests {
  static let shapes = [
    Shape(n: 1, k: 1), Shape(n: 16, k: 16), Shape(n: 17, k: 3), Shape(n: 40, k: 37), Shape(n: 33, k: 300), Shape(n: 70, k: 129),
  ]

  @Test("bf16 equals the fp32 reference of the rounded operands", arguments: shapes)
  func matchesReference(shape: Shape) throws {
    let w = SyntheticWeights.dense(rows: shape.n, columns: shape.k, seed: 21)
    let form = WeightForm(.dense, encoding: .bfloat16)
    let weight = try LinearWeight(.dense(w), as: form, name: "w")
    #expect(weight.ownKernels == [.bf16GEMM, .bf16GEMV])
    let rounded = w.converted(to: .bfloat16).converted(to: .float32)
    #expect(weight.dense() == rounded)
    #expect(weight.byteCount * 2 <= (shape.n + 15) / 16 * 16 * (shape.k + 1) / 2 * 2 * 4 + 64)
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m) &+ 5)
      let xRounded = x.converted(to: .bfloat16).converted(to: .float32)
      let b = biasVector(shape.n, seed: UInt64(m) &+ 6)
      for bias in [nil, b] {
        for kernel in weight.ownKernels {
          expectMatchesReference(
            weight.apply(x: x, bias: bias, kernel: kernel), x: xRounded, weight: rounded, bias: bias,
            "bf16 \(shape.testDescription) m=\(m) \(kernel)")
        }
      }
    }
  }

  @Test(
    "bf16 2:4 equals the fp32 reference of the rounded operands",
    arguments: [Shape(n: 1, k: 4), Shape(n: 16, k: 16), Shape(n: 17, k: 9), Shape(n: 40, k: 38), Shape(n: 33, k: 300), Shape(n: 70, k: 132)])
  func semiStructuredMatchesReference(shape: Shape) throws {
    let w = SyntheticWeights.semiStructured(rows: shape.n, columns: shape.k, seed: 23)
    let form = WeightForm(.nOfM(n: 2, m: 4), encoding: .bfloat16)
    let weight = try LinearWeight(.dense(w), as: form, name: "w")
    #expect(weight.ownKernels == [.bf16SemiStructuredGEMM, .bf16SemiStructuredGEMV])
    let rounded = w.converted(to: .bfloat16).converted(to: .float32)
    #expect(weight.dense() == rounded)
    // What it stores packs back to the same weight, and from the CUTLASS file form as well.
    #expect(try LinearWeight(weight.stored(), as: form, name: "w").dense() == rounded)
    #expect(try LinearWeight(.dense(w).stored(as: form, name: "w"), as: form, name: "w").dense() == rounded)
    // 2 bytes per kept value and a code byte per 8 inputs: 56% of the dense bf16 bytes.
    let dense = try LinearWeight(.dense(w), as: WeightForm(.dense, encoding: .bfloat16), name: "w")
    if shape.k % 8 == 0 && shape.n % 16 == 0 { #expect(weight.byteCount * 16 == dense.byteCount * 9) }
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m) &+ 50)
      let xRounded = x.converted(to: .bfloat16).converted(to: .float32)
      let b = biasVector(shape.n, seed: UInt64(m) &+ 51)
      for bias in [nil, b] {
        for kernel in weight.ownKernels {
          expectMatchesReference(
            weight.apply(x: x, bias: bias, kernel: kernel), x: xRounded, weight: rounded, bias: bias,
            "bf16 2:4 \(shape.testDescription) m=\(m) \(kernel)")
        }
      }
    }
  }

  @Test(
    "bf16 block-sparse equals the fp32 reference of the rounded operands",
    arguments: [(Shape(n: 64, k: 64), 32), (Shape(n: 96, k: 160), 32), (Shape(n: 70, k: 132), 2), (Shape(n: 48, k: 40), 8),
      (Shape(n: 33, k: 300), 3), (Shape(n: 1, k: 7), 1)])
  func blockMatchesReference(shape: Shape, block: Int) throws {
    let w = SyntheticWeights.blockSparse(rows: shape.n, columns: shape.k, block: block, sparsity: 0.6, seed: 29)
    let form = WeightForm(.block(rows: block, columns: block), encoding: .bfloat16)
    let weight = try LinearWeight(.dense(w), as: form, name: "w")
    #expect(weight.ownKernels == [.bf16BlockGEMM, .bf16BlockGEMV])
    let rounded = w.converted(to: .bfloat16).converted(to: .float32)
    #expect(weight.dense() == rounded)
    #expect(try LinearWeight(weight.stored(), as: form, name: "w").dense() == rounded)
    // 32 × 32 blocks are kept exactly: their share of the work and bytes.
    if block == 32 {
      let dense = try LinearWeight(.dense(w), as: WeightForm(.dense, encoding: .bfloat16), name: "w")
      #expect(weight.density == Double(w.nonzeroCount) / Double(shape.n * shape.k))
      #expect(weight.byteCount < dense.byteCount * 6 / 10)
    }
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m) &+ 60)
      let xRounded = x.converted(to: .bfloat16).converted(to: .float32)
      let b = biasVector(shape.n, seed: UInt64(m) &+ 61)
      for bias in [nil, b] {
        for kernel in weight.ownKernels {
          expectMatchesReference(
            weight.apply(x: x, bias: bias, kernel: kernel), x: xRounded, weight: rounded, bias: bias,
            "bf16 bsr:\(block) \(shape.testDescription) m=\(m) \(kernel)")
        }
      }
    }
  }

  @Test("the activation rounding equals BFloat16(_:) bit for bit: ties to even, NaN quiet, infinities")
  func activationRounding() {
    var values: [Float] = [1.00390625, 1.01171875, -2.00390625, .infinity, -.infinity, .nan, 0, -0.0, 1e-40, 3.4e38]
    values += SyntheticWeights.dense(rows: 1, columns: 37, seed: 8).floatValues.map { $0 * 1000 }
    var out = [UInt16](repeating: 0, count: values.count + 3)
    var scales = [Float](repeating: 0, count: 1)
    values.withUnsafeBufferPointer { x in
      out.withUnsafeMutableBytes { raw in
        PackedBF16Weight.prepareRows(x: x.baseAddress!, m: 1, k: values.count, ldq: values.count + 3, into: raw.baseAddress!, scales: &scales)
      }
    }
    #expect(Array(out.prefix(values.count)) == values.map { BFloat16($0).bitPattern })
    #expect(out.suffix(3).allSatisfy { $0 == 0 })
  }
}
