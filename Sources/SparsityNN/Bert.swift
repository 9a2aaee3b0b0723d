import Foundation
import SparsityCore
import SparsityIO

/// The fields of a Hugging Face BERT `config.json` that the encoder needs.
public struct BertConfiguration: Sendable, Equatable, Codable {
  public var vocabularySize: Int
  public var hiddenSize: Int
  public var layerCount: Int
  public var headCount: Int
  public var intermediateSize: Int
  public var maxPositions: Int
  public var typeVocabularySize: Int
  public var layerNormEpsilon: Double
  public var hiddenActivation: String

  enum CodingKeys: String, CodingKey {
    case vocabularySize = "vocab_size", hiddenSize = "hidden_size", layerCount = "num_hidden_layers"
    case headCount = "num_attention_heads", intermediateSize = "intermediate_size"
    case maxPositions = "max_position_embeddings", typeVocabularySize = "type_vocab_size"
    case layerNormEpsilon = "layer_norm_eps", hiddenActivation = "hidden_act"
  }

  public init(
    vocabularySize: Int, hiddenSize: Int, layerCount: Int, headCount: Int, intermediateSize: Int, maxPositions: Int,
    typeVocabularySize: Int = 2, layerNormEpsilon: Double = 1e-12, hiddenActivation: String = "gelu"
  ) {
    self.vocabularySize = vocabularySize
    self.hiddenSize = hiddenSize
    self.layerCount = layerCount
    self.headCount = headCount
    self.intermediateSize = intermediateSize
    self.maxPositions = maxPositions
    self.typeVocabularySize = typeVocabularySize
    self.layerNormEpsilon = layerNormEpsilon
    self.hiddenActivation = hiddenActivation
  }

  /// Reads `config.json`, checking that the encoder can run it.
  public init(contentsOf path: String) throws(ModelLoadingError) {
    let data: Data
    do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
      throw .unreadable(path: path, detail: "cannot read: \(error.localizedDescription)")
    }
    do { self = try JSONDecoder().decode(BertConfiguration.self, from: data) } catch {
      throw .unreadable(path: path, detail: "not a BERT config.json (\(Self.describe(error)))")
    }
    guard hiddenActivation == "gelu" else {
      throw .unsupported(path: path, detail: "hidden_act '\(hiddenActivation)' (only 'gelu' is implemented)")
    }
    let sizes = [vocabularySize, hiddenSize, layerCount, headCount, intermediateSize, maxPositions, typeVocabularySize]
    guard sizes.allSatisfy({ $0 > 0 }), hiddenSize % headCount == 0 else {
      throw .unsupported(path: path, detail: "sizes must be positive and hidden_size a multiple of num_attention_heads")
    }
  }

  static func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): "missing key '\(key.stringValue)'"
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
      "wrong type at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
    default: "invalid JSON"
    }
  }
}

/// Why a model folder could not be loaded.
public enum ModelLoadingError: Error, Equatable, CustomStringConvertible {
  case unreadable(path: String, detail: String)
  case unsupported(path: String, detail: String)
  case weights(path: String, StateDictError)

  public var description: String {
    switch self {
    case let .unreadable(path, detail): "\(path): \(detail)"
    case let .unsupported(path, detail): "\(path): unsupported model: \(detail)"
    case let .weights(path, error): "\(path): \(error)"
    }
  }
}

/// One post-norm BERT encoder layer with Hugging Face's parameter names.
public final class BertLayer: Module {
  public let query, key, value, attentionOutput, intermediate, output: Linear
  public let attentionNorm, outputNorm: LayerNorm
  public let heads: Int
  /// q, k and v as one product at inference.
  let stackedQKV: StackedLinear

  init(_ c: BertConfiguration, generator: inout SeededGenerator) {
    let (d, i) = (c.hiddenSize, c.intermediateSize)
    query = Linear(d, d, generator: &generator)
    key = Linear(d, d, generator: &generator)
    value = Linear(d, d, generator: &generator)
    attentionOutput = Linear(d, d, generator: &generator)
    attentionNorm = LayerNorm(d, epsilon: Float(c.layerNormEpsilon))
    intermediate = Linear(d, i, generator: &generator)
    output = Linear(i, d, generator: &generator)
    outputNorm = LayerNorm(d, epsilon: Float(c.layerNormEpsilon))
    heads = c.headCount
    stackedQKV = StackedLinear([query, key, value])
  }

  public override var children: [(name: String, module: Module)] {
    [
      ("attention.self.query", query), ("attention.self.key", key), ("attention.self.value", value),
      ("attention.output.dense", attentionOutput), ("attention.output.LayerNorm", attentionNorm),
      ("intermediate.dense", intermediate), ("output.dense", output), ("output.LayerNorm", outputNorm),
    ]
  }

  /// h `[batch, tokens, hidden]` → same shape; `time` records each step's seconds by name.
  func callAsFunction(_ h: Variable, keyMask: [Int32], time: (String, () -> Variable) -> Variable) -> Variable {
    let context: Variable
    if stackedQKV.isAvailable {
      let qkv = time("attention q/k/v") { self.stackedQKV(h) }
      context = time("attention softmax(qkᵀ)v") { attention(stackedQKV: qkv, heads: self.heads, keyMask: keyMask) }
    } else {
      let (q, k, v) = (time("attention q/k/v") { self.query(h) }, time("attention q/k/v") { self.key(h) }, time("attention q/k/v") { self.value(h) })
      context = time("attention softmax(qkᵀ)v") { attention(query: q, key: k, value: v, heads: self.heads, keyMask: keyMask) }
    }
    let projected = time("attention output") { self.attentionOutput(context) }
    let a = time("layer norms + residuals") { self.attentionNorm(h, adding: projected) }
    let expanded = time("intermediate") { self.intermediate(a) }
    let inner = time("GELU") { geluConsuming(expanded) }
    let out = time("output") { self.output(inner) }
    return time("layer norms + residuals") { self.outputNorm(a, adding: out) }
  }
}

/// A BERT encoder (`BertModel` without the pooler) with Hugging Face state-dict names:
/// `embeddings.word_embeddings.weight`, `encoder.layer.0.attention.self.query.weight`, ….
public final class BertModel: Module {
  public let configuration: BertConfiguration
  public let wordEmbeddings, positionEmbeddings, tokenTypeEmbeddings: Embedding
  public let embeddingNorm: LayerNorm
  public let layers: [BertLayer]

  /// A randomly initialised encoder (tests); use ``init(directory:)`` for a pretrained one.
  public init(_ c: BertConfiguration, seed: UInt64 = 0) {
    var g = SeededGenerator(seed: seed)
    configuration = c
    wordEmbeddings = Embedding(c.vocabularySize, c.hiddenSize, generator: &g)
    positionEmbeddings = Embedding(c.maxPositions, c.hiddenSize, generator: &g)
    tokenTypeEmbeddings = Embedding(c.typeVocabularySize, c.hiddenSize, generator: &g)
    embeddingNorm = LayerNorm(c.hiddenSize, epsilon: Float(c.layerNormEpsilon))
    layers = (0..<c.layerCount).map { _ in BertLayer(c, generator: &g) }
  }

  public override var children: [(name: String, module: Module)] {
    [
      ("embeddings.word_embeddings", wordEmbeddings), ("embeddings.position_embeddings", positionEmbeddings),
      ("embeddings.token_type_embeddings", tokenTypeEmbeddings), ("embeddings.LayerNorm", embeddingNorm),
    ] + layers.enumerated().map { ("encoder.layer.\($0.offset)", $0.element) }
  }

  /// Loads `config.json` and the weights (`model.safetensors`, or the shards listed in
  /// `model.safetensors.index.json`) of a Hugging Face BERT folder. Tensors the encoder does not
  /// use (`pooler.*`, `embeddings.position_ids`) are ignored; a `bert.` prefix is stripped.
  ///
  /// - Throws: ``ModelLoadingError`` naming the file and the missing or mismatched tensor.
  public convenience init(directory: String) throws(ModelLoadingError) {
    let c = try BertConfiguration(contentsOf: (directory as NSString).appendingPathComponent("config.json"))
    self.init(c)
    try load(weightsIn: directory)
  }

  /// Replaces the weights with those of `path` (a safetensors file; sparse tensors stored in
  /// this package's formats are decompressed), which must hold every parameter.
  public func load(weightsFile path: String) throws(ModelLoadingError) {
    let tensors = try Self.readTensors(path)
    do { try load(tensors, strict: false) } catch { throw .weights(path: path, error) }
  }

  private func load(weightsIn directory: String) throws(ModelLoadingError) {
    let single = (directory as NSString).appendingPathComponent("model.safetensors")
    let index = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
    if FileManager.default.fileExists(atPath: single) {
      try load(weightsFile: single)
      return
    }
    guard FileManager.default.fileExists(atPath: index) else {
      throw .unreadable(path: directory, detail: "neither model.safetensors nor model.safetensors.index.json is there")
    }
    let shards: [String]
    do {
      let data = try Data(contentsOf: URL(fileURLWithPath: index))
      struct Index: Decodable { var weight_map: [String: String] }
      shards = Set(try JSONDecoder().decode(Index.self, from: data).weight_map.values).sorted()
    } catch {
      throw .unreadable(path: index, detail: "not a safetensors index (needs a weight_map object)")
    }
    var tensors: [String: Tensor] = [:]
    for shard in shards {
      guard !shard.contains("/") else { throw .unreadable(path: index, detail: "shard '\(shard)' is not a file name in the folder") }
      tensors.merge(try Self.readTensors((directory as NSString).appendingPathComponent(shard))) { a, _ in a }
    }
    do { try load(tensors, strict: false) } catch { throw .weights(path: index, error) }
  }

  static func readTensors(_ path: String) throws(ModelLoadingError) -> [String: Tensor] {
    do {
      let archive = try TensorArchive(contentsOf: path)
      var tensors: [String: Tensor] = [:]
      for (name, stored) in archive.tensors {
        let key = name.hasPrefix("bert.") ? String(name.dropFirst(5)) : name
        tensors[key] = stored.dense()
      }
      return tensors
    } catch {
      throw .unreadable(path: path, detail: "\(error)")
    }
  }

  /// The last hidden states `[batch, tokens, hidden]` of token ids `[batch, tokens]` (row-major)
  /// with their attention mask (1 = token, 0 = padding).
  ///
  /// - Parameter time: wraps each step; gets a step name (for per-layer profiles).
  public func hiddenStates(
    ids: [Int32], attentionMask: [Int32], batch: Int, tokens: Int,
    time: (String, () -> Variable) -> Variable = { $1() }
  ) -> Variable {
    let c = configuration
    precondition(ids.count == batch * tokens && attentionMask.count == ids.count, "ids and mask must hold \(batch)×\(tokens) values")
    precondition(tokens <= c.maxPositions, "\(tokens) tokens exceed the model's \(c.maxPositions) positions")
    let h = time("embeddings") { self.embeddings(ids: ids, batch: batch, tokens: tokens) }
    return encoded(h, attentionMask: attentionMask, time: time)
  }

  /// The normalised sum of word, position and token-type embeddings: `[batch, tokens, hidden]`.
  func embeddings(ids: [Int32], batch: Int, tokens: Int) -> Variable {
    let positions = (0..<batch).flatMap { _ in (0..<Int32(tokens)) }
    let sum = add(add(wordEmbeddings(ids), positionEmbeddings(positions)), tokenTypeEmbeddings([Int32](repeating: 0, count: ids.count)))
    return reshaped(embeddingNorm(sum), [batch, tokens, configuration.hiddenSize])
  }

  /// The encoder layers applied to embeddings `h` `[batch, tokens, hidden]`.
  func encoded(
    _ h: Variable, attentionMask: [Int32], time: (String, () -> Variable) -> Variable = { $1() }
  ) -> Variable {
    var h = h
    for layer in layers { h = layer(h, keyMask: attentionMask, time: time) }
    return h
  }
}
