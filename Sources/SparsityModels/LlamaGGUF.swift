import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityNN

/// A GGUF file's tensors under Hugging Face names, dequantized to `float32` one at a time:
/// `blk.3.attn_q.weight` is `model.layers.3.self_attn.q_proj.weight`, and so on. llama.cpp's
/// converter reorders the rows of Llama's q and k projections per head so that its rotary
/// embedding rotates adjacent pairs (GGUF row `h·d + 2i + j` holds Hugging Face row
/// `h·d + j·d/2 + i`); they are put back, so the decoder runs Hugging Face's rotary embedding
/// (halves, `rotate_half`) on every file. Qwen2 files are not reordered by the converter.
///
/// With `keepingQ8_0`, Q8_0 matrices are not dequantized: their int8 values and block scales
/// become a ``QuantizedMatrix`` with a scale per 32 columns (run by the grouped W8A8 kernels,
/// activations quantized per token).
package struct GGUFLlamaTensors: TensorSource {
  package let file: GGUFFile
  package let path: String
  let configuration: LlamaConfiguration
  /// Whether q/k rows are in llama.cpp's order (architecture `llama`).
  let permutedQK: Bool
  /// Whether Q8_0 matrices load as int8 with their block scales.
  let keepingQ8_0: Bool

  package init(file: GGUFFile, path: String, configuration: LlamaConfiguration, architecture: String, keepingQ8_0: Bool = false) {
    self.file = file
    self.path = path
    self.configuration = configuration
    permutedQK = architecture == "llama"
    self.keepingQ8_0 = keepingQ8_0
  }

  /// The GGUF name of a Hugging Face tensor name, or `nil` for a name the format has no tensor for.
  static func ggufName(_ name: String) -> String? {
    let fixed = [
      "model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
      "lm_head.weight": "output.weight",
    ]
    if let g = fixed[name] { return g }
    let parts = name.split(separator: ".", maxSplits: 3).map(String.init)
    guard parts.count == 4, parts[0] == "model", parts[1] == "layers", let block = Int(parts[2]) else { return nil }
    let inner = [
      "input_layernorm.weight": "attn_norm.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
      "self_attn.q_proj.weight": "attn_q.weight", "self_attn.k_proj.weight": "attn_k.weight",
      "self_attn.v_proj.weight": "attn_v.weight", "self_attn.o_proj.weight": "attn_output.weight",
      "self_attn.q_proj.bias": "attn_q.bias", "self_attn.k_proj.bias": "attn_k.bias", "self_attn.v_proj.bias": "attn_v.bias",
      "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight", "mlp.down_proj.weight": "ffn_down.weight",
    ]
    return inner[parts[3]].map { "blk.\(block).\($0)" }
  }

  package func contains(_ name: String) -> Bool {
    Self.ggufName(name).map { file.tensor(named: $0) != nil } ?? false
  }

  package func stored(_ name: String) throws -> StoredTensor {
    guard let g = Self.ggufName(name), let info = file.tensor(named: g) else {
      throw ModelLoadingError.weights(path: path, .missingTensor(name))
    }
    let heads: Int? =
      !permutedQK ? nil
      : name.hasSuffix("q_proj.weight") ? configuration.headCount : name.hasSuffix("k_proj.weight") ? configuration.kvHeadCount : nil
    if keepingQ8_0, let (values, scales) = file.q8_0Blocks(info) {
      file.evictPages(of: info)
      let (v, s) = try heads.map { h in (try Self.unpermuted(values, heads: h, name: name), try Self.unpermuted(scales, heads: h, name: name)) }
        ?? (values, scales)
      do { return .quantized(try QuantizedMatrix(values: .dense(v), scales: s, activations: .dynamic, name: name)) } catch {
        throw ModelLoadingError.unreadable(path: path, detail: "\(g): \(error)")
      }
    }
    var tensor = try file.dequantized(g)
    file.evictPages(of: info)
    if let heads { tensor = try Self.unpermuted(tensor, heads: heads, name: name) }
    return .dense(tensor)
  }

  /// Hugging Face row order from llama.cpp's: row `h·d + j·d/2 + i` ← GGUF row `h·d + 2i + j`
  /// (any element type: whole rows move).
  static func unpermuted(_ t: Tensor, heads: Int, name: String) throws -> Tensor {
    guard t.rank == 2, heads > 0, t.shape[0] % (2 * heads) == 0 else {
      throw ModelLoadingError.unsupported(path: name, detail: "\(t.shape[0]) rows do not split into \(heads) heads of pairs")
    }
    let (rows, columns) = (t.shape[0], t.shape[1])
    let d = rows / heads
    let rowBytes = columns * (t.dtype.byteWidth ?? 4)
    var out = Tensor(zeros: t.shape, dtype: t.dtype)
    t.withUnsafeBytes { source in
      out.withUnsafeMutableBytes { target in
        for h in 0..<heads {
          for i in 0..<d / 2 {
            for j in 0..<2 {
              let from = (h * d + 2 * i + j) * rowBytes
              let to = (h * d + j * (d / 2) + i) * rowBytes
              target.baseAddress!.advanced(by: to).copyMemory(from: source.baseAddress!.advanced(by: from), byteCount: rowBytes)
            }
          }
        }
      }
    }
    return out
  }
}

extension LlamaConfiguration {
  /// The architectures of GGUF files this decoder runs (`general.architecture`).
  public static let supportedGGUFArchitectures: Set<String> = ["llama", "qwen2"]

  /// The configuration in a GGUF file's metadata (`llama.block_count`, …).
  public init(gguf file: GGUFFile, path: String) throws(ModelLoadingError) {
    func read<T>(_ body: () throws -> T) throws(ModelLoadingError) -> T {
      do { return try body() } catch { throw .unreadable(path: path, detail: "\(error)") }
    }
    let arch = try read { try file.string("general.architecture") }
    guard Self.supportedGGUFArchitectures.contains(arch) else {
      throw .unsupported(path: path, detail: "general.architecture '\(arch)' (this decoder runs \(Self.supportedGGUFArchitectures.sorted().joined(separator: ", ")))")
    }
    func has(_ key: String) -> Bool { file.metadata[key] != nil }
    let heads = try read { try file.integer("\(arch).attention.head_count") }
    let hidden = try read { try file.integer("\(arch).embedding_length") }
    let vocabulary: Int
    if has("\(arch).vocab_size") {
      vocabulary = try read { try file.integer("\(arch).vocab_size") }
    } else if let info = file.tensor(named: "token_embd.weight"), info.shape.count == 2 {
      vocabulary = info.shape[0]
    } else {
      throw .unreadable(path: path, detail: "no \(arch).vocab_size and no token_embd.weight to read it from")
    }
    if has("\(arch).rope.scaling.type") {
      let kind = try read { try file.string("\(arch).rope.scaling.type") }
      if kind != "none" { throw .unsupported(path: path, detail: "\(arch).rope.scaling.type '\(kind)' (only plain rotary embeddings)") }
    }
    let headDimension = has("\(arch).attention.key_length") ? try read { try file.integer("\(arch).attention.key_length") } : hidden / max(heads, 1)
    if has("\(arch).rope.dimension_count") {
      let rotated = try read { try file.integer("\(arch).rope.dimension_count") }
      guard rotated == headDimension else {
        throw .unsupported(path: path, detail: "\(arch).rope.dimension_count \(rotated) ≠ head dimension \(headDimension) (partial rotary)")
      }
    }
    var eos: [Int] = []
    if has("tokenizer.ggml.eos_token_id") { eos = [try read { try file.integer("tokenizer.ggml.eos_token_id") }] }
    self.init(
      modelType: arch, vocabularySize: vocabulary, hiddenSize: hidden,
      intermediateSize: try read { try file.integer("\(arch).feed_forward_length") },
      layerCount: try read { try file.integer("\(arch).block_count") }, headCount: heads,
      kvHeadCount: has("\(arch).attention.head_count_kv") ? try read { try file.integer("\(arch).attention.head_count_kv") } : heads,
      headDimension: headDimension,
      maxPositions: try read { try file.integer("\(arch).context_length") },
      rmsNormEpsilon: try read { try file.float("\(arch).attention.layer_norm_rms_epsilon") },
      ropeTheta: has("\(arch).rope.freq_base") ? try read { try file.float("\(arch).rope.freq_base") } : 10_000,
      tieWordEmbeddings: file.tensor(named: "output.weight") == nil, attentionBias: arch == "qwen2",
      bosTokenID: has("tokenizer.ggml.bos_token_id") ? try read { try file.integer("tokenizer.ggml.bos_token_id") } : nil,
      eosTokenIDs: eos)
    try validate(path: path)
  }
}
