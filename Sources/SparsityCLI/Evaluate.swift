import ArgumentParser
import Foundation
import Sparsity

/// Captures layer inputs of a sentence encoder for Wanda and SparseGPT.
struct Calibrate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Capture every encoder Linear layer's inputs on calibration sentences (for prune --method wanda/sparsegpt).",
    discussion: """
      Writes one W:input tensor [tokens, in] per weight W of the encoder. Then, e.g.: \
      sparsity prune DIR/model.safetensors -o pruned.safetensors --include encoder --pattern 2:4 \
      --method sparsegpt --calibration calibration.safetensors
      """)

  @Option(help: "The model folder (config.json, model.safetensors, vocab.txt).")
  var model: String

  @Option(name: .shortAndLong, help: "The calibration file to write.")
  var output: String

  @Option(help: "A sentence corpus JSON (default: the bundled one); its calibration sentences are used.")
  var corpus: String?

  @Option(help: "Input rows captured per layer.")
  var tokens = 4096

  @Option(help: "Seed of the sentence order.")
  var seed: UInt64 = 0

  func run() throws {
    guard tokens > 0 else { throw CLIError("--tokens must be positive, got \(tokens)") }
    let corpus = try corpus.map { try SentenceCorpus(contentsOf: $0) } ?? SentenceCorpus.builtIn()
    guard !corpus.calibration.isEmpty else { throw CLIError("the corpus has no calibration sentences") }
    let embedder = try SentenceEmbedder(directory: model)
    let inputs = embedder.captureLayerInputs(corpus.calibration, tokens: tokens, seed: seed)
    let rows = inputs.inputs.values.map { $0.shape[0] }.min() ?? 0
    try SafetensorsFile.write(
      inputs.inputs.keys.sorted().map { ($0 + CalibrationInputs.nameSuffix, inputs.inputs[$0]!) },
      metadata: ["source": "sparsity calibrate: \(corpus.calibration.count) calibration sentences, seed \(seed)"], to: output)
    say("wrote \(inputs.inputs.count) layer inputs of \(rows) tokens each to \(output)")
  }
}

/// Fidelity and speed of a pruned sentence encoder against its dense original.
struct Eval: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Compare a pruned sentence encoder with the dense one: embedding fidelity and end-to-end speed.",
    discussion: """
      Fidelity on the corpus' held-out sentences (cosine to the dense embeddings) and retrieval set (top-5 \
      nearest-neighbour overlap); speed as sentences/s at batch 32 × 128 tokens and at batch 1, with the time \
      per step of the encoder.
      """)

  @Option(help: "The model folder (the dense model).")
  var model: String

  @Option(help: "The pruned weights (safetensors; sparse layers run on the sparse kernels).")
  var weights: String

  @Option(help: "A sentence corpus JSON (default: the bundled one).")
  var corpus: String?

  @Option(help: "Timed repeats (the median is reported).")
  var repeats = 3

  @Flag(help: "Print one JSON object.")
  var json = false

  struct Report: Encodable {
    var meanCosine, minCosine, top5Overlap: Double
    var denseSentencesPerS, sparseSentencesPerS, speedup: Double
    var denseBatch1SentencesPerS, sparseBatch1SentencesPerS, batch1Speedup: Double
    var evaluationSentences, queries, documents, threads: Int
    var compressedLayers: [String: String]
    var denseStepSeconds, sparseStepSeconds: [String: Double]

    enum CodingKeys: String, CodingKey {
      case meanCosine = "mean_cosine", minCosine = "min_cosine", top5Overlap = "top5_overlap"
      case denseSentencesPerS = "dense_sentences_per_s", sparseSentencesPerS = "sparse_sentences_per_s", speedup
      case denseBatch1SentencesPerS = "dense_batch1_sentences_per_s", sparseBatch1SentencesPerS = "sparse_batch1_sentences_per_s"
      case batch1Speedup = "batch1_speedup", evaluationSentences = "evaluation_sentences", queries, documents, threads
      case compressedLayers = "compressed_layers", denseStepSeconds = "dense_step_seconds", sparseStepSeconds = "sparse_step_seconds"
    }
  }

  func run() throws {
    guard repeats > 0 else { throw CLIError("--repeats must be positive, got \(repeats)") }
    let corpus = try corpus.map { try SentenceCorpus(contentsOf: $0) } ?? SentenceCorpus.builtIn()
    let dense = try SentenceEmbedder(directory: model)
    let sparse = try SentenceEmbedder(directory: model)
    try sparse.model.load(weightsFile: weights)
    let compressed = try sparsifyPrunedLayers(sparse.model)
    let progress = ProgressLine()
    let d = dense.model.configuration.hiddenSize

    progress.stage("fidelity: \(corpus.evaluation.count) sentences, \(corpus.retrieval.queries.count) queries × \(corpus.retrieval.documents.count) documents")
    let cos = EmbeddingFidelity.cosines(sparse.embed(corpus.evaluation), dense.embed(corpus.evaluation), dimension: d)
    let overlap = EmbeddingFidelity.topOverlap(
      denseQueries: dense.embed(corpus.retrieval.queries), denseDocuments: dense.embed(corpus.retrieval.documents),
      prunedQueries: sparse.embed(corpus.retrieval.queries), prunedDocuments: sparse.embed(corpus.retrieval.documents),
      dimension: d)

    for embedder in [dense, sparse] { embedder.maxLength = 128 }
    progress.stage("speed: \(corpus.throughput.count) texts × 128 tokens at batch 32, dense then sparse")
    let dense32 = ThroughputMeasurement.measure(dense, texts: corpus.throughput, batchSize: 32, repeats: repeats)
    let sparse32 = ThroughputMeasurement.measure(sparse, texts: corpus.throughput, batchSize: 32, repeats: repeats)
    let single = Array(corpus.evaluation.prefix(64))
    progress.stage("speed: \(single.count) sentences at batch 1, dense then sparse")
    let dense1 = ThroughputMeasurement.measure(dense, texts: single, batchSize: 1, repeats: repeats)
    let sparse1 = ThroughputMeasurement.measure(sparse, texts: single, batchSize: 1, repeats: repeats)
    progress.finish()

    let report = Report(
      meanCosine: cos.mean, minCosine: cos.minimum, top5Overlap: overlap,
      denseSentencesPerS: dense32.sentencesPerSecond, sparseSentencesPerS: sparse32.sentencesPerSecond,
      speedup: sparse32.sentencesPerSecond / dense32.sentencesPerSecond,
      denseBatch1SentencesPerS: dense1.sentencesPerSecond, sparseBatch1SentencesPerS: sparse1.sentencesPerSecond,
      batch1Speedup: sparse1.sentencesPerSecond / dense1.sentencesPerSecond, evaluationSentences: corpus.evaluation.count,
      queries: corpus.retrieval.queries.count, documents: corpus.retrieval.documents.count, threads: Parallel.workerCount,
      compressedLayers: Dictionary(uniqueKeysWithValues: compressed.map { ($0.name, $0.format.description) }),
      denseStepSeconds: dense32.stepSeconds, sparseStepSeconds: sparse32.stepSeconds)
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      say(String(decoding: try encoder.encode(report), as: UTF8.self))
      return
    }
    let formats = Dictionary(grouping: compressed, by: { $0.format.description }).map { "\($0.value.count) × \($0.key)" }.sorted()
    say("compressed layers: \(formats.isEmpty ? "none (no layer is sparse enough)" : formats.joined(separator: ", "))")
    say(
      table(
        ["fidelity", "value"],
        [
          ["mean cosine to dense (\(corpus.evaluation.count) held-out sentences)", String(format: "%.4f", cos.mean)],
          ["min cosine", String(format: "%.4f", cos.minimum)],
          ["top-5 overlap (\(corpus.retrieval.queries.count) queries, \(corpus.retrieval.documents.count) documents)", String(format: "%.3f", overlap)],
        ]))
    say("")
    say(
      table(
        ["speed (\(Parallel.workerCount) threads)", "dense", "sparse", "speedup"],
        [
          ["batch 32 × 128 tokens, sentences/s", String(format: "%.1f", dense32.sentencesPerSecond), String(format: "%.1f", sparse32.sentencesPerSecond), String(format: "%.2f×", report.speedup)],
          ["batch 1, sentences/s", String(format: "%.1f", dense1.sentencesPerSecond), String(format: "%.1f", sparse1.sentencesPerSecond), String(format: "%.2f×", report.batch1Speedup)],
        ]))
    say("")
    let steps = dense32.stepSeconds.keys.sorted { dense32.stepSeconds[$0]! > dense32.stepSeconds[$1]! }
    say(
      table(
        ["time per step, batch 32 (all layers)", "dense s", "sparse s", "speedup"],
        steps.map { s in
          let (a, b) = (dense32.stepSeconds[s] ?? 0, sparse32.stepSeconds[s] ?? 0)
          return [s, String(format: "%.3f", a), String(format: "%.3f", b), String(format: "%.2f×", a / max(b, 1e-12))]
        }))
  }
}
