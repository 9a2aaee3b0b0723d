import SparsityCore
import SparsityFormats
import SparsityIO
import Testing

@testable import SparsityPruning

/// The prepare → step → squash flow and state persistence (reference §4.3 cases 7–9).
@Suite struct SparsifierTests {
  static func model() -> NamedTensors {
    NamedTensors([
      ("linear1.weight", randomMatrix(8, 16, seed: 1)),
      ("linear1.bias", randomMatrix(1, 8, seed: 2).reshaped([8])),
      ("linear2.weight", randomMatrix(4, 8, seed: 3).converted(to: .bfloat16)),
      ("embedding.indices", Tensor([1, 2, 3, 4] as [Int32], shape: [2, 2])),
    ])
  }

  @Test func defaultSelectionIsEveryFloatingPointMatrix() throws {
    var sparsifier = Sparsifier()
    try sparsifier.prepare(Self.model())
    #expect(sparsifier.groups.map(\.tensor) == ["linear1.weight", "linear2.weight"])
    #expect(sparsifier.state["linear1.weight"]?.mask == Mask(repeating: true, shape: [8, 16]))
    #expect(sparsifier.state["linear1.weight"]?.stepCount == 0)
  }

  /// `test_prepare_config`: a tensor left out of the configuration is not pruned; per-tensor
  /// keys override the defaults.
  @Test func perTensorConfigurationOverridesDefaults() throws {
    var model = Self.model()
    var sparsifier = Sparsifier(defaults: PruningConfiguration(pattern: .twoFour, sparsityLevel: 1))
    try sparsifier.prepare(
      model, configurations: [TensorConfiguration(tensor: "linear2.weight", pattern: .unstructured, sparsityLevel: 0.75)])
    #expect(sparsifier.groups.count == 1)
    #expect(sparsifier.groups[0].configuration.pattern == .unstructured)
    #expect(sparsifier.groups[0].configuration.sparsityLevel == 0.75)
    #expect(sparsifier.groups[0].configuration.method == .magnitude)
    try sparsifier.step(model)
    sparsifier.squash(&model)
    #expect(model.parameter(named: "linear2.weight")?.sparsity == 0.75)
    #expect(model.parameter(named: "linear2.weight")?.dtype == .bfloat16)
    #expect(model.parameter(named: "linear1.weight")?.sparsity == 0)
    #expect(sparsifier.groups.isEmpty && sparsifier.state.isEmpty)
  }

  @Test func unknownAndDuplicateTensorsAreErrors() {
    var sparsifier = Sparsifier()
    #expect(throws: PruningError.unknownTensor("nope.weight")) {
      try sparsifier.prepare(Self.model(), configurations: [TensorConfiguration(tensor: "nope.weight")])
    }
    #expect(throws: PruningError.duplicateTensor("linear1.weight")) {
      try sparsifier.prepare(
        Self.model(), configurations: [TensorConfiguration(tensor: "linear1.weight"), TensorConfiguration(tensor: "linear1.weight")])
    }
  }

  /// Steps recompute masks from the *masked* weight, as PyTorch's parametrization presents it,
  /// and count per tensor; `isMaskUpdateEnabled = false` freezes masks but still counts.
  @Test func stepsCountAndUseTheMaskedWeight() throws {
    let model = Self.model()
    var sparsifier = Sparsifier(defaults: PruningConfiguration(method: .weightNorm, pattern: .block(rows: 1, columns: 4)))
    try sparsifier.prepare(model)
    for _ in 0..<3 { try sparsifier.step(model) }
    #expect(sparsifier.state["linear1.weight"]?.stepCount == 3)
    // Level 0.5 of the remaining blocks each time, but pruned blocks score 0 and stay pruned:
    // the masked weight's zero blocks are the lowest, so the mask is stable after step 1.
    let mask = try #require(sparsifier.state["linear1.weight"]?.mask)
    #expect(mask.sparsity == 0.5)
    sparsifier.groups[0].configuration.sparsityLevel = 0.75
    sparsifier.isMaskUpdateEnabled = false
    try sparsifier.step(model)
    #expect(sparsifier.state["linear1.weight"]?.mask == mask)
    #expect(sparsifier.state["linear1.weight"]?.stepCount == 4)
    sparsifier.isMaskUpdateEnabled = true
    try sparsifier.step(model)
    let tighter = try #require(sparsifier.state["linear1.weight"]?.mask)
    #expect(tighter.sparsity == 0.75)
    // Every previously pruned element is still pruned.
    let before = mask.tensor.scalars(as: Bool.self)
    let after = tighter.tensor.scalars(as: Bool.self)
    #expect(zip(before, after).allSatisfy { $0 || !$1 })
  }

  /// `test_state_dict`: save after steps, load, and the masks, groups and counts are equal.
  @Test func stateRoundTripsThroughASafetensorsFile() throws {
    let model = Self.model()
    var sparsifier = Sparsifier(defaults: PruningConfiguration(method: .weightNorm, pattern: .twoFour, sparsityLevel: 1))
    try sparsifier.prepare(
      model,
      configurations: [
        TensorConfiguration(tensor: "linear1.weight"),
        TensorConfiguration(tensor: "linear2.weight", method: .magnitude, pattern: .block(rows: 2, columns: 2), sparsityLevel: 0.5),
      ])
    for _ in 0..<3 { try sparsifier.step(model) }
    let saved = try sparsifier.savedState()
    let bytes = try SafetensorsFile.serialize(saved.tensors, metadata: saved.metadata)
    let file = try SafetensorsFile(bytes: bytes)
    let restored = try Sparsifier(savedTensors: try file.tensors(), metadata: file.metadata)
    #expect(restored.groups == sparsifier.groups)
    #expect(restored.state == sparsifier.state)
    #expect(restored.defaults == sparsifier.defaults)
    #expect(restored.state["linear1.weight"]?.stepCount == 3)
    #expect(file.entry(named: "linear1.weight:mask")?.dtype == .bool)
  }

  @Test func sparseGPTStateKeepsTheUpdatedWeight() throws {
    let layer = SyntheticLayer(out: 8, in: 16, calibrationTokens: 64, heldOutTokens: 1, seed: 8)
    var model = NamedTensors([("fc.weight", layer.weight)])
    let calibration = CalibrationInputs(fileTensors: [("fc.weight:input", layer.calibration), ("ignored", layer.weight)])
    var sparsifier = Sparsifier(defaults: PruningConfiguration(method: .sparseGPT, pattern: .twoFour, sparsityLevel: 1))
    try sparsifier.prepare(model)
    #expect(throws: PruningError.missingCalibration(tensor: "fc.weight", expectedName: "fc.weight:input")) {
      try sparsifier.step(model)
    }
    try sparsifier.step(model, calibration: calibration)
    let updated = try #require(sparsifier.state["fc.weight"]?.updatedWeight)
    #expect(updated != layer.weight)
    let saved = try sparsifier.savedState()
    let restored = try Sparsifier(savedTensors: saved.tensors, metadata: saved.metadata)
    #expect(restored.state == sparsifier.state)
    sparsifier.squash(&model)
    let pruned = try #require(model.parameter(named: "fc.weight"))
    #expect(pruned.conforms(to: .twoFour))
    #expect(pruned == updated.masked(by: try #require(restored.state["fc.weight"]).mask.tensor))
  }

  @Test func globalMagnitudeRanksAllGroupsTogether() throws {
    let small = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    let large = Tensor([10, 20, 30, 40] as [Float], shape: [2, 2])
    var model: [String: Tensor] = ["a.weight": small, "b.weight": large]
    var sparsifier = Sparsifier(defaults: PruningConfiguration(sparsityLevel: 0.5, scope: .global))
    try sparsifier.prepare(model)
    try sparsifier.step(model)
    sparsifier.squash(&model)
    #expect(model["a.weight"]?.nonzeroCount == 0)
    #expect(model["b.weight"]?.nonzeroCount == 4)
  }

  @Test func corruptStatesAreRejected() throws {
    #expect(throws: PruningError.self) { try Sparsifier(savedTensors: [], metadata: [:]) }
    #expect(throws: PruningError.self) {
      try Sparsifier(savedTensors: [], metadata: [Sparsifier.stateMetadataKey: "{\"version\": 1}"])
    }
    var sparsifier = Sparsifier()
    try sparsifier.prepare(Self.model())
    let saved = try sparsifier.savedState()
    #expect(throws: PruningError.self) { try Sparsifier(savedTensors: saved.tensors.dropLast(), metadata: saved.metadata) }
  }
}
