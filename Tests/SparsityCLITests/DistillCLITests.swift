import Foundation
import Sparsity
import SparsityTestSupport
import Testing

/// End-to-end tests of `sparsity prune-encoder` + `sparsity distill` on a tiny random BERT.
@Suite(.serialized)
struct DistillCLITests {
  /// A directory with a tiny BERT folder `model/` (random weights, a 12-token vocabulary),
  /// `corpus.json` (a few sentences per part) and `other.safetensors` (a mismatched model).
  static func workspace() throws -> URL {
    let directory = try makeTemporaryDirectory("sparsity-distill")
    let model = directory.appendingPathComponent("model")
    try FileManager.default.createDirectory(at: model, withIntermediateDirectories: false)
    let c = BertConfiguration(vocabularySize: 12, hiddenSize: 16, layerCount: 2, headCount: 2, intermediateSize: 32, maxPositions: 16)
    try SafetensorsFile.write(BertModel(c, seed: 4).stateDict(), to: model.appendingPathComponent("model.safetensors").path)
    try """
    {"vocab_size": 12, "hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 32,
     "max_position_embeddings": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
    """.write(to: model.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
    try ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "."].joined(separator: "\n")
      .write(to: model.appendingPathComponent("vocab.txt"), atomically: true, encoding: .utf8)
    let sentences = ["the cat sat on the mat.", "cats sat.", "the mat", "on the cat", "the cats sat on the mats.", "mat", "cat on mat.", "sat on the mat"]
    let corpus: [String: Any] = [
      "source": "test", "calibration": sentences, "evaluation": ["the cat", "mats"],
      "retrieval": ["queries": ["cat"], "documents": ["the cat", "a mat", "sat", "on", "cats"]], "throughput": ["the cat sat"],
    ]
    try JSONSerialization.data(withJSONObject: corpus).write(to: directory.appendingPathComponent("corpus.json"))
    let other = BertConfiguration(vocabularySize: 12, hiddenSize: 8, layerCount: 2, headCount: 2, intermediateSize: 32, maxPositions: 16)
    try SafetensorsFile.write(BertModel(other).stateDict(), to: directory.appendingPathComponent("other.safetensors").path)
    return directory
  }

  @Test func pruneThenDistillKeepsTheZeros() throws {
    let directory = try Self.workspace()
    let prune = try CLITests.run(
      ["prune-encoder", "--model", "model", "-o", "pruned.safetensors", "--method", "magnitude", "--corpus", "corpus.json"], in: directory)
    #expect(prune.status == 0, "\(prune.stderr)")
    let distill = try CLITests.run(
      [
        "distill", "--model", "model", "--weights", "pruned.safetensors", "-o", "distilled.safetensors", "--epochs", "3",
        "--batch-size", "3", "--learning-rate", "1e-2", "--corpus", "corpus.json",
      ], in: directory)
    #expect(distill.status == 0, "\(distill.stderr)")
    #expect(distill.stdout.contains("keeping the zeros of 12 encoder weights (50.0% of their values)"), "\(distill.stdout)")
    #expect(distill.stdout.contains("epoch 3/3: loss"), "\(distill.stdout)")
    func loss(_ label: String) throws -> Double {
      let line = try #require(distill.stdout.split(separator: "\n").first { $0.hasPrefix(label) })
      return try #require(Double(line.dropFirst(label.count).trimmingCharacters(in: .whitespaces)))
    }
    #expect(try loss("loss after:") < loss("loss before:"))

    let pruned = try TensorArchive(contentsOf: directory.appendingPathComponent("pruned.safetensors").path)
    let distilled = try TensorArchive(contentsOf: directory.appendingPathComponent("distilled.safetensors").path)
    #expect(Set(distilled.tensors.map(\.name)) == Set(pruned.tensors.map(\.name)))
    var changed = 0
    for (name, stored) in pruned.tensors {
      let before = stored.dense(), after = try #require(distilled[name]).dense()
      if name.hasPrefix("embeddings.") { #expect(after == before, "\(name) is frozen") }
      if name.hasSuffix(".weight") && before.rank == 2 && name.hasPrefix("encoder.") {
        let kept = Mask(nonzerosOf: before).tensor.scalars(as: Bool.self)
        let nonzero = Mask(nonzerosOf: after).tensor.scalars(as: Bool.self)
        #expect(!zip(nonzero, kept).contains { $0 && !$1 }, "\(name): a pruned weight became nonzero")
        if after != before { changed += 1 }
      }
    }
    #expect(changed == 12)
  }

  struct ErrorCase: Sendable, CustomTestStringConvertible {
    var weights: String
    var message: String
    var testDescription: String { message }
  }

  @Test(arguments: [
    ErrorCase(weights: "missing.safetensors", message: "missing.safetensors"),
    ErrorCase(weights: "other.safetensors", message: "has shape [12, 8], the model's parameter has [12, 16]"),
    ErrorCase(weights: "model/model.safetensors", message: "no encoder Linear weight holds zeros"),
  ])
  func errorsAreOneLineAndWriteNothing(_ c: ErrorCase) throws {
    let directory = try Self.workspace()
    let result = try CLITests.run(
      ["distill", "--model", "model", "--weights", c.weights, "-o", "out.safetensors", "--corpus", "corpus.json"], in: directory)
    #expect(result.status != 0)
    #expect(result.stderr.contains(c.message), "\(result.stderr)")
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("out.safetensors").path))
  }
}
