import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityNN
import SparsityTestSupport
import SparsityText
import Testing

@testable import SparsityModels

/// A tiny BERT folder (random weights, a 12-token vocabulary) in a fresh directory.
func tinyBertFolder(mutate: (inout [(name: String, tensor: Tensor)], inout String) -> Void = { _, _ in }) throws -> String {
  let directory = try makeTemporaryDirectory("bert").path
  let c = BertConfiguration(vocabularySize: 12, hiddenSize: 8, layerCount: 2, headCount: 2, intermediateSize: 16, maxPositions: 16)
  var tensors = BertModel(c, seed: 3).stateDict()
  tensors.append(("pooler.dense.weight", Tensor(zeros: [8, 8])))  // unused by the encoder: ignored
  var config = """
    {"vocab_size": 12, "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
     "max_position_embeddings": 16, "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu", "model_type": "bert"}
    """
  mutate(&tensors, &config)
  try config.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
  try SafetensorsFile.write(tensors, to: directory + "/model.safetensors")
  let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "."]
  try vocabulary.joined(separator: "\n").write(toFile: directory + "/vocab.txt", atomically: true, encoding: .utf8)
  return directory
}

@Suite("BERT loading and sentence embeddings")
struct BertTests {
  @Test("a folder loads; padding does not change a sentence's embedding; embeddings are unit length")
  func loadsAndPools() throws {
    let embedder = try SentenceEmbedder(directory: try tinyBertFolder())
    let texts = ["the cat sat on the mat.", "cats", "the mat"]
    let together = embedder.embed(texts, batchSize: 3)
    for (i, text) in texts.enumerated() {
      let alone = embedder.embed([text], batchSize: 1)
      let row = Array(together[i * 8..<(i + 1) * 8])
      #expect(zip(alone, row).allSatisfy { abs($0 - $1) < 1e-5 }, "\(text)")
      #expect(abs(row.reduce(0) { $0 + $1 * $1 } - 1) < 1e-5)
    }
  }

  @Test("the sharded index form loads the same weights")
  func shardedIndex() throws {
    let folder = try tinyBertFolder()
    let reference = try BertModel(directory: folder)
    let file = try SafetensorsFile(contentsOf: folder + "/model.safetensors")
    let names = file.entries.map(\.name)
    let half = names.count / 2
    try SafetensorsFile.write(try names[..<half].map { ($0, try file.tensor(named: $0)) }, to: folder + "/part-1.safetensors")
    try SafetensorsFile.write(try names[half...].map { ($0, try file.tensor(named: $0)) }, to: folder + "/part-2.safetensors")
    let map = names.enumerated().map { "\"\($0.element)\": \"part-\($0.offset < half ? 1 : 2).safetensors\"" }
    try "{\"metadata\": {}, \"weight_map\": {\(map.joined(separator: ", "))}}".write(
      toFile: folder + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
    try FileManager.default.removeItem(atPath: folder + "/model.safetensors")
    let sharded = try BertModel(directory: folder)
    #expect(sharded.stateDict().map(\.tensor) == reference.stateDict().map(\.tensor))
  }

  @Test("missing or mis-shaped tensors and bad configs give errors naming them")
  func loadingErrors() throws {
    let missing = try tinyBertFolder { tensors, _ in tensors.removeAll { $0.name == "encoder.layer.1.output.dense.weight" } }
    #expect(throws: ModelLoadingError.weights(path: missing + "/model.safetensors", .missingTensor("encoder.layer.1.output.dense.weight"))) {
      try BertModel(directory: missing)
    }
    let misShaped = try tinyBertFolder { tensors, _ in
      let i = tensors.firstIndex { $0.name == "embeddings.word_embeddings.weight" }!
      tensors[i].tensor = Tensor(zeros: [13, 8])
    }
    #expect(
      throws: ModelLoadingError.weights(
        path: misShaped + "/model.safetensors", .shapeMismatch(tensor: "embeddings.word_embeddings.weight", expected: [12, 8], found: [13, 8]))
    ) { try BertModel(directory: misShaped) }
    let relu = try tinyBertFolder { _, config in config = config.replacingOccurrences(of: "\"gelu\"", with: "\"relu\"") }
    #expect(throws: ModelLoadingError.unsupported(path: relu + "/config.json", detail: "hidden_act 'relu' (only 'gelu' is implemented)")) {
      try BertModel(directory: relu)
    }
    let noHeads = try tinyBertFolder { _, config in config = config.replacingOccurrences(of: "\"num_attention_heads\": 2,", with: "") }
    do {
      _ = try BertModel(directory: noHeads)
      Issue.record("a config without num_attention_heads loaded")
    } catch {
      #expect("\(error)".contains("missing key 'num_attention_heads'"))
    }
    #expect(throws: ModelLoadingError.self) { try BertModel(directory: "/nonexistent/model") }
  }

  @Test("the packed form suits a weight's zeros: 2:4, BSR or CSR, decided without a dense copy")
  func automaticFormats() throws {
    var g = SeededGenerator(seed: 9)
    let w = Tensor.randomNormal([64, 64], using: &g)
    let twoFour = w.masked(by: Tensor((0..<4096).map { $0 % 4 < 2 }, shape: [64, 64]))
    let blocks = w.masked(by: Tensor((0..<4096).map { (($0 / 64) / 32 + ($0 % 64) / 32) % 2 == 0 }, shape: [64, 64]))
    let loose = w.masked(by: w.compared(.greater, 0.5))
    #expect(StoredTensor.dense(twoFour).suitableForm() == .twoFour)
    #expect(StoredTensor.dense(blocks).suitableForm() == .bsr(32, 32))
    #expect(StoredTensor.dense(loose).suitableForm() == .csr)
    #expect(StoredTensor.dense(w).suitableForm() == .dense)
    // The same choices from the compressed forms, without a dense copy.
    #expect(StoredTensor.csr(try CSRMatrix(dense: twoFour)).suitableForm() == .twoFour)
    #expect(StoredTensor.bsr(try BSRMatrix(dense: blocks, blockRows: 32, blockColumns: 32)).suitableForm() == .bsr(32, 32))
  }

  @Test(
    "inference runs q/k/v as one stacked product with the same hidden states, dense and compressed",
    arguments: [nil, WeightForm.twoFour, .bsr(4, 4), .csr])
  func stackedProjection(format: WeightForm?) throws {
    let c = BertConfiguration(vocabularySize: 12, hiddenSize: 16, layerCount: 2, headCount: 2, intermediateSize: 24, maxPositions: 16)
    let model = BertModel(c, seed: 5)
    model.train(false)
    if let format {
      // 2:4: the first two of every four inputs kept; BSR and CSR: a checkerboard of 4×4 blocks.
      for (_, linear) in model.linearLayers() {
        let k = linear.inFeatures
        linear.weight.value = linear.weight.value.enumerated().map { i, w in
          let (row, column) = (i / k, i % k)
          let kept = format == .twoFour ? column % 4 < 2 : (row / 4 + column / 4) % 2 == 0
          return kept ? w : 0
        }
      }
      try sparsify(model, form: format)
    }
    let ids: [Int32] = [2, 5, 6, 7, 3, 0, 2, 8, 9, 10, 11, 3]
    let mask: [Int32] = [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]
    let layer = model.layers[0]
    let stacked = Gradients.disabled {
      #expect(layer.stackedQKV.isAvailable)
      return model.hiddenStates(ids: ids, attentionMask: mask, batch: 2, tokens: 6).value
    }
    // An observer on a part makes the layers run q, k and v separately.
    for layer in model.layers { layer.query.inputObserver = { _ in } }
    let separate = Gradients.disabled {
      #expect(!layer.stackedQKV.isAvailable)
      return model.hiddenStates(ids: ids, attentionMask: mask, batch: 2, tokens: 6).value
    }
    let worst = zip(stacked, separate).map { abs($0 - $1) }.max() ?? 0
    #expect(worst <= 1e-5, "largest difference \(worst)")
  }
}

/// The pretrained all-MiniLM-L6-v2 from `scripts/fetch_minilm.py` (`SPARSITY_MINILM_DIR` or the
/// default cache folder); the tests that need it are skipped without it (CI fetches it).
let miniLMDirectory: String? = {
  let path =
    ProcessInfo.processInfo.environment["SPARSITY_MINILM_DIR"]
    ?? (NSHomeDirectory() as NSString).appendingPathComponent(".cache/swift-sparsity/models/all-MiniLM-L6-v2")
  return FileManager.default.fileExists(atPath: path + "/model.safetensors") ? path : nil
}()

/// Whether this is an optimized build: the MiniLM check takes ~10 minutes unoptimized, seconds
/// optimized (`.ci/run` runs it with `swift test -c release --filter MiniLMReferenceTests`).
#if DEBUG
  let optimizedBuild = false
#else
  let optimizedBuild = true
#endif

/// Dense all-MiniLM-L6-v2 against sentence-transformers (fixture from
/// `scripts/make_minilm_fixtures.py`): same token ids, cosine ≥ 0.9999 per text.
@Suite(
  "all-MiniLM-L6-v2 against sentence-transformers",
  .enabled(if: miniLMDirectory != nil, "run scripts/fetch_minilm.py first"),
  .enabled(if: optimizedBuild, "slow unoptimized: run with swift test -c release --filter MiniLMReferenceTests"))
struct MiniLMReferenceTests {
  struct Fixture: Decodable {
    struct Text: Decodable {
      var text: String
      var input_ids: [Int32]
      var embedding: [Float]
    }
    var max_seq_length: Int
    var texts: [Text]
  }

  @Test func embeddingsMatchSentenceTransformers() throws {
    let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("minilm_reference.json")
    let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: url))
    func cosine(_ a: ArraySlice<Float>, _ b: [Float]) -> Double {
      var (dot, na, nb) = (0.0, 0.0, 0.0)
      for (x, y) in zip(a, b) {
        dot += Double(x) * Double(y)
        na += Double(x) * Double(x)
        nb += Double(y) * Double(y)
      }
      return dot / max((na * nb).squareRoot(), 1e-30)
    }
    var worst = 1.0
    // Trainable layers, and the packed inference layers `sparsity embed` loads.
    for holding in [LoadedWeights.trainable, .packed] {
      let embedder = try SentenceEmbedder(directory: miniLMDirectory!, holding: holding)
      #expect(embedder.maxLength == fixture.max_seq_length)
      for t in fixture.texts {
        #expect(embedder.tokenizer.encode(t.text, maxLength: embedder.maxLength).ids == t.input_ids, "\(t.text.prefix(40))")
      }
      let ours = embedder.embed(fixture.texts.map(\.text), batchSize: 16)
      let d = embedder.model.configuration.hiddenSize
      for (i, t) in fixture.texts.enumerated() {
        let c = cosine(ours[i * d..<(i + 1) * d], t.embedding)
        worst = min(worst, c)
        #expect(c >= 0.9999, "\(holding) \(t.text.prefix(40)): cosine \(c)")
      }
    }
    print("MiniLM: \(fixture.texts.count) texts, lowest cosine to sentence-transformers \(worst)")
  }
}
