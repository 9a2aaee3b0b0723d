import Foundation
import SparsityCore
import SparsityFormats
import SparsityKernels

/// A layer computing `y = x · Wᵀ + b` with `W [out, in]`: the trainable ``Linear``, or the
/// inference layer ``PackedLinear`` that ``sparsify(_:form:filter:)`` swaps in for it.
open class LinearLayer: Module {
  /// `in`, the number of input features.
  public let inFeatures: Int
  /// `out`, the number of output features.
  public let outFeatures: Int

  public init(inFeatures: Int, outFeatures: Int) {
    self.inFeatures = inFeatures
    self.outFeatures = outFeatures
  }

  /// Called with every input while set (calibration capture for Wanda and SparseGPT).
  package var inputObserver: ((Variable) -> Void)?

  /// `x [..., in]` → `[..., out]`.
  open func callAsFunction(_ x: Variable) -> Variable { preconditionFailure("LinearLayer is abstract") }

  /// The weight as a dense `float32` tensor `[out, in]` (a packed weight is unpacked).
  open func denseWeight() -> Tensor { preconditionFailure("LinearLayer is abstract") }

  /// The bias values, or `nil`.
  open var biasValues: [Float]? { nil }
}

/// `y = x · weightᵀ + bias` with a trainable dense weight (PyTorch `nn.Linear`).
///
/// Parameters: `weight [out, in]`, `bias [out]`, initialised from `U(−1/√in, 1/√in)` as PyTorch
/// does. At inference (no graph recorded) the forward pass runs the dispatcher's kernel on the
/// weight packed once per weight version.
public final class Linear: LinearLayer {
  public let weight: Variable
  public let bias: Variable?

  public init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, generator: inout SeededGenerator) {
    let bound = 1 / Double(max(inFeatures, 1)).squareRoot()
    weight = Variable(randomUniform: [outFeatures, inFeatures], bound: bound, seed: generator.next(), requiresGradient: true)
    self.bias = bias ? Variable(randomUniform: [outFeatures], bound: bound, seed: generator.next(), requiresGradient: true) : nil
    super.init(inFeatures: inFeatures, outFeatures: outFeatures)
  }

  /// A layer with the given weight `[out, in]` and bias `[out]` (trainable).
  public init(weight: Tensor, bias: Tensor?) {
    precondition(weight.rank == 2, "a Linear weight is [out, in], got \(weight.shape)")
    precondition(bias == nil || bias!.shape == [weight.shape[0]], "bias must be [\(weight.shape[0])]")
    self.weight = Variable(weight, requiresGradient: true)
    self.bias = bias.map { Variable($0, requiresGradient: true) }
    super.init(inFeatures: weight.shape[1], outFeatures: weight.shape[0])
  }

  /// A layer on existing parameters (shared, not copied): `weight [out, in]`, `bias [out]`.
  init(sharing weight: Variable, bias: Variable?) {
    precondition(weight.shape.count == 2 && weight.requiresGradient, "a Linear weight is a trainable [out, in], got \(weight.shape)")
    self.weight = weight
    self.bias = bias
    super.init(inFeatures: weight.shape[1], outFeatures: weight.shape[0])
  }

  public override var ownParameters: [(name: String, parameter: Variable)] {
    [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
  }

  /// The dense weight packed for the kernels, and the weight version it was packed from.
  private var packed: (version: Int, weight: LinearWeight)?

  public override func callAsFunction(_ x: Variable) -> Variable {
    inputObserver?(x)
    // Training records the graph; inference runs the dispatcher's kernel on a weight packed
    // once per version.
    guard !Gradients.areEnabled, let w = packedDenseWeight() else { return linear(x, weight: weight, bias: bias) }
    return Linear.apply(w, bias: bias?.value, to: x)
  }

  public override func denseWeight() -> Tensor { weight.tensor }
  public override var biasValues: [Float]? { bias?.value }

  func packedDenseWeight() -> LinearWeight? {
    if let packed, packed.version == weight.version { return packed.weight }
    guard let w = try? LinearWeight(dense: weight.tensor) else { return nil }
    packed = (weight.version, w)
    return w
  }
}

/// An inference layer `y = x · Wᵀ + bias` that holds only what it runs: a ``LinearWeight`` in one
/// packed form (dense, 2:4, BSR, CSR) and the bias — no dense master weight. ``sparsify(_:form:filter:)``
/// swaps it in for a ``Linear``; model loaders given compressed weights build it directly from
/// the file's arrays; ``densify(_:)`` turns it back into a ``Linear``.
///
/// Gradients flow to `x` (through the unpacked weight), never into the frozen weight.
public final class PackedLinear: LinearLayer {
  /// The packed weight; when this layer is part of a stacked product (BERT's q/k/v), the stacked
  /// weight, whose rows ``rows`` are this layer's outputs.
  public private(set) var weight: LinearWeight
  /// The rows of ``weight`` that this layer outputs (all of them unless stacked).
  public private(set) var rows: Range<Int>
  /// The bias `[out]`, or `nil`.
  public let bias: [Float]?

  /// Packs `stored` (a matrix `[out, in]` in any stored form) for the kernels of `form` (by
  /// default the stored form), straight from its arrays.
  ///
  /// - Throws: ``KernelError`` naming `name` when the weight does not fit `form`.
  public init(_ stored: StoredTensor, as form: WeightForm? = nil, bias: [Float]?, name: String = "weight") throws(KernelError) {
    let weight = try LinearWeight(stored, as: form, name: name)
    precondition(bias == nil || bias!.count == weight.outFeatures, "'\(name)': bias must hold \(weight.outFeatures) values")
    self.weight = weight
    rows = 0..<weight.outFeatures
    self.bias = bias
    super.init(inFeatures: weight.inFeatures, outFeatures: weight.outFeatures)
  }

  /// A layer running `weight` (all of its rows) with `bias`.
  public init(_ weight: LinearWeight, bias: [Float]?) {
    precondition(bias == nil || bias!.count == weight.outFeatures, "bias must hold \(weight.outFeatures) values")
    self.weight = weight
    rows = 0..<weight.outFeatures
    self.bias = bias
    super.init(inFeatures: weight.inFeatures, outFeatures: weight.outFeatures)
  }

  /// Rows `rows` of a stacked weight (layers that read the same input and run as one product).
  init(_ stacked: LinearWeight, rows: Range<Int>, bias: [Float]?) {
    precondition(rows.lowerBound >= 0 && rows.upperBound <= stacked.outFeatures, "rows \(rows) are not rows of the stacked weight")
    precondition(bias == nil || bias!.count == rows.count, "bias must hold \(rows.count) values")
    weight = stacked
    self.rows = rows
    self.bias = bias
    super.init(inFeatures: stacked.inFeatures, outFeatures: rows.count)
  }

  /// Whether this layer's rows are part of a larger stacked weight.
  public var isStacked: Bool { rows != 0..<weight.outFeatures }

  /// Makes this layer rows `rows` of `stacked` (which holds the same values), dropping its own weight.
  func become(rows: Range<Int>, of stacked: LinearWeight) {
    precondition(rows.count == outFeatures && stacked.inFeatures == inFeatures, "stacked rows do not match the layer")
    weight = stacked
    self.rows = rows
  }

  public override func callAsFunction(_ x: Variable) -> Variable {
    inputObserver?(x)
    if !isStacked {
      let y = Linear.apply(weight, bias: bias, to: x)
      return attachInputGradient(y, x)
    }
    // Part of a stacked product: run it and keep this layer's columns (the stacked product is
    // what the model runs; this path serves single calls).
    let full = Linear.apply(weight, bias: nil, to: x)
    let (m, n, total) = (full.count / max(weight.outFeatures, 1), outFeatures, weight.outFeatures)
    var out = [Float](repeating: 0, count: m * n)
    for t in 0..<m {
      for j in 0..<n { out[t * n + j] = full.value[t * total + rows.lowerBound + j] + (bias?[j] ?? 0) }
    }
    return attachInputGradient(Variable(out, shape: Array(x.shape.dropLast()) + [n]), x)
  }

  /// `y` with a backward pass into `x` through the dense weight (the weight itself is frozen).
  private func attachInputGradient(_ y: Variable, _ x: Variable) -> Variable {
    guard Gradients.areEnabled && x.requiresGradient else { return y }
    let (n, k, m) = (outFeatures, inFeatures, y.count / max(outFeatures, 1))
    return Variable(y.value, shape: y.shape, parents: [x]) { [self] out in
      x.accumulate(product(out.gradient!, denseWeight().floatValues, m: m, n: k, k: n))
    }
  }

  public override func denseWeight() -> Tensor {
    let full = weight.dense()
    guard isStacked else { return full }
    return full.scalars(as: Float.self).withUnsafeBufferPointer { b in
      Tensor(Array(b[rows.lowerBound * inFeatures..<rows.upperBound * inFeatures]), shape: [outFeatures, inFeatures])
    }
  }

  public override var biasValues: [Float]? { bias }

  /// Bytes of the packed weight (a stacked weight counted whole; see ``Module/residentWeightBytes``).
  public var byteCount: Int { weight.byteCount }
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

/// A lookup table `weight [count, dimension]` (PyTorch `nn.Embedding`), initialised `N(0, 1)`;
/// or, for inference, a frozen table read in place (rows of a mapped file are resident only
/// once looked up).
public final class Embedding: Module {
  /// The trainable table, or `nil` for a frozen one (``init(frozen:)``).
  public let weight: Variable?
  /// The frozen table, read in place.
  private let frozen: Tensor?

  public init(_ count: Int, _ dimension: Int, generator: inout SeededGenerator) {
    weight = Variable(randomNormal: [count, dimension], standardDeviation: 1, seed: generator.next(), requiresGradient: true)
    frozen = nil
  }

  /// A trainable table with the given values `[count, dimension]`.
  public init(weight: Tensor) {
    precondition(weight.rank == 2, "an embedding table is [count, dimension], got \(weight.shape)")
    self.weight = Variable(weight, requiresGradient: true)
    frozen = nil
  }

  /// A frozen table `[count, dimension]` (any floating-point dtype), read in place — from a
  /// mapped file, without a copy. It has no parameters.
  public init(frozen table: Tensor) {
    precondition(table.rank == 2 && table.dtype.isFloatingPoint, "an embedding table is a floating-point [count, dimension], got \(table.dtype) \(table.shape)")
    weight = nil
    frozen = table.dtype == .float32 ? table : table.converted(to: .float32)
  }

  /// `[count, dimension]`.
  public var shape: [Int] { weight?.shape ?? frozen!.shape }

  /// Bytes of a frozen table (resident as far as its rows have been read), 0 for a trainable one.
  public var frozenByteCount: Int { frozen?.byteCount ?? 0 }

  public override var ownParameters: [(name: String, parameter: Variable)] { weight.map { [("weight", $0)] } ?? [] }

  /// `[ids.count, dimension]`.
  public func callAsFunction(_ ids: [Int32]) -> Variable {
    if let weight { return embedding(ids, table: weight) }
    let (count, d) = (frozen!.shape[0], frozen!.shape[1])
    precondition(ids.allSatisfy { $0 >= 0 && Int($0) < count }, "embedding: an id is outside 0..<\(count)")
    let rows = frozen!.withUnsafeBufferPointer(as: Float.self) { table in
      [Float](unsafeUninitializedCapacity: ids.count * d) { out, initialized in
        for (r, id) in ids.enumerated() {
          for j in 0..<d { out[r * d + j] = table[Int(id) * d + j] }
        }
        initialized = ids.count * d
      }
    }
    return Variable(rows, shape: [ids.count, d])
  }
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

  /// A normalisation with the given `weight` and `bias` `[dimension]`.
  public init(weight: Tensor, bias: Tensor, epsilon: Float = 1e-5) {
    precondition(weight.rank == 1 && bias.shape == weight.shape, "layer norm weight and bias must be [dimension]")
    self.weight = Variable(weight, requiresGradient: true)
    self.bias = Variable(bias, requiresGradient: true)
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

  /// Whether a call drops anything (training, with a probability above zero).
  public var isActive: Bool { isTraining && probability > 0 }

  public func callAsFunction(_ x: Variable) -> Variable {
    guard isActive else { return x }
    return dropout(x, probability: probability, generator: &generator)
  }
}

/// `fc2(dropout(activation(fc1(x))))`: the feed-forward block of a transformer.
///
/// With ``sparseActivations`` set (and a trainable `fc2`), the activations are made 2:4 at run
/// time before `fc2`, whose product runs with them as the 2:4 operand
/// (``sparseActivationLinear(_:weight:bias:algorithm:gradient:)``: xFormers' sp24 after a squared
/// ReLU, whose outputs are ≥ 0 and mostly zero). With a squared ReLU, trainable layers and no
/// dropout, the block runs as ``sparseActivationMLP(_:fc1:fc2:algorithm:gradient:)``: with the
/// masked gradient, `fc1`'s backward products are 2:4 too.
public final class MLP: Module {
  public private(set) var fc1: LinearLayer
  public private(set) var fc2: LinearLayer
  public let activation: Activation
  public let dropout: Dropout
  /// How the gradient passes back through 2:4 activations, or `nil` for dense activations.
  public var sparseActivations: Sparse24Gradient?

  public init(
    _ dimension: Int, hidden: Int, activation: Activation = .gelu, dropout: Double = 0, generator: inout SeededGenerator
  ) {
    fc1 = Linear(dimension, hidden, generator: &generator)
    fc2 = Linear(hidden, dimension, generator: &generator)
    self.activation = activation
    self.dropout = Dropout(dropout, seed: generator.next())
  }

  public override var children: [(name: String, module: Module)] { [("fc1", fc1), ("dropout", dropout), ("fc2", fc2)] }

  public override func replaceChild(_ name: String, with module: Module) {
    switch name {
    case "fc1": fc1 = Module.checked(module, replacing: fc1)
    case "fc2": fc2 = Module.checked(module, replacing: fc2)
    default: super.replaceChild(name, with: module)
    }
  }

  public func callAsFunction(_ x: Variable) -> Variable {
    if let gradient = sparseActivations, activation == .squaredReLU, !dropout.isActive, let fc1 = fc1 as? Linear,
      let fc2 = fc2 as? Linear
    {
      return sparseActivationMLP(x, fc1: (fc1.weight, fc1.bias), fc2: (fc2.weight, fc2.bias), gradient: gradient)
    }
    let h = dropout(activation(fc1(x)))
    if let gradient = sparseActivations, let fc2 = fc2 as? Linear {
      return sparseActivationLinear(h, weight: fc2.weight, bias: fc2.bias, gradient: gradient)
    }
    return fc2(h)
  }
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
package func attention(stackedQKV qkv: Variable, heads: Int, keyMask: [Int32]?) -> Variable {
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
  public private(set) var query: LinearLayer
  public private(set) var key: LinearLayer
  public private(set) var value: LinearLayer
  public private(set) var output: LinearLayer
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

  public override func replaceChild(_ name: String, with module: Module) {
    switch name {
    case "query": query = Module.checked(module, replacing: query)
    case "key": key = Module.checked(module, replacing: key)
    case "value": value = Module.checked(module, replacing: value)
    case "output": output = Module.checked(module, replacing: output)
    default: super.replaceChild(name, with: module)
    }
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

