import ArgumentParser
import Foundation
import Sparsity

/// The demo's recipe with options: one model, one sparsity target.
struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a digits model, prune it once, retrain it with masks, and report accuracy and speed.",
    discussion: """
      Prints dense, one-shot and retrained accuracy and inference time. --pattern none trains the dense model only. \
      --output writes the retrained weights (zeros included) as safetensors.
      """)

  @Option(help: "Model: mlp or vit.")
  var model = "mlp"

  @Option(help: "Sparsity pattern: 2:4, block:RxC, unstructured, or none.")
  var pattern = "2:4"

  @Option(help: "Fraction pruned (block and unstructured patterns; 2:4 is always 50%).")
  var sparsity = 0.9

  @Option(help: "Pruning method: magnitude, wanda or sparsegpt.")
  var method = "magnitude"

  @Option(help: "Dense training epochs (default: the model's own).")
  var epochs: Int?

  @Option(help: "Retraining epochs with masks (default: as many as dense training).")
  var retrainEpochs: Int?

  @Option(help: "Peak learning rate of dense training (retraining uses half).")
  var learningRate: Double?

  @Option(help: "Seed of the initial weights and the example order.")
  var seed: UInt64 = 0

  @Flag(help: "Retrain with SR-STE instead of fixed masks.")
  var srste = false

  @Option(help: "Write the retrained weights to this safetensors file.")
  var output: String?

  @Option(help: "Train 2:4 from scratch instead of pruning: weights (every hidden Linear made 2:4 each step), activations (squared-ReLU activations made 2:4), or both; compares with the same model trained dense.")
  var sparseTraining: String?

  @Option(help: "With --sparse-training weights|both: SR-STE's decay λ of the pruned weights (their gradient gains λ·w, so masks settle; default 2e-3); 0 is plain straight-through, as torchao's SemiSparseLinear.")
  var prunedDecay: Double?

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  func run() throws {
    guard let kind = DigitsModel(rawValue: model) else { throw CLIError("--model must be one of mlp, vit; got '\(model)'") }
    let method = try parseMethod(method)
    let plans = try self.plans(method: method)
    var dense = kind.denseTraining(seed: seed)
    if let epochs {
      guard epochs > 0 else { throw CLIError("--epochs must be positive, got \(epochs)") }
      dense.epochs = epochs
    }
    if let learningRate {
      guard learningRate > 0, learningRate.isFinite else { throw CLIError("--learning-rate must be positive, got \(learningRate)") }
      dense.learningRate = learningRate
    }
    var retrain = dense
    retrain.seed = seed &+ 1
    retrain.learningRate = dense.learningRate / 2
    if let retrainEpochs {
      guard retrainEpochs >= 0 else { throw CLIError("--retrain-epochs must not be negative, got \(retrainEpochs)") }
      retrain.epochs = retrainEpochs
    }
    let split = try Digits.builtIn().split()
    if let sparseTraining {
      guard let mode = SparseTrainingMode(rawValue: sparseTraining) else {
        throw CLIError("--sparse-training must be weights, activations or both; got '\(sparseTraining)'")
      }
      if let prunedDecay {
        guard mode != .activations else { throw CLIError("--pruned-decay needs 2:4 weights (--sparse-training weights or both)") }
        guard prunedDecay >= 0, prunedDecay.isFinite else { throw CLIError("--pruned-decay must be ≥ 0, got \(prunedDecay)") }
      }
      return try runSparseTraining(kind, mode: mode, split: split, configuration: dense)
    }
    guard prunedDecay == nil else { throw CLIError("--pruned-decay needs --sparse-training weights or both") }
    let progress = ProgressLine()
    let result = try runPruneRetrain(
      kind, plans: plans, seed: seed, train: LabeledData(split.train), test: LabeledData(split.test), dense: dense,
      retrain: retrain, srsteDecay: srste ? 2e-4 : nil
    ) { Self.show($0, on: progress) }
    progress.finish()
    if let output {
      try SafetensorsFile.write(
        result.model.stateDict(), metadata: ["source": "sparsity train --model \(model) --pattern \(pattern) --seed \(seed)"], to: output)
    }
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      say(String(decoding: try encoder.encode(result.records), as: UTF8.self))
    } else {
      say(DemoReport(records: result.records, pictures: [], seconds: 0, threads: Parallel.workerCount).text())
    }
  }

  /// A recipe's progress on the terminal: stages, a bar per epoch with the loss, each record.
  static func show(_ event: ExperimentEvent, on progress: ProgressLine) {
    switch event {
    case .stage(let text): progress.stage(text)
    case let .batch(epoch, epochs, batch, batches, loss):
      progress.update(
        fraction: (Double(epoch) + Double(batch + 1) / Double(batches)) / Double(epochs),
        detail: "epoch \(epoch + 1)/\(epochs)  loss \(String(format: "%.4f", loss))")
    case .record(let r):
      progress.note("\(r.stage.rawValue): accuracy \(formatPercent(r.accuracy)), \(String(format: "%.2f", r.inferenceMilliseconds)) ms")
    case .retrained: break
    }
  }

  /// `--sparse-training`: dense and 2:4 training from scratch, the same schedule.
  func runSparseTraining(_ kind: DigitsModel, mode: SparseTrainingMode, split: Digits.Split, configuration: TrainingConfiguration) throws {
    let progress = ProgressLine()
    let records = try Sparsity.runSparseTraining(
      kind, mode: mode, seed: seed, train: LabeledData(split.train), test: LabeledData(split.test), configuration: configuration,
      prunedDecay: Float(prunedDecay ?? 2e-3)
    ) { Self.show($0, on: progress) }
    progress.finish()
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      say(String(decoding: try encoder.encode(records), as: UTF8.self))
    } else {
      say("| model | training | seed | test accuracy | training s |")
      say("|---|---|---:|---:|---:|")
      for r in records {
        say("| \(r.model) | \(r.training) | \(r.seed) | \(formatPercent(r.accuracy)) | \(String(format: "%.1f", r.trainingSeconds)) |")
      }
    }
  }

  func plans(method: PruningMethod) throws -> [SparsityPlan] {
    if pattern == "none" { return [] }
    let parsed = try parsePattern(pattern)
    guard (0...1).contains(sparsity) else { throw CLIError("--sparsity must be in 0…1, got \(sparsity)") }
    guard let plan = SparsityPlan(pattern: parsed, sparsityLevel: sparsity, method: method) else {
      throw CLIError("--pattern '\(pattern)': training supports 2:4, block:RxC, unstructured and none")
    }
    return [plan]
  }
}
