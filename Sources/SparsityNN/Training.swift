import Foundation
import SparsityCore
import SparsityFormats
import SparsityPruning

/// Examples for a classifier: flat inputs `[count, features]` and class labels.
public struct LabeledData: Sendable {
  public let inputs: [Float]
  public let features: Int
  public let labels: [Int32]

  public init(inputs: [Float], features: Int, labels: [Int32]) {
    precondition(inputs.count == features * labels.count, "\(inputs.count) inputs for \(labels.count) examples of \(features) features")
    self.inputs = inputs
    self.features = features
    self.labels = labels
  }

  public var count: Int { labels.count }

  /// Examples `indices`, in that order.
  public func batch(_ indices: some Collection<Int>) -> (inputs: Variable, labels: [Int32]) {
    var x = [Float]()
    x.reserveCapacity(indices.count * features)
    for i in indices { x += inputs[i * features..<(i + 1) * features] }
    return (Variable(x, shape: [indices.count, features]), indices.map { labels[$0] })
  }
}

/// How a training run optimises.
public struct TrainingConfiguration: Sendable, Equatable {
  public enum OptimizerKind: Sendable, Equatable {
    case sgd(momentum: Double, weightDecay: Double)
    case adamW(weightDecay: Double)
  }

  public var epochs: Int
  public var batchSize: Int
  public var optimizer: OptimizerKind
  /// The peak learning rate of the warmup + cosine schedule.
  public var learningRate: Double
  /// The share of all steps spent warming up.
  public var warmupFraction: Double
  /// Seeds the order of examples in each epoch.
  public var seed: UInt64

  public init(
    epochs: Int, batchSize: Int = 64, optimizer: OptimizerKind = .adamW(weightDecay: 0.01), learningRate: Double = 1e-3,
    warmupFraction: Double = 0.05, seed: UInt64 = 0
  ) {
    self.epochs = epochs
    self.batchSize = batchSize
    self.optimizer = optimizer
    self.learningRate = learningRate
    self.warmupFraction = warmupFraction
    self.seed = seed
  }
}

/// How masks constrain training.
public enum MaskedTrainingMode: Sendable, Equatable {
  /// Fixed masks (NVIDIA ASP's recipe): gradients of pruned weights are zeroed before each
  /// update and the weights re-masked after it.
  case fixed
  /// SR-STE (Zhou et al., 2021): the forward pass uses the dense weights pruned anew each
  /// step by `configuration` (magnitude), gradients reach all dense weights, and pruned
  /// weights decay by `decay · w`.
  case srste(configuration: PruningConfiguration, decay: Double)
}

/// Masks for some parameters of a model, by parameter name.
public struct ParameterMasks: @unchecked Sendable {
  public private(set) var masks: [String: Mask] {
    didSet { keep = masks.mapValues(Self.keep) }
  }
  public var mode: MaskedTrainingMode
  /// The masks as 0/1 values.
  private var keep: [String: [Bool]]
  /// SR-STE's dense weights, kept between steps.
  private var dense: [String: [Float]] = [:]

  public init(_ masks: [String: Mask], mode: MaskedTrainingMode = .fixed) {
    self.masks = masks
    self.mode = mode
    keep = masks.mapValues(Self.keep)
  }

  static func keep(_ mask: Mask) -> [Bool] { mask.tensor.scalars(as: Bool.self) }

  /// Multiplies each masked parameter by its mask.
  public func apply(to model: Module) {
    for (name, p) in model.namedParameters() {
      guard let keep = keep[name] else { continue }
      var value = p.value
      p.value = []
      for j in 0..<keep.count where !keep[j] { value[j] = 0 }
      p.value = value
    }
  }

  /// Before the optimizer: ASP zeroes pruned gradients; SR-STE restores the dense weights and
  /// adds the decay of pruned ones.
  package mutating func prepareUpdate(of model: Module) {
    for (name, p) in model.namedParameters() {
      guard let keep = keep[name], var gradient = p.gradient else { continue }
      p.gradient = nil
      switch mode {
      case .fixed:
        for j in 0..<keep.count where !keep[j] { gradient[j] = 0 }
      case .srste(_, let decay):
        if let d = dense[name] { p.value = d }
        let value = p.value
        for j in 0..<keep.count where !keep[j] { gradient[j] += Float(decay) * value[j] }
      }
      p.gradient = gradient
    }
  }

  /// After the optimizer: ASP re-masks; SR-STE keeps the dense weights, prunes them anew and
  /// leaves the pruned copy for the next forward pass.
  mutating func finishUpdate(of model: Module) throws(PruningError) {
    if case .srste(let configuration, _) = mode {
      for (name, p) in model.namedParameters() where masks[name] != nil {
        dense[name] = p.value
        masks[name] = try configuration.prune(weight: p.tensor, name: name, statistics: nil).mask
      }
    }
    apply(to: model)
  }
}

/// One epoch's numbers.
public struct EpochRecord: Sendable, Equatable {
  public var epoch: Int
  public var loss: Double
  public var trainingAccuracy: Double
  public var seconds: Double
}

/// Trains `model` on `data` with mini-batches in a seeded order, the warmup + cosine schedule
/// and cross-entropy; with `masks`, masked as their mode says.
///
/// - Parameters:
///   - progress: called after each batch with (epoch, batch, batches, running mean loss).
///   - epochDone: called after each epoch.
/// - Returns: one record per epoch.
@discardableResult
public func train(
  _ model: some Classifier, on data: LabeledData, configuration c: TrainingConfiguration,
  masks: inout ParameterMasks?,
  progress: ((_ epoch: Int, _ batch: Int, _ batches: Int, _ loss: Double) -> Void)? = nil,
  epochDone: ((EpochRecord) -> Void)? = nil
) throws(PruningError) -> [EpochRecord] {
  precondition(c.epochs >= 0 && c.batchSize > 0, "training needs epochs ≥ 0 and a positive batch size")
  let optimizer: any Optimizer =
    switch c.optimizer {
    case let .sgd(momentum, decay): SGD(model.parameters(), momentum: momentum, weightDecay: decay)
    case .adamW(let decay): AdamW(model.parameters(), weightDecay: decay)
    }
  let batches = (data.count + c.batchSize - 1) / c.batchSize
  let total = batches * c.epochs
  let schedule = WarmupCosineSchedule(
    peak: c.learningRate, warmupSteps: Int(Double(total) * c.warmupFraction), totalSteps: total)
  var generator = SeededGenerator(seed: c.seed)
  var records: [EpochRecord] = []
  var step = 0
  masks?.apply(to: model)
  model.train(true)
  defer { model.train(false) }
  for epoch in 0..<c.epochs {
    let start = DispatchTime.now()
    var order = Array(0..<data.count)
    order.shuffle(using: &generator)
    var lossSum = 0.0, correct = 0
    for b in 0..<batches {
      let (x, labels) = data.batch(order[b * c.batchSize..<min((b + 1) * c.batchSize, data.count)])
      optimizer.zeroGradients()
      let logits = model.logits(x)
      let loss = crossEntropy(logits, labels: labels)
      loss.backward()
      masks?.prepareUpdate(of: model)
      optimizer.step(learningRate: schedule.learningRate(at: step))
      try masks?.finishUpdate(of: model)
      step += 1
      lossSum += Double(loss.scalar) * Double(labels.count)
      correct += zip(argmax(logits), labels).count { $0 == Int($1) }
      progress?(epoch, b, batches, lossSum / Double(min((b + 1) * c.batchSize, data.count)))
    }
    let record = EpochRecord(
      epoch: epoch, loss: lossSum / Double(max(data.count, 1)),
      trainingAccuracy: Double(correct) / Double(max(data.count, 1)),
      seconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
    records.append(record)
    epochDone?(record)
  }
  return records
}

/// The index of the largest logit per row of `[batch, classes]`.
public func argmax(_ logits: Variable) -> [Int] {
  let c = logits.shape.last ?? 0
  guard c > 0 else { return [] }
  return (0..<logits.count / c).map { r in
    var best = 0
    for j in 1..<c where logits.value[r * c + j] > logits.value[r * c + best] { best = j }
    return best
  }
}

/// Class predictions for every example, in evaluation mode and without recording gradients.
public func predict(_ model: some Classifier, _ data: LabeledData, batchSize: Int = 512) -> [Int] {
  let wasTraining = model.isTraining
  model.train(false)
  defer { model.train(wasTraining) }
  return Gradients.disabled {
    stride(from: 0, to: data.count, by: batchSize).flatMap { start in
      argmax(model.logits(data.batch(start..<min(start + batchSize, data.count)).inputs))
    }
  }
}

/// The share of examples classified correctly.
public func accuracy(of model: some Classifier, on data: LabeledData) -> Double {
  let predicted = predict(model, data)
  return Double(zip(predicted, data.labels).count { $0 == Int($1) }) / Double(max(data.count, 1))
}
