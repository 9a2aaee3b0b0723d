import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityNN
import SparsityText

/// An MLP classifier: `Linear → activation → dropout` per hidden layer, then a `Linear` head;
/// parameters `layers.0.weight`, `layers.1.weight`, … (a PyTorch `ModuleList` of `Linear`s).
public final class MLPClassifier: Module, Classifier {
  public private(set) var layers: [LinearLayer]
  public let activation: Activation
  private let dropouts: [Dropout]
  /// With a gradient mode, every hidden layer's activations are made 2:4 at run time before the
  /// next (trainable) layer, whose product takes them as the 2:4 operand
  /// (``sparseActivationLinear(_:weight:bias:algorithm:gradient:)``); `nil`: dense activations.
  public var sparseActivations: Sparse24Gradient?

  public init(
    inputs: Int, hidden: [Int], classes: Int, activation: Activation = .relu, dropout: Double = 0, seed: UInt64
  ) {
    var generator = SeededGenerator(seed: seed)
    let widths = [inputs] + hidden + [classes]
    layers = (0..<widths.count - 1).map { Linear(widths[$0], widths[$0 + 1], generator: &generator) }
    self.activation = activation
    dropouts = hidden.map { _ in Dropout(dropout, seed: generator.next()) }
  }

  public override var children: [(name: String, module: Module)] {
    layers.enumerated().map { ("layers.\($0.offset)", $0.element as Module) }
      + dropouts.enumerated().map { ("dropouts.\($0.offset)", $0.element as Module) }
  }

  public override func replaceChild(_ name: String, with module: Module) {
    if name.hasPrefix("layers."), let i = Int(name.dropFirst(7)), layers.indices.contains(i) {
      layers[i] = Module.checked(module, replacing: layers[i])
    } else {
      super.replaceChild(name, with: module)
    }
  }

  public func logits(_ inputs: Variable) -> Variable {
    var h = inputs
    for (i, layer) in layers.enumerated() {
      if i > 0, let gradient = sparseActivations, let linear = layer as? Linear {
        h = sparseActivationLinear(h, weight: linear.weight, bias: linear.bias, gradient: gradient)
      } else {
        h = layer(h)
      }
      if i < dropouts.count { h = dropouts[i](activation(h)) }
    }
    return h
  }
}

/// A small vision transformer for square one-channel images given flat `[batch, side·side]`:
/// `patch × patch` windows every `stride` pixels (non-overlapping when equal) → `patch_embed`
/// (Linear) + `pos_embed` → encoder blocks → `norm` → mean over tokens → `head`.
public final class VisionTransformer: Module, Classifier {
  public let imageSide: Int
  public let patch: Int
  public let stride: Int
  public private(set) var patchEmbedding: LinearLayer
  public let positionEmbedding: Variable
  public let blocks: [TransformerEncoderBlock]
  public let norm: LayerNorm
  public private(set) var head: LinearLayer

  public var tokens: Int { ((imageSide - patch) / stride + 1) * ((imageSide - patch) / stride + 1) }

  public init(
    imageSide: Int, patch: Int, stride: Int? = nil, dimension: Int, depth: Int, heads: Int, mlpHidden: Int, classes: Int,
    activation: Activation = .gelu, dropout: Double = 0, seed: UInt64
  ) {
    let stride = stride ?? patch
    precondition(
      patch > 0 && patch <= imageSide && stride > 0 && (imageSide - patch) % stride == 0,
      "\(patch)-pixel patches every \(stride) do not tile a \(imageSide)-pixel image")
    var generator = SeededGenerator(seed: seed)
    self.imageSide = imageSide
    self.patch = patch
    self.stride = stride
    let tokens = ((imageSide - patch) / stride + 1) * ((imageSide - patch) / stride + 1)
    patchEmbedding = Linear(patch * patch, dimension, generator: &generator)
    positionEmbedding = Variable(
      randomNormal: [tokens, dimension], standardDeviation: 0.02, seed: generator.next(), requiresGradient: true)
    blocks = (0..<depth).map { _ in
      TransformerEncoderBlock(
        dimension, heads: heads, mlpHidden: mlpHidden, activation: activation, dropout: dropout, generator: &generator)
    }
    norm = LayerNorm(dimension)
    head = Linear(dimension, classes, generator: &generator)
  }

  public override var ownParameters: [(name: String, parameter: Variable)] { [("pos_embed", positionEmbedding)] }

  public override var children: [(name: String, module: Module)] {
    [("patch_embed", patchEmbedding)] + blocks.enumerated().map { ("blocks.\($0.offset)", $0.element) }
      + [("norm", norm), ("head", head)]
  }

  public override func replaceChild(_ name: String, with module: Module) {
    switch name {
    case "patch_embed": patchEmbedding = Module.checked(module, replacing: patchEmbedding)
    case "head": head = Module.checked(module, replacing: head)
    default: super.replaceChild(name, with: module)
    }
  }

  public func logits(_ inputs: Variable) -> Variable {
    precondition(inputs.shape.count == 2 && inputs.shape[1] == imageSide * imageSide, "ViT input must be [batch, \(imageSide * imageSide)], got \(inputs.shape)")
    let patches = imagePatches(inputs, side: imageSide, patch: patch, stride: stride)
    var h = add(patchEmbedding(patches), positionEmbedding)
    for block in blocks { h = block(h) }
    return head(mean(norm(h), axis: 1))
  }
}
