import Foundation
import SparsityCore
import SparsityKernels

/// `y = x · weightᵀ + bias` with a weight held dense (trainable) or, after ``sparsify(_:format:filter:)``,
/// compressed for the sparse kernels (inference; the same outputs as the dense masked weight).
///
/// Parameters: `weight [out, in]`, `bias [out]` (PyTorch `nn.Linear`), initialised from
/// `U(−1/√in, 1/√in)` as PyTorch does.
public final class Linear: Module {
  public let weight: Variable
  public let bias: Variable?
  /// The compressed weight the forward pass runs on, or `nil` for the dense weight.
  public internal(set) var compressed: LinearWeight?

  public var inFeatures: Int { weight.shape[1] }
  public var outFeatures: Int { weight.shape[0] }

  public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout SeededGenerator) {
    let bound = 1 / Double(max(inFeatures, 1)).squareRoot()
    weight = Variable(randomUniform: [outFeatures, inFeatures], bound: bound, seed: generator.next(), requiresGradient: true)
    self.bias = bias ? Variable(randomUniform: [outFeatures], bound: bound, seed: generator.next(), requiresGradient: true) : nil
  }

  public override var ownParameters: [(name: String, parameter: Variable)] {
    [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
  }

  /// Called with every input while set (calibration capture for Wanda and SparseGPT).
  var inputObserver: ((Variable) -> Void)?

  /// The dense weight packed for the kernels, and the weight version it was packed from.
  private var packed: (version: Int, weight: LinearWeight)?

  public func callAsFunction(_ x: Variable) -> Variable {
    inputObserver?(x)
    if let compressed { return packedLinear(x, compressed) }
    // Training records the graph; inference runs the dispatcher's kernel on a weight packed
    // once per version, as the compressed formats do.
    guard !Gradients.areEnabled, let w = packedDenseWeight() else { return linear(x, weight: weight, bias: bias) }
    return packedLinear(x, w)
  }

  private func packedDenseWeight() -> LinearWeight? {
    if let packed, packed.version == weight.version { return packed.weight }
    guard let w = try? LinearWeight(dense: weight.tensor) else { return nil }
    packed = (weight.version, w)
    return w
  }

  /// The forward pass on a packed weight; gradients reach `x` (through the dense weight) but not
  /// the frozen packed weight.
  private func packedLinear(_ x: Variable, _ w: LinearWeight) -> Variable {
    let y = Self.apply(w, bias: bias?.value, to: x)
    let (n, k, m) = (outFeatures, inFeatures, y.count / max(outFeatures, 1))
    return Variable(y.value, shape: y.shape, parents: [x]) { out in
      var dx = [Float](repeating: 0, count: m * k)
      multiplyTransposed(out.gradient!, rows: m, transposed(w.dense().floatValues, rows: n, columns: k), rows: k, inner: n, into: &dx)
      x.accumulate(dx)
    }
  }
}

extension Linear {
  /// `x · wᵀ + bias` on the dispatcher's kernel, outside the graph.
  static func apply(_ w: LinearWeight, bias: [Float]?, to x: Variable) -> Variable {
    precondition(x.shape.last == w.inFeatures, "x \(x.shape) does not end in \(w.inFeatures) features")
    let (m, n) = (x.count / max(w.inFeatures, 1), w.outFeatures)
    // Every kernel writes every output element: no zero fill.
    let y = [Float](unsafeUninitializedCapacity: m * n) { yb, count in
      count = m * n
      x.value.withUnsafeBufferPointer { xb in
        if let bias {
          bias.withUnsafeBufferPointer { w.apply(x: xb, tokens: m, into: yb, bias: $0) }
        } else {
          w.apply(x: xb, tokens: m, into: yb)
        }
      }
    }
    return Variable(y, shape: Array(x.shape.dropLast()) + [n])
  }
}

/// A lookup table `weight [count, dimension]` (PyTorch `nn.Embedding`), initialised `N(0, 1)`.
public final class Embedding: Module {
  public let weight: Variable

  public init(_ count: Int, _ dimension: Int, generator: inout SeededGenerator) {
    weight = Variable(randomNormal: [count, dimension], standardDeviation: 1, seed: generator.next(), requiresGradient: true)
  }

  public override var ownParameters: [(name: String, parameter: Variable)] { [("weight", weight)] }

  /// `[ids.count, dimension]`.
  public func callAsFunction(_ ids: [Int32]) -> Variable { embedding(ids, table: weight) }
}

/// Layer normalisation over the last axis with `weight` (ones) and `bias` (zeros), as PyTorch `nn.LayerNorm`.
public final class LayerNorm: Module {
  public let weight: Variable
  public let bias: Variable
  public let epsilon: Float

  public init(_ dimension: Int, epsilon: Float = 1e-5) {
    weight = Variable([Float](repeating: 1, count: dimension), shape: [dimension], requiresGradient: true)
    bias = Variable([Float](repeating: 0, count: dimension), shape: [dimension], requiresGradient: true)
    self.epsilon = epsilon
  }

  public override var ownParameters: [(name: String, parameter: Variable)] { [("weight", weight), ("bias", bias)] }

  public func callAsFunction(_ x: Variable) -> Variable { layerNorm(x, weight: weight, bias: bias, epsilon: epsilon) }

  /// The normalisation of `x + residual` (fused at inference).
  public func callAsFunction(_ x: Variable, adding residual: Variable) -> Variable {
    layerNorm(x, adding: residual, weight: weight, bias: bias, epsilon: epsilon)
  }
}

/// The nonlinearities of the MLP blocks.
public enum Activation: String, Sendable, CaseIterable, Codable {
  case relu, gelu, squaredReLU = "squared-relu"

  public func callAsFunction(_ x: Variable) -> Variable {
    switch self {
    case .relu: SparsityNN.relu(x)
    case .gelu: SparsityNN.gelu(x)
    case .squaredReLU: SparsityNN.squaredReLU(x)
    }
  }
}

/// Inverted dropout, active only while training; reproducible from its seed.
public final class Dropout: Module {
  public let probability: Double
  private var generator: SeededGenerator

  public init(_ probability: Double, seed: UInt64) {
    precondition((0..<1).contains(probability), "dropout probability \(probability) is not in [0, 1)")
    self.probability = probability
    generator = SeededGenerator(seed: seed)
  }

  public func callAsFunction(_ x: Variable) -> Variable {
    guard isTraining, probability > 0 else { return x }
    return dropout(x, probability: probability, generator: &generator)
  }
}

/// `fc2(dropout(activation(fc1(x))))`: the feed-forward block of a transformer.
public final class MLP: Module {
  public let fc1: Linear
  public let fc2: Linear
  public let activation: Activation
  public let dropout: Dropout

  public init(
    _ dimension: Int, hidden: Int, activation: Activation = .gelu, dropout: Double = 0, generator: inout SeededGenerator
  ) {
    fc1 = Linear(dimension, hidden, generator: &generator)
    fc2 = Linear(hidden, dimension, generator: &generator)
    self.activation = activation
    self.dropout = Dropout(dropout, seed: generator.next())
  }

  public override var children: [(name: String, module: Module)] { [("fc1", fc1), ("dropout", dropout), ("fc2", fc2)] }

  public func callAsFunction(_ x: Variable) -> Variable { fc2(dropout(activation(fc1(x)))) }
}

/// Scaled dot-product attention of `[batch, tokens, heads · headDimension]` projections:
/// `softmax(q·kᵀ / √headDimension) · v` per head, keys where `keyMask [batch, tokens]` is 0 ignored.
public func attention(query q: Variable, key k: Variable, value v: Variable, heads: Int, keyMask: [Int32]? = nil)
  -> Variable
{
  precondition(q.shape.count == 3 && q.shape == k.shape && q.shape == v.shape, "attention: q, k, v must share [batch, tokens, dimension]")
  let (b, t, d) = (q.shape[0], q.shape[1], q.shape[2])
  precondition(heads > 0 && d % heads == 0, "attention: \(d) features do not split into \(heads) heads")
  let hd = d / heads
  if !(q.requiresGradient || k.requiresGradient || v.requiresGradient) {
    return fusedAttention(q.value, k.value, v.value, batch: b, tokens: t, heads: heads, keyMask: keyMask)
  }
  func split(_ x: Variable) -> Variable { permuted(reshaped(x, [b, t, heads, hd]), [0, 2, 1, 3]) }
  var scores = scaled(matmul(split(q), split(k), transposeB: true), by: 1 / Float(hd).squareRoot())
  if let keyMask { scores = maskingKeys(scores, keyMask: keyMask) }
  let context = matmul(softmax(scores), split(v), transposeB: false)
  return reshaped(permuted(context, [0, 2, 1, 3]), [b, t, d])
}

/// Inference attention without intermediate tensors (``ScaledDotProductAttention``).
func fusedAttention(
  _ q: [Float], _ k: [Float], _ v: [Float], batch b: Int, tokens t: Int, heads: Int, keyMask: [Int32]?
) -> Variable {
  let d = q.count / max(b * t, 1)
  return q.withUnsafeBufferPointer { q in
    k.withUnsafeBufferPointer { k in
      v.withUnsafeBufferPointer { v in
        fusedAttention(q.baseAddress, k.baseAddress, v.baseAddress, rowStride: d, batch: b, tokens: t, hidden: d, heads: heads, keyMask: keyMask)
      }
    }
  }
}

/// Inference attention of a stacked q/k/v projection `[batch, tokens, 3 · hidden]` (``StackedLinear``).
func attention(stackedQKV qkv: Variable, heads: Int, keyMask: [Int32]?) -> Variable {
  precondition(qkv.shape.count == 3 && qkv.shape[2] % 3 == 0, "attention: stacked q/k/v must be [batch, tokens, 3 · hidden]")
  let (b, t, d) = (qkv.shape[0], qkv.shape[1], qkv.shape[2] / 3)
  return qkv.value.withUnsafeBufferPointer { p in
    fusedAttention(p.baseAddress, p.baseAddress.map { $0 + d }, p.baseAddress.map { $0 + 2 * d }, rowStride: 3 * d, batch: b, tokens: t, hidden: d, heads: heads, keyMask: keyMask)
  }
}

private func fusedAttention(
  _ q: UnsafePointer<Float>?, _ k: UnsafePointer<Float>?, _ v: UnsafePointer<Float>?, rowStride: Int, batch b: Int,
  tokens t: Int, hidden d: Int, heads: Int, keyMask: [Int32]?
) -> Variable {
  guard let q, let k, let v, b * t * d > 0 else { return Variable([Float](repeating: 0, count: b * t * d), shape: [b, t, d]) }
  let out = [Float](unsafeUninitializedCapacity: b * t * d) { out, count in
    count = b * t * d
    func run(_ mask: UnsafeBufferPointer<Int32>?) {
      ScaledDotProductAttention.forward(
        query: q, key: k, value: v, rowStride: rowStride, into: out.baseAddress!, outRowStride: d, batch: b, tokens: t,
        heads: heads, headDimension: d / heads, keyMask: mask)
    }
    if let keyMask { keyMask.withUnsafeBufferPointer { run($0) } } else { run(nil) }
  }
  return Variable(out, shape: [b, t, d])
}

/// Multi-head self-attention with separate `query`, `key`, `value` and `output` projections.
public final class MultiHeadSelfAttention: Module {
  public let query: Linear
  public let key: Linear
  public let value: Linear
  public let output: Linear
  public let heads: Int

  public init(_ dimension: Int, heads: Int, generator: inout SeededGenerator) {
    precondition(heads > 0 && dimension % heads == 0, "\(dimension) features do not split into \(heads) heads")
    query = Linear(dimension, dimension, generator: &generator)
    key = Linear(dimension, dimension, generator: &generator)
    value = Linear(dimension, dimension, generator: &generator)
    output = Linear(dimension, dimension, generator: &generator)
    self.heads = heads
  }

  public override var children: [(name: String, module: Module)] {
    [("query", query), ("key", key), ("value", value), ("output", output)]
  }

  /// x `[batch, tokens, dimension]` → same shape.
  public func callAsFunction(_ x: Variable, keyMask: [Int32]? = nil) -> Variable {
    output(attention(query: query(x), key: key(x), value: value(x), heads: heads, keyMask: keyMask))
  }
}

/// A pre-norm transformer encoder block: `x + attention(norm1(x))`, then `x + mlp(norm2(x))`.
public final class TransformerEncoderBlock: Module {
  public let norm1: LayerNorm
  public let attention: MultiHeadSelfAttention
  public let norm2: LayerNorm
  public let mlp: MLP

  public init(
    _ dimension: Int, heads: Int, mlpHidden: Int, activation: Activation = .gelu, dropout: Double = 0,
    generator: inout SeededGenerator
  ) {
    norm1 = LayerNorm(dimension)
    attention = MultiHeadSelfAttention(dimension, heads: heads, generator: &generator)
    norm2 = LayerNorm(dimension)
    mlp = MLP(dimension, hidden: mlpHidden, activation: activation, dropout: dropout, generator: &generator)
  }

  public override var children: [(name: String, module: Module)] {
    [("norm1", norm1), ("attention", attention), ("norm2", norm2), ("mlp", mlp)]
  }

  public func callAsFunction(_ x: Variable, keyMask: [Int32]? = nil) -> Variable {
    let h = add(x, attention(norm1(x), keyMask: keyMask))
    return add(h, mlp(norm2(h)))
  }
}

/// A classifier that maps flat inputs `[batch, features]` to class logits.
public protocol Classifier: Module {
  /// Logits `[batch, classes]` for `inputs [batch, features]`.
  func logits(_ inputs: Variable) -> Variable
}

/// An MLP classifier: `Linear → activation → dropout` per hidden layer, then a `Linear` head;
/// parameters `layers.0.weight`, `layers.1.weight`, … (a PyTorch `ModuleList` of `Linear`s).
public final class MLPClassifier: Module, Classifier {
  public let layers: [Linear]
  public let activation: Activation
  private let dropouts: [Dropout]

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

  public func logits(_ inputs: Variable) -> Variable {
    var h = inputs
    for (i, layer) in layers.enumerated() {
      h = layer(h)
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
  public let patchEmbedding: Linear
  public let positionEmbedding: Variable
  public let blocks: [TransformerEncoderBlock]
  public let norm: LayerNorm
  public let head: Linear

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

  public func logits(_ inputs: Variable) -> Variable {
    precondition(inputs.shape.count == 2 && inputs.shape[1] == imageSide * imageSide, "ViT input must be [batch, \(imageSide * imageSide)], got \(inputs.shape)")
    let patches = imagePatches(inputs, side: imageSide, patch: patch, stride: stride)
    var h = add(patchEmbedding(patches), positionEmbedding)
    for block in blocks { h = block(h) }
    return head(mean(norm(h), axis: 1))
  }
}
