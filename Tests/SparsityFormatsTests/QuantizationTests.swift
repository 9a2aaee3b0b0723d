import SparsityCore
import SparsityIO
import SparsityTestSupport
import Testing

@testable import SparsityFormats

/// Int8 quantization against torchao 0.18 (`scripts/make_quantization_fixtures.py`): scales and
/// values bit for bit, and the dynamic recipe's linear outputs bit for bit from them.
@Suite struct QuantizationTests {
  static let fixture = fixturesDirectory(in: .module) + "/quantization.safetensors"
  static let cases = ["a", "ragged", "m1", "wide"]

  @Test("weights and activations quantize as torchao's Int8Tensor.from_hp(PerRow())", arguments: cases)
  func quantizesLikeTorchao(_ name: String) throws {
    let file = try SafetensorsFile(contentsOf: Self.fixture)
    for part in ["w", "x"] {
      let (q, s) = try Int8Quantization.quantizeRows(try file.tensor(named: "\(name).\(part)"), name: part)
      expectBitwiseEqual(s, try file.tensor(named: "\(name).\(part)_scale"))
      expectBitwiseEqual(q, try file.tensor(named: "\(name).\(part)_q"))
    }
  }

  @Test("the dynamic recipe's outputs follow from the quantized operands bit for bit; weight-only within fp32 rounding", arguments: cases)
  func linearOutputs(_ name: String) throws {
    let file = try SafetensorsFile(contentsOf: Self.fixture)
    let (x, w, b) = (try file.tensor(named: "\(name).x"), try file.tensor(named: "\(name).w"), try file.tensor(named: "\(name).b"))
    let (xq, sx) = try Int8Quantization.quantizeRows(x, name: "x")
    let weight = try QuantizedMatrix(quantizing: w, layout: .dense, activations: .dynamic, name: "w")
    let wq = weight.values.dense().scalars(as: Int8.self)
    let (m, k, n) = (x.shape[0], x.shape[1], w.shape[0])
    let (a, s, t, bias) = (xq.scalars(as: Int8.self), sx.floatValues, weight.scales.floatValues, b.floatValues)
    let expected = try file.tensor(named: "\(name).y_dynamic").floatValues
    let weightOnly = try file.tensor(named: "\(name).y_weight_only").floatValues
    let dequantized = weight.dequantized().floatValues
    for i in 0..<m {
      for j in 0..<n {
        var dot: Int32 = 0
        var sum = 0.0
        var magnitude = 0.0
        for c in 0..<k {
          dot += Int32(a[i * k + c]) * Int32(wq[j * k + c])
          sum += Double(x.floatValues[i * k + c]) * Double(dequantized[j * k + c])
          magnitude += abs(Double(x.floatValues[i * k + c]) * Double(dequantized[j * k + c]))
        }
        let y = (Float(dot) * s[i]) * t[j] + bias[j]
        #expect(y.bitPattern == expected[i * n + j].bitPattern, "\(name) [\(i), \(j)]: \(y) vs torchao \(expected[i * n + j])")
        let reference = sum + Double(bias[j])
        #expect(abs(Double(weightOnly[i * n + j]) - reference) <= 1e-5 * (magnitude + abs(Double(bias[j]))), "\(name) weight-only [\(i), \(j)]")
      }
    }
  }

  @Test("a non-finite value is an error naming its place; scales must be positive")
  func errors() throws {
    let bad = Tensor([1, 2, .nan, 4] as [Float], shape: [2, 2])
    #expect(throws: SparseFormatError.self) { try Int8Quantization.quantizeRows(bad, name: "w") }
    do {
      _ = try Int8Quantization.quantizeRows(bad, name: "w")
    } catch {
      #expect("\(error)".contains("row 1, column 0"))
    }
    #expect(throws: SparseFormatError.self) {
      try QuantizedMatrix(values: .dense(Tensor([1, 2] as [Int8], shape: [1, 2])), scales: Tensor([0] as [Float], shape: [1]), activations: .none, name: "w")
    }
  }
}
