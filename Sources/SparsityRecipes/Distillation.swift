import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

/// How ``SentenceEmbedder/distill(toward:texts:masks:configuration:progress:epochDone:)`` trains.
public struct DistillationConfiguration: Sendable, Equatable {
  public var epochs: Int
  /// Sentences per step.
  public var batchSize: Int
  /// The peak learning rate of the warmup + cosine schedule.
  public var learningRate: Double
  /// The share of all steps spent warming up.
  public var warmupFraction: Double
  /// AdamW's decoupled weight decay. Default 0: the target is the teacher's function, and decay
  /// only pulls the weights away from it.
  public var weightDecay: Double
  /// Seeds the order of equally long sentences and the order of batches in each epoch.
  public var seed: UInt64

  public init(
    epochs: Int = 8, batchSize: Int = 16, learningRate: Double = 2e-4, warmupFraction: Double = 0.1,
    weightDecay: Double = 0, seed: UInt64 = 0
  ) {
    self.epochs = epochs
    self.batchSize = batchSize
    self.learningRate = learningRate
    self.warmupFraction = warmupFraction
    self.weightDecay = weightDecay
    self.seed = seed
  }
}

/// One epoch of distillation.
public struct DistillationEpoch: Sendable, Equatable {
  public var epoch: Int
  /// The mean squared error per hidden value over the epoch's real tokens, measured on each batch
  /// as it was trained (the weights change during the epoch).
  public var loss: Double
  public var seconds: Double
}

extension BertModel {
  /// Fixed masks for the encoder `Linear` weights that hold zeros (those of a pruned model),
  /// each keeping exactly the weight's nonzeros. Weights without zeros get no mask.
  public func prunedWeightMasks() -> ParameterMasks {
    var masks: [String: Mask] = [:]
    for (index, layer) in layers.enumerated() {
      for (name, linear) in layer.linearLayers() {
        let mask = Mask(nonzerosOf: linear.weight.tensor)
        if mask.sparsity > 0 { masks["encoder.layer.\(index).\(name).weight"] = mask }
      }
    }
    return ParameterMasks(masks)
  }
}

extension SentenceEmbedder {
  /// Fine-tunes this (pruned) model so that its last hidden states match `teacher`'s on
  /// `texts` — the "retrain with masks" step after one-shot pruning, with the dense model as the
  /// target instead of labels. The loss is ``maskedMeanSquaredError(_:target:rowMask:)`` over
  /// real tokens.
  ///
  /// - Every parameter of the encoder layers trains (Linear weights and biases, layer norms);
  ///   the embeddings (word, position, token type and their layer norm) stay frozen: they are not
  ///   pruned, the word table holds half of MiniLM's parameters, and a few hundred sentences
  ///   would move only the rows of the words they contain.
  /// - Pruned weights stay exactly zero: `masks` (``MaskedTrainingMode/fixed``) zero their
  ///   gradients before each AdamW step and re-mask after it.
  /// - Texts are sorted by token count (ties in a seeded order) and cut into batches of
  ///   similar length, so padding is small; each epoch visits the batches in a seeded order.
  /// - The teacher runs without recording gradients; its hidden states are computed once and
  ///   kept (up to 256 MiB; later batches recompute them each epoch).
  ///
  /// - Parameters:
  ///   - teacher: the dense model, same configuration; not changed.
  ///   - masks: fixed masks by parameter name (``BertModel/prunedWeightMasks()``).
  ///   - progress: called after each step with (epoch, step, steps per epoch, running mean loss).
  ///   - epochDone: called after each epoch.
  /// - Returns: one record per epoch.
  @discardableResult
  public func distill(
    toward teacher: BertModel, texts: [String], masks: ParameterMasks,
    configuration c: DistillationConfiguration = DistillationConfiguration(),
    progress: ((_ epoch: Int, _ step: Int, _ steps: Int, _ loss: Double) -> Void)? = nil,
    epochDone: ((DistillationEpoch) -> Void)? = nil
  ) -> [DistillationEpoch] {
    precondition(c.epochs >= 0 && c.batchSize > 0, "distillation needs epochs ≥ 0 and a positive batch size")
    precondition(masks.mode == .fixed, "distillation keeps masks fixed; got \(masks.mode)")
    precondition(teacher.configuration == model.configuration, "the teacher's configuration differs from the student's")
    precondition(
      model.packedLayers().isEmpty, "distillation trains dense weights: distill before sparsify")
    let shapes = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.parameter.shape) })
    for (name, mask) in masks.masks {
      precondition(name.hasPrefix("encoder.") && shapes[name] == mask.tensor.shape, "mask '\(name)' fits no encoder parameter")
    }

    var generator = SeededGenerator(seed: c.seed)
    let batches = lengthSortedBatches(texts, batchSize: c.batchSize, generator: &generator)
    var targets = [[Float]?](repeating: nil, count: batches.count)
    var cached = 0
    func target(_ b: Int) -> [Float] {
      if let kept = targets[b] { return kept }
      let t = teacherStates(teacher, batches[b])
      if cached + t.count <= 64 << 20 {
        targets[b] = t
        cached += t.count
      }
      return t
    }

    let parameters = model.layers.flatMap { $0.parameters() }
    let optimizer = AdamW(parameters, weightDecay: c.weightDecay)
    let total = batches.count * c.epochs
    let schedule = WarmupCosineSchedule(
      peak: c.learningRate, warmupSteps: Int(Double(total) * c.warmupFraction), totalSteps: total)
    var masks = masks
    masks.apply(to: model)
    model.train(true)
    defer { model.train(false) }
    var records: [DistillationEpoch] = []
    var step = 0
    for epoch in 0..<c.epochs {
      let start = DispatchTime.now()
      var order = Array(batches.indices)
      order.shuffle(using: &generator)
      var lossSum = 0.0, tokens = 0
      for (i, b) in order.enumerated() {
        let batch = batches[b]
        let goal = target(b)
        optimizer.zeroGradients()
        let embedded = Gradients.disabled { model.embeddings(ids: batch.ids, batch: batch.batchSize, tokens: batch.sequenceLength) }
        let h = model.encoded(embedded, attentionMask: batch.attentionMask)
        let loss = maskedMeanSquaredError(h, target: goal, rowMask: batch.attentionMask)
        loss.backward()
        masks.prepareUpdate(of: model)
        optimizer.step(learningRate: schedule.learningRate(at: step))
        masks.apply(to: model)
        step += 1
        let real = batch.lengths.reduce(0, +)
        lossSum += Double(loss.scalar) * Double(real)
        tokens += real
        progress?(epoch, i, batches.count, lossSum / Double(max(tokens, 1)))
      }
      let record = DistillationEpoch(
        epoch: epoch, loss: lossSum / Double(max(tokens, 1)),
        seconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9)
      records.append(record)
      epochDone?(record)
    }
    return records
  }

  /// ``distill(toward:texts:masks:configuration:progress:epochDone:)`` with 2:4 sparse training
  /// instead of fixed masks: every encoder `Linear` trains as a ``SemiSparseLinear`` (its dense
  /// weight made 2:4 by `algorithm` at every step, straight-through gradients, so the mask can
  /// move — torchao's recipe), and at the end the last mask is kept: the encoder's weights are
  /// 2:4. The student may start dense or pruned (a pruned model's zeros then start as the mask).
  ///
  /// - Returns: one record per epoch and the names of the layers made 2:4.
  @discardableResult
  public func distillSemiSparse(
    toward teacher: BertModel, texts: [String], algorithm: Sparse24.Algorithm = .largestAbsPerRow,
    configuration: DistillationConfiguration = DistillationConfiguration(),
    progress: ((_ epoch: Int, _ step: Int, _ steps: Int, _ loss: Double) -> Void)? = nil,
    epochDone: ((DistillationEpoch) -> Void)? = nil
  ) -> (epochs: [DistillationEpoch], layers: [String]) {
    let layers = swapLinearWithSemiSparseLinear(model, algorithm: algorithm) { name, _ in name.hasPrefix("encoder.") }
    defer { swapSemiSparseLinearWithLinear(model, keepingMask: true) }
    let epochs = distill(
      toward: teacher, texts: texts, masks: ParameterMasks([:]), configuration: configuration, progress: progress,
      epochDone: epochDone)
    return (epochs, layers)
  }

  /// The distillation loss toward `teacher` on `texts` with the current weights (no training):
  /// the mean squared error per hidden value over all real tokens.
  public func distillationLoss(toward teacher: BertModel, texts: [String], batchSize: Int = 32) -> Double {
    precondition(batchSize > 0, "batch size must be positive")
    var generator = SeededGenerator(seed: 0)
    let wasTraining = model.isTraining
    model.train(false)
    defer { model.train(wasTraining) }
    var sum = 0.0, tokens = 0
    for batch in lengthSortedBatches(texts, batchSize: batchSize, generator: &generator) {
      let goal = teacherStates(teacher, batch)
      let loss = Gradients.disabled {
        let h = model.hiddenStates(
          ids: batch.ids, attentionMask: batch.attentionMask, batch: batch.batchSize, tokens: batch.sequenceLength)
        return maskedMeanSquaredError(h, target: goal, rowMask: batch.attentionMask)
      }
      let real = batch.lengths.reduce(0, +)
      sum += Double(loss.scalar) * Double(real)
      tokens += real
    }
    return sum / Double(max(tokens, 1))
  }

  /// `texts` tokenized in batches of similar length: sorted by token count, equal counts in an
  /// order drawn from `generator`.
  func lengthSortedBatches(_ texts: [String], batchSize: Int, generator: inout SeededGenerator) -> [TokenizedBatch] {
    let counts = texts.map { tokenizer.encode($0, maxLength: maxLength).count }
    var rank = Array(texts.indices)
    rank.shuffle(using: &generator)
    let order = texts.indices.sorted { (counts[$0], rank[$0]) < (counts[$1], rank[$1]) }
    return stride(from: 0, to: order.count, by: batchSize).map { start in
      tokenizer.encode(batch: order[start..<min(start + batchSize, order.count)].map { texts[$0] }, maxLength: maxLength)
    }
  }

  /// The teacher's last hidden states for `batch` (padding rows included), without a graph.
  func teacherStates(_ teacher: BertModel, _ batch: TokenizedBatch) -> [Float] {
    teacher.train(false)
    return Gradients.disabled {
      teacher.hiddenStates(
        ids: batch.ids, attentionMask: batch.attentionMask, batch: batch.batchSize, tokens: batch.sequenceLength
      ).value
    }
  }
}
