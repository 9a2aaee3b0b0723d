import ArgumentParser
import Sparsity

// Options several commands share, declared once (`@OptionGroup`).

/// `--model DIR`: a Hugging Face / sentence-transformers model folder.
struct ModelFolderOption: ParsableArguments {
  @Option(help: "The model folder (config.json, model.safetensors or a sharded index, vocab.txt).")
  var model: String
}

/// `-o/--output FILE`: the file a command writes (atomically: nothing is left on error).
struct OutputFileOption: ParsableArguments {
  @Option(name: .shortAndLong, help: "The file to write.")
  var output: String
}

/// `--corpus FILE`: a sentence corpus JSON, the bundled one by default.
struct CorpusOption: ParsableArguments {
  @Option(help: "A sentence corpus JSON (default: the bundled one).")
  var corpus: String?

  /// The corpus named, or the bundled one.
  func load() throws -> SentenceCorpus {
    try corpus.map { try SentenceCorpus(contentsOf: $0) } ?? SentenceCorpus.builtIn()
  }
}

/// `--json`: machine-readable output instead of the table.
struct JSONOption: ParsableArguments {
  @Flag(help: "Print JSON instead of the table.")
  var json = false
}

/// `--dtype f32|bf16|int8` and `--activations none|dynamic`: the element encoding of the weights a
/// command writes or runs (int8: symmetric per output row, torchao's semantics; with dynamic
/// activations the layers run int8 × int8 — W8A8).
struct QuantizationOptions: ParsableArguments {
  @Option(
    help: "Weight values: f32 (as they are; the default), bf16 (activations rounded to bf16 too, fp32 sums), or int8 (symmetric, one scale per output row, torchao's semantics). Running a GGUF file, its Q8_0 matrices stay int8 with their block scales unless --dtype f32 or bf16 is given.")
  var dtype: String?

  @Option(help: "With --dtype int8: dynamic (activations quantized per token at run time: W8A8) or none (weight-only).")
  var activations = "dynamic"

  /// The encoding named, checked.
  func encoding() throws -> WeightForm.Encoding {
    guard let mode = ActivationQuantization(rawValue: activations.lowercased()) else {
      throw CLIError("--activations must be none or dynamic, got '\(activations)'")
    }
    switch (dtype ?? "f32").lowercased() {
    case "f32", "float32": return .float32
    case "int8", "i8": return mode == .dynamic ? .int8Dynamic : .int8
    case "bf16", "bfloat16": return .bfloat16
    default: throw CLIError("--dtype must be f32, bf16 or int8, got '\(dtype ?? "")'")
    }
  }

  /// Whether a GGUF file's Q8_0 matrices may stay int8 with their block scales (grouped W8A8):
  /// no --dtype, or --dtype int8 with dynamic activations.
  func keepsQ8_0() throws -> Bool {
    let encoding = try encoding()
    return dtype == nil || encoding == .int8Dynamic
  }
}
