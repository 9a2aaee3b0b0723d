import Foundation
import SparsityCore
import SparsityFormats

/// The prepare → step → squash flow of PyTorch's `torch.ao.pruning` sparsifiers, over named
/// tensors.
///
/// ```swift
/// var model = NamedTensors(try SafetensorsFile(contentsOf: "model.safetensors").tensors())
/// var sparsifier = Sparsifier(defaults: PruningConfiguration(method: .weightNorm, pattern: .block(rows: 1, columns: 4)))
/// try sparsifier.prepare(model)                      // every rank-2 floating-point tensor
/// try sparsifier.step(model)                         // masks from the current weights
/// let w = sparsifier.currentWeight(named: "fc.weight", in: model)   // W ⊙ mask, as a layer sees it
/// try sparsifier.squash(&model)                      // write W ⊙ mask into the model
/// ```
///
/// - **prepare** picks the tensors (every rank-2 floating-point tensor when no configuration is
///   given, like PyTorch's default of every `nn.Linear` weight), merges each tensor's
///   ``TensorConfiguration`` over ``defaults``, and starts each with an all-ones mask and step
///   count 0.
/// - **step** recomputes every mask from the tensor's *current* value — the model's weight (or
///   SparseGPT's updated weight) times the current mask, as PyTorch's parametrization presents
///   it — and counts the step. Groups whose scope is `.global` are ranked together.
///   ``isMaskUpdateEnabled`` turns mask updates off, as in PyTorch.
/// - **squash** writes `current weight ⊙ mask` into the model (in its dtype) and forgets the
///   groups.
///
/// The state (defaults, groups with their configurations and step counts, masks, SparseGPT's
/// updated weights) saves to named tensors plus one metadata entry, the contents of a
/// safetensors file; see ``savedState()``.
public struct Sparsifier: Sendable {
  /// One pruned tensor and its merged configuration (PyTorch's `groups[i]`).
  public struct Group: Sendable, Hashable {
    /// The tensor's name.
    public var tensor: String
    /// Defaults merged with the tensor's overrides; schedulers change `sparsityLevel` here.
    public var configuration: PruningConfiguration

    /// A group for `tensor` with its merged configuration.
    public init(tensor: String, configuration: PruningConfiguration) {
      self.tensor = tensor
      self.configuration = configuration
    }
  }

  /// The per-tensor state (PyTorch's `state[tensor_fqn]`).
  public struct TensorState: Sendable, Equatable {
    /// The kept positions.
    public var mask: Mask
    /// How many steps recomputed this mask.
    public var stepCount: Int
    /// SparseGPT's updated weight (dense; the mask still applies), or `nil`.
    public var updatedWeight: Tensor?

    /// A state with `mask`, `stepCount` steps taken and SparseGPT's `updatedWeight` if any.
    public init(mask: Mask, stepCount: Int = 0, updatedWeight: Tensor? = nil) {
      self.mask = mask
      self.stepCount = stepCount
      self.updatedWeight = updatedWeight
    }
  }

  /// What one step did to one tensor.
  public struct StepRecord: Sendable {
    /// The tensor's name (`"(global)"` for the joint ranking of global groups).
    public var tensor: String
    /// Wall-clock seconds spent on the tensor (statistics, scores, mask, updates).
    public var seconds: Double
  }

  /// The configuration of tensors without overrides.
  public var defaults: PruningConfiguration
  /// The prepared tensors, in preparation order.
  public var groups: [Group]
  /// Masks and step counts by tensor name.
  public private(set) var state: [String: TensorState]
  /// When `false`, ``step(_:calibration:progress:)`` leaves masks unchanged.
  public var isMaskUpdateEnabled = true

  /// An empty sparsifier whose tensors default to `defaults`.
  public init(defaults: PruningConfiguration = PruningConfiguration()) {
    self.defaults = defaults
    self.groups = []
    self.state = [:]
  }

  /// Selects the tensors to prune and starts their masks as all ones.
  ///
  /// - Parameter configurations: the tensors and their overrides; `nil` selects every rank-2
  ///   floating-point tensor of `model` with the defaults.
  /// - Throws: ``PruningError`` for an unknown or repeated tensor, or an invalid merged
  ///   configuration.
  public mutating func prepare(_ model: some ParameterContainer, configurations: [TensorConfiguration]? = nil)
    throws(PruningError)
  {
    let configurations =
      configurations
      ?? model.parameterNames.compactMap { name in
        guard let t = model.parameter(named: name), t.rank == 2, t.dtype.isFloatingPoint, t.dtype.isNumeric else {
          return nil
        }
        return TensorConfiguration(tensor: name)
      }
    var seen = Set(groups.map(\.tensor))
    for c in configurations {
      guard let weight = model.parameter(named: c.tensor) else { throw .unknownTensor(c.tensor) }
      guard seen.insert(c.tensor).inserted else { throw .duplicateTensor(c.tensor) }
      guard weight.dtype.isFloatingPoint, weight.dtype.isNumeric, weight.rank >= 1 else {
        throw .unsupportedTensor(
          tensor: c.tensor, shape: weight.shape, dtype: weight.dtype, rule: "only floating-point tensors can be pruned")
      }
      let merged = try c.applied(to: defaults).validated()
      groups.append(Group(tensor: c.tensor, configuration: merged))
      state[c.tensor] = TensorState(mask: Mask(repeating: true, shape: weight.shape))
    }
  }

  /// The tensor as a layer sees it between steps: (SparseGPT's updated weight, or the model's)
  /// times the mask; `nil` when `name` is not prepared or not in `model`.
  public func currentWeight(named name: String, in model: some ParameterContainer) -> Tensor? {
    guard let s = state[name], let original = model.parameter(named: name) else { return nil }
    return (s.updatedWeight ?? original).masked(by: s.mask.tensor)
  }

  /// Recomputes every mask from the current weights and counts the step.
  ///
  /// - Parameters:
  ///   - calibration: inputs for Wanda and SparseGPT (`W:input` per weight).
  ///   - progress: called before each tensor with its position, the count and its name.
  /// - Returns: the time spent per tensor.
  /// - Throws: ``PruningError`` (missing or mismatched calibration, non-finite weights, …);
  ///   on error the state is unchanged.
  @discardableResult
  public mutating func step(
    _ model: some ParameterContainer, calibration: CalibrationInputs? = nil,
    progress: ((_ index: Int, _ count: Int, _ tensor: String) -> Void)? = nil
  ) throws(PruningError) -> [StepRecord] {
    var next = state
    var records: [StepRecord] = []
    if isMaskUpdateEnabled {
      // Global groups first, ranked together.
      let global = groups.filter { $0.configuration.effectiveScope == .global }
      if !global.isEmpty {
        let start = DispatchTime.now()
        let levels = Set(global.map(\.configuration.sparsityLevel))
        guard levels.count == 1, let level = levels.first else {
          throw .invalidOption(name: "scope", rule: "tensors ranked globally must share one sparsity level")
        }
        var weights: [Tensor] = []
        for g in global {
          guard let w = currentWeight(named: g.tensor, in: model) else { throw .unknownTensor(g.tensor) }
          weights.append(w)
        }
        let masks = try Magnitude.globalMasks(for: weights, sparsityLevel: level, names: global.map(\.tensor))
        for (g, mask) in zip(global, masks) { next[g.tensor]?.mask = mask }
        records.append(StepRecord(tensor: "(global)", seconds: Sparsifier.seconds(since: start)))
      }
      for (index, g) in groups.enumerated() where g.configuration.effectiveScope != .global {
        progress?(index, groups.count, g.tensor)
        let start = DispatchTime.now()
        guard let weight = currentWeight(named: g.tensor, in: model) else { throw .unknownTensor(g.tensor) }
        var statistics: LayerInputStatistics?
        if g.configuration.method.needsCalibration {
          guard let calibration else {
            throw .missingCalibration(tensor: g.tensor, expectedName: g.tensor + CalibrationInputs.nameSuffix)
          }
          let x = try calibration.inputs(forWeight: g.tensor, shape: weight.shape)
          statistics = try LayerInputStatistics(inputs: x, name: g.tensor + CalibrationInputs.nameSuffix)
        }
        let (mask, updated) = try g.configuration.prune(weight: weight, name: g.tensor, statistics: statistics)
        next[g.tensor]?.mask = mask
        if let updated { next[g.tensor]?.updatedWeight = updated }
        records.append(StepRecord(tensor: g.tensor, seconds: Sparsifier.seconds(since: start)))
      }
    }
    for g in groups { next[g.tensor]?.stepCount += 1 }
    state = next
    return records
  }

  /// Writes every prepared tensor's current weight (`weight ⊙ mask`, in the model's dtype)
  /// into `model` and forgets the groups and their state.
  public mutating func squash(_ model: inout some ParameterContainer) {
    for g in groups {
      guard let original = model.parameter(named: g.tensor), let current = currentWeight(named: g.tensor, in: model) else {
        continue
      }
      model.setParameter(named: g.tensor, to: current.converted(to: original.dtype))
    }
    groups = []
    state = [:]
  }

  static func seconds(since start: DispatchTime) -> Double {
    Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
  }
}

// MARK: - Saving and loading

extension Sparsifier {
  /// The metadata key that holds the state's JSON.
  public static let stateMetadataKey = "sparsifier_state"
  /// Suffix of a mask tensor in a saved state: `NAME:mask` (BOOL).
  public static let maskSuffix = ":mask"
  /// Suffix of SparseGPT's updated weight in a saved state: `NAME:updated`.
  public static let updatedWeightSuffix = ":updated"

  struct SavedGroup: Codable {
    var tensor: String
    var configuration: PruningConfiguration
    var stepCount: Int
    var hasUpdatedWeight: Bool

    enum CodingKeys: String, CodingKey {
      case tensor, configuration, stepCount = "step_count", hasUpdatedWeight = "has_updated_weight"
    }
  }

  struct SavedState: Codable {
    var format = "swift-sparsity sparsifier state"
    var version = 1
    var defaults: PruningConfiguration
    var maskUpdate: Bool
    var groups: [SavedGroup]

    enum CodingKeys: String, CodingKey {
      case format, version, defaults, maskUpdate = "mask_update", groups
    }
  }

  /// The state as the contents of a safetensors file: one `NAME:mask` BOOL tensor per group
  /// (plus `NAME:updated` for SparseGPT's updated weights) and the metadata entry
  /// ``stateMetadataKey`` with the JSON of the defaults, the groups' configurations and step
  /// counts.
  ///
  /// ```swift
  /// let saved = try sparsifier.savedState()
  /// try SafetensorsFile.write(saved.tensors, metadata: saved.metadata, to: "state.safetensors")
  /// let file = try SafetensorsFile(contentsOf: "state.safetensors")
  /// let restored = try Sparsifier(savedTensors: try file.tensors(), metadata: file.metadata)
  /// ```
  public func savedState() throws -> (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
    var tensors: [(name: String, tensor: Tensor)] = []
    var saved: [SavedGroup] = []
    for g in groups {
      guard let s = state[g.tensor] else { continue }
      tensors.append((g.tensor + Sparsifier.maskSuffix, s.mask.tensor))
      if let updated = s.updatedWeight { tensors.append((g.tensor + Sparsifier.updatedWeightSuffix, updated)) }
      saved.append(
        SavedGroup(tensor: g.tensor, configuration: g.configuration, stepCount: s.stepCount, hasUpdatedWeight: s.updatedWeight != nil))
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let json = try encoder.encode(SavedState(defaults: defaults, maskUpdate: isMaskUpdateEnabled, groups: saved))
    return (tensors, [Sparsifier.stateMetadataKey: String(decoding: json, as: UTF8.self)])
  }

  /// Restores a state saved by ``savedState()``.
  ///
  /// - Throws: ``PruningError/invalidState(_:)`` when the metadata entry is missing or does not
  ///   decode, or a group's mask is missing, not BOOL, or shaped unlike its updated weight.
  public init(savedTensors: some Sequence<(name: String, tensor: Tensor)>, metadata: [String: String]) throws(PruningError) {
    guard let text = metadata[Sparsifier.stateMetadataKey] else {
      throw .invalidState("no '\(Sparsifier.stateMetadataKey)' metadata entry")
    }
    let saved: SavedState
    do {
      saved = try JSONDecoder().decode(SavedState.self, from: Data(text.utf8))
    } catch {
      throw .invalidState("the '\(Sparsifier.stateMetadataKey)' entry does not decode: \(error)")
    }
    guard saved.version == 1 else { throw .invalidState("unknown version \(saved.version)") }
    var tensors: [String: Tensor] = [:]
    for (name, tensor) in savedTensors { tensors[name] = tensor }
    self.init(defaults: saved.defaults)
    isMaskUpdateEnabled = saved.maskUpdate
    for g in saved.groups {
      guard let mask = tensors[g.tensor + Sparsifier.maskSuffix], mask.dtype == .bool else {
        throw .invalidState("group '\(g.tensor)' has no BOOL tensor '\(g.tensor + Sparsifier.maskSuffix)'")
      }
      var updated: Tensor?
      if g.hasUpdatedWeight {
        guard let u = tensors[g.tensor + Sparsifier.updatedWeightSuffix], u.shape == mask.shape else {
          throw .invalidState("group '\(g.tensor)' lacks its updated weight of shape \(mask.shape)")
        }
        updated = u
      }
      guard state[g.tensor] == nil else { throw .invalidState("group '\(g.tensor)' appears twice") }
      groups.append(Group(tensor: g.tensor, configuration: g.configuration))
      state[g.tensor] = TensorState(mask: Mask(mask), stepCount: g.stepCount, updatedWeight: updated)
    }
  }
}
