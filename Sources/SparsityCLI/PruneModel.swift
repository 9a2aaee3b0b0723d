import ArgumentParser
import Foundation
import Sparsity

/// Sequential pruning of a Llama-family language model.
struct PruneModel: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "prune-model",
    abstract: "Prune every decoder Linear of a Llama-family model layer by layer (SparseGPT's sequential recipe).",
    discussion: """
      q, k, v, o, gate, up and down of every decoder layer are pruned; the embeddings and the LM head stay dense. \
      Each layer is calibrated on the bundled calibration text (disjoint from `perplexity`'s held-out text) as it \
      comes out of the layers below, already pruned. One layer's weights are loaded at a time, straight from the \
      model file (a GGUF file's tensors are dequantized one by one). The default output is a safetensors file of \
      the pruned weights (Hugging Face names; compressed where a sparse layout is smaller than dense) to run with \
      `generate`/`perplexity --model MODEL --weights FILE`; --format compressed-tensors writes the folder in \
      llm-compressor's format (sparse-24-bitmask / sparse-bitmask, int-quantized with --dtype int8) that vLLM \
      loads and `--model FOLDER` reads back; --format hf writes a Hugging Face folder that \
      transformers loads as is.
      """)

  @OptionGroup var modelOptions: LanguageModelOptions

  @OptionGroup var outputFile: OutputFileOption

  @Option(help: "Sparsity pattern: 2:4, N:M, unstructured, block:RxC.")
  var pattern = "2:4"

  @Option(help: "Pruning method: magnitude, wanda or sparsegpt.")
  var method = "sparsegpt"

  @Option(help: "Fraction pruned (ignored for N:M, which is always N of M).")
  var sparsity = 0.5

  @Option(help: "Calibration tokens (input rows captured per Linear).")
  var tokens = 16_384

  @Option(help: "Tokens per calibration window.")
  var window = 512

  @Option(help: "Output: safetensors (our file of the pruned weights), hf (a Hugging Face folder) or compressed-tensors (that folder in llm-compressor's format).")
  var format = "safetensors"

  @OptionGroup var quantization: QuantizationOptions

  @OptionGroup var jsonOption: JSONOption

  func validate() throws {
    guard modelOptions.weights == nil else { throw ValidationError("prune-model prunes the model's own weights; --weights does not apply") }
    guard tokens > 0 else { throw ValidationError("--tokens must be positive") }
    guard window >= 2 else { throw ValidationError("--window must be at least 2") }
    guard LanguageModelPruning.OutputFormat(rawValue: format) != nil else {
      throw ValidationError("--format must be safetensors, hf or compressed-tensors, got '\(format)'")
    }
    guard (0...1).contains(sparsity) else { throw ValidationError("--sparsity must be in 0…1, got \(sparsity)") }
  }

  func run() throws {
    let method = try parseMethod(method)
    let parsed = try parsePattern(pattern)
    var level = sparsity
    if case .nOfM = parsed { level = 1 }
    var options = LanguageModelPruning.Options(configuration: try PruningConfiguration(method: method, pattern: parsed, sparsityLevel: level).validated())
    options.tokens = tokens
    options.window = window
    options.format = LanguageModelPruning.OutputFormat(rawValue: format)!
    options.encoding = try quantization.encoding()
    if options.format == .hf && options.encoding != .float32 {
      throw CLIError("--format hf writes float32 weights; --dtype int8 goes with --format safetensors or compressed-tensors")
    }
    let output = outputFile.output
    if options.format != .safetensors, FileManager.default.fileExists(atPath: output) {
      throw CLIError("\(output) exists; --format \(format) writes a new folder")
    }
    let text = try LanguageModelText.builtIn()
    let progress = ProgressLine()
    let report = try LanguageModelPruning.prune(model: modelOptions.model, to: output, options: options, text: text) { progress.stage($0) }
    progress.finish()
    if jsonOption.json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      say(String(decoding: try encoder.encode(report), as: UTF8.self))
      return
    }
    for row in report.layers {
      say(String(format: "layer %2d  sparsity %.3f  %5d calibration rows  %.1f s", row.layer, row.sparsity, row.calibrationRows, row.seconds))
    }
    say(
      String(
        format: "pruned %d decoder layers with %@ to %@ on %d windows × %d tokens; wrote %@ (%.1f MB) in %.1f s; peak resident memory %.0f MiB",
        report.layers.count, report.method, report.pattern, report.calibrationWindows, window, output, Double(report.outputBytes) / 1e6,
        report.seconds, Double(report.peakResidentBytes) / 1_048_576))
  }
}
