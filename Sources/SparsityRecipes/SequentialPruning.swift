import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

/// Sequential pruning, SparseGPT's recipe, for any model that is a stack of blocks (BERT's
/// encoder layers, Llama's decoder layers): block by block, the inputs of the block's `Linear`s
/// are captured on calibration samples that went through the blocks below **as already pruned**,
/// the block is pruned (Wanda, SparseGPT, magnitude), and the samples are run through the pruned
/// block to become the next block's inputs. One-shot calibration on the dense model instead lets
/// the errors of the lower blocks compound.
///
/// Only one block's weights and the samples' activations are held at a time: `block(i)` may load
/// block `i` (from a memory-mapped file) and `finished` may write it out and drop it.
public struct SequentialPruning {
  public var configuration: PruningConfiguration
  /// Calibration rows captured per `Linear`.
  public var tokens: Int
  /// Which `Linear`s of a block are pruned (names within the block).
  public var filter: (_ name: String, _ layer: Linear) -> Bool

  public init(_ configuration: PruningConfiguration, tokens: Int, filter: @escaping (_ name: String, _ layer: Linear) -> Bool = { _, _ in true }) {
    self.configuration = configuration
    self.tokens = tokens
    self.filter = filter
  }

  /// One block done.
  public struct BlockReport: Sendable {
    public var index: Int
    public var masks: ParameterMasks
    /// Calibration rows each pruned `Linear` was given.
    public var rows: Int
    public var seconds: Double
  }

  /// Prunes `blocks` blocks in order.
  ///
  /// - Parameters:
  ///   - samples: the calibration samples as they enter block 0, in the order they are used;
  ///     samples past the first ones that together give `tokens` rows are not needed and dropped.
  ///   - rows: the rows (tokens) of a sample.
  ///   - block: block `i` with trainable `Linear`s.
  ///   - forward: one block run on one sample (inference, no graph).
  ///   - finished: called with each pruned block (write it, drop it).
  /// - Returns: every block's masks, keyed `"\(index).\(name)"` by the block's index.
  public func run<Sample>(
    blocks: Int, samples: [Sample], rows: (Sample) -> Int, block: (Int) throws -> Module,
    forward: (Module, Sample) -> Sample, finished: (Int, Module, BlockReport) throws -> Void = { _, _, _ in }
  ) throws -> [BlockReport] {
    var used = 0
    var total = 0
    while used < samples.count && total < tokens {
      total += rows(samples[used])
      used += 1
    }
    var current = Array(samples.prefix(used))
    var reports: [BlockReport] = []
    for index in 0..<blocks {
      let start = DispatchTime.now().uptimeNanoseconds
      let module = try block(index)
      var calibration: CalibrationInputs? = nil
      var captured = 0
      if configuration.method.needsCalibration {
        let (inputs, count) = capture(module, samples: current, forward: forward)
        (calibration, captured) = (inputs, count)
      }
      let masks = try prune(module, configuration, calibration: calibration) { name, layer in filter(name, layer) }
      current = Gradients.disabled { current.map { forward(module, $0) } }
      let report = BlockReport(
        index: index, masks: masks, rows: captured, seconds: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
      try finished(index, module, report)
      reports.append(report)
    }
    return reports
  }

  /// Up to `tokens` input rows of each `Linear` of `module` from `samples` run in order.
  func capture<Sample>(_ module: Module, samples: [Sample], forward: (Module, Sample) -> Sample) -> (CalibrationInputs, Int) {
    let linears = module.namedModules().compactMap { entry in (entry.module as? LinearLayer).map { (name: entry.name, layer: $0) } }
    var captured = [[Float]](repeating: [], count: linears.count)
    for (i, (_, linear)) in linears.enumerated() {
      captured[i].reserveCapacity(tokens * linear.inFeatures)
      linear.inputObserver = { [tokens] x in
        let room = tokens * linear.inFeatures - captured[i].count
        if room > 0 { captured[i] += x.value.prefix(room) }
      }
    }
    defer { for (_, linear) in linears { linear.inputObserver = nil } }
    Gradients.disabled {
      for sample in samples {
        if captured.indices.allSatisfy({ captured[$0].count == tokens * linears[$0].layer.inFeatures }) { break }
        _ = forward(module, sample)
      }
    }
    var inputs: [String: Tensor] = [:]
    for (i, (name, linear)) in linears.enumerated() {
      inputs[name + ".weight"] = Tensor(captured[i], shape: [captured[i].count / linear.inFeatures, linear.inFeatures])
    }
    return (CalibrationInputs(inputs), captured.first.map { $0.count / max(linears[0].layer.inFeatures, 1) } ?? 0)
  }
}

extension SentenceEmbedder {
  /// Captures the inputs of every `Linear` layer of the encoder on `texts` (each run alone, so
  /// no padding rows), in a seeded order, until `tokens` rows per layer: calibration for Wanda
  /// and SparseGPT, keyed by weight name (`encoder.layer.0.attention.self.query.weight`).
  public func captureLayerInputs(_ texts: [String], tokens: Int, seed: UInt64 = 0) -> CalibrationInputs {
    SequentialPruning(PruningConfiguration(), tokens: tokens).capture(model, samples: calibrationOrder(texts, seed: seed)) { _, text in
      _ = embed([text], batchSize: 1)
      return text
    }.0
  }

  /// Prunes the encoder's `Linear` layers one encoder layer at a time with ``SequentialPruning``,
  /// on `texts` (each sentence a sample, in a seeded order), `tokens` rows per layer.
  ///
  /// - Parameter progress: called with each encoder layer's index before it is pruned.
  /// - Returns: the masks of all pruned weights.
  public func pruneSequentially(
    _ configuration: PruningConfiguration, calibrationTexts texts: [String], tokens: Int, seed: UInt64 = 0,
    progress: (Int) -> Void = { _ in }
  ) throws -> ParameterMasks {
    model.train(false)
    let samples: [(h: Variable, mask: [Int32])] = Gradients.disabled {
      calibrationOrder(texts, seed: seed).map { text in
        let encoded = tokenizer.encode(batch: [text], maxLength: maxLength)
        let h = model.embeddings(ids: encoded.ids, batch: 1, tokens: encoded.sequenceLength)
        return (h, encoded.attentionMask)
      }
    }
    let layers = model.layers
    let reports = try SequentialPruning(configuration, tokens: tokens).run(
      blocks: layers.count, samples: samples, rows: { $0.mask.count },
      block: { index in
        progress(index)
        return layers[index]
      },
      forward: { block, sample in ((block as! BertLayer)(sample.h, keyMask: sample.mask, time: { $1() }), sample.mask) })
    var masks: [String: Mask] = [:]
    for report in reports {
      for (name, mask) in report.masks.masks { masks["encoder.layer.\(report.index).\(name)"] = mask }
    }
    return ParameterMasks(masks)
  }

  /// `texts` in a seeded order.
  func calibrationOrder(_ texts: [String], seed: UInt64) -> [String] {
    var order = texts
    var generator = SeededGenerator(seed: seed)
    order.shuffle(using: &generator)
    return order
  }
}
