import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

/// `sparsity prune-model`: a Llama-family model pruned decoder layer by decoder layer
/// (``SequentialPruning``) straight from its file, one layer's weights in memory at a time.
public enum LanguageModelPruning {
  /// How the result is written.
  public enum OutputFormat: String, Sendable, CaseIterable, Codable {
    /// Our safetensors file of the pruned decoder weights under Hugging Face names, compressed
    /// where a sparse layout is smaller than dense; run it with `--weights` beside the model.
    case safetensors
    /// A Hugging Face folder (config.json, model.safetensors with every tensor dense in float32,
    /// tokenizer.json, tokenizer_config.json) that transformers loads as is.
    case hf
    /// The same folder in the compressed-tensors format llm-compressor writes and vLLM loads:
    /// the pruned Linear weights as `sparse-24-bitmask` (2:4) or `sparse-bitmask` (other
    /// patterns), int8 (`int-quantized`, with `--dtype int8`) with per-row scales, and the
    /// `quantization_config` in config.json (``CompressedTensors``).
    case compressedTensors = "compressed-tensors"
  }

  public struct Options: Sendable {
    public var configuration: PruningConfiguration
    /// Calibration tokens (rows captured per Linear).
    public var tokens = 16_384
    /// Tokens per calibration window.
    public var window = 512
    public var format = OutputFormat.safetensors
    /// The pruned weights' value encoding in our file (int8: quantized after pruning); Hugging
    /// Face folders hold float32.
    public var encoding = WeightForm.Encoding.float32

    public init(configuration: PruningConfiguration) { self.configuration = configuration }
  }

  /// One decoder layer pruned.
  public struct LayerRow: Sendable, Codable {
    public var layer: Int
    public var seconds: Double
    public var calibrationRows: Int
    /// Fraction of zeros over the layer's pruned weights.
    public var sparsity: Double
  }

  public struct Report: Sendable, Codable {
    public var method: String
    public var pattern: String
    public var calibrationWindows: Int
    public var calibrationTokens: Int
    public var layers: [LayerRow]
    public var seconds: Double
    /// Peak resident set size of the process (getrusage), bytes.
    public var peakResidentBytes: Int
    public var outputBytes: Int
  }

  /// Prunes every decoder Linear (q, k, v, o, gate, up, down) of the model at `path` and writes
  /// `output`. The embeddings and the LM head are not pruned.
  public static func prune(
    model path: String, to output: String, options: Options, text: LanguageModelText,
    progress: (String) -> Void = { _ in }
  ) throws -> Report {
    let start = DispatchTime.now().uptimeNanoseconds
    let files = try LanguageModelFiles(path: path)
    let c = files.configuration
    let configuration = try options.configuration.validated()
    guard options.window >= 2, options.window <= c.maxPositions else {
      throw FilePruningError("--window must be in 2…\(c.maxPositions), got \(options.window)")
    }
    let windows = text.calibrationWindows(files.tokenizer, count: max(1, (options.tokens + options.window - 1) / options.window), length: options.window)
    guard !windows.isEmpty else { throw FilePruningError("the calibration text has fewer than \(options.window) tokens") }
    progress("calibration: \(windows.count) windows of \(options.window) tokens")

    let (table, _) = try files.weights.stored("model.embed_tokens.weight", shape: [c.vocabularySize, c.hiddenSize])
    let embeddings = Embedding(frozen: table.dense())
    let samples = Gradients.disabled { windows.map { embeddings($0.map(Int32.init)) } }

    var written: [(name: String, value: StoredTensor)] = []
    var rows: [LayerRow] = []
    let driver = SequentialPruning(configuration, tokens: options.tokens)
    _ = try driver.run(
      blocks: c.layerCount, samples: samples, rows: { $0.shape[0] },
      block: { index in
        progress("layer \(index + 1)/\(c.layerCount): calibrating and pruning (\(configuration.method))")
        return try LlamaDecoderLayer(c, prefix: "model.layers.\(index)", weights: files.weights, holding: .trainable)
      },
      forward: { block, h in (block as! LlamaDecoderLayer)(h, layer: 0, cache: nil) },
      finished: { index, block, report in
        var zeros = 0
        var total = 0
        for (name, module) in block.namedModules() {
          guard let linear = module as? Linear else { continue }
          let weight = linear.weight.tensor
          let values = linear.weight.value
          zeros += values.count(where: { $0 == 0 })
          total += values.count
          let fullName = "model.layers.\(index).\(name).weight"
          let stored: StoredTensor
          switch options.format {
          case .hf: stored = .dense(weight)
          case .safetensors: stored = try FilePruning.Storage.auto.store(weight, pattern: configuration.pattern, encoding: options.encoding, name: fullName)
          case .compressedTensors:
            // Every pruned weight in the pattern's compressed-tensors layout (one sparsity format per model).
            let layout: WeightForm.Layout = configuration.pattern == .twoFour ? .nOfM(n: 2, m: 4) : .csr
            stored = try FilePruning.Storage.form(WeightForm(layout)).store(weight, pattern: configuration.pattern, encoding: options.encoding, name: fullName)
          }
          written.append((fullName, stored))
        }
        if options.format != .safetensors {
          for norm in ["input_layernorm", "post_attention_layernorm"] {
            let name = "model.layers.\(index).\(norm).weight"
            written.append((name, .dense(try files.weights.values(name, shape: [c.hiddenSize]))))
          }
        }
        rows.append(LayerRow(layer: index, seconds: report.seconds, calibrationRows: report.rows, sparsity: Double(zeros) / Double(max(total, 1))))
      })

    let metadata = [
      "source": "sparsity prune-model --method \(configuration.method) --pattern \(configuration.pattern) (sequential, \(windows.count) windows of \(options.window) tokens)"
    ]
    switch options.format {
    case .safetensors:
      try TensorArchive(tensors: written, metadata: metadata).write(to: output)
    case .hf, .compressedTensors:
      written.insert(("model.embed_tokens.weight", .dense(table.dense().converted(to: .float32))), at: 0)
      written.append(("model.norm.weight", .dense(try files.weights.values("model.norm.weight", shape: [c.hiddenSize]))))
      if !c.tieWordEmbeddings {
        written.append(("lm_head.weight", .dense(try files.weights.values("lm_head.weight", shape: [c.vocabularySize, c.hiddenSize]))))
      }
      let compressed =
        options.format == .hf
        ? nil
        : CompressedTensors.Configuration(
          quantized: options.encoding != .float32, activations: options.encoding == .int8Dynamic ? .dynamic : .none,
          sparsityFormat: configuration.pattern == .twoFour ? "sparse-24-bitmask" : "sparse-bitmask", ignore: ["lm_head"])
      try writeHuggingFaceFolder(output, configuration: c, tensors: written, files: files, metadata: metadata, compressed: compressed)
    }
    let bytes = (try? FileManager.default.attributesOfItem(atPath: options.format == .safetensors ? output : output + "/model.safetensors")[.size] as? Int) ?? 0
    return Report(
      method: configuration.method.rawValue, pattern: "\(configuration.pattern)", calibrationWindows: windows.count,
      calibrationTokens: windows.count * options.window, layers: rows,
      seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9, peakResidentBytes: peakResidentBytes(),
      outputBytes: bytes)
  }

  /// A Hugging Face folder: config.json, model.safetensors, tokenizer files; written into a
  /// temporary folder beside `path`, then moved into place (nothing is left on error).
  static func writeHuggingFaceFolder(
    _ path: String, configuration c: LlamaConfiguration, tensors: [(name: String, value: StoredTensor)],
    files: LanguageModelFiles, metadata: [String: String], compressed: CompressedTensors.Configuration? = nil
  ) throws {
    try writeFolderAtomically(path) { staging in
      func write(_ name: String, _ data: Data) throws { try data.write(to: URL(fileURLWithPath: staging + "/" + name)) }
      var config = c.huggingFaceConfig()
      if let compressed { config["quantization_config"] = compressed.json }
      let plain = try ModelExport.fileTensors(tensors) { name, value in
        compressed != nil && value.shape.count == 2 && name.hasPrefix("model.layers.")
      }
      try write("config.json", try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]))
      try SafetensorsFile.write(plain, metadata: metadata.merging(["format": "pt"]) { a, _ in a }, to: staging + "/model.safetensors")
      try write("tokenizer.json", Data(files.tokenizer.tokenizerJSON().utf8))
      var tokenizerConfig: [String: Any] = ["tokenizer_class": "PreTrainedTokenizerFast", "clean_up_tokenization_spaces": false]
      if let bos = files.tokenizer.bosID { tokenizerConfig["bos_token"] = files.tokenizer.decode([bos]) }
      if let eos = files.tokenizer.eosID { tokenizerConfig["eos_token"] = files.tokenizer.decode([eos]) }
      if let template = files.chatTemplate { tokenizerConfig["chat_template"] = template.source }
      try write("tokenizer_config.json", try JSONSerialization.data(withJSONObject: tokenizerConfig, options: [.prettyPrinted, .sortedKeys]))
    }
  }
}

/// The process's peak resident set size in bytes (`getrusage`).
public func peakResidentBytes() -> Int {
  var usage = rusage()
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
  return Int(usage.ru_maxrss) * 1024
}
