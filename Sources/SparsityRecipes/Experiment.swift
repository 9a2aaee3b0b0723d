import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

/// A sparsity target of the prune-and-retrain recipe: how to prune and how to store the result.
public struct SparsityPlan: Sendable, Hashable {
  /// A short label (`2:4`, `block 8x8 90%`).
  public var label: String
  public var pruning: PruningConfiguration
  public var format: WeightForm

  public init(label: String, pruning: PruningConfiguration, format: WeightForm) {
    self.label = label
    self.pruning = pruning
    self.format = format
  }

  /// 2:4 semi-structured.
  public static func twoFour(method: PruningMethod = .magnitude) -> SparsityPlan {
    SparsityPlan(label: "2:4", pruning: PruningConfiguration(method: method, pattern: .twoFour, sparsityLevel: 1), format: .twoFour)
  }

  /// `side × side` blocks, `level` of them pruned (by block L2 norm), stored as BSR.
  public static func blocks(_ side: Int, level: Double, method: PruningMethod = .magnitude) -> SparsityPlan {
    SparsityPlan(
      label: "block \(side)x\(side) \(Int((level * 100).rounded()))%",
      pruning: PruningConfiguration(method: method, pattern: .block(rows: side, columns: side), sparsityLevel: level),
      format: .bsr(side, side))
  }

  /// The plan for a pattern: 2:4 → 2:4, `block:RxC` → BSR with those blocks, unstructured → CSR
  /// (`sparsityLevel` of the blocks or elements pruned); `nil` for other patterns.
  public init?(pattern: SparsityPattern, sparsityLevel: Double, method: PruningMethod = .magnitude) {
    let percent = "\(Int((sparsityLevel * 100).rounded()))%"
    let pruning = PruningConfiguration(method: method, pattern: pattern, sparsityLevel: sparsityLevel)
    switch pattern {
    case .nOfM(2, 4): self = .twoFour(method: method)
    case let .block(r, c): self.init(label: "block \(r)x\(c) \(percent)", pruning: pruning, format: .bsr(r, c))
    case .unstructured: self.init(label: "unstructured \(percent)", pruning: pruning, format: .csr)
    default: return nil
    }
  }

  /// The demo's three targets: 2:4, and 8×8 blocks at 80% and 90%.
  public static let demo: [SparsityPlan] = [.twoFour(), .blocks(4, level: 0.8), .blocks(4, level: 0.9)]
}

/// One row of the recipe's results.
public struct ExperimentRecord: Sendable, Codable, Equatable {
  /// Where a model is in the recipe.
  public enum Stage: String, Sendable, Codable { case dense, oneshot, retrained }

  public var model: String
  public var pattern: String
  public var method: String
  public var stage: Stage
  public var seed: UInt64
  /// Test accuracy in [0, 1].
  public var accuracy: Double
  /// Median forward pass over the test set.
  public var inferenceMilliseconds: Double
  /// The dense model's inference time over this one's.
  public var speedup: Double
  /// The zero fraction of the pruned layers' weights.
  public var sparsity: Double
  /// The weight format inference ran on (`dense`, `2:4`, `bsr:8x8`, `csr`).
  public var format: String
  /// Largest |sparse − masked dense| logit over the largest |logit|, on the test set.
  public var maxRelativeDifference: Double?
  /// Training time of this stage (0 for one-shot).
  public var trainingSeconds: Double

  enum CodingKeys: String, CodingKey {
    case model, pattern, method, stage, seed, accuracy, speedup, sparsity, format
    case inferenceMilliseconds = "inference_ms"
    case maxRelativeDifference = "max_relative_difference"
    case trainingSeconds = "training_seconds"
  }
}

/// What the recipe reports while it runs.
public enum ExperimentEvent {
  /// A stage begins (`"mlp: dense training"`).
  case stage(String)
  /// Training progress within the current stage.
  case batch(epoch: Int, epochs: Int, batch: Int, batches: Int, loss: Double)
  /// A result row.
  case record(ExperimentRecord)
  /// A plan is done: the model holds its pruned and retrained (dense, masked) weights.
  case retrained(SparsityPlan, any Classifier)
}

/// The talk's recipe on one digits model: train dense; for each plan, prune once (one-shot
/// accuracy), retrain with the masks (recovered accuracy), compress to the plan's format and time
/// inference against the dense model on the same test set.
///
/// - Parameters:
///   - srsteDecay: retrain with SR-STE (masks recomputed each step by magnitude under the plan's
///     pattern, pruned weights decayed by this factor) instead of fixed masks.
///   - dense, retrain: the training runs (defaults: the model's ``DigitsModel/denseTraining(seed:)``
///     and ``DigitsModel/retraining(seed:)``).
/// - Returns: the model as the last plan left it (pruned and retrained, dense weights), the
///   records (dense first, then one-shot and retrained per plan) and, per plan label, the masks.
public func runPruneRetrain(
  _ kind: DigitsModel, plans: [SparsityPlan], seed: UInt64, train: LabeledData, test: LabeledData,
  dense denseTraining: TrainingConfiguration? = nil, retrain retraining: TrainingConfiguration? = nil,
  srsteDecay: Double? = nil, events: @escaping (ExperimentEvent) -> Void = { _ in }
) throws -> (model: any Classifier, records: [ExperimentRecord], masks: [String: [String: Mask]]) {
  let model = kind.make(seed: seed)
  func fit(_ c: TrainingConfiguration, masks: inout ParameterMasks?) throws -> Double {
    let start = DispatchTime.now()
    try SparsityNN.train(model, on: train, configuration: c, masks: &masks) { epoch, batch, batches, loss in
      events(.batch(epoch: epoch, epochs: c.epochs, batch: batch, batches: batches, loss: loss))
    }
    return Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
  }
  var records: [ExperimentRecord] = []
  func emit(_ r: ExperimentRecord) {
    records.append(r)
    events(.record(r))
  }

  events(.stage("\(kind.rawValue): dense training"))
  var noMasks: ParameterMasks? = nil
  let denseSeconds = try fit(denseTraining ?? kind.denseTraining(seed: seed), masks: &noMasks)
  let denseMilliseconds = inferenceMilliseconds(model, data: test)
  emit(
    ExperimentRecord(
      model: kind.rawValue, pattern: "dense", method: "none", stage: .dense, seed: seed, accuracy: accuracy(of: model, on: test),
      inferenceMilliseconds: denseMilliseconds, speedup: 1, sparsity: 0, format: "dense", maxRelativeDifference: nil,
      trainingSeconds: denseSeconds))
  let denseWeights = Dictionary(uniqueKeysWithValues: model.stateDict().map { ($0.name, $0.tensor) })
  let prunable = kind.isPrunable
  var allMasks: [String: [String: Mask]] = [:]

  for plan in plans {
    try model.load(denseWeights)
    events(.stage("\(kind.rawValue) \(plan.label): pruning (\(plan.pruning.method))"))
    let calibration = plan.pruning.method.needsCalibration ? captureInputs(model, data: train, filter: prunable) : nil
    var masks: ParameterMasks? = try prune(model, plan.pruning, calibration: calibration, filter: prunable)
    if let srsteDecay {
      var remask = plan.pruning
      remask.method = .magnitude
      masks!.mode = .srste(configuration: remask, decay: srsteDecay)
    }
    allMasks[plan.label] = masks!.masks
    func measured(_ stage: ExperimentRecord.Stage, trainingSeconds: Double) throws -> ExperimentRecord {
      model.train(false)
      let accuracy = accuracy(of: model, on: test)
      let dense = Gradients.disabled { model.logits(test.batch(0..<test.count).inputs) }
      let weights = model.linearLayers().filter { prunable($0.name, $0.layer) }.map(\.layer.weight.value)
      let zeros = weights.reduce(0) { $0 + $1.count { $0 == 0 } }, total = weights.reduce(0) { $0 + $1.count }
      try sparsify(model, form: plan.format, filter: prunable)
      defer { densify(model) }
      let sparse = Gradients.disabled { model.logits(test.batch(0..<test.count).inputs) }
      let scale = max(dense.value.map { abs($0) }.max() ?? 0, .leastNormalMagnitude)
      let difference = zip(sparse.value, dense.value).map { abs($0 - $1) }.max() ?? 0
      let milliseconds = inferenceMilliseconds(model, data: test)
      return ExperimentRecord(
        model: kind.rawValue, pattern: plan.label, method: plan.pruning.method.rawValue, stage: stage, seed: seed,
        accuracy: accuracy, inferenceMilliseconds: milliseconds, speedup: denseMilliseconds / milliseconds,
        sparsity: Double(zeros) / Double(max(total, 1)), format: plan.format.description,
        maxRelativeDifference: Double(difference / scale), trainingSeconds: trainingSeconds)
    }
    emit(try measured(.oneshot, trainingSeconds: 0))
    events(.stage("\(kind.rawValue) \(plan.label): retraining with masks"))
    let seconds = try fit(retraining ?? kind.retraining(seed: seed), masks: &masks)
    emit(try measured(.retrained, trainingSeconds: seconds))
    events(.retrained(plan, model))
  }
  return (model, records, allMasks)
}
