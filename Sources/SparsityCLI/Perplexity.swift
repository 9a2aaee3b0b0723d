import ArgumentParser
import Foundation
import Sparsity

/// Perplexity of a Llama-family model on a text, the SparseGPT/Wanda way.
struct Perplexity: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure a language model's perplexity on a text (the bundled held-out English text by default).",
    discussion: """
      The protocol of SparseGPT and Wanda (and of transformers' sliding-window recipe with stride = window): \
      the text is tokenized once without a BOS token and cut into non-overlapping windows of --context tokens \
      from its start (the remainder is dropped); each window runs on its own; the perplexity is exp of the mean \
      negative log-likelihood of the --context − 1 predicted tokens of every window. llama.cpp's `perplexity` \
      scores only the second half of each window and gives lower numbers at the same context. The bundled text \
      is disjoint from the calibration text that `prune-model` and `distill` use.
      """)

  @OptionGroup var modelOptions: LanguageModelOptions

  @Option(help: "A UTF-8 text file (default: the bundled held-out text).")
  var text: String?

  @Option(help: "Tokens per window.")
  var context = 512

  @Option(help: "Score at most this many windows (default: all).")
  var maxWindows: Int?

  @OptionGroup var jsonOption: JSONOption

  func validate() throws {
    guard context >= 2 else { throw ValidationError("--context must be at least 2") }
    if let maxWindows, maxWindows < 1 { throw ValidationError("--max-windows must be at least 1") }
  }

  func run() throws {
    let source: String
    if let text {
      guard let contents = try? String(contentsOfFile: text, encoding: .utf8) else {
        throw CLIError("cannot read \(text) as UTF-8 text")
      }
      source = contents
    } else {
      source = try LanguageModelText.builtIn().heldout
    }
    let lm = try modelOptions.load()
    let ids = lm.tokenizer.encode(source, addSpecial: false)
    let measurement: PerplexityMeasurement
    do {
      measurement = try PerplexityMeasurement.measure(lm.model, tokens: ids, context: context, maxWindows: maxWindows) { done, all in
        if !jsonOption.json { FileHandle.standardError.write(Data("\rwindow \(done)/\(all)".utf8)) }
      }
    } catch {
      throw CLIError("\(error)")
    }
    if jsonOption.json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.sortedKeys]
      say(String(decoding: try encoder.encode(measurement), as: UTF8.self))
    } else {
      FileHandle.standardError.write(Data("\n".utf8))
      say(
        String(
          format: "perplexity %.4f (mean NLL %.5f) over %d windows of %d tokens (%d predicted) in %.1f s", measurement.perplexity,
          measurement.meanNegativeLogLikelihood, measurement.windows, measurement.context, measurement.predictedTokens,
          measurement.seconds))
    }
  }
}
