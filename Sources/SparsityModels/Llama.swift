import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityNN

/// The fields of a Llama-family decoder (Llama, Mistral, Qwen2, SmolLM): from a Hugging Face
/// `config.json` or from a GGUF file's `llama.*`/`qwen2.*` metadata.
public struct LlamaConfiguration: Sendable, Equatable, Codable {
  /// `llama`, `mistral` or `qwen2` (Hugging Face's `model_type`).
  public var modelType: String
  public var vocabularySize: Int
  public var hiddenSize: Int
  public var intermediateSize: Int
  public var layerCount: Int
  public var headCount: Int
  public var kvHeadCount: Int
  public var headDimension: Int
  public var maxPositions: Int
  public var rmsNormEpsilon: Double
  public var ropeTheta: Double
  public var tieWordEmbeddings: Bool
  /// Whether q, k and v have biases (Qwen2).
  public var attentionBias: Bool
  public var bosTokenID: Int?
  public var eosTokenIDs: [Int]

  public init(
    modelType: String = "llama", vocabularySize: Int, hiddenSize: Int, intermediateSize: Int, layerCount: Int,
    headCount: Int, kvHeadCount: Int, headDimension: Int? = nil, maxPositions: Int, rmsNormEpsilon: Double = 1e-5,
    ropeTheta: Double = 10_000, tieWordEmbeddings: Bool = true, attentionBias: Bool = false, bosTokenID: Int? = nil,
    eosTokenIDs: [Int] = []
  ) {
    self.modelType = modelType
    self.vocabularySize = vocabularySize
    self.hiddenSize = hiddenSize
    self.intermediateSize = intermediateSize
    self.layerCount = layerCount
    self.headCount = headCount
    self.kvHeadCount = kvHeadCount
    self.headDimension = headDimension ?? (headCount > 0 ? hiddenSize / headCount : 0)
    self.maxPositions = maxPositions
    self.rmsNormEpsilon = rmsNormEpsilon
    self.ropeTheta = ropeTheta
    self.tieWordEmbeddings = tieWordEmbeddings
    self.attentionBias = attentionBias
    self.bosTokenID = bosTokenID
    self.eosTokenIDs = eosTokenIDs
  }

  /// The architectures whose forward pass this decoder implements.
  public static let supportedModelTypes: Set<String> = ["llama", "mistral", "qwen2"]

  /// Reads a Hugging Face `config.json`, checking that the decoder can run it.
  public init(contentsOf path: String) throws(ModelLoadingError) {
    let object: [String: Any]
    do {
      let data = try Data(contentsOf: URL(fileURLWithPath: path))
      guard let parsed = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
        throw ModelLoadingError.unreadable(path: path, detail: "not a JSON object")
      }
      object = parsed
    } catch let error as ModelLoadingError {
      throw error
    } catch {
      throw .unreadable(path: path, detail: "cannot read: \(error.localizedDescription)")
    }
    func integer(_ key: String) throws(ModelLoadingError) -> Int {
      guard let value = object[key] else { throw .unreadable(path: path, detail: "missing key '\(key)'") }
      guard let number = value as? NSNumber, let int = Int(exactly: number.doubleValue) else {
        throw .unreadable(path: path, detail: "'\(key)' must be an integer")
      }
      return int
    }
    func optionalInteger(_ key: String) throws(ModelLoadingError) -> Int? {
      object[key] == nil || object[key] is NSNull ? nil : try integer(key)
    }
    func number(_ key: String, in dictionary: [String: Any]) throws(ModelLoadingError) -> Double? {
      guard let value = dictionary[key], !(value is NSNull) else { return nil }
      guard let number = value as? NSNumber else { throw .unreadable(path: path, detail: "'\(key)' must be a number") }
      return number.doubleValue
    }
    let modelType = (object["model_type"] as? String) ?? ""
    guard Self.supportedModelTypes.contains(modelType) else {
      throw .unsupported(path: path, detail: "model_type '\(modelType)' (this decoder runs \(Self.supportedModelTypes.sorted().joined(separator: ", ")))")
    }
    if let act = object["hidden_act"] as? String, act != "silu" {
      throw .unsupported(path: path, detail: "hidden_act '\(act)' (only 'silu' is implemented)")
    }
    // transformers 5 writes rope_parameters {rope_theta, rope_type}; older files rope_theta and rope_scaling.
    var theta = try number("rope_theta", in: object)
    var ropeType = "default"
    for key in ["rope_parameters", "rope_scaling"] {
      guard let parameters = object[key] as? [String: Any] else { continue }
      theta = try number("rope_theta", in: parameters) ?? theta
      ropeType = (parameters["rope_type"] as? String) ?? (parameters["type"] as? String) ?? ropeType
    }
    guard ropeType == "default" else {
      throw .unsupported(path: path, detail: "rope type '\(ropeType)' (only the default rotary embedding is implemented)")
    }
    if let window = object["sliding_window"] as? Int, object["use_sliding_window"] as? Bool == true {
      throw .unsupported(path: path, detail: "sliding-window attention (window \(window))")
    }
    let heads = try integer("num_attention_heads")
    var eos: [Int] = []
    if let one = object["eos_token_id"] as? Int { eos = [one] } else if let many = object["eos_token_id"] as? [Int] { eos = many }
    self.init(
      modelType: modelType, vocabularySize: try integer("vocab_size"), hiddenSize: try integer("hidden_size"),
      intermediateSize: try integer("intermediate_size"), layerCount: try integer("num_hidden_layers"), headCount: heads,
      kvHeadCount: try optionalInteger("num_key_value_heads") ?? heads, headDimension: try optionalInteger("head_dim"),
      maxPositions: try integer("max_position_embeddings"), rmsNormEpsilon: try number("rms_norm_eps", in: object) ?? 1e-6,
      ropeTheta: theta ?? 10_000, tieWordEmbeddings: (object["tie_word_embeddings"] as? Bool) ?? false,
      attentionBias: modelType == "qwen2" || (object["attention_bias"] as? Bool ?? false),
      bosTokenID: try optionalInteger("bos_token_id"), eosTokenIDs: eos)
    if object["mlp_bias"] as? Bool == true { throw .unsupported(path: path, detail: "mlp_bias (Llama MLPs have no biases)") }
    try validate(path: path)
  }

  /// Checks sizes that the forward pass relies on.
  package func validate(path: String) throws(ModelLoadingError) {
    let sizes = [
      ("vocab_size", vocabularySize), ("hidden_size", hiddenSize), ("intermediate_size", intermediateSize),
      ("num_hidden_layers", layerCount), ("num_attention_heads", headCount), ("num_key_value_heads", kvHeadCount),
      ("head_dim", headDimension), ("max_position_embeddings", maxPositions),
    ]
    for (name, value) in sizes where value <= 0 || value > 1 << 24 {
      throw .unsupported(path: path, detail: "\(name) is \(value) (must be in 1...\(1 << 24))")
    }
    guard headCount % kvHeadCount == 0 else {
      throw .unsupported(path: path, detail: "num_attention_heads (\(headCount)) is not a multiple of num_key_value_heads (\(kvHeadCount))")
    }
    guard headDimension % 2 == 0 else { throw .unsupported(path: path, detail: "head_dim \(headDimension) is odd (rotary embeddings pair halves)") }
    guard rmsNormEpsilon > 0, ropeTheta > 0 else { throw .unsupported(path: path, detail: "rms_norm_eps and rope_theta must be positive") }
  }

  /// The Hugging Face `config.json` of this decoder (`LlamaForCausalLM`, or Mistral/Qwen2's own class).
  public func huggingFaceConfig() -> [String: Any] {
    let architecture = ["llama": "LlamaForCausalLM", "mistral": "MistralForCausalLM", "qwen2": "Qwen2ForCausalLM"][modelType] ?? "LlamaForCausalLM"
    var config: [String: Any] = [
      "architectures": [architecture], "model_type": modelType, "vocab_size": vocabularySize, "hidden_size": hiddenSize,
      "intermediate_size": intermediateSize, "num_hidden_layers": layerCount, "num_attention_heads": headCount,
      "num_key_value_heads": kvHeadCount, "head_dim": headDimension, "max_position_embeddings": maxPositions,
      "rms_norm_eps": rmsNormEpsilon, "rope_theta": ropeTheta, "tie_word_embeddings": tieWordEmbeddings, "hidden_act": "silu",
      "attention_bias": attentionBias, "mlp_bias": false, "torch_dtype": "float32", "use_cache": true,
    ]
    if let bosTokenID { config["bos_token_id"] = bosTokenID }
    if eosTokenIDs.count == 1 { config["eos_token_id"] = eosTokenIDs[0] } else if !eosTokenIDs.isEmpty { config["eos_token_id"] = eosTokenIDs }
    return config
  }
}

/// The keys and values of every layer for the tokens seen so far (after rotary embedding), so
/// that a new token attends to them without recomputing them.
public final class KVCache {
  public let layerCount: Int
  /// Values per cached token per layer (`kvHeads · headDimension`).
  public let width: Int
  /// The most tokens the cache holds.
  public let capacity: Int
  /// Tokens cached (the position of the next token).
  public internal(set) var count = 0
  var keys: [[Float]]
  var values: [[Float]]

  public convenience init(_ c: LlamaConfiguration, capacity: Int) {
    self.init(layers: c.layerCount, width: c.kvHeadCount * c.headDimension, capacity: capacity)
  }

  init(layers: Int, width: Int, capacity: Int) {
    layerCount = layers
    self.width = width
    self.capacity = capacity
    keys = (0..<layers).map { _ in [Float](repeating: 0, count: capacity * width) }
    values = keys
  }

  /// Forgets every token.
  public func reset() { count = 0 }

  /// Bytes held.
  public var byteCount: Int { 2 * layerCount * capacity * width * MemoryLayout<Float>.size }
}

/// One Llama decoder layer (pre-norm attention and SwiGLU MLP) with Hugging Face's names.
public final class LlamaDecoderLayer: Module {
  public private(set) var query, key, value, output, gate, up, down: LinearLayer
  public let inputNorm, postAttentionNorm: RMSNorm
  let c: LlamaConfiguration
  let rope: RotaryEmbedding
  lazy var stackedQKV = StackedLinear { [unowned self] in [self.query, self.key, self.value] }
  lazy var stackedGateUp = StackedLinear { [unowned self] in [self.gate, self.up] }

  /// Layer `prefix` (`model.layers.3`) from stored weights.
  package init(_ c: LlamaConfiguration, prefix: String, weights: StoredWeights, holding: LoadedWeights) throws(ModelLoadingError) {
    let (d, i) = (c.hiddenSize, c.intermediateSize)
    let (qOut, kvOut) = (c.headCount * c.headDimension, c.kvHeadCount * c.headDimension)
    let qkv = try weights.stackedLinears(
      ["q_proj", "k_proj", "v_proj"].map { "\(prefix).self_attn.\($0)" }, in: d, outs: [qOut, kvOut, kvOut], bias: c.attentionBias,
      holding: holding)
    (query, key, value) = (qkv[0], qkv[1], qkv[2])
    output = try weights.linear("\(prefix).self_attn.o_proj", in: qOut, out: d, bias: false, holding: holding)
    let gateUp = try weights.stackedLinears(
      ["gate_proj", "up_proj"].map { "\(prefix).mlp.\($0)" }, in: d, outs: [i, i], bias: false, holding: holding)
    (gate, up) = (gateUp[0], gateUp[1])
    down = try weights.linear("\(prefix).mlp.down_proj", in: i, out: d, bias: false, holding: holding)
    let epsilon = Float(c.rmsNormEpsilon)
    inputNorm = RMSNorm(weight: try weights.values("\(prefix).input_layernorm.weight", shape: [d]), epsilon: epsilon)
    postAttentionNorm = RMSNorm(weight: try weights.values("\(prefix).post_attention_layernorm.weight", shape: [d]), epsilon: epsilon)
    self.c = c
    rope = RotaryEmbedding(headDimension: c.headDimension, base: c.ropeTheta)
  }

  /// A randomly initialised layer (tests).
  init(_ c: LlamaConfiguration, generator: inout SeededGenerator) {
    let (d, i) = (c.hiddenSize, c.intermediateSize)
    let (qOut, kvOut) = (c.headCount * c.headDimension, c.kvHeadCount * c.headDimension)
    query = Linear(d, qOut, bias: c.attentionBias, generator: &generator)
    key = Linear(d, kvOut, bias: c.attentionBias, generator: &generator)
    value = Linear(d, kvOut, bias: c.attentionBias, generator: &generator)
    output = Linear(qOut, d, bias: false, generator: &generator)
    gate = Linear(d, i, bias: false, generator: &generator)
    up = Linear(d, i, bias: false, generator: &generator)
    down = Linear(i, d, bias: false, generator: &generator)
    inputNorm = RMSNorm(d, epsilon: Float(c.rmsNormEpsilon))
    postAttentionNorm = RMSNorm(d, epsilon: Float(c.rmsNormEpsilon))
    self.c = c
    rope = RotaryEmbedding(headDimension: c.headDimension, base: c.ropeTheta)
  }

  public override var children: [(name: String, module: Module)] {
    [
      ("input_layernorm", inputNorm), ("self_attn.q_proj", query), ("self_attn.k_proj", key), ("self_attn.v_proj", value),
      ("self_attn.o_proj", output), ("post_attention_layernorm", postAttentionNorm), ("mlp.gate_proj", gate),
      ("mlp.up_proj", up), ("mlp.down_proj", down),
    ]
  }

  public override func replaceChild(_ name: String, with module: Module) {
    switch name {
    case "self_attn.q_proj": query = Module.checked(module, replacing: query)
    case "self_attn.k_proj": key = Module.checked(module, replacing: key)
    case "self_attn.v_proj": value = Module.checked(module, replacing: value)
    case "self_attn.o_proj": output = Module.checked(module, replacing: output)
    case "mlp.gate_proj": gate = Module.checked(module, replacing: gate)
    case "mlp.up_proj": up = Module.checked(module, replacing: up)
    case "mlp.down_proj": down = Module.checked(module, replacing: down)
    default: super.replaceChild(name, with: module)
    }
  }

  /// The hidden states `h [tokens, hidden]` of tokens at positions `cache.count ..< cache.count + tokens`
  /// after this layer (`index` in the cache); their keys and values are written into the cache.
  /// Without a cache while gradients are enabled, the graph is recorded (training: the whole
  /// sequence at once); otherwise the inference kernels run.
  public func callAsFunction(_ h: Variable, layer index: Int, cache: KVCache?) -> Variable {
    let t = h.shape[0]
    let (heads, kvHeads, hd) = (c.headCount, c.kvHeadCount, c.headDimension)
    let (qWidth, kvWidth) = (heads * hd, kvHeads * hd)
    let x = inputNorm(h)
    let context: Variable
    if Gradients.areEnabled && cache == nil {
      let q = rotary(query(x), rope, heads: heads, offset: 0)
      let k = rotary(key(x), rope, heads: kvHeads, offset: 0)
      context = causalAttention(query: q, key: k, value: value(x), heads: heads, kvHeads: kvHeads)
    } else {
      let p0 = cache?.count ?? 0
      // Without a cache (one whole sequence), this layer's keys and values only.
      let (cache, index) = cache.map { ($0, index) } ?? (KVCache(layers: 1, width: kvWidth, capacity: t), 0)
      precondition(p0 + t <= cache.capacity, "the KV cache holds \(cache.capacity) tokens; \(p0 + t) needed")
      // q, k, v of every new token: one stacked product where the layers stack.
      var qkv: [Float]
      let (qOffset, kOffset, vOffset, stride): (Int, Int, Int, Int)
      if stackedQKV.isAvailable {
        qkv = stackedQKV(x).value
        (qOffset, kOffset, vOffset, stride) = (0, qWidth, qWidth + kvWidth, qWidth + 2 * kvWidth)
      } else {
        let (q, k, v) = (query(x).value, key(x).value, value(x).value)
        qkv = q + k + v
        (qOffset, kOffset, vOffset, stride) = (0, t * qWidth, t * (qWidth + kvWidth), 0)
      }
      let rowStride = { (width: Int) in stride == 0 ? width : stride }
      qkv.withUnsafeMutableBufferPointer { b in
        let base = b.baseAddress!
        let angles = rope.table(p0..<p0 + t)  // once for q and k
        rope.rotate(base + qOffset, rows: t, stride: rowStride(qWidth), heads: heads, angles: angles)
        rope.rotate(base + kOffset, rows: t, stride: rowStride(kvWidth), heads: kvHeads, angles: angles)
        cache.keys[index].withUnsafeMutableBufferPointer { keys in
          cache.values[index].withUnsafeMutableBufferPointer { values in
            for r in 0..<t {
              (keys.baseAddress! + (p0 + r) * kvWidth).update(from: base + kOffset + r * rowStride(kvWidth), count: kvWidth)
              (values.baseAddress! + (p0 + r) * kvWidth).update(from: base + vOffset + r * rowStride(kvWidth), count: kvWidth)
            }
          }
        }
      }
      let attended = [Float](unsafeUninitializedCapacity: t * qWidth) { out, count in
        count = t * qWidth
        qkv.withUnsafeBufferPointer { b in
          cache.keys[index].withUnsafeBufferPointer { keys in
            cache.values[index].withUnsafeBufferPointer { values in
              ScaledDotProductAttention.causal(
                query: b.baseAddress! + qOffset, queryRowStride: rowStride(qWidth), key: keys.baseAddress!,
                value: values.baseAddress!, kvRowStride: kvWidth, into: out.baseAddress!, outRowStride: qWidth, queries: t,
                offset: p0, heads: heads, kvHeads: kvHeads, headDimension: hd)
            }
          }
        }
      }
      context = Variable(attended, shape: [t, qWidth])
    }
    let a = add(h, output(context))
    let y = postAttentionNorm(a)
    let gateUp: Variable
    if stackedGateUp.isAvailable {
      gateUp = stackedGateUp(y)
    } else {
      gateUp = concatenatedColumns(gate(y), up(y))
    }
    return add(a, down(siluGated(gateUp)))
  }
}

/// A Llama-family causal language model (`LlamaForCausalLM`) with Hugging Face's state-dict
/// names: `model.embed_tokens.weight`, `model.layers.0.self_attn.q_proj.weight`, …, `model.norm.weight`,
/// `lm_head.weight` (absent when tied to the embeddings).
public final class LlamaModel: Module {
  public let configuration: LlamaConfiguration
  public let embedTokens: Embedding
  public let layers: [LlamaDecoderLayer]
  public let norm: RMSNorm
  /// The LM head: its own weight, or (tied) a packed copy of the embedding table, frozen.
  public private(set) var lmHead: LinearLayer

  /// The decoder built from stored weights with Hugging Face names (`model.safetensors` of a
  /// folder, a GGUF file's tensors under those names, pruned weights first).
  package init(_ c: LlamaConfiguration, weights: StoredWeights, holding: LoadedWeights) throws(ModelLoadingError) {
    configuration = c
    let (v, d) = (c.vocabularySize, c.hiddenSize)
    let (table, _) = try weights.stored("model.embed_tokens.weight", shape: [v, d])
    let dense = table.dense()
    embedTokens = holding == .packed ? Embedding(frozen: dense) : Embedding(weight: dense)
    var layers: [LlamaDecoderLayer] = []
    for i in 0..<c.layerCount {
      layers.append(try LlamaDecoderLayer(c, prefix: "model.layers.\(i)", weights: weights, holding: holding))
    }
    self.layers = layers
    norm = RMSNorm(weight: try weights.values("model.norm.weight", shape: [d]), epsilon: Float(c.rmsNormEpsilon))
    if c.tieWordEmbeddings || !weights.contains("lm_head.weight") {
      // A quantized table (GGUF Q8_0 kept in int8) gives an int8 head; otherwise float32.
      let head: StoredTensor = if case .quantized = table { table } else { .dense(dense.converted(to: .float32)) }
      do { lmHead = try PackedLinear(head, bias: nil, name: "lm_head.weight") } catch {
        throw .unsupported(path: "lm_head.weight", detail: "\(error)")
      }
    } else {
      lmHead = try weights.linear("lm_head", in: d, out: v, bias: false, holding: holding)
    }
  }

  /// A randomly initialised decoder with a tied LM head (tests).
  public init(_ c: LlamaConfiguration, seed: UInt64 = 0) {
    var g = SeededGenerator(seed: seed)
    configuration = c
    let table = Variable(randomNormal: [c.vocabularySize, c.hiddenSize], standardDeviation: 0.5, seed: g.next())
    embedTokens = Embedding(weight: table.tensor)
    layers = (0..<c.layerCount).map { _ in LlamaDecoderLayer(c, generator: &g) }
    norm = RMSNorm(c.hiddenSize, epsilon: Float(c.rmsNormEpsilon))
    lmHead = try! PackedLinear(.dense(table.tensor), as: .dense, bias: nil, name: "lm_head.weight")
  }

  public override var children: [(name: String, module: Module)] {
    [("model.embed_tokens", embedTokens)] + layers.enumerated().map { ("model.layers.\($0.offset)", $0.element) }
      + [("model.norm", norm), ("lm_head", lmHead)]
  }

  public override func replaceChild(_ name: String, with module: Module) {
    if name == "lm_head" { lmHead = Module.checked(module, replacing: lmHead) } else { super.replaceChild(name, with: module) }
  }

  /// The decoder layers' Linear names (`model.layers.N.self_attn.q_proj`, …): what `prune-model`
  /// prunes; the embeddings and the LM head are not among them.
  public var decoderLinearNames: [String] {
    namedModules().filter { $0.module is LinearLayer && $0.name.hasPrefix("model.layers.") }.map(\.name)
  }

  /// The final hidden states `[ids.count, hidden]` (after the last norm) of tokens at positions
  /// `cache.count …` (a fresh sequence without a cache); the cache then holds them too.
  public func hiddenStates(_ ids: [Int32], cache: KVCache?) -> Variable {
    var h = embedTokens(ids)
    for (i, layer) in layers.enumerated() { h = layer(h, layer: i, cache: cache) }
    if let cache { cache.count += ids.count }
    return norm(h)
  }

  /// The logits `[rows, vocabulary]` of hidden state rows `rows` of `h [tokens, hidden]`.
  public func logits(_ h: Variable, rows: Range<Int>) -> Variable {
    let d = configuration.hiddenSize
    if rows == 0..<h.shape[0] { return lmHead(h) }
    return lmHead(Variable(Array(h.value[rows.lowerBound * d..<rows.upperBound * d]), shape: [rows.count, d]))
  }

  /// The logits `[ids.count, vocabulary]` of every position (tests, training).
  public func callAsFunction(_ ids: [Int32], cache: KVCache? = nil) -> Variable {
    let h = hiddenStates(ids, cache: cache)
    return logits(h, rows: 0..<ids.count)
  }
}
