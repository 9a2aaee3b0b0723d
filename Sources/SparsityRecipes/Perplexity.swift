import Foundation
import SparsityCore
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityText

/// English text for language models: calibration text for Wanda/SparseGPT and distillation, and a
/// disjoint held-out text for perplexity (`Resources/llm-text.json`, see its README).
public struct LanguageModelText: Sendable, Decodable {
  /// Where the text comes from, and its license.
  public var source: String
  /// Calibration paragraphs.
  public var calibration: [String]
  /// The held-out text (perplexity).
  public var heldout: String

  /// Reads a JSON file with the fields above.
  public init(contentsOf path: String) throws(ModelLoadingError) {
    guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path: path, detail: "cannot read the file") }
    do { self = try JSONDecoder().decode(LanguageModelText.self, from: data) } catch {
      throw .unreadable(path: path, detail: "not a language-model text file (JSON with source, calibration, heldout): \(BertConfiguration.describe(error))")
    }
    guard !calibration.isEmpty, !heldout.isEmpty else { throw .unreadable(path: path, detail: "calibration and heldout need text") }
  }

  /// The text bundled with the package.
  public static func builtIn() throws(ModelLoadingError) -> LanguageModelText {
    guard let url = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
      throw .unreadable(path: "Resources/llm-text.json", detail: "the bundled resources are missing")
    }
    return try LanguageModelText(contentsOf: url.appendingPathComponent("llm-text.json").path)
  }

  /// The calibration text as token windows of `length`: the paragraphs joined with blank lines,
  /// tokenized once, cut into `count` consecutive windows (fewer when the text runs out).
  public func calibrationWindows(_ tokenizer: BPETokenizer, count: Int, length: Int) -> [[Int]] {
    let ids = tokenizer.encode(calibration.joined(separator: "\n\n"), addSpecial: false)
    return (0..<min(count, ids.count / max(length, 1))).map { Array(ids[$0 * length..<($0 + 1) * length]) }
  }
}

/// The perplexity of a text under a causal language model, as SparseGPT and Wanda measure it:
/// the text tokenized once (no BOS added), cut into non-overlapping windows of `context` tokens
/// from its start (the remainder dropped), each window run on its own; the mean negative
/// log-likelihood of the `context − 1` predicted tokens of every window; `exp` of the mean over
/// all windows. transformers' sliding-window recipe with stride = window gives the same number.
public struct PerplexityMeasurement: Sendable, Codable, Equatable {
  public var perplexity: Double
  public var meanNegativeLogLikelihood: Double
  public var windows: Int
  public var context: Int
  /// Tokens predicted: `windows · (context − 1)`.
  public var predictedTokens: Int
  public var seconds: Double

  /// Why a perplexity cannot be measured.
  public enum Problem: Error, Equatable, CustomStringConvertible {
    case contextTooShort(Int)
    case contextTooLong(context: Int, maximum: Int)
    case textTooShort(tokens: Int, context: Int)

    public var description: String {
      switch self {
      case let .contextTooShort(n): "--context \(n) is too short (at least 2 tokens: one predicts the next)"
      case let .contextTooLong(n, maximum): "--context \(n) exceeds the model's \(maximum) positions"
      case let .textTooShort(tokens, context): "the text has \(tokens) tokens, fewer than one window of \(context)"
      }
    }
  }

  /// Measures `model` on `tokens`; `progress(window, windows)` after each window.
  public static func measure(
    _ model: LlamaModel, tokens: [Int], context: Int, maxWindows: Int? = nil, progress: ((Int, Int) -> Void)? = nil
  ) throws(Problem) -> PerplexityMeasurement {
    guard context >= 2 else { throw .contextTooShort(context) }
    guard context <= model.configuration.maxPositions else {
      throw .contextTooLong(context: context, maximum: model.configuration.maxPositions)
    }
    let windows = min(tokens.count / context, maxWindows ?? .max)
    guard windows >= 1 else { throw .textTooShort(tokens: tokens.count, context: context) }
    let start = DispatchTime.now().uptimeNanoseconds
    var total = 0.0
    for w in 0..<windows {
      let window = tokens[w * context..<(w + 1) * context].map(Int32.init)
      total += negativeLogLikelihood(model, window).sum
      progress?(w + 1, windows)
    }
    let mean = total / Double(windows * (context - 1))
    return PerplexityMeasurement(
      perplexity: Foundation.exp(mean), meanNegativeLogLikelihood: mean, windows: windows, context: context,
      predictedTokens: windows * (context - 1), seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
  }

  /// The summed negative log-likelihood of tokens `1..<ids.count` of one sequence given the ones
  /// before, with logits computed 128 rows at a time (never the whole `[tokens, vocabulary]` matrix).
  static func negativeLogLikelihood(_ model: LlamaModel, _ ids: [Int32]) -> (sum: Double, count: Int) {
    let h = Gradients.disabled { model.hiddenStates(ids, cache: nil) }
    let v = model.configuration.vocabularySize
    var sum = 0.0
    var shifted = [Float](repeating: 0, count: v)
    for r0 in stride(from: 0, to: ids.count - 1, by: 128) {
      let r1 = min(ids.count - 1, r0 + 128)
      let logits = Gradients.disabled { model.logits(h, rows: r0..<r1) }.value
      for r in r0..<r1 {
        let row = logits[(r - r0) * v..<(r - r0 + 1) * v]
        let top = row.max()!
        // log Σ e^(x − top) with the vectorised exp (the scalar one over 49k logits per token
        // was a quarter of the run), summed in Double.
        for (j, x) in row.enumerated() { shifted[j] = x - top }
        shifted.withUnsafeMutableBufferPointer { VectorMath.exp($0) }
        let z = shifted.reduce(0.0) { $0 + Double($1) }
        sum += Double(top) + Foundation.log(z) - Double(row[row.startIndex + Int(ids[r + 1])])
      }
    }
    return (sum, ids.count - 1)
  }
}
