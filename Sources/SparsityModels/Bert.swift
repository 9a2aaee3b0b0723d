import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityNN
import SparsityText

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

  package static func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.keyNotFound(let key, _): "missing key '\(key.stringValue)'"
    case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
      "wrong type at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
    default: "invalid JSON"
    }
  }
}

/// One post-norm BERT encoder layer with Hugging Face's parameter names.
public final class BertLayer: Module {
  public private(set) var query, key, value, attentionOutput, intermediate, output: LinearLayer
  public let attentionNorm, outputNorm: LayerNorm
  public let heads: Int
  /// q, k and v as one product at inference.
  lazy var stackedQKV = StackedLinear { [unowned self] in [self.query, self.key, self.value] }

  /// The layer `prefix` (`encoder.layer.3`) built from stored weights.
  init(_ c: BertConfiguration, prefix: String, weights: StoredWeights, holding: LoadedWeights) throws(ModelLoadingError) {
    let (d, i) = (c.hiddenSize, c.intermediateSize)
    func linear(_ name: String, _ k: Int, _ n: Int) throws(ModelLoadingError) -> LinearLayer {
      try weights.linear("\(prefix).\(name)", in: k, out: n, holding: holding)
    }
    func norm(_ name: String) throws(ModelLoadingError) -> LayerNorm {
      LayerNorm(
        weight: try weights.values("\(prefix).\(name).weight", shape: [d]), bias: try weights.values("\(prefix).\(name).bias", shape: [d]),
        epsilon: Float(c.layerNormEpsilon))
    }
    let qkv = try weights.stackedLinears(
      ["query", "key", "value"].map { "\(prefix).attention.self.\($0)" }, in: d, outs: [d, d, d], holding: holding)
    (query, key, value) = (qkv[0], qkv[1], qkv[2])
    attentionOutput = try linear("attention.output.dense", d, d)
    attentionNorm = try norm("attention.output.LayerNorm")
    intermediate = try linear("intermediate.dense", d, i)
    output = try linear("output.dense", i, d)
    outputNorm = try norm("output.LayerNorm")
    heads = c.headCount
  }

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
  }

  public override var children: [(name: String, module: Module)] {
    [
      ("attention.self.query", query), ("attention.self.key", key), ("attention.self.value", value),
      ("attention.output.dense", attentionOutput), ("attention.output.LayerNorm", attentionNorm),
      ("intermediate.dense", intermediate), ("output.dense", output), ("output.LayerNorm", outputNorm),
    ]
  }

  public override func replaceChild(_ name: String, with module: Module) {
    switch name {
    case "attention.self.query": query = Module.checked(module, replacing: query)
    case "attention.self.key": key = Module.checked(module, replacing: key)
    case "attention.self.value": value = Module.checked(module, replacing: value)
    case "attention.output.dense": attentionOutput = Module.checked(module, replacing: attentionOutput)
    case "intermediate.dense": intermediate = Module.checked(module, replacing: intermediate)
    case "output.dense": output = Module.checked(module, replacing: output)
    default: super.replaceChild(name, with: module)
    }
  }

  /// h `[batch, tokens, hidden]` → same shape; `time` records each step's seconds by name.
  package func callAsFunction(_ h: Variable, keyMask: [Int32], time: (String, () -> Variable) -> Variable) -> Variable {
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
    let out = feedForward(a, time: time)
    return time("layer norms + residuals") { self.outputNorm(a, adding: out) }
  }

  /// At inference the feed-forward block runs over chunks of this many tokens, so the
  /// intermediate activations (4× the hidden size) are held for one chunk at a time, not the
  /// whole batch (50 MB at 32 × 256 tokens for MiniLM).
  static let feedForwardChunk = 1024

  /// `output(GELU(intermediate(a)))`, in token chunks at inference.
  private func feedForward(_ a: Variable, time: (String, () -> Variable) -> Variable) -> Variable {
    let d = a.shape.last ?? 0
    let tokens = a.count / Swift.max(d, 1)
    func block(_ x: Variable) -> Variable {
      let expanded = time("intermediate") { self.intermediate(x) }
      let inner = time("GELU") { geluConsuming(expanded) }
      return time("output") { self.output(inner) }
    }
    guard !Gradients.areEnabled, tokens > Self.feedForwardChunk else { return block(a) }
    var out = [Float](repeating: 0, count: a.count)
    for t0 in stride(from: 0, to: tokens, by: Self.feedForwardChunk) {
      let t1 = Swift.min(tokens, t0 + Self.feedForwardChunk)
      let chunk = Variable(Array(a.value[t0 * d..<t1 * d]), shape: [t1 - t0, d])
      out.replaceSubrange(t0 * d..<t1 * d, with: block(chunk).value)
    }
    return Variable(out, shape: a.shape)
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

  /// Loads `config.json` and the weights of a Hugging Face BERT folder (`model.safetensors`, or
  /// the shards listed in `model.safetensors.index.json`), or of `weights` (a safetensors file
  /// holding every tensor the encoder uses, e.g. a pruned one; compressed tensors are read too).
  /// Tensors the encoder does not use (`pooler.*`, `embeddings.position_ids`) are ignored; a
  /// `bert.` prefix is stripped.
  ///
  /// - Parameter holding: trainable `Linear`s (the default), or inference ``PackedLinear``s
  ///   packed straight from the file (``LoadedWeights/packed``: only the packed weights stay resident).
  /// - Throws: ``ModelLoadingError`` naming the file and the missing or mismatched tensor.
  public init(directory: String, weights: String? = nil, holding: LoadedWeights = .trainable) throws(ModelLoadingError) {
    let c = try BertConfiguration(contentsOf: (directory as NSString).appendingPathComponent("config.json"))
    let stored =
      if let weights { try StoredWeights(paths: [weights], prefixes: ["bert."]) } else {
        try StoredWeights(modelFolder: directory, prefixes: ["bert."])
      }
    let d = c.hiddenSize
    configuration = c
    func table(_ name: String, _ count: Int) throws(ModelLoadingError) -> Embedding {
      let shape = [count, d]
      switch holding {
      case .trainable: return Embedding(weight: try stored.values(name, shape: shape))
      case .packed: return Embedding(frozen: try stored.stored(name, shape: shape).0.dense())
      }
    }
    wordEmbeddings = try table("embeddings.word_embeddings.weight", c.vocabularySize)
    positionEmbeddings = try table("embeddings.position_embeddings.weight", c.maxPositions)
    tokenTypeEmbeddings = try table("embeddings.token_type_embeddings.weight", c.typeVocabularySize)
    embeddingNorm = LayerNorm(
      weight: try stored.values("embeddings.LayerNorm.weight", shape: [d]), bias: try stored.values("embeddings.LayerNorm.bias", shape: [d]),
      epsilon: Float(c.layerNormEpsilon))
    var layers: [BertLayer] = []
    for index in 0..<c.layerCount {
      layers.append(try BertLayer(c, prefix: "encoder.layer.\(index)", weights: stored, holding: holding))
      // The packing's temporary buffers are not needed again (the heap keeps freed memory).
      if holding == .packed { MemoryTuning.releaseFreedMemory() }
    }
    self.layers = layers
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
  package func embeddings(ids: [Int32], batch: Int, tokens: Int) -> Variable {
    let positions = (0..<batch).flatMap { _ in (0..<Int32(tokens)) }
    let sum = add(add(wordEmbeddings(ids), positionEmbeddings(positions)), tokenTypeEmbeddings([Int32](repeating: 0, count: ids.count)))
    return reshaped(embeddingNorm(sum), [batch, tokens, configuration.hiddenSize])
  }

  /// The encoder layers applied to embeddings `h` `[batch, tokens, hidden]`.
  package func encoded(
    _ h: Variable, attentionMask: [Int32], time: (String, () -> Variable) -> Variable = { $1() }
  ) -> Variable {
    var h = h
    for layer in layers { h = layer(h, keyMask: attentionMask, time: time) }
    return h
  }
}
