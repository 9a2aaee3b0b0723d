import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

extension SentenceEmbedder {
  /// Captures the inputs of every `Linear` layer of the encoder on `texts` (each run alone, so
  /// no padding rows), in a seeded order, until `tokens` rows per layer: calibration for Wanda
  /// and SparseGPT, keyed by weight name (`encoder.layer.0.attention.self.query.weight`).
  public func captureLayerInputs(_ texts: [String], tokens: Int, seed: UInt64 = 0) -> CalibrationInputs {
    linearInputs(of: model, texts: texts, tokens: tokens, seed: seed)
  }
}

extension SentenceEmbedder {
  /// Prunes the encoder's `Linear` layers one encoder layer at a time, each calibrated on the
  /// outputs of the layers below it as already pruned (SparseGPT's sequential recipe; one-shot
  /// calibration on the dense model lets errors compound).
  ///
  /// - Parameters:
  ///   - texts: calibration sentences; `tokens` input rows per layer are captured.
  ///   - progress: called with each encoder layer's index before it is pruned.
  /// - Returns: the masks of all pruned weights.
  public func pruneSequentially(
    _ configuration: PruningConfiguration, calibrationTexts texts: [String], tokens: Int, seed: UInt64 = 0,
    progress: (Int) -> Void = { _ in }
  ) throws(PruningError) -> ParameterMasks {
    var masks: [String: Mask] = [:]
    for (index, layer) in model.layers.enumerated() {
      progress(index)
      let calibration = configuration.method.needsCalibration ? linearInputs(of: layer, texts: texts, tokens: tokens, seed: seed) : nil
      let pruned = try prune(layer, configuration, calibration: calibration)
      for (name, mask) in pruned.masks { masks["encoder.layer.\(index).\(name)"] = mask }
    }
    return ParameterMasks(masks)
  }

  /// `tokens` input rows of each `Linear` of `module` (part of the model), keyed by its weight
  /// name within `module`, from single-sentence runs in a seeded order.
  func linearInputs(of module: Module, texts: [String], tokens: Int, seed: UInt64) -> CalibrationInputs {
    var order = Array(texts.indices)
    var generator = SeededGenerator(seed: seed)
    order.shuffle(using: &generator)
    let linears = module.namedModules().compactMap { entry in (entry.module as? LinearLayer).map { (name: entry.name, layer: $0) } }
    var captured = [[Float]](repeating: [], count: linears.count)
    for (i, (_, linear)) in linears.enumerated() {
      linear.inputObserver = { x in
        let room = tokens * linear.inFeatures - captured[i].count
        if room > 0 { captured[i] += x.value.prefix(room) }
      }
    }
    defer { for (_, linear) in linears { linear.inputObserver = nil } }
    for index in order {
      if captured.indices.allSatisfy({ captured[$0].count == tokens * linears[$0].layer.inFeatures }) { break }
      _ = embed([texts[index]], batchSize: 1)
    }
    var inputs: [String: Tensor] = [:]
    for (i, (name, linear)) in linears.enumerated() {
      inputs[name + ".weight"] = Tensor(captured[i], shape: [captured[i].count / linear.inFeatures, linear.inFeatures])
    }
    return CalibrationInputs(inputs)
  }
}
