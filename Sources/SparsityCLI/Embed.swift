import ArgumentParser
import Foundation
import Sparsity

/// Sentence embeddings from a BERT sentence-transformers folder (e.g. all-MiniLM-L6-v2).
struct Embed: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Print sentence embeddings (mean-pooled, unit length) of the given texts.",
    discussion: """
      --model is a folder with config.json, model.safetensors (or a sharded index) and vocab.txt, as \
      `scripts/fetch_minilm.py` makes. --weights replaces the weights (e.g. a pruned file from `sparsity prune`; \
      compressed tensors are read too); sparse layers then run on the sparse kernels.
      """)

  @OptionGroup var modelFolder: ModelFolderOption
  var model: String { modelFolder.model }

  @Option(help: "A safetensors file with replacement weights (pruned).")
  var weights: String?

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  @Flag(help: "Print the resident weight bytes and the load time on standard error.")
  var verbose = false

  @Argument(help: "The texts.")
  var texts: [String]

  func run() throws {
    guard !texts.isEmpty else { throw CLIError("give at least one text to embed") }
    let start = DispatchTime.now()
    let encoder = try BertModel(directory: model, weights: weights, holding: .packed)
    if verbose {
      let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
      FileHandle.standardError.write(Data("\(describeResidentWeights(encoder)); loaded in \(String(format: "%.4f", seconds)) s\n".utf8))
    }
    let embedder = try SentenceEmbedder(directory: model, model: encoder)

    let d = embedder.model.configuration.hiddenSize
    let vectors = embedder.embed(texts)
    let rows = (0..<texts.count).map { Array(vectors[$0 * d..<($0 + 1) * d]) }
    if json {
      let data = try JSONSerialization.data(withJSONObject: rows.map { $0.map(Double.init) })
      say(String(decoding: data, as: UTF8.self))
    } else {
      for (text, row) in zip(texts, rows) {
        say(text)
        say(row.map { String(format: "%.6f", $0) }.joined(separator: " "))
      }
    }
  }
}

/// The embedder of `model` for inference, its weights (or `weights`) packed from the file.
func loadEmbedder(model: String, weights: String?) throws -> SentenceEmbedder {
  try SentenceEmbedder(directory: model, weights: weights, holding: .packed)
}

/// `weights: N bytes (K packed layers: forms; …)`: what a loaded model holds.
func describeResidentWeights(_ model: Module) -> String {
  let packed = model.packedLayers()
  let forms = Dictionary(grouping: packed, by: { $0.layer.weight.form.description }).map { "\($0.value.count) × \($0.key)" }.sorted()
  let tables = model.frozenTableBytes
  return "weights: \(model.residentWeightBytes) bytes (\(packed.count) packed layers: \(forms.joined(separator: ", ")); "
    + "frozen tables \(tables) bytes, mapped, resident as read; \(model.parameterCount) parameter values)"
}
