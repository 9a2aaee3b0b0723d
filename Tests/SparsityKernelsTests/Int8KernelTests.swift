import SparsityCore
import SparsityFormats
import Testing

@testable import SparsityKernels
import _SparsityKernelsImpl

/// The int8 kernels against naive references: W8A8 bit for bit (the int32 sums are exact and
/// the float epilogue follows torchao's order), weight-only within fp32 rounding.
@Suite struct Int8KernelTests {
  static let shapes = [
    Shape(n: 1, k: 1), Shape(n: 16, k: 16), Shape(n: 17, k: 3), Shape(n: 40, k: 37), Shape(n: 33, k: 300), Shape(n: 70, k: 129),
  ]

  /// torchao's dynamic recipe computed naively from the reference quantizer.
  static func referenceDynamic(x: Tensor, weight: Tensor, bias: Tensor?) throws -> [Float] {
    let (xq, sx) = try Int8Quantization.quantizeRows(x, name: "x")
    let (wq, sw) = try Int8Quantization.quantizeRows(weight, name: "w")
    let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
    let (a, b, s, t) = (xq.scalars(as: Int8.self), wq.scalars(as: Int8.self), sx.floatValues, sw.floatValues)
    let bias = bias?.floatValues
    var y = [Float](repeating: 0, count: m * n)
    for i in 0..<m {
      for j in 0..<n {
        var dot: Int32 = 0
        for c in 0..<k { dot += Int32(a[i * k + c]) * Int32(b[j * k + c]) }
        let v = (Float(dot) * s[i]) * t[j]
        y[i * n + j] = bias.map { v + $0[j] } ?? v
      }
    }
    return y
  }

  @Test("W8A8 equals the naive int32 reference bit for bit", arguments: shapes)
  func dynamicMatchesReference(shape: Shape) throws {
    let w = SyntheticWeights.dense(rows: shape.n, columns: shape.k, seed: 11)
    let weight = try LinearWeight(.dense(w), as: WeightForm(.dense, encoding: .int8Dynamic), name: "w")
    #expect(weight.ownKernels == [.int8DynamicGEMM, .int8DynamicGEMV])
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m))
      let b = biasVector(shape.n, seed: UInt64(m) &+ 7)
      for bias in [nil, b] {
        let expected = try Self.referenceDynamic(x: x, weight: w, bias: bias)
        for kernel in weight.ownKernels {
          let y = weight.apply(x: x, bias: bias, kernel: kernel).floatValues
          if let i = y.indices.first(where: { y[$0].bitPattern != expected[$0].bitPattern }) {
            Issue.record("\(shape.testDescription) m=\(m) \(kernel) bias=\(bias != nil): element \(i) is \(y[i]), reference \(expected[i])")
          }
        }
      }
    }
  }

  @Test(
    "W8A8 2:4 equals the naive int32 reference bit for bit",
    arguments: [Shape(n: 1, k: 4), Shape(n: 16, k: 16), Shape(n: 17, k: 9), Shape(n: 40, k: 38), Shape(n: 33, k: 300), Shape(n: 70, k: 132)])
  func dynamicSemiStructuredMatchesReference(shape: Shape) throws {
    let w = SyntheticWeights.semiStructured(rows: shape.n, columns: shape.k, seed: 13)
    let form = WeightForm(.nOfM(n: 2, m: 4), encoding: .int8Dynamic)
    let weight = try LinearWeight(.dense(w), as: form, name: "w")
    #expect(weight.ownKernels == [.int8DynamicSemiStructuredGEMM, .int8DynamicSemiStructuredGEMV])
    // The packed form holds the dense int8 weight's values exactly.
    let dense = try LinearWeight(.dense(w), as: WeightForm(.dense, encoding: .int8Dynamic), name: "w")
    #expect(weight.dense() == dense.dense())
    // What it stores packs back to the same weight.
    #expect(try LinearWeight(weight.stored(), as: form, name: "w").dense() == weight.dense())
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m) &+ 100)
      let b = biasVector(shape.n, seed: UInt64(m) &+ 9)
      for bias in [nil, b] {
        let expected = try Self.referenceDynamic(x: x, weight: w, bias: bias)
        for kernel in weight.ownKernels {
          let y = weight.apply(x: x, bias: bias, kernel: kernel).floatValues
          if let i = y.indices.first(where: { y[$0].bitPattern != expected[$0].bitPattern }) {
            Issue.record("2:4 \(shape.testDescription) m=\(m) \(kernel) bias=\(bias != nil): element \(i) is \(y[i]), reference \(expected[i])")
          }
        }
      }
    }
  }

  @Test(
    "W8A8 block-sparse equals the naive int32 reference bit for bit",
    arguments: [(Shape(n: 64, k: 64), 32), (Shape(n: 96, k: 160), 32), (Shape(n: 70, k: 132), 2), (Shape(n: 48, k: 40), 8),
      (Shape(n: 33, k: 300), 3), (Shape(n: 96, k: 256), 16), (Shape(n: 1, k: 8), 1)])
  func dynamicBlockMatchesReference(shape: Shape, block: Int) throws {
    let w = SyntheticWeights.blockSparse(rows: shape.n, columns: shape.k, block: block, sparsity: 0.6, seed: 17)
    let form = WeightForm(.block(rows: block, columns: block), encoding: .int8Dynamic)
    let weight = try LinearWeight(.dense(w), as: form, name: "w")
    #expect(weight.ownKernels == [.int8DynamicBlockGEMM, .int8DynamicBlockGEMV])
    // The packed form holds the dense int8 weight's values exactly, and what it stores packs back.
    let dense = try LinearWeight(.dense(w), as: WeightForm(.dense, encoding: .int8Dynamic), name: "w")
    #expect(weight.dense() == dense.dense())
    #expect(try LinearWeight(weight.stored(), as: form, name: "w").dense() == weight.dense())
    // 32 × 32 blocks are kept exactly: their share of the work and bytes.
    if block == 32 {
      #expect(weight.density == Double(w.nonzeroCount) / Double(shape.n * shape.k))
      #expect(weight.byteCount < dense.byteCount * 6 / 10)
    }
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m) &+ 200)
      let b = biasVector(shape.n, seed: UInt64(m) &+ 19)
      for bias in [nil, b] {
        let expected = try Self.referenceDynamic(x: x, weight: w, bias: bias)
        for kernel in weight.ownKernels {
          let y = weight.apply(x: x, bias: bias, kernel: kernel).floatValues
          if let i = y.indices.first(where: { y[$0].bitPattern != expected[$0].bitPattern }) {
            Issue.record("bsr:\(block) \(shape.testDescription) m=\(m) \(kernel) bias=\(bias != nil): element \(i) is \(y[i]), reference \(expected[i])")
          }
        }
      }
    }
  }

  @Test("W8A8 at the extremes: ±128 products over 4,096 inputs do not saturate")
  func dynamicExtremes() throws {
    let (n, k, m) = (24, 4096, 3)
    // Rows alternate +1 and −1: activations quantize to 127 and −128, weights likewise.
    let w = Tensor((0..<(n * k)).map { i in (i / k + i % k) % 2 == 0 ? Float(1) : -1 }, shape: [n, k])
    let x = Tensor((0..<(m * k)).map { i in (i % k) % 2 == 0 ? Float(-3) : 3 }, shape: [m, k])
    let weight = try LinearWeight(.dense(w), as: WeightForm(.dense, encoding: .int8Dynamic), name: "w")
    let expected = try Self.referenceDynamic(x: x, weight: w, bias: nil)
    for kernel in weight.ownKernels {
      #expect(weight.apply(x: x, kernel: kernel).floatValues == expected, "\(kernel)")
    }
  }

  @Test("weight-only int8 equals the dequantized reference within fp32 rounding", arguments: shapes)
  func weightOnlyMatchesReference(shape: Shape) throws {
    let w = SyntheticWeights.dense(rows: shape.n, columns: shape.k, seed: 12)
    let weight = try LinearWeight(.dense(w), as: WeightForm(.dense, encoding: .int8), name: "w")
    let dequantized = try QuantizedMatrix(quantizing: w, layout: .dense, activations: .none, name: "w").dequantized()
    #expect(weight.dense() == dequantized)
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m))
      let b = biasVector(shape.n, seed: UInt64(m) &+ 3)
      for bias in [nil, b] {
        for kernel in weight.ownKernels {
          expectMatchesReference(
            weight.apply(x: x, bias: bias, kernel: kernel), x: x, weight: dequantized, bias: bias,
            "int8 \(shape.testDescription) m=\(m) \(kernel)")
        }
      }
    }
  }

  @Test(
    "weight-only int8 2:4 equals the dequantized reference within fp32 rounding",
    arguments: [Shape(n: 1, k: 4), Shape(n: 16, k: 16), Shape(n: 17, k: 9), Shape(n: 40, k: 38), Shape(n: 33, k: 300), Shape(n: 70, k: 132)])
  func weightOnlySemiStructuredMatchesReference(shape: Shape) throws {
    let w = SyntheticWeights.semiStructured(rows: shape.n, columns: shape.k, seed: 14)
    let form = WeightForm(.nOfM(n: 2, m: 4), encoding: .int8)
    let weight = try LinearWeight(.dense(w), as: form, name: "w")
    #expect(weight.ownKernels == [.int8WeightOnlySemiStructuredGEMM, .int8WeightOnlySemiStructuredGEMV])
    let dequantized = try QuantizedMatrix(quantizing: w, layout: .dense, activations: .none, name: "w").dequantized()
    #expect(weight.dense() == dequantized)
    #expect(try LinearWeight(weight.stored(), as: form, name: "w").dense() == dequantized)
    // 1 byte per kept value and 4 bits of positions per group: 62.5% of the dense int8 values.
    let dense = try LinearWeight(.dense(w), as: WeightForm(.dense, encoding: .int8), name: "w")
    if shape.k >= 128 { #expect(weight.byteCount * 10 < dense.byteCount * 7) }
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m) &+ 300)
      let b = biasVector(shape.n, seed: UInt64(m) &+ 301)
      for bias in [nil, b] {
        for kernel in weight.ownKernels {
          expectMatchesReference(
            weight.apply(x: x, bias: bias, kernel: kernel), x: x, weight: dequantized, bias: bias,
            "int8 2:4 \(shape.testDescription) m=\(m) \(kernel)")
        }
      }
    }
  }

  @Test(
    "weight-only int8 block-sparse equals the dequantized reference within fp32 rounding",
    arguments: [(Shape(n: 64, k: 64), 32), (Shape(n: 96, k: 160), 32), (Shape(n: 70, k: 132), 2), (Shape(n: 48, k: 40), 8),
      (Shape(n: 33, k: 300), 3), (Shape(n: 1, k: 7), 1)])
  func weightOnlyBlockMatchesReference(shape: Shape, block: Int) throws {
    let w = SyntheticWeights.blockSparse(rows: shape.n, columns: shape.k, block: block, sparsity: 0.6, seed: 18)
    let form = WeightForm(.block(rows: block, columns: block), encoding: .int8)
    let weight = try LinearWeight(.dense(w), as: form, name: "w")
    #expect(weight.ownKernels == [.int8WeightOnlyBlockGEMM, .int8WeightOnlyBlockGEMV])
    let dequantized = try QuantizedMatrix(quantizing: w, layout: .dense, activations: .none, name: "w").dequantized()
    #expect(weight.dense() == dequantized)
    #expect(try LinearWeight(weight.stored(), as: form, name: "w").dense() == dequantized)
    for m in tokenCounts {
      let x = activations(m, shape.k, seed: UInt64(m) &+ 400)
      let b = biasVector(shape.n, seed: UInt64(m) &+ 401)
      for bias in [nil, b] {
        for kernel in weight.ownKernels {
          expectMatchesReference(
            weight.apply(x: x, bias: bias, kernel: kernel), x: x, weight: dequantized, bias: bias,
            "int8 bsr:\(block) \(shape.testDescription) m=\(m) \(kernel)")
        }
      }
    }
  }

  @Test("the kernels' activation quantizer equals the reference: ties, zero rows, ragged tails")
  func activationQuantizer() throws {
    let (m, k) = (5, 37)
    var values = SyntheticWeights.dense(rows: m, columns: k, seed: 9).floatValues.map { $0 * 3 }
    for c in 0..<k { values[c] = 0 }  // a zero row
    for c in 0..<k { values[k + c] = Float(c) - 18 }  // integers: x · 127.5/18 hits many .5 ties
    values[2 * k + 5] = 1e6  // an outlier
    let x = Tensor(values, shape: [m, k])
    let (q, s) = try Int8Quantization.quantizeRows(x, name: "x")
    let expected = q.scalars(as: Int8.self)
    for output in [Int8Output.int8, .shiftedUInt8, .int16] {
      var got = [Int16](repeating: 99, count: m * 40)
      var scales = [Float](repeating: 0, count: m)
      values.withUnsafeBufferPointer { xp in
        got.withUnsafeMutableBytes { raw in
          quantizeRowsInt8(x: xp.baseAddress!, m: m, k: k, ldx: k, q: raw.baseAddress!, ldq: 40, output: output, scales: &scales)
        }
      }
      #expect(scales == s.floatValues)
      // Read the values back in the output's element type.
      let values: [Int] = got.withUnsafeBytes { raw in
        (0..<m * 40).map { i in
          switch output {
          case .int8: Int(raw.load(fromByteOffset: i, as: Int8.self))
          case .shiftedUInt8: Int(raw.load(fromByteOffset: i, as: UInt8.self)) - 128
          case .int16: Int(raw.load(fromByteOffset: 2 * i, as: Int16.self))
          }
        }
      }
      for r in 0..<m {
        #expect(Array(values[r * 40..<r * 40 + k]) == expected[r * k..<(r + 1) * k].map(Int.init), "\(output) row \(r)")
        #expect(values[r * 40 + k..<r * 40 + 40].allSatisfy { $0 == 0 }, "\(output) row \(r) padding")
      }
    }
  }

  @Test("int8 weights stack without requantizing; the packed weight is smaller than fp32")
  func stackingKeepsValues() throws {
    let a = SyntheticWeights.dense(rows: 20, columns: 48, seed: 1)
    let b = SyntheticWeights.dense(rows: 12, columns: 48, seed: 2)
    let form = WeightForm(.dense, encoding: .int8Dynamic)
    let (wa, wb) = (try LinearWeight(.dense(a), as: form, name: "a"), try LinearWeight(.dense(b), as: form, name: "b"))
    let stacked = try LinearWeight.stacking([wa, wb])
    #expect(stacked.form == form)
    #expect(stacked.dense().floatValues == wa.dense().floatValues + wb.dense().floatValues)
    #expect(stacked.byteCount * 3 < 32 * 48 * 4)
  }
}
