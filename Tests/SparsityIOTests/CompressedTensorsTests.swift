import Foundation
import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing

@testable import SparsityIO

/// The compressed-tensors encoding of Linear weights: every stored form round-trips through a
/// file exactly, and broken tensors or configs are one error naming the tensor or field.
@Suite("compressed-tensors checkpoints")
struct CompressedTensorsTests {
  static let w8a8 = CompressedTensors.Configuration(quantized: true, activations: .dynamic, sparsityFormat: "sparse-24-bitmask", ignore: ["lm_head"])

  static func twoFour(_ rows: Int, _ columns: Int, seed: UInt64) -> Tensor {
    var values = randomNormalFloats(rows * columns, seed: seed)
    for i in values.indices where (i % 4 + i / columns + Int(seed)) % 4 >= 2 { values[i] = 0 }
    for i in stride(from: 5, to: values.count, by: 13) { values[i] = 0 }  // groups with fewer than 2 nonzeros
    return Tensor(values, shape: [rows, columns])
  }

  /// Writes `tensors` and reads `name` back through a compressed-tensors reader.
  static func roundTrip(_ stored: StoredTensor, configuration: CompressedTensors.Configuration, extra: [(String, Tensor)] = []) throws
    -> StoredTensor
  {
    try withTemporaryDirectory { directory in
      let path = directory + "/model.safetensors"
      try SafetensorsFile.write(try CompressedTensors.encode(weight: "m.fc.weight", stored) + extra, to: path)
      let reader = CompressedTensors.Reader(archive: try TensorArchive.Reader(contentsOf: path), configuration: configuration, path: path)
      #expect(reader.contains("m.fc.weight"))
      return try reader.stored("m.fc.weight")
    }
  }

  @Test("dense, 2:4 and unstructured weights, float and int8, read back exactly")
  func roundTrips() throws {
    let w = Self.twoFour(24, 64, seed: 3)
    let float24 = try StoredTensor.dense(w).stored(as: .twoFour, name: "w")
    let cases: [(StoredTensor, CompressedTensors.Configuration)] = [
      (.dense(w), CompressedTensors.Configuration(quantized: false, activations: .none, sparsityFormat: nil, ignore: [])),
      (float24, CompressedTensors.Configuration(quantized: false, activations: .none, sparsityFormat: "sparse-24-bitmask", ignore: [])),
      (try StoredTensor.dense(w).stored(as: .csr, name: "w"), CompressedTensors.Configuration(quantized: false, activations: .none, sparsityFormat: "sparse-bitmask", ignore: [])),
      (try StoredTensor.dense(w).stored(as: WeightForm(.dense, encoding: .int8Dynamic), name: "w"), Self.w8a8),
      (try StoredTensor.dense(w).stored(as: WeightForm(.nOfM(n: 2, m: 4), encoding: .int8Dynamic), name: "w"), Self.w8a8),
      (try StoredTensor.dense(w).stored(as: WeightForm(.csr, encoding: .int8), name: "w"),
       CompressedTensors.Configuration(quantized: true, activations: .none, sparsityFormat: "sparse-bitmask", ignore: [])),
    ]
    for (stored, configuration) in cases {
      let back = try Self.roundTrip(stored, configuration: configuration)
      expectBitwiseEqual(back.dense(), stored.dense())
      #expect(back.form.encoding == stored.form.encoding, "\(stored.form)")
      #expect(back.form.isSparse == stored.form.isSparse, "\(stored.form)")
    }
  }

  @Test(
    "weights written by the compressed-tensors package (scripts/make_compressed_tensors_fixtures.py) decode to its decompression",
    arguments: [("w8a8-dense", true), ("w8a8-24", true), ("f32-24", false), ("f32-bitmask", false)])
  func packageFixtures(_ name: String, quantized: Bool) throws {
    let path = Fixtures.path("compressed-tensors/\(name).sft")
    let configuration = CompressedTensors.Configuration(
      quantized: quantized, activations: .dynamic, sparsityFormat: name.contains("24") ? "sparse-24-bitmask" : nil, ignore: [])
    let archive = try TensorArchive.Reader(contentsOf: path)
    let reader = CompressedTensors.Reader(archive: archive, configuration: configuration, path: path)
    let stored = try reader.stored("fc.weight")
    expectBitwiseEqual(stored.dense(), try archive.stored("reference").dense())
    #expect(stored.form.encoding == (quantized ? .int8Dynamic : .float32))
    #expect(stored.form.isSparse == (name != "w8a8-dense"))
  }

  @Test("the tensor names and shapes compressed-tensors 0.12 uses")
  func names() throws {
    let w = Self.twoFour(8, 16, seed: 1)
    let int824 = try CompressedTensors.encode(weight: "a.weight", StoredTensor.dense(w).stored(as: WeightForm(.nOfM(n: 2, m: 4), encoding: .int8Dynamic), name: "a"))
    #expect(int824.map(\.name) == ["a.weight_scale", "a.shape", "a.compressed", "a.bitmask"])
    #expect(int824.map(\.tensor.shape) == [[8, 1], [2, 1], [8, 8], [8, 2]])
    #expect(int824[2].tensor.dtype == .int8 && int824[3].tensor.dtype == .uint8)
    let csr = try CompressedTensors.encode(weight: "b.weight", StoredTensor.dense(w).stored(as: .csr, name: "b"))
    #expect(csr.map(\.name) == ["b.shape", "b.compressed", "b.bitmask", "b.row_offsets"])
    #expect(csr[0].tensor.shape == [2] && csr[3].tensor.dtype == .int64)
    // NumPy packbits(bitorder="little"): column c of a row is bit c % 8 of byte c / 8.
    let mask = Tensor([1, 0, 1, 0, 0, 0, 0, 0, 0, 1] as [Float], shape: [1, 10])
    let bits = try CompressedTensors.encode(weight: "c.weight", StoredTensor.dense(mask).stored(as: .csr, name: "c"))
    #expect(bits[2].tensor.scalars(as: UInt8.self) == [0b0000_0101, 0b10])
  }

  struct Broken: Sendable, CustomTestStringConvertible {
    var note: String
    var tensors: @Sendable () -> [(String, Tensor)]
    var message: String
    var testDescription: String { note }
  }

  static let broken: [Broken] = [
    Broken(
      note: "a 2:4 bitmask group keeping 3",
      tensors: {
        [("m.fc.shape", Tensor([1, 4] as [Int64], shape: [2, 1])), ("m.fc.compressed", Tensor([1, 2] as [Float], shape: [1, 2])),
         ("m.fc.bitmask", Tensor([0b0111] as [UInt8], shape: [1, 1]))]
      }, message: "row 0, columns 0..<4: the bitmask keeps 3 values, 2:4 needs 2"),
    Broken(
      note: "compressed of the wrong shape",
      tensors: {
        [("m.fc.shape", Tensor([1, 8] as [Int64], shape: [2, 1])), ("m.fc.compressed", Tensor([1, 2] as [Float], shape: [1, 2])),
         ("m.fc.bitmask", Tensor([0b0011_0011] as [UInt8], shape: [1, 1]))]
      }, message: "m.fc.compressed must be [1, 4]"),
    Broken(
      note: "a bitmask of the wrong shape",
      tensors: {
        [("m.fc.shape", Tensor([2, 4] as [Int64], shape: [2, 1])), ("m.fc.compressed", Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])),
         ("m.fc.bitmask", Tensor([3] as [UInt8], shape: [1, 1]))]
      }, message: "m.fc.bitmask must be U8 [2, 1]"),
    Broken(
      note: "sparse-bitmask values not matching the mask",
      tensors: {
        [("m.fc.shape", Tensor([1, 8] as [Int64], shape: [2])), ("m.fc.compressed", Tensor([1, 2, 3] as [Float], shape: [3])),
         ("m.fc.bitmask", Tensor([0b11] as [UInt8], shape: [1, 1])), ("m.fc.row_offsets", Tensor([0] as [Int64], shape: [1]))]
      }, message: "m.fc.compressed must hold the bitmask's 2 values"),
    Broken(
      note: "row offsets not matching",
      tensors: {
        [("m.fc.shape", Tensor([2, 8] as [Int64], shape: [2])), ("m.fc.compressed", Tensor([1, 2] as [Float], shape: [2])),
         ("m.fc.bitmask", Tensor([1, 1] as [UInt8], shape: [2, 1])), ("m.fc.row_offsets", Tensor([0, 0] as [Int64], shape: [2]))]
      }, message: "m.fc.row_offsets do not match"),
    Broken(
      note: "int8 values without scales",
      tensors: { [("m.fc.weight", Tensor([1, 2] as [Int8], shape: [1, 2]))] }, message: "int8 values need m.fc.weight_scale"),
    Broken(
      note: "scales of the wrong count",
      tensors: {
        [("m.fc.weight", Tensor([1, 2, 3, 4] as [Int8], shape: [2, 2])), ("m.fc.weight_scale", Tensor([0.1, 0.2, 0.3] as [Float], shape: [3, 1]))]
      }, message: "one scale per row (2)"),
    Broken(
      note: "a nonzero zero point",
      tensors: {
        [("m.fc.weight", Tensor([1, 2] as [Int8], shape: [1, 2])), ("m.fc.weight_scale", Tensor([0.1] as [Float], shape: [1, 1])),
         ("m.fc.weight_zero_point", Tensor([3] as [Int8], shape: [1, 1]))]
      }, message: "only symmetric"),
    Broken(
      note: "a negative scale",
      tensors: {
        [("m.fc.weight", Tensor([1, 2] as [Int8], shape: [1, 2])), ("m.fc.weight_scale", Tensor([-0.1] as [Float], shape: [1, 1]))]
      }, message: "scale of row 0 must be positive and finite"),
  ]

  @Test("a broken weight is one error naming the tensor and the rule", arguments: broken)
  func brokenWeights(_ c: Broken) throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/model.safetensors"
      try SafetensorsFile.write(c.tensors(), to: path)
      let reader = CompressedTensors.Reader(archive: try TensorArchive.Reader(contentsOf: path), configuration: Self.w8a8, path: path)
      do {
        _ = try reader.stored("m.fc.weight")
        Issue.record("\(c.note): accepted")
      } catch {
        let text = "\(error)"
        #expect(text.contains("m.fc.weight") && text.contains(c.message) && !text.contains("\n"), "\(text)")
      }
    }
  }

  @Test("configs: W8A8 and weight-only parse, others are errors naming the field; non-compressed-tensors is nil")
  func configurations() throws {
    let written = Self.w8a8.json
    let parsed = try CompressedTensors.Configuration(config: ["quantization_config": written], path: "config.json")
    #expect(parsed == Self.w8a8)
    let weightOnly = CompressedTensors.Configuration(quantized: true, activations: .none, sparsityFormat: nil, ignore: [])
    #expect(try CompressedTensors.Configuration(config: ["quantization_config": weightOnly.json], path: "c") == weightOnly)
    #expect(try CompressedTensors.Configuration(config: ["quantization_config": ["quant_method": "gptq"]], path: "c") == nil)
    #expect(try CompressedTensors.Configuration(config: [:], path: "c") == nil)
    func rejects(_ edit: (inout [String: Any]) -> Void, _ message: String) {
      var group = (written["config_groups"] as! [String: Any])["group_0"] as! [String: Any]
      edit(&group)
      var q = written
      q["config_groups"] = ["group_0": group]
      do {
        _ = try CompressedTensors.Configuration(config: ["quantization_config": q], path: "config.json")
        Issue.record("accepted: \(message)")
      } catch {
        #expect("\(error)".contains(message), "\(error)")
      }
    }
    rejects({ g in var w = g["weights"] as! [String: Any]; w["num_bits"] = 4; g["weights"] = w }, "only 8-bit int")
    rejects({ g in var w = g["weights"] as! [String: Any]; w["strategy"] = "group"; g["weights"] = w }, "weights.strategy")
    rejects({ g in var w = g["weights"] as! [String: Any]; w["symmetric"] = false; g["weights"] = w }, "weights.symmetric")
    rejects({ g in var a = g["input_activations"] as! [String: Any]; a["dynamic"] = false; g["input_activations"] = a }, "input_activations.dynamic")
  }
}
