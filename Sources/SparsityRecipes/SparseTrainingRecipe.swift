import Dispatch
import SparsityCore
import SparsityModels
import SparsityNN

/// What a digits model trains 2:4 from scratch (`sparsity train --sparse-training`).
public enum SparseTrainingMode: String, CaseIterable, Sendable, Codable {
  /// Every prunable Linear a ``SemiSparseLinear`` (weights made 2:4 every step, straight-through
  /// gradients, SR-STE's decay of pruned weights when asked); the trained model keeps its last
  /// mask, so its weights are 2:4.
  case weights
  /// Squared-ReLU activations made 2:4 before each hidden layer's successor (the MLP's second and
  /// third layers, the ViT blocks' `fc2`), in training and in use.
  case activations
  /// Both.
  case both

  var sparseWeights: Bool { self != .activations }
  var sparseActivations: Bool { self != .weights }
}

/// One model of ``runSparseTraining(_:mode:seed:train:test:configuration:prunedDecay:events:)``.
public struct SparseTrainingRecord: Sendable, Codable, Equatable {
  public var model: String
  /// `dense` or the ``SparseTrainingMode``.
  public var training: String
  public var seed: UInt64
  /// Test accuracy in [0, 1].
  public var accuracy: Double
  public var trainingSeconds: Double
}

/// Trains `kind` from scratch twice with the same seed and schedule — dense, then 2:4 as `mode`
/// says (the dense run with squared ReLU too when `mode` sparsifies activations, so the two
/// differ only in the sparsity) — and measures both on `test`. The sparse model is measured as it
/// will be used: weights 2:4 with the last mask (`swapSemiSparseLinearWithLinear(keepingMask:)`),
/// activations still made 2:4. `prunedDecay` is SR-STE's λ for the 2:4 weights (0: plain
/// straight-through, as torchao).
public func runSparseTraining(
  _ kind: DigitsModel, mode: SparseTrainingMode, seed: UInt64, train: LabeledData, test: LabeledData,
  configuration: TrainingConfiguration? = nil, prunedDecay: Float = 0, events: @escaping (ExperimentEvent) -> Void = { _ in }
) throws -> [SparseTrainingRecord] {
  let c = configuration ?? kind.denseTraining(seed: seed)
  let activation: Activation? = mode.sparseActivations ? .squaredReLU : nil
  var records: [SparseTrainingRecord] = []
  for sparse in [false, true] {
    let label = sparse ? mode.rawValue : "dense"
    let model = kind.make(seed: seed, activation: activation)
    if sparse && mode.sparseWeights { swapLinearWithSemiSparseLinear(model, prunedDecay: prunedDecay, filter: kind.isPrunable) }
    if sparse && mode.sparseActivations { enableSparseActivations(model) }
    events(.stage("\(kind.rawValue): \(label) training"))
    var noMasks: ParameterMasks? = nil
    let start = DispatchTime.now().uptimeNanoseconds
    try SparsityNN.train(model, on: train, configuration: c, masks: &noMasks) { epoch, batch, batches, loss in
      events(.batch(epoch: epoch, epochs: c.epochs, batch: batch, batches: batches, loss: loss))
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    if sparse && mode.sparseWeights { swapSemiSparseLinearWithLinear(model, keepingMask: true) }
    records.append(SparseTrainingRecord(model: kind.rawValue, training: label, seed: seed, accuracy: accuracy(of: model, on: test), trainingSeconds: seconds))
  }
  return records
}

/// Turns on 2:4 activations in every place of a digits model that has them.
private func enableSparseActivations(_ model: any Classifier) {
  if let mlp = model as? MLPClassifier { mlp.sparseActivations = .masked }
  for (_, module) in model.namedModules() { (module as? MLP)?.sparseActivations = .masked }
}
