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

  @OptionGroup var modelFolder: ModelFolderOption
  var model: String { modelFolder.model }

  @OptionGroup var outputFile: OutputFileOption
  var output: String { outputFile.output }

  @OptionGroup var corpus: CorpusOption

  @Option(help: "Input rows captured per layer.")
  var tokens = 4096

  @Option(help: "Seed of the sentence order.")
  var seed: UInt64 = 0

  func run() throws {
    guard tokens > 0 else { throw CLIError("--tokens must be positive, got \(tokens)") }
    let corpus = try corpus.load()
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
    abstract: "Compare a pruned (or quantized) sentence encoder with the dense one: embedding fidelity and end-to-end speed.",
    discussion: """
      Fidelity on the corpus' held-out sentences (cosine to the dense embeddings) and retrieval set (top-5 \
      nearest-neighbour overlap); speed as sentences/s on the corpus' long texts truncated to 128 tokens, at \
      batch 32 and at batch 1 (the workload of scripts/bench_sentence_transformers.py), with the time per step; \
      the dense and the pruned model run in alternating rounds and the median of --repeats is reported.
      """)

  @OptionGroup var modelFolder: ModelFolderOption
  var model: String { modelFolder.model }

  @Option(help: "The pruned weights (safetensors; sparse layers run on the sparse kernels). Default: the dense model's own (with --dtype int8: the dense model quantized).")
  var weights: String?

  @OptionGroup var quantization: QuantizationOptions

  @OptionGroup var corpus: CorpusOption

  @Option(help: "Timed repeats (the median is reported).")
  var repeats = 3

  @Flag(help: "Measure fidelity only.")
  var skipSpeed = false

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  struct Report: Encodable {
    var meanCosine, minCosine, top5Overlap: Double
    var denseSentencesPerS, sparseSentencesPerS, speedup: Double?
    var denseBatch1SentencesPerS, sparseBatch1SentencesPerS, batch1Speedup: Double?
    var evaluationSentences, queries, documents, threads: Int
    var compressedLayers: [String: String]
    var denseWeightBytes, sparseWeightBytes: Int
    /// Bytes of the Linear weights alone (packed; no embedding tables, norms or biases).
    var denseLinearBytes, sparseLinearBytes: Int
    var denseStepSeconds, sparseStepSeconds: [String: Double]?

    enum CodingKeys: String, CodingKey {
      case meanCosine = "mean_cosine", minCosine = "min_cosine", top5Overlap = "top5_overlap"
      case denseSentencesPerS = "dense_sentences_per_s", sparseSentencesPerS = "sparse_sentences_per_s", speedup
      case denseBatch1SentencesPerS = "dense_batch1_sentences_per_s", sparseBatch1SentencesPerS = "sparse_batch1_sentences_per_s"
      case batch1Speedup = "batch1_speedup", evaluationSentences = "evaluation_sentences", queries, documents, threads
      case compressedLayers = "compressed_layers", denseWeightBytes = "dense_weight_bytes", sparseWeightBytes = "sparse_weight_bytes",
        denseLinearBytes = "dense_linear_bytes", sparseLinearBytes = "sparse_linear_bytes", denseStepSeconds = "dense_step_seconds", sparseStepSeconds = "sparse_step_seconds"
    }
  }

  func run() throws {
    guard repeats > 0 else { throw CLIError("--repeats must be positive, got \(repeats)") }
    let encoding = try quantization.encoding()
    guard weights != nil || encoding != .float32 else { throw CLIError("give --weights (a pruned model) or --dtype int8 (the dense model quantized)") }
    let corpus = try corpus.load()
    let dense = try loadEmbedder(model: model, weights: nil)
    let sparse = try loadEmbedder(model: model, weights: weights)
    if encoding != .float32 {
      do { try quantize(sparse.model, encoding: encoding) } catch { throw CLIError("\(error)") }
      MemoryTuning.releaseFreedMemory()
    }
    let compressed = sparse.model.packedLayers().filter { $0.layer.weight.form != .dense }.map { ($0.name, $0.layer.weight.form) }
    let progress = ProgressLine()
    let d = dense.model.configuration.hiddenSize

    progress.stage("fidelity: \(corpus.evaluation.count) sentences, \(corpus.retrieval.queries.count) queries × \(corpus.retrieval.documents.count) documents")
    let cos = EmbeddingFidelity.cosines(sparse.embed(corpus.evaluation), dense.embed(corpus.evaluation), dimension: d)
    let overlap = EmbeddingFidelity.topOverlap(
      denseQueries: dense.embed(corpus.retrieval.queries), denseDocuments: dense.embed(corpus.retrieval.documents),
      prunedQueries: sparse.embed(corpus.retrieval.queries), prunedDocuments: sparse.embed(corpus.retrieval.documents),
      dimension: d)

    var report = Report(
      meanCosine: cos.mean, minCosine: cos.minimum, top5Overlap: overlap, evaluationSentences: corpus.evaluation.count,
      queries: corpus.retrieval.queries.count, documents: corpus.retrieval.documents.count, threads: Parallel.workerCount,
      compressedLayers: Dictionary(uniqueKeysWithValues: compressed.map { ($0.0, $0.1.description) }),
      denseWeightBytes: dense.model.residentWeightBytes, sparseWeightBytes: sparse.model.residentWeightBytes,
      denseLinearBytes: dense.model.packedWeightBytes, sparseLinearBytes: sparse.model.packedWeightBytes)
    guard !skipSpeed else {
      progress.finish()
      try show(report)
      return
    }
    for embedder in [dense, sparse] { embedder.maxLength = 128 }
    progress.stage("speed: \(corpus.throughput.count) texts × 128 tokens at batch 32, dense and sparse in turn")
    let batched = ThroughputMeasurement.compare([dense, sparse], texts: corpus.throughput, batchSize: 32, repeats: repeats)
    let (dense32, sparse32) = (batched[0], batched[1])
    let single = Array(corpus.throughput.prefix(64))
    progress.stage("speed: \(single.count) texts × 128 tokens at batch 1, dense and sparse in turn")
    let unbatched = ThroughputMeasurement.compare([dense, sparse], texts: single, batchSize: 1, repeats: repeats)
    let (dense1, sparse1) = (unbatched[0], unbatched[1])
    progress.finish()

    report.denseSentencesPerS = dense32.sentencesPerSecond
    report.sparseSentencesPerS = sparse32.sentencesPerSecond
    report.speedup = sparse32.sentencesPerSecond / dense32.sentencesPerSecond
    report.denseBatch1SentencesPerS = dense1.sentencesPerSecond
    report.sparseBatch1SentencesPerS = sparse1.sentencesPerSecond
    report.batch1Speedup = sparse1.sentencesPerSecond / dense1.sentencesPerSecond
    report.denseStepSeconds = dense32.stepSeconds
    report.sparseStepSeconds = sparse32.stepSeconds
    try show(report, speed: (dense32, sparse32, dense1, sparse1))
  }

  func show(
    _ report: Report,
    speed: (ThroughputMeasurement, ThroughputMeasurement, ThroughputMeasurement, ThroughputMeasurement)? = nil
  ) throws {
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      say(String(decoding: try encoder.encode(report), as: UTF8.self))
      return
    }
    let formats = Dictionary(grouping: report.compressedLayers.values, by: { $0 }).map { "\($0.value.count) × \($0.key)" }.sorted()
    say("compressed layers: \(formats.isEmpty ? "none (no layer is sparse enough)" : formats.joined(separator: ", "))")
    say("resident weight bytes: dense \(formatBytes(report.denseWeightBytes)), pruned \(formatBytes(report.sparseWeightBytes))")
    say(
      table(
        ["fidelity", "value"],
        [
          ["mean cosine to dense (\(report.evaluationSentences) held-out sentences)", String(format: "%.4f", report.meanCosine)],
          ["min cosine", String(format: "%.4f", report.minCosine)],
          ["top-5 overlap (\(report.queries) queries, \(report.documents) documents)", String(format: "%.3f", report.top5Overlap)],
        ]))
    guard let (dense32, sparse32, dense1, sparse1) = speed else { return }
    say("")
    say(
      table(
        ["speed (\(Parallel.workerCount) threads)", "dense", "sparse", "speedup"],
        [
          ["batch 32 × 128 tokens, sentences/s", String(format: "%.1f", dense32.sentencesPerSecond), String(format: "%.1f", sparse32.sentencesPerSecond), String(format: "%.2f×", report.speedup ?? 0)],
          ["batch 1 × 128 tokens, sentences/s", String(format: "%.1f", dense1.sentencesPerSecond), String(format: "%.1f", sparse1.sentencesPerSecond), String(format: "%.2f×", report.batch1Speedup ?? 0)],
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

/// Sequential pruning of a sentence encoder: each layer calibrated on the pruned layers below.
struct PruneEncoder: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "prune-encoder",
    abstract: "Prune a BERT sentence encoder layer by layer, each calibrated on the outputs of the pruned layers below it.",
    discussion: """
      SparseGPT's sequential recipe (with `calibrate` + `prune`, every layer is calibrated on the dense model \
      instead). Writes every tensor of the model, the pruned ones with their zeros, for `eval`/`embed --weights`.
      """)

  @OptionGroup var modelFolder: ModelFolderOption
  var model: String { modelFolder.model }

  @OptionGroup var outputFile: OutputFileOption
  var output: String { outputFile.output }

  @Option(help: "Sparsity pattern: 2:4, N:M, unstructured, block:RxC.")
  var pattern = "2:4"

  @Option(help: "Fraction pruned (ignored for N:M, which is always N of M).")
  var sparsity = 0.5

  @Option(help: "Pruning method: magnitude, wanda or sparsegpt.")
  var method = "sparsegpt"

  @OptionGroup var corpus: CorpusOption

  @Option(help: "Input rows captured per layer.")
  var tokens = 4096

  @Option(help: "SparseGPT's dampening: this fraction of the Hessian's mean diagonal is added to it.")
  var dampening = 0.01

  func run() throws {
    let method = try parseMethod(method)
    let parsed = try parsePattern(pattern)
    var level = sparsity
    if case .nOfM = parsed { level = 1 }
    guard (0...1).contains(level) else { throw CLIError("--sparsity must be in 0…1, got \(sparsity)") }
    guard tokens > 0 else { throw CLIError("--tokens must be positive, got \(tokens)") }
    var configuration = PruningConfiguration(method: method, pattern: parsed, sparsityLevel: level)
    configuration.sparseGPT.dampening = dampening
    configuration = try configuration.validated()
    let corpus = try corpus.load()
    let embedder = try SentenceEmbedder(directory: model)
    let progress = ProgressLine()
    let start = DispatchTime.now()
    let masks = try embedder.pruneSequentially(configuration, calibrationTexts: corpus.calibration, tokens: tokens) {
      progress.stage("encoder layer \($0 + 1)/\(embedder.model.layers.count): calibrating and pruning (\(method))")
    }
    progress.finish()
    try SafetensorsFile.write(
      embedder.model.stateDict(),
      metadata: ["source": "sparsity prune-encoder --pattern \(pattern) --method \(method) (sequential, \(tokens) tokens per layer)"],
      to: output)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    say("pruned \(masks.masks.count) weights with \(method) to \(parsed) layer by layer; wrote \(output) in \(String(format: "%.1f", seconds)) s")
  }
}
