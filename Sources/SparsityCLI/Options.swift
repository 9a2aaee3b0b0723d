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
