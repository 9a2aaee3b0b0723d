import Foundation
import SparsityCore
import SparsityFormats
import SparsityModels
import SparsityNN
import SparsityPruning

extension LlamaModel {
  /// Fixed masks for the decoder `Linear` weights that hold zeros (those of a pruned model),
  /// each keeping exactly the weight's nonzeros.
  public func prunedWeightMasks() -> ParameterMasks {
    var masks: [String: Mask] = [:]
    for (name, module) in namedModules() where name.hasPrefix("model.layers.") {
      guard let linear = module as? Linear else { continue }
      let mask = Mask(nonzerosOf: linear.weight.tensor)
      if mask.sparsity > 0 { masks[name + ".weight"] = mask }
    }
    return ParameterMasks(masks)
  }

  /// Fine-tunes this pruned decoder (trainable `Linear`s) toward `teacher` on `windows` of
  /// calibration tokens: the talk's "prune once, retrain" with the dense model as the target.
  /// `objective` says what is matched: the next-token distributions (KL divergence of the logits)
  /// or the final hidden states (after the last norm, what the LM head reads). Every decoder-layer
  /// parameter trains (AdamW, warmup + cosine); the embeddings and the LM head stay frozen; pruned
  /// weights stay exactly zero (`masks`, ``MaskedTrainingMode/fixed``). The teacher's final hidden
  /// states are computed once per window and kept (its logits are made from them per step: one
  /// LM-head product, instead of `vocabulary` floats per token held for the whole run).
  ///
  /// - Parameters:
  ///   - configuration: `batchSize` counts windows per step.
  ///   - progress: after each step: (epoch, step, steps per epoch, running mean loss).
  @discardableResult
  public func distill(
    toward teacher: LlamaModel, windows: [[Int]], masks: ParameterMasks, objective: DecoderDistillationObjective = .logits,
    configuration c: DistillationConfiguration = DistillationConfiguration(),
    progress: ((_ epoch: Int, _ step: Int, _ steps: Int, _ loss: Double) -> Void)? = nil,
    epochDone: ((DistillationEpoch) -> Void)? = nil
  ) -> [DistillationEpoch] {
    precondition(c.epochs >= 0 && c.batchSize > 0, "distillation needs epochs ≥ 0 and a positive batch size")
    precondition(masks.mode == .fixed, "distillation keeps masks fixed; got \(masks.mode)")
    precondition(teacher.configuration == configuration, "the teacher's configuration differs from the student's")
    let targets = windows.map { w in Gradients.disabled { teacher.hiddenStates(w.map(Int32.init), cache: nil).value } }
    let parameters = layers.flatMap { $0.parameters() }
    let optimizer = AdamW(parameters, weightDecay: c.weightDecay)
    let batches = stride(from: 0, to: windows.count, by: c.batchSize).map { Array($0..<min($0 + c.batchSize, windows.count)) }
    let total = batches.count * c.epochs
    let schedule = WarmupCosineSchedule(peak: c.learningRate, warmupSteps: Int(Double(total) * c.warmupFraction), totalSteps: total)
    var masks = masks
    masks.apply(to: self)
    var generator = SeededGenerator(seed: c.seed)
    var records: [DistillationEpoch] = []
    var step = 0
    for epoch in 0..<c.epochs {
      let start = DispatchTime.now().uptimeNanoseconds
      var order = Array(batches.indices)
      order.shuffle(using: &generator)
      var lossSum = 0.0
      for (i, b) in order.enumerated() {
        optimizer.zeroGradients()
        var batchLoss = 0.0
        for w in batches[b] {
          let loss = distillationLoss(windows[w], target: targets[w], teacher: teacher, objective: objective)
          loss.backward(seed: [1 / Float(batches[b].count)])
          batchLoss += Double(loss.scalar)
        }
        masks.prepareUpdate(of: self)
        optimizer.step(learningRate: schedule.learningRate(at: step))
        masks.apply(to: self)
        step += 1
        lossSum += batchLoss / Double(batches[b].count)
        progress?(epoch, i, batches.count, lossSum / Double(i + 1))
      }
      let record = DistillationEpoch(
        epoch: epoch, loss: lossSum / Double(max(batches.count, 1)), seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
      records.append(record)
      epochDone?(record)
    }
    return records
  }

  /// The distillation loss on `window` against the teacher's final hidden states `target`: the
  /// mean KL divergence of the next-token distributions, or the mean squared error of the states.
  func distillationLoss(_ window: [Int], target: [Float], teacher: LlamaModel, objective: DecoderDistillationObjective) -> Variable {
    let ids = window.map(Int32.init)
    var h = Gradients.disabled { embedTokens(ids) }
    for (i, layer) in layers.enumerated() { h = layer(h, layer: i, cache: nil) }
    let states = norm(h)
    switch objective {
    case .hiddenStates:
      return maskedMeanSquaredError(states, target: target, rowMask: [Int32](repeating: 1, count: window.count))
    case .logits(let temperature):
      let teacherLogits = Gradients.disabled { teacher.lmHead(Variable(target, shape: states.shape)).value }
      return klDivergence(lmHead(states), targetLogits: teacherLogits, temperature: temperature)
    }
  }
}

/// What decoder distillation matches: the teacher's next-token distributions (KL divergence of
/// the logits at a temperature, Hinton et al.; what perplexity measures) or its final hidden states
/// (mean squared error; cheaper, no LM-head products).
public enum DecoderDistillationObjective: Sendable, Equatable {
  case logits(temperature: Float)
  case hiddenStates

  /// KL divergence of the logits at temperature 1.
  public static let logits = DecoderDistillationObjective.logits(temperature: 1)
}
