import ArgumentParser
import Foundation
import Sparsity

/// Distillation of a pruned (or 2:4-trained) model toward its dense original.
struct Distill: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Fine-tune a pruned model toward its dense original (encoder hidden states, decoder next-token distributions), keeping its zeros.",
    discussion: """
      Decoders (a GGUF file or Hugging Face Llama folder as --model): the student matches the dense model's \
      next-token distributions (KL divergence of the logits; --objective hidden for the final hidden states) on \
      --windows calibration windows of --window tokens, every decoder-layer parameter training, pruned weights \
      staying zero; the gain is the held-out perplexity before and after. Encoders: the masks are the nonzero pattern of every encoder Linear weight of --weights that holds zeros: those \
      weights stay exactly as sparse (pruned weights stay zero); with --sparse-training weights, every encoder Linear \
      instead trains 2:4 at run time (its 2:4 mask re-chosen per row every step, the last one kept). Every \
      encoder-layer parameter trains (AdamW, \
      warmup + cosine schedule) to minimise the mean squared error between the last hidden states of real \
      tokens and the dense model's; the embeddings stay frozen. Trains on the corpus' calibration sentences \
      only (the evaluation sentences of `eval` stay held out) and writes every tensor of the model, like \
      prune-encoder. E.g.: sparsity prune-encoder --model M -o pruned.safetensors --tokens 12000, then \
      sparsity distill --model M --weights pruned.safetensors -o distilled.safetensors, then \
      sparsity eval --model M --weights distilled.safetensors.
      """)

  @OptionGroup var modelFolder: ModelFolderOption
  var model: String { modelFolder.model }

  @Option(help: "The pruned weights (safetensors, e.g. from prune-encoder): the student and its masks.")
  var weights: String

  @OptionGroup var outputFile: OutputFileOption
  var output: String { outputFile.output }

  @Option(name: .customLong("epochs"), help: "Passes over the calibration data (default: 8 for encoders, 1 for decoders).")
  var epochsOption: Int?

  @Option(help: "Peak learning rate (warmup, then cosine decay to 0).")
  var learningRate = 2e-4

  @Option(name: .customLong("batch-size"), help: "Sentences per step for encoders (default 16), windows per step for decoders (default 4).")
  var batchSizeOption: Int?

  @Option(help: "Share of the steps spent warming up.")
  var warmup = 0.1

  @Option(help: "AdamW's decoupled weight decay.")
  var weightDecay = 0.0

  @OptionGroup var corpus: CorpusOption

  @Option(help: "Seed of the batch order.")
  var seed: UInt64 = 0

  @Option(help: "Decoder models: calibration windows to train on.")
  var windows = 64

  @Option(help: "Decoder models: tokens per window.")
  var window = 256

  @Option(help: "Decoder models: what the student matches, the teacher's next-token distributions (logits: KL divergence) or its final hidden states (hidden: mean squared error).")
  var objective = "logits"

  @Option(help: "Encoder models: train the encoder's Linear weights 2:4 at run time (weights: dense master weights made 2:4 by magnitude per row every step, straight-through gradients, the last mask kept) instead of keeping a pruned model's zeros fixed. --weights may then be dense or pruned.")
  var sparseTraining: String?

  func run() throws {
    if let sparseTraining, sparseTraining != "weights" {
      throw CLIError(
        "--sparse-training takes 'weights' (2:4 activations need a squared-ReLU MLP; BERT encoders use GELU), got '\(sparseTraining)'")
    }
    let decoder = LanguageModelFiles.isDecoderModel(at: model)
    if decoder && sparseTraining != nil {
      throw CLIError("--sparse-training is for encoder models (a decoder's distillation keeps its pruned zeros fixed)")
    }
    let epochs = epochsOption ?? (decoder ? 1 : 8)
    let batchSize = batchSizeOption ?? (decoder ? 4 : 16)
    if decoder {
      try distillDecoder(epochs: epochs, batchSize: batchSize)
      return
    }
    guard epochs > 0 else { throw CLIError("--epochs must be positive, got \(epochs)") }
    guard batchSize > 0 else { throw CLIError("--batch-size must be positive, got \(batchSize)") }
    guard learningRate > 0, learningRate.isFinite else { throw CLIError("--learning-rate must be positive, got \(learningRate)") }
    guard (0...1).contains(warmup) else { throw CLIError("--warmup must be in 0…1, got \(warmup)") }
    guard weightDecay >= 0, weightDecay.isFinite else { throw CLIError("--weight-decay must be ≥ 0, got \(weightDecay)") }
    let corpus = try corpus.load()
    guard !corpus.calibration.isEmpty else { throw CLIError("the corpus has no calibration sentences") }
    let teacher = try SentenceEmbedder(directory: model, holding: .packed)  // inference only
    let student = try SentenceEmbedder(directory: model, weights: weights)
    let masks = sparseTraining == nil ? student.model.prunedWeightMasks() : ParameterMasks([:])
    if sparseTraining != nil {
      say("training every encoder Linear weight 2:4 (re-chosen by magnitude per row every step, straight-through)")
    } else {
      guard !masks.masks.isEmpty else {
        throw CLIError("\(weights): no encoder Linear weight holds zeros, so there is nothing to keep sparse (prune it first, e.g. with prune-encoder, or train it 2:4 with --sparse-training weights)")
      }
      let pruned = masks.masks.values.reduce(0) { $0 + Int(($1.sparsity * Double($1.tensor.count)).rounded()) }
      let total = masks.masks.values.reduce(0) { $0 + $1.tensor.count }
      say("keeping the zeros of \(masks.masks.count) encoder weights (\(formatPercent(Double(pruned) / Double(max(total, 1)))) of their values)")
    }

    let texts = corpus.calibration
    let configuration = DistillationConfiguration(
      epochs: epochs, batchSize: batchSize, learningRate: learningRate, warmupFraction: warmup, weightDecay: weightDecay,
      seed: seed)
    let progress = ProgressLine()
    progress.stage("loss before distillation (\(texts.count) calibration sentences)")
    let before = student.distillationLoss(toward: teacher.model, texts: texts)
    progress.finish()
    say(String(format: "loss before: %.6f", before))
    let start = DispatchTime.now()
    let stepDone = { (epoch: Int, step: Int, steps: Int, loss: Double) in
      if step == 0 { progress.stage("epoch \(epoch + 1)/\(epochs)") }
      progress.update(fraction: Double(step + 1) / Double(steps), detail: String(format: "step %d/%d  loss %.6f", step + 1, steps, loss))
    }
    let epochDone = { (record: DistillationEpoch) in
      progress.finish()
      say(String(format: "epoch %d/%d: loss %.6f (%.1f s)", record.epoch + 1, epochs, record.loss, record.seconds))
    }
    if sparseTraining == nil {
      student.distill(
        toward: teacher.model, texts: texts, masks: masks, configuration: configuration, progress: stepDone,
        epochDone: epochDone)
    } else {
      // Per-row magnitude: a pruned start keeps its own 2:4 mask at first (SparseGPT 2:4 on
      // MiniLM: mean cosine 0.940 after 8 epochs; the transposable tile mask, which must
      // change that mask, 0.896).
      student.distillSemiSparse(
        toward: teacher.model, texts: texts, algorithm: .largestAbsPerRow, configuration: configuration,
        progress: stepDone, epochDone: epochDone)
    }
    progress.stage("loss after distillation")
    let after = student.distillationLoss(toward: teacher.model, texts: texts)
    progress.finish()
    say(String(format: "loss after: %.6f", after))

    let parameters = Dictionary(uniqueKeysWithValues: student.model.namedParameters().map { ($0.name, $0.parameter) })
    let violations = masks.masks.filter { name, mask in
      let nonzero = Mask(nonzerosOf: parameters[name]!.tensor).tensor.scalars(as: Bool.self)
      return zip(nonzero, mask.tensor.scalars(as: Bool.self)).contains { $0 && !$1 }
    }
    guard violations.isEmpty else {
      throw CLIError("internal error: pruned values of \(violations.keys.sorted().joined(separator: ", ")) became nonzero")
    }
    if sparseTraining != nil {
      let notTwoFour = student.model.linearLayers().filter { name, layer in
        name.hasPrefix("encoder.") && !Mask(nonzerosOf: layer.weight.tensor).conforms(to: .twoFour)
      }
      guard notTwoFour.isEmpty else {
        throw CLIError("internal error: \(notTwoFour.map(\.name).joined(separator: ", ")) did not end 2:4")
      }
    }
    try SafetensorsFile.write(
      student.model.stateDict(),
      metadata: [
        "source":
          "sparsity distill --weights \((weights as NSString).lastPathComponent)\(sparseTraining.map { " --sparse-training \($0)" } ?? "") --epochs \(epochs) --learning-rate \(learningRate) --batch-size \(batchSize) --seed \(seed) (\(texts.count) calibration sentences)"
      ],
      to: output)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    say("distilled \(sparseTraining == nil ? "\(masks.masks.count) masked" : "the 2:4-trained encoder") weights in \(String(format: "%.1f", seconds)) s; wrote \(output)")
  }

  /// A Llama-family decoder (GGUF file or Hugging Face folder): the student's final hidden states
  /// toward the dense model's on calibration windows; the gain is the held-out perplexity before
  /// and after. Writes the decoder layers' tensors (Hugging Face names) for `--weights`.
  func distillDecoder(epochs: Int, batchSize: Int) throws {
    guard epochs > 0, batchSize > 0, windows > 0, window >= 2 else {
      throw CLIError("--epochs, --batch-size and --windows must be positive and --window at least 2")
    }
    guard learningRate > 0, learningRate.isFinite, (0...1).contains(warmup), weightDecay >= 0 else {
      throw CLIError("--learning-rate must be positive, --warmup in 0…1, --weight-decay ≥ 0")
    }
    let target: DecoderDistillationObjective
    switch objective {
    case "logits": target = .logits
    case "hidden": target = .hiddenStates
    default: throw CLIError("--objective must be logits or hidden, got '\(objective)'")
    }
    let teacher = try LanguageModel(path: model, holding: .packed, keepingQ8_0: false)
    let student = try LanguageModel(path: model, weights: weights, holding: .trainable)
    let masks = student.model.prunedWeightMasks()
    guard !masks.masks.isEmpty else {
      throw CLIError("\(weights): no decoder Linear weight holds zeros, so there is nothing to keep sparse (prune it first with prune-model)")
    }
    let text = try LanguageModelText.builtIn()
    let samples = text.calibrationWindows(student.tokenizer, count: windows, length: window)
    let heldout = student.tokenizer.encode(text.heldout, addSpecial: false)
    func perplexity() throws -> Double {
      try PerplexityMeasurement.measure(student.model, tokens: heldout, context: 512).perplexity
    }
    let progress = ProgressLine()
    progress.stage("held-out perplexity before distillation")
    let before = try perplexity()
    progress.finish()
    say(String(format: "keeping the zeros of %d decoder weights; held-out perplexity before: %.3f", masks.masks.count, before))
    let start = DispatchTime.now()
    student.model.distill(
      toward: teacher.model, windows: samples, masks: masks, objective: target,
      configuration: DistillationConfiguration(
        epochs: epochs, batchSize: batchSize, learningRate: learningRate, warmupFraction: warmup, weightDecay: weightDecay, seed: seed),
      progress: { epoch, step, steps, loss in
        if step == 0 { progress.stage("epoch \(epoch + 1)/\(epochs)") }
        progress.update(fraction: Double(step + 1) / Double(steps), detail: String(format: "step %d/%d  loss %.6f", step + 1, steps, loss))
      },
      epochDone: { record in
        progress.finish()
        say(String(format: "epoch %d/%d: loss %.6f (%.1f s)", record.epoch + 1, epochs, record.loss, record.seconds))
      })
    progress.stage("held-out perplexity after distillation")
    let after = try perplexity()
    progress.finish()
    let tensors = student.model.stateDict().filter { $0.name.hasPrefix("model.layers.") }
    try SafetensorsFile.write(
      tensors,
      metadata: ["source": "sparsity distill --weights \((weights as NSString).lastPathComponent) --objective \(objective) --epochs \(epochs) --learning-rate \(learningRate) --windows \(samples.count)×\(window)"],
      to: output)
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    say(String(format: "held-out perplexity after: %.3f (before %.3f); %.1f s; wrote %@", after, before, seconds, output))
  }
}
