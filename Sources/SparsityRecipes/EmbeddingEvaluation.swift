import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

/// English text for calibrating and evaluating a sentence encoder, in disjoint parts.
public struct SentenceCorpus: Sendable, Decodable {
  public struct Retrieval: Sendable, Decodable {
    public var queries: [String]
    public var documents: [String]
  }

  /// Where the text comes from, and its license.
  public var source: String
  /// Sentences whose layer inputs calibrate Wanda and SparseGPT.
  public var calibration: [String]
  /// Held-out sentences for embedding fidelity.
  public var evaluation: [String]
  /// Queries and documents for nearest-neighbour agreement.
  public var retrieval: Retrieval
  /// Long texts (≥ 128 tokens each) for throughput at a fixed sequence length.
  public var throughput: [String]

  /// Reads a JSON file with the fields above.
  public init(contentsOf path: String) throws(ModelLoadingError) {
    guard let data = FileManager.default.contents(atPath: path) else { throw .unreadable(path: path, detail: "cannot read the file") }
    do { self = try JSONDecoder().decode(SentenceCorpus.self, from: data) } catch {
      throw .unreadable(
        path: path,
        detail: "not a sentence corpus (JSON with source, calibration, evaluation, retrieval.queries/documents, throughput): \(BertConfiguration.describe(error))")
    }
    guard !evaluation.isEmpty, !retrieval.queries.isEmpty, retrieval.documents.count >= 5, !throughput.isEmpty else {
      throw .unreadable(path: path, detail: "evaluation, queries and throughput need texts, and retrieval at least 5 documents")
    }
  }

  /// The corpus bundled with the package (`Resources/sentences.json`).
  public static func builtIn() throws(ModelLoadingError) -> SentenceCorpus {
    guard let url = Bundle.module.url(forResource: "Resources", withExtension: nil) else {
      throw .unreadable(path: "Resources/sentences.json", detail: "the SparsityNN resource bundle is missing")
    }
    return try SentenceCorpus(contentsOf: url.appendingPathComponent("sentences.json").path)
  }
}

/// Fidelity of pruned embeddings to dense ones.
public enum EmbeddingFidelity {
  /// Mean and minimum cosine similarity of matching rows of two `[count × dimension]` sets.
  public static func cosines(_ a: [Float], _ b: [Float], dimension d: Int) -> (mean: Double, minimum: Double) {
    precondition(a.count == b.count && d > 0 && a.count % d == 0, "cosines: sets differ in size")
    let values = (0..<a.count / d).map { cosine(a[$0 * d..<($0 + 1) * d], b[$0 * d..<($0 + 1) * d]) }
    return (values.reduce(0, +) / Double(max(values.count, 1)), values.min() ?? 0)
  }

  static func cosine(_ a: ArraySlice<Float>, _ b: ArraySlice<Float>) -> Double {
    var dot = 0.0, na = 0.0, nb = 0.0
    for (x, y) in zip(a, b) {
      dot += Double(x) * Double(y)
      na += Double(x) * Double(x)
      nb += Double(y) * Double(y)
    }
    return dot / max((na * nb).squareRoot(), 1e-30)
  }

  /// The indices of the `k` documents most similar to each query (cosine, ties to the lower index).
  public static func nearest(queries: [Float], documents: [Float], dimension d: Int, k: Int) -> [[Int]] {
    let documentCount = documents.count / d
    return (0..<queries.count / d).map { q in
      let scores = (0..<documentCount).map { cosine(queries[q * d..<(q + 1) * d], documents[$0 * d..<($0 + 1) * d]) }
      return Array(scores.indices.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }.prefix(k))
    }
  }

  /// The mean share of each query's top `k` documents under `pruned` embeddings that are also in
  /// its top `k` under `dense` ones.
  public static func topOverlap(
    denseQueries: [Float], denseDocuments: [Float], prunedQueries: [Float], prunedDocuments: [Float], dimension d: Int,
    k: Int = 5
  ) -> Double {
    let reference = nearest(queries: denseQueries, documents: denseDocuments, dimension: d, k: k)
    let candidate = nearest(queries: prunedQueries, documents: prunedDocuments, dimension: d, k: k)
    let shares = zip(reference, candidate).map { Double(Set($0).intersection($1).count) / Double(k) }
    return shares.reduce(0, +) / Double(max(shares.count, 1))
  }
}

/// Embedding throughput and where the time goes.
public struct ThroughputMeasurement: Sendable {
  /// Sentences per second (the median of the repeats).
  public var sentencesPerSecond: Double
  /// Seconds per step name (summed over layers), from the median repeat.
  public var stepSeconds: [String: Double]
  /// Wall seconds of the median repeat.
  public var seconds: Double

  /// Embeds `texts` `repeats` times (after one warm-up run) with `batchSize`.
  public static func measure(_ embedder: SentenceEmbedder, texts: [String], batchSize: Int, repeats: Int = 3)
    -> ThroughputMeasurement
  {
    compare([embedder], texts: texts, batchSize: batchSize, repeats: repeats)[0]
  }

  /// Measures several embedders on the same texts in alternating rounds (one warm-up each, then
  /// `repeats` rounds that run every embedder once), so that other load on a shared machine
  /// slows them alike; the median repeat of each.
  public static func compare(_ embedders: [SentenceEmbedder], texts: [String], batchSize: Int, repeats: Int = 3)
    -> [ThroughputMeasurement]
  {
    for embedder in embedders { _ = embedder.embed(Array(texts.prefix(batchSize)), batchSize: batchSize) }
    // Per embedder, the step times of each timed run.
    var steps = [[[String: Double]]](repeating: [], count: embedders.count)
    let bodies = embedders.enumerated().map { i, embedder in
      {
        var run: [String: Double] = [:]
        _ = embedder.embed(texts, batchSize: batchSize) { name, body in
          let t0 = DispatchTime.now()
          let result = body()
          run[name, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0.uptimeNanoseconds) / 1e9
          return result
        }
        steps[i].append(run)
      }
    }
    let timing = InterleavedTiming.measure(bodies, warmups: 0, rounds: max(repeats, 1))
    return embedders.indices.map { i in
      let median = timing.seconds[i].indices.sorted { timing.seconds[i][$0] < timing.seconds[i][$1] }[timing.seconds[i].count / 2]
      let seconds = timing.seconds[i][median]
      return ThroughputMeasurement(sentencesPerSecond: Double(texts.count) / seconds, stepSeconds: steps[i][median], seconds: seconds)
    }
  }
}
