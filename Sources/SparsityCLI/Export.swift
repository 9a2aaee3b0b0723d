import ArgumentParser
import Foundation
import Sparsity

/// A Hugging Face model folder with our pruned/quantized weights, in compressed-tensors or dense.
struct Export: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write a Hugging Face model folder with pruned or quantized weights in a format other tools load.",
    discussion: """
      Takes the model folder (config.json, model.safetensors or its shards, tokenizer files) and our \
      safetensors file of its pruned and/or quantized tensors (from prune-encoder, prune, quantize, \
      prune-model; each must be a tensor of the model, with its shape), and writes a new folder: the \
      model's other files as they are, config.json, and model.safetensors. --format compressed-tensors \
      (the default) stores the compressed Linear weights as llm-compressor does and vLLM loads them — \
      int8 with per-row scales as int-quantized (W8A8) or naive-quantized (weight-only), 2:4 as \
      sparse-24-bitmask, other sparse layouts as sparse-bitmask — with the quantization_config that \
      says so (a pruned weight stored dense with its zeros takes the form its zeros suit); --format hf \
      writes every tensor dense float32. BERT encoders and Llama decoders alike; the folder is written \
      into a temporary one and moved into place.
      """)

  @Option(help: "The Hugging Face model folder.")
  var model: String

  @Option(help: "Our safetensors file of pruned or quantized tensors of that model (default: the model's own tensors).")
  var weights: String?

  @Option(name: .shortAndLong, help: "The folder to write (must not exist).")
  var output: String

  @Option(help: "compressed-tensors or hf.")
  var format = "compressed-tensors"

  func validate() throws {
    guard ModelExport.Format(rawValue: format) != nil else {
      throw ValidationError("--format must be \(ModelExport.Format.allCases.map(\.rawValue).joined(separator: " or ")), got '\(format)'")
    }
    guard !FileManager.default.fileExists(atPath: output) else { throw ValidationError("\(output) exists; give a new folder name") }
  }

  func run() throws {
    let report = try ModelExport.write(modelFolder: model, weights: weights, format: ModelExport.Format(rawValue: format)!, to: output)
    var detail = ""
    if let c = report.configuration {
      let quantization = c.quantized ? (c.activations == .dynamic ? "int-quantized (W8A8)" : "naive-quantized (weight-only)") : "no quantization"
      detail = "; \(report.compressedWeights) compressed Linear weights, \(quantization), sparsity \(c.sparsityFormat ?? "none")"
      if !c.ignore.isEmpty { detail += ", \(c.ignore.count) matrices left in float (ignore)" }
    }
    say("wrote \(output) (\(format), model.safetensors \(formatBytes(report.bytes)))\(detail)")
  }
}
