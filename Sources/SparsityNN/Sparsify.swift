import SparsityCore
import SparsityFormats
import SparsityKernels
import SparsityPruning

extension Module: ParameterContainer {
  public var parameterNames: [String] { namedParameters().map(\.name) }

  public func parameter(named name: String) -> Tensor? {
    namedParameters().first { $0.name == name }?.parameter.tensor
  }

  public func setParameter(named name: String, to value: Tensor) {
    guard let p = namedParameters().first(where: { $0.name == name })?.parameter else {
      preconditionFailure("there is no parameter '\(name)'")
    }
    precondition(p.shape == value.shape, "parameter '\(name)' has shape \(p.shape), not \(value.shape)")
    p.value = value.converted(to: .float32).floatValues
  }

  /// Every `Linear` layer under its dotted name.
  public func linearLayers() -> [(name: String, layer: Linear)] {
    namedModules().compactMap { entry in (entry.module as? Linear).map { (entry.name, $0) } }
  }
}

/// Prunes the weights of the `Linear` layers that `filter` accepts, in place, and returns the
/// masks for retraining. SparseGPT's updated weights are written into the model too.
///
/// - Throws: ``PruningError`` (a pattern that does not fit a weight, missing calibration, …);
///   the model is unchanged then.
public func prune(
  _ model: Module, _ configuration: PruningConfiguration, calibration: CalibrationInputs? = nil,
  filter: (_ name: String, _ layer: Linear) -> Bool = { _, _ in true }
) throws(PruningError) -> ParameterMasks {
  let weights = model.linearLayers().filter { filter($0.name, $0.layer) }.map { $0.name + ".weight" }
  var sparsifier = Sparsifier(defaults: configuration)
  try sparsifier.prepare(model, configurations: weights.map { TensorConfiguration(tensor: $0) })
  try sparsifier.step(model, calibration: calibration)
  let masks = Dictionary(uniqueKeysWithValues: weights.map { ($0, sparsifier.state[$0]!.mask) })
  var target: Module = model
  sparsifier.squash(&target)
  return ParameterMasks(masks)
}

/// Why a layer could not be compressed.
public struct SparsifyError: Error, CustomStringConvertible, Equatable {
  /// The layer's dotted name.
  public var layer: String
  /// What is wrong.
  public var reason: String

  public var description: String { "cannot compress layer '\(layer)': \(reason)" }
}

extension Module {
  /// Every inference layer ``PackedLinear`` under its dotted name.
  public func packedLayers() -> [(name: String, layer: PackedLinear)] {
    namedModules().compactMap { entry in (entry.module as? PackedLinear).map { (entry.name, $0) } }
  }

  /// Bytes of the weights this model holds: every parameter's values (4 bytes each), every
  /// packed weight's values and indices (a stacked weight shared by several layers counted
  /// once), and frozen embedding tables (read in place from a mapped file: resident only as far
  /// as their rows have been looked up).
  public var residentWeightBytes: Int {
    packedWeightBytes + frozenTableBytes + parameterCount * MemoryLayout<Float>.size
  }

  /// Bytes of the packed Linear weights (values, indices, scales; a stacked weight shared by
  /// several layers counted once).
  public var packedWeightBytes: Int {
    var seen = Set<ObjectIdentifier>()
    return packedLayers().reduce(0) { total, entry in
      seen.insert(ObjectIdentifier(entry.layer.weight)).inserted ? total + entry.layer.weight.byteCount : total
    }
  }

  /// Bytes of the frozen embedding tables (read in place from a mapped file).
  public var frozenTableBytes: Int { namedModules().reduce(0) { $0 + (($1.module as? Embedding)?.frozenByteCount ?? 0) } }
}

/// Swaps every `Linear` layer that `filter` accepts for a ``PackedLinear`` that holds its weight
/// packed in `form` and its bias — the pattern of mlx-swift's `quantize(model:)` and torchao's
/// `sparsify_`: inference then runs on the kernels of `form` (chosen per shape by
/// ``LinearDispatcher``) and the dense weight is no longer held. Outputs equal the dense layer's
/// within float rounding; ``densify(_:)`` swaps dense `Linear`s back.
///
/// - Returns: the names of the layers swapped, in order.
/// - Throws: ``SparsifyError`` for the first accepted layer whose weight does not fit `form`
///   (nothing is swapped then).
@discardableResult
public func sparsify(
  _ model: Module, form: WeightForm, filter: (_ name: String, _ layer: Linear) -> Bool = { _, _ in true }
) throws(SparsifyError) -> [String] {
  try sparsify(model) { name, layer in filter(name, layer) ? form : nil }
}

/// Swaps every `Linear` layer for a ``PackedLinear`` in the form `forms` names for it (`nil`:
/// the layer stays trainable), all or none.
///
/// ```swift
/// try sparsify(model) { name, _ in name.hasPrefix("blocks.") ? .twoFour : nil }
/// ```
@discardableResult
public func sparsify(_ model: Module, forms: (_ name: String, _ layer: Linear) -> WeightForm?) throws(SparsifyError)
  -> [String]
{
  try repack(model) { name, layer in
    guard let linear = layer as? Linear else { return nil }
    return forms(name, linear)
  }
}

/// Swaps the layout of the weights of every layer that `filter` accepts, keeping each one's
/// encoding: trainable `Linear`s are packed in `layout` (float32), ``PackedLinear``s are
/// repacked in `layout` with their own encoding — so `sparsify` and ``quantize(_:encoding:filter:)``
/// compose in either order. The weights must already have the layout's zeros (prune first).
///
/// ```swift
/// try quantize(model, encoding: .int8Dynamic)     // W8A8, dense
/// try sparsify(model, layout: .nOfM(n: 2, m: 4))  // then 2:4 (the int8 values keep their zeros)
/// ```
///
/// - Throws: ``SparsifyError`` for the first accepted layer whose weight does not fit (nothing
///   is swapped then).
@discardableResult
public func sparsify(
  _ model: Module, layout: WeightForm.Layout, filter: (_ name: String, _ layer: LinearLayer) -> Bool = { _, _ in true }
) throws(SparsifyError) -> [String] {
  try repack(model) { name, layer in
    guard filter(name, layer) else { return nil }
    return WeightForm(layout, encoding: (layer as? PackedLinear)?.weight.form.encoding ?? .float32)
  }
}

/// Quantizes the weights of every layer that `filter` accepts (mlx-swift's `quantize(model:)`
/// pattern, torchao's `quantize_`): trainable `Linear`s become dense ``PackedLinear``s of
/// `encoding`, packed ones keep their layout (a 2:4 layer becomes an int8 2:4 layer). Int8
/// weights are quantized per output row with torchao's semantics (``Int8Quantization``); a
/// pruned weight keeps its zeros.
///
/// ```swift
/// try quantize(model, encoding: .int8Dynamic) { name, _ in !name.hasSuffix("lm_head") }
/// ```
///
/// - Throws: ``SparsifyError`` for the first accepted layer the encoding cannot hold (nothing
///   is swapped then).
@discardableResult
public func quantize(
  _ model: Module, encoding: WeightForm.Encoding, filter: (_ name: String, _ layer: LinearLayer) -> Bool = { _, _ in true }
) throws(SparsifyError) -> [String] {
  try repack(model) { name, layer in
    guard filter(name, layer) else { return nil }
    return WeightForm((layer as? PackedLinear)?.weight.form.layout ?? .dense, encoding: encoding)
  }
}

/// Packs every layer's weight in the form `forms` names for it (`nil`: unchanged): trainable
/// `Linear`s from their values, ``PackedLinear``s from their packed arrays (exactly: int8 values
/// and scales are kept, never requantized). Layers sharing a stacked weight are repacked
/// together and keep sharing one. All or none.
@discardableResult
func repack(_ model: Module, forms: (_ name: String, _ layer: LinearLayer) -> WeightForm?) throws(SparsifyError) -> [String] {
  var swaps: [(name: String, old: LinearLayer, new: PackedLinear)] = []
  var stacks: [ObjectIdentifier: LinearWeight] = [:]
  for (name, module) in model.namedModules() {
    guard let layer = module as? LinearLayer, let form = forms(name, layer) else { continue }
    do {
      if let linear = layer as? Linear {
        swaps.append((name, linear, try PackedLinear(.dense(linear.weight.tensor), as: form, bias: linear.bias?.value, name: name + ".weight")))
      } else if let packed = layer as? PackedLinear, packed.weight.form != form {
        let key = ObjectIdentifier(packed.weight)
        let weight = try stacks[key] ?? LinearWeight(packed.weight.stored(), as: form, name: name + ".weight")
        stacks[key] = weight
        swaps.append((name, packed, PackedLinear(weight, rows: packed.rows, bias: packed.bias)))
      }
    } catch {
      throw SparsifyError(layer: name, reason: "\(error)")
    }
  }
  for swap in swaps { model.replace(swap.old, with: swap.new) }
  return swaps.map(\.name)
}

/// Swaps every ``PackedLinear`` back for a trainable dense `Linear` with the same values.
public func densify(_ model: Module) {
  for (_, layer) in model.packedLayers() {
    model.replace(layer, with: Linear(weight: layer.denseWeight(), bias: layer.bias.map { Tensor($0, shape: [$0.count]) }))
  }
}
