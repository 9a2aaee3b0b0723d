import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

/// The two classifiers of the digits demo.
public enum DigitsModel: String, Sendable, CaseIterable, Codable {
  /// 64 → 256 → 256 → 10, ReLU.
  case mlp
  /// 4×4 patches every 2 pixels (9 overlapping tokens), width 64, 2 pre-norm blocks of 4 heads,
  /// MLP 128, GELU. (Non-overlapping 2×2 patches reached only 95–97% here, with more variance.)
  case vit

  /// A freshly initialised model; `activation` replaces the model's own (ReLU for the MLP, GELU
  /// for the ViT's blocks).
  public func make(seed: UInt64, activation: Activation? = nil) -> any Classifier {
    switch self {
    case .mlp: MLPClassifier(inputs: 64, hidden: [256, 256], classes: 10, activation: activation ?? .relu, dropout: 0.1, seed: seed)
    case .vit:
      VisionTransformer(
        imageSide: 8, patch: 4, stride: 2, dimension: 64, depth: 2, heads: 4, mlpHidden: 128, classes: 10,
        activation: activation ?? .gelu, dropout: 0, seed: seed)
    }
  }

  /// The layers pruned: every hidden `Linear`; not the classifier head (10 outputs fit no block
  /// size and it holds few weights) nor the ViT's patch embedding (4 inputs).
  public func isPrunable(_ name: String, _ layer: Linear) -> Bool {
    switch self {
    case .mlp: name != "layers.2"
    case .vit: name.hasPrefix("blocks.")
    }
  }

  /// A saved model for inference: every `Linear` packed straight from the file `weights` — in
  /// the sparse form its zeros suit, else dense — and the other parameters loaded, so only
  /// packed weights (and the small non-Linear parameters) stay resident.
  ///
  /// - Throws: ``ModelLoadingError`` naming the file and the missing or mis-shaped tensor.
  public static func load(_ kind: DigitsModel, weights path: String) throws -> any Classifier {
    let model = kind.make(seed: 0)
    let stored = try StoredWeights(paths: [path])
    // Each Linear packed straight from its stored arrays (no dense copy of a sparse weight)…
    for (name, layer) in model.linearLayers() {
      let packed = try stored.linear(name, in: layer.inFeatures, out: layer.outFeatures, holding: .packed)
      model.replace(layer, with: packed)
    }
    // …then the other parameters (norms, position embeddings).
    var rest: [String: Tensor] = [:]
    for (name, parameter) in model.namedParameters() { rest[name] = try stored.values(name, shape: parameter.shape) }
    do { try model.load(rest) } catch { throw ModelLoadingError.weights(path: path, error) }
    model.train(false)
    return model
  }

  /// Dense training from scratch.
  public func denseTraining(seed: UInt64) -> TrainingConfiguration {
    switch self {
    case .mlp: TrainingConfiguration(epochs: 30, batchSize: 32, learningRate: 2e-3, warmupFraction: 0.05, seed: seed)
    case .vit: TrainingConfiguration(epochs: 50, batchSize: 32, learningRate: 3e-3, warmupFraction: 0.1, seed: seed)
    }
  }

  /// Retraining a pruned model with its masks: fewer epochs, a lower peak rate.
  public func retraining(seed: UInt64) -> TrainingConfiguration {
    var c = denseTraining(seed: seed &+ 1)
    c.learningRate /= 2
    return c
  }
}

extension LabeledData {
  /// The digits as 64 features in [0, 1].
  public init(_ digits: Digits) {
    self.init(inputs: digits.images, features: Digits.pixelCount, labels: digits.labels)
  }
}

/// Up to `rows` input rows of every `Linear` layer that `filter` accepts, captured on `data`
/// in evaluation mode, keyed by weight name (`NAME.weight`) as Wanda and SparseGPT read them.
public func captureInputs(
  _ model: some Classifier, data: LabeledData, rows: Int = 2048, filter: (String, Linear) -> Bool = { _, _ in true }
) -> CalibrationInputs {
  let layers = model.linearLayers().filter { filter($0.name, $0.layer) }
  var captured: [String: [Float]] = [:]
  for (name, layer) in layers {
    layer.inputObserver = { x in
      let limit = rows * layer.inFeatures
      let have = captured[name, default: []].count
      if have < limit { captured[name, default: []] += x.value.prefix(limit - have) }
    }
  }
  defer { for (_, layer) in layers { layer.inputObserver = nil } }
  _ = predict(model, data)
  var inputs: [String: Tensor] = [:]
  for (name, layer) in layers {
    let values = captured[name] ?? []
    inputs[name + ".weight"] = Tensor(values, shape: [values.count / layer.inFeatures, layer.inFeatures])
  }
  return CalibrationInputs(inputs)
}

/// The median wall time of a forward pass over `data` (after one untimed pass), in milliseconds.
public func inferenceMilliseconds(_ model: some Classifier, data: LabeledData, repeats: Int = 15) -> Double {
  InterleavedTiming.measure([{ _ = predict(model, data) }], rounds: max(repeats, 1)).median(0) * 1e3
}
