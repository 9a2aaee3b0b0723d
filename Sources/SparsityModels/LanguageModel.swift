import Foundation
import SparsityCore
import SparsityIO
import SparsityKernels
import SparsityNN
import SparsityText

/// The files of a Llama-family language model, opened and checked but not loaded: its
/// configuration, its tensors by Hugging Face name (dequantized on demand from a GGUF file,
/// pruned weights first where given), its tokenizer and chat template. ``LanguageModel`` loads
/// all of it; `prune-model` loads one decoder layer at a time.
public struct LanguageModelFiles {
  public let configuration: LlamaConfiguration
  package let weights: StoredWeights
  public let tokenizer: BPETokenizer
  /// The instruct model's chat template, when the files have one this package can render.
  public let chatTemplate: ChatTemplate?
  /// Why the files' chat template is not available, when they have one that cannot be rendered.
  public let chatTemplateProblem: String?
  /// The model file or folder.
  public let path: String

  /// Opens `path`: a GGUF file or a Hugging Face folder; `pruned`, a safetensors file of tensors
  /// under Hugging Face names, takes precedence over the model's own. With `keepingQ8_0`, a GGUF
  /// file's Q8_0 matrices load as int8 with their block scales (run as grouped W8A8) instead of
  /// dequantized to float32.
  public init(path: String, weights pruned: String? = nil, keepingQ8_0: Bool = false) throws(ModelLoadingError) {
    self.path = path
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw .unreadable(path: path, detail: "no such file or folder")
    }
    if isDirectory.boolValue {
      configuration = try LlamaConfiguration(contentsOf: (path as NSString).appendingPathComponent("config.json"))
      weights = try StoredWeights(modelFolder: path, first: pruned.map { [$0] } ?? [])
      tokenizer = try Self.folderTokenizer(path)
      (chatTemplate, chatTemplateProblem) = Self.folderChatTemplate(path)
    } else {
      let file: GGUFFile
      do { file = try GGUFFile(contentsOf: path) } catch { throw .unreadable(path: path, detail: "\(error)") }
      configuration = try LlamaConfiguration(gguf: file, path: path)
      let tensors = GGUFLlamaTensors(
        file: file, path: path, configuration: configuration, architecture: configuration.modelType, keepingQ8_0: keepingQ8_0)
      weights = StoredWeights(sources: try Self.prunedSources(pruned) + [(path, tensors)])
      tokenizer = try Self.ggufTokenizer(file, path: path)
      if let source = try? file.string("tokenizer.chat_template") {
        do { (chatTemplate, chatTemplateProblem) = (try ChatTemplate(jinja: source), nil) } catch {
          (chatTemplate, chatTemplateProblem) = (nil, "\(error)")
        }
      } else {
        (chatTemplate, chatTemplateProblem) = (nil, nil)
      }
    }
    guard tokenizer.vocabularySize <= configuration.vocabularySize else {
      throw .unsupported(
        path: path, detail: "the tokenizer has \(tokenizer.vocabularySize) tokens, the model's embeddings \(configuration.vocabularySize)")
    }
  }

  /// Whether `path` is a GGUF file or a folder whose config.json names a decoder this package runs.
  public static func isDecoderModel(at path: String) -> Bool {
    if GGUFFile.hasMagic(atPath: path) { return true }
    let config = (path as NSString).appendingPathComponent("config.json")
    guard let data = FileManager.default.contents(atPath: config),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let type = object["model_type"] as? String
    else { return false }
    return LlamaConfiguration.supportedModelTypes.contains(type)
  }

  private static func prunedSources(_ pruned: String?) throws(ModelLoadingError) -> [(path: String, source: any TensorSource)] {
    guard let pruned else { return [] }
    do { return [(pruned, try TensorArchive.Reader(contentsOf: pruned))] } catch {
      throw .unreadable(path: pruned, detail: "\(error)")
    }
  }

  /// The BPE tokenizer in a GGUF file's `tokenizer.ggml.*` metadata.
  static func ggufTokenizer(_ file: GGUFFile, path: String) throws(ModelLoadingError) -> BPETokenizer {
    func read<T>(_ body: () throws -> T) throws(ModelLoadingError) -> T {
      do { return try body() } catch { throw .unreadable(path: path, detail: "\(error)") }
    }
    func optional(_ key: String) throws(ModelLoadingError) -> Int? {
      file.metadata[key] == nil ? nil : try read { try file.integer(key) }
    }
    let model = try read { try file.string("tokenizer.ggml.model") }
    guard model == "gpt2" else {
      throw .unsupported(path: path, detail: "tokenizer.ggml.model '\(model)' (only the byte-level BPE 'gpt2' tokenizer is implemented)")
    }
    let pre = file.metadata["tokenizer.ggml.pre"] == nil ? "default" : try read { try file.string("tokenizer.ggml.pre") }
    do {
      return try BPETokenizer(
        tokens: try read { try file.strings("tokenizer.ggml.tokens") },
        merges: try read { try file.strings("tokenizer.ggml.merges") },
        tokenTypes: file.metadata["tokenizer.ggml.token_type"] == nil ? nil : try read { try file.integers("tokenizer.ggml.token_type") },
        preTokenizer: try PreTokenizer(ggufName: pre),
        bos: try optional("tokenizer.ggml.bos_token_id"), eos: try optional("tokenizer.ggml.eos_token_id"),
        unknown: try optional("tokenizer.ggml.unknown_token_id"), padding: try optional("tokenizer.ggml.padding_token_id"),
        addBOS: file.metadata["tokenizer.ggml.add_bos_token"] == nil ? false : try read { try file.bool("tokenizer.ggml.add_bos_token") })
    } catch let error as ModelLoadingError {
      throw error
    } catch {
      throw .unsupported(path: path, detail: "tokenizer: \(error)")
    }
  }

  static func folderTokenizer(_ directory: String) throws(ModelLoadingError) -> BPETokenizer {
    let path = (directory as NSString).appendingPathComponent("tokenizer.json")
    do { return try BPETokenizer(tokenizerJSON: path) } catch { throw .unreadable(path: path, detail: "\(error)") }
  }

  /// `chat_template.jinja`, or `chat_template` in `tokenizer_config.json`.
  static func folderChatTemplate(_ directory: String) -> (ChatTemplate?, String?) {
    var source: String?
    let jinja = (directory as NSString).appendingPathComponent("chat_template.jinja")
    if let text = try? String(contentsOfFile: jinja, encoding: .utf8) {
      source = text
    } else if let data = FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent("tokenizer_config.json")),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let text = object["chat_template"] as? String
    {
      source = text
    }
    guard let source else { return (nil, nil) }
    do { return (try ChatTemplate(jinja: source), nil) } catch { return (nil, "\(error)") }
  }
}

/// A causal language model ready to run: the decoder, its tokenizer and its chat template.
///
/// ```swift
/// let lm = try LanguageModel(path: "SmolLM2-135M-Instruct.Q4_1.gguf")
/// let ids = lm.tokenizer.encode("The capital of France is")
/// _ = try lm.generate(prompt: ids, maxTokens: 16) { id in print(lm.tokenizer.decode([id]), terminator: ""); return true }
/// ```
public final class LanguageModel {
  public let model: LlamaModel
  public let files: LanguageModelFiles
  public var tokenizer: BPETokenizer { files.tokenizer }
  public var chatTemplate: ChatTemplate? { files.chatTemplate }

  /// Loads a GGUF file or a Hugging Face folder (see ``LanguageModelFiles``), every decoder
  /// weight held as `holding` says. Packed (inference) layers keep a GGUF file's Q8_0 matrices
  /// in int8 with their block scales unless `keepingQ8_0` is false; trainable ones dequantize them.
  public init(path: String, weights pruned: String? = nil, holding: LoadedWeights = .packed, keepingQ8_0: Bool = true)
    throws(ModelLoadingError)
  {
    files = try LanguageModelFiles(path: path, weights: pruned, keepingQ8_0: keepingQ8_0 && holding == .packed)
    model = try LlamaModel(files.configuration, weights: files.weights, holding: holding)
  }
}

/// How the next token is chosen from the logits: greedy at temperature 0; otherwise sampled from
/// `softmax(logits / temperature)` restricted to the `topK` most likely tokens (0: all) and to the
/// smallest set whose probability reaches `topP`, with a seeded generator.
public struct Sampling: Sendable, Equatable {
  public var temperature: Double
  public var topK: Int
  public var topP: Double
  public var seed: UInt64

  public init(temperature: Double = 0, topK: Int = 0, topP: Double = 1, seed: UInt64 = 0) {
    self.temperature = temperature
    self.topK = topK
    self.topP = topP
    self.seed = seed
  }

  public static let greedy = Sampling()

  /// The index chosen from `logits`.
  func choose(_ logits: ArraySlice<Float>, generator: inout SeededGenerator) -> Int {
    let base = logits.startIndex
    guard temperature > 0 else {
      var best = base
      for i in logits.indices where logits[i] > logits[best] { best = i }
      return best - base
    }
    var order = Array(0..<logits.count)
    order.sort { logits[base + $0] > logits[base + $1] }
    if topK > 0 { order = Array(order.prefix(topK)) }
    let top = Double(logits[base + order[0]])
    var weights = order.map { Foundation.exp((Double(logits[base + $0]) - top) / temperature) }
    let total = weights.reduce(0, +)
    if topP < 1 {
      var kept = 0
      var mass = 0.0
      while kept < weights.count {
        mass += weights[kept] / total
        kept += 1
        if mass >= topP { break }
      }
      weights = Array(weights.prefix(kept))
    }
    let sum = weights.reduce(0, +)
    var r = generator.nextUnitDouble() * sum
    for (i, w) in weights.enumerated() {
      r -= w
      if r < 0 { return order[i] }
    }
    return order[weights.count - 1]
  }
}

/// Timings of one generation.
public struct GenerationStatistics: Sendable, Codable, Equatable {
  public var promptTokens: Int
  public var prefillSeconds: Double
  public var decodeTokens: Int
  public var decodeSeconds: Double
  /// Whether generation ended at an end-of-sequence token.
  public var stoppedAtEOS: Bool

  public var prefillTokensPerSecond: Double { Double(promptTokens) / max(prefillSeconds, 1e-12) }
  /// Tokens after the first (whose logits come from the prefill) per second of decoding.
  public var decodeTokensPerSecond: Double { Double(max(decodeTokens - 1, 0)) / max(decodeSeconds, 1e-12) }
}

/// Why generation cannot start.
public enum GenerationError: Error, Equatable, CustomStringConvertible {
  case emptyPrompt
  case promptTooLong(tokens: Int, context: Int)

  public var description: String {
    switch self {
    case .emptyPrompt: "the prompt is empty (it tokenizes to no tokens)"
    case let .promptTooLong(tokens, context): "the prompt has \(tokens) tokens; the model's context holds \(context)"
    }
  }
}

extension LanguageModel {
  /// Generates up to `maxTokens` tokens after `prompt`, calling `onToken` with each (return
  /// `false` to stop); ends at an end-of-sequence token unless `ignoreEOS`. The prompt runs as one
  /// prefill through the KV cache, then one token per step.
  public func generate(
    prompt: [Int], maxTokens: Int, sampling: Sampling = .greedy, ignoreEOS: Bool = false, onToken: (Int) -> Bool
  ) throws(GenerationError) -> GenerationStatistics {
    let c = model.configuration
    guard !prompt.isEmpty else { throw .emptyPrompt }
    guard prompt.count < c.maxPositions else { throw .promptTooLong(tokens: prompt.count, context: c.maxPositions) }
    return Gradients.disabled {
      run(prompt: prompt, maxTokens: maxTokens, sampling: sampling, ignoreEOS: ignoreEOS, onToken: onToken)
    }
  }

  private func run(
    prompt: [Int], maxTokens: Int, sampling: Sampling, ignoreEOS: Bool, onToken: (Int) -> Bool
  ) -> GenerationStatistics {
    let c = model.configuration
    let total = min(prompt.count + maxTokens, c.maxPositions)
    let cache = KVCache(c, capacity: total)
    var generator = SeededGenerator(seed: sampling.seed)
    let stops = Set(c.eosTokenIDs + (tokenizer.eosID.map { [$0] } ?? []))
    var statistics = GenerationStatistics(promptTokens: prompt.count, prefillSeconds: 0, decodeTokens: 0, decodeSeconds: 0, stoppedAtEOS: false)
    let start = DispatchTime.now().uptimeNanoseconds
    var h = model.hiddenStates(prompt.map(Int32.init), cache: cache)
    var logits = model.logits(h, rows: prompt.count - 1..<prompt.count).value
    let prefilled = DispatchTime.now().uptimeNanoseconds
    statistics.prefillSeconds = Double(prefilled - start) / 1e9
    while total > prompt.count {
      let next = sampling.choose(logits[...], generator: &generator)
      statistics.decodeTokens += 1
      if !ignoreEOS && stops.contains(next) {
        statistics.stoppedAtEOS = true
        break
      }
      guard onToken(next), statistics.decodeTokens < total - prompt.count else { break }
      h = model.hiddenStates([Int32(next)], cache: cache)
      logits = model.logits(h, rows: 0..<1).value
    }
    statistics.decodeSeconds = Double(DispatchTime.now().uptimeNanoseconds - prefilled) / 1e9
    return statistics
  }
}
