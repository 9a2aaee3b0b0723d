import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityNN
import SparsityTestSupport
import Testing

@testable import SparsityRecipes

/// `sparsity export`: a model folder with our pruned/quantized weights written in compressed-tensors
/// (read back through our compressed-tensors reader) or dense, the model's other files kept.
@Suite struct ModelExportTests {
  /// A BERT-like folder: config.json, a tokenizer file, a module folder, an embedding table and
  /// two Linear weights.
  static func makeModel(in directory: String) throws -> [String: Tensor] {
    let tensors: [String: Tensor] = [
      "embeddings.word_embeddings.weight": SyntheticWeights.dense(rows: 10, columns: 16, seed: 1),
      "encoder.layer.0.intermediate.dense.weight": SyntheticWeights.dense(rows: 32, columns: 16, seed: 2),
      "encoder.layer.0.output.dense.weight": SyntheticWeights.dense(rows: 16, columns: 32, seed: 3),
      "encoder.layer.0.output.dense.bias": SyntheticWeights.dense(rows: 1, columns: 16, seed: 4).reshaped([16]),
    ]
    try SafetensorsFile.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: directory + "/model.safetensors")
    try Data(#"{"model_type": "bert", "hidden_size": 16}"#.utf8).write(to: URL(fileURLWithPath: directory + "/config.json"))
    try Data("[PAD]\n[UNK]\n".utf8).write(to: URL(fileURLWithPath: directory + "/vocab.txt"))
    try FileManager.default.createDirectory(atPath: directory + "/1_Pooling", withIntermediateDirectories: false)
    try Data("{}".utf8).write(to: URL(fileURLWithPath: directory + "/1_Pooling/config.json"))
    return tensors
  }

  @Test("2:4 + W8A8 weights export as sparse-24-bitmask + int-quantized, read back exactly; other files kept")
  func compressedTensorsRoundTrip() throws {
    try withTemporaryDirectory { root in
      let model = root + "/model"
      try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: false)
      let tensors = try Self.makeModel(in: model)
      // Our file: the intermediate Linear pruned to 2:4 (stored dense with its zeros), quantized (W8A8).
      let name = "encoder.layer.0.intermediate.dense.weight"
      let pruned = SyntheticWeights.semiStructured(rows: 32, columns: 16, seed: 5)
      let quantized = try StoredTensor.dense(pruned).stored(as: WeightForm(.dense, encoding: .int8Dynamic), name: name)
      try TensorArchive(tensors: [(name, quantized)]).write(to: root + "/ours.safetensors")

      let report = try ModelExport.write(modelFolder: model, weights: root + "/ours.safetensors", format: .compressedTensors, to: root + "/out")
      #expect(report.compressedWeights == 1)
      #expect(report.configuration?.sparsityFormat == "sparse-24-bitmask")
      #expect(report.configuration?.activations == .dynamic)
      // The float Linear is left out of the quantization; the embedding table is not a Linear.
      #expect(report.configuration?.ignore.contains("encoder.layer.0.output.dense") == true)
      for file in ["vocab.txt", "1_Pooling/config.json"] { #expect(FileManager.default.fileExists(atPath: root + "/out/" + file)) }
      #expect(!FileManager.default.fileExists(atPath: root + "/out.partial-\(ProcessInfo.processInfo.processIdentifier)"))

      // Read back through the folder's quantization_config: the int8 2:4 values and scales exactly.
      let weights = try StoredWeights(modelFolder: root + "/out")
      let (back, _) = try weights.stored(name, shape: [32, 16])
      guard case let .quantized(q) = back, case let .quantized(expected) = quantized else {
        Issue.record("\(name) did not come back quantized: \(back.form)")
        return
      }
      #expect(q.activations == .dynamic)
      #expect(q.values.form.layout == .nOfM(n: 2, m: 4))
      #expect(q.values.dense() == expected.values.dense())
      #expect(q.scales == expected.scales)
      let (other, _) = try weights.stored("encoder.layer.0.output.dense.weight", shape: [16, 32])
      #expect(other.dense() == tensors["encoder.layer.0.output.dense.weight"])
    }
  }

  @Test("bad input: a tensor not in the model, an embedding compressed, nothing compressed, an existing output")
  func errors() throws {
    try withTemporaryDirectory { root in
      let model = root + "/model"
      try FileManager.default.createDirectory(atPath: model, withIntermediateDirectories: false)
      _ = try Self.makeModel(in: model)
      func export(_ tensors: [(String, StoredTensor)], to output: String = "/out") throws -> String {
        try TensorArchive(tensors: tensors).write(to: root + "/w.safetensors")
        let existed = FileManager.default.fileExists(atPath: root + output)
        do {
          _ = try ModelExport.write(modelFolder: model, weights: root + "/w.safetensors", format: .compressedTensors, to: root + output)
        } catch {
          #expect(FileManager.default.fileExists(atPath: root + output) == existed)
          return "\(error)"
        }
        return "no error"
      }
      let table = try StoredTensor.dense(SyntheticWeights.dense(rows: 10, columns: 16, seed: 1))
        .stored(as: WeightForm(.dense, encoding: .int8Dynamic), name: "t")
      #expect(try export([("decoder.weight", .dense(Tensor(zeros: [2, 2], dtype: .float32)))]).contains("'decoder.weight' is not a tensor of the model"))
      #expect(try export([("encoder.layer.0.output.dense.bias", .dense(Tensor(zeros: [3], dtype: .float32)))]).contains("has shape [3]"))
      #expect(try export([("embeddings.word_embeddings.weight", table)]).contains("looks like an embedding table"))
      #expect(try export([]).contains("nothing to compress"))
      try FileManager.default.createDirectory(atPath: root + "/taken", withIntermediateDirectories: false)
      #expect(try export([], to: "/taken").contains("exists"))
    }
  }
}
