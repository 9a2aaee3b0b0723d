import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityPruning
import Testing

import SparsityModels
@testable import SparsityNN

/// A seeded toy problem: class = the index of the largest of the first `classes` features.
func toyData(count: Int, features: Int = 8, classes: Int = 3, seed: UInt64) -> LabeledData {
  var g = SeededGenerator(seed: seed)
  var inputs: [Float] = []
  var labels: [Int32] = []
  for _ in 0..<count {
    let x = (0..<features).map { _ in Float(g.nextNormal()) }
    inputs += x
    labels.append(Int32(x[0..<classes].indices.max { x[$0] < x[$1] }!))
  }
  return LabeledData(inputs: inputs, features: features, labels: labels)
}

@Suite("Optimizers and schedules")
struct OptimizerTests {
  @Test("SGD with momentum and weight decay follows PyTorch's update")
  func sgd() {
    let p = Variable([1, -2], shape: [2], requiresGradient: true)
    let sgd = SGD([p], momentum: 0.9, weightDecay: 0.1)
    p.gradient = [0.5, 0.25]
    sgd.step(learningRate: 0.1)
    // b = g + λp = [0.6, 0.05]; p = p − 0.1·b
    let first: [Float] = [0.94, -2.005]
    for j in 0..<2 { #expect(abs(p.value[j] - first[j]) < 1e-6) }
    p.gradient = [0.5, 0.25]
    sgd.step(learningRate: 0.1)
    let b0: [Float] = [0.6, 0.05]
    let g1: [Float] = [0.5 + 0.1 * 0.94, 0.25 + 0.1 * -2.005]
    let expected: [Float] = (0..<2).map { j in
      let momentum: Float = 0.9 * b0[j] + g1[j]
      return first[j] - 0.1 * momentum
    }
    for j in 0..<2 { #expect(abs(p.value[j] - expected[j]) < 1e-6) }
  }

  @Test("AdamW's first step moves each weight by lr (sign of g) after decoupled decay")
  func adamW() {
    let p = Variable([1, -2, 3], shape: [3], requiresGradient: true)
    let adam = AdamW([p], weightDecay: 0.5)
    p.gradient = [0.3, -4, 0]
    adam.step(learningRate: 0.01)
    // m̂ = g, v̂ = g², update = g/(|g|+ε) = sign(g) (0 for g = 0).
    let expected: [Float] = [1 * 0.995 - 0.01, -2 * 0.995 + 0.01, 3 * 0.995]
    for j in 0..<3 { #expect(abs(p.value[j] - expected[j]) < 1e-6) }
  }

  @Test("warmup + cosine schedule")
  func schedule() {
    let s = WarmupCosineSchedule(peak: 1, warmupSteps: 4, totalSteps: 14)
    #expect(s.learningRate(at: 0) == 0.25)
    #expect(s.learningRate(at: 3) == 1)
    #expect(abs(s.learningRate(at: 9) - 0.5) < 1e-12)
    #expect(s.learningRate(at: 14) == 0)
    #expect(s.learningRate(at: 20) == 0)
  }
}

@Suite("Training")
struct TrainingTests {
  @Test("an MLP learns a toy problem, reproducibly for a seed")
  func learnsReproducibly() throws {
    let train = toyData(count: 512, seed: 1), test = toyData(count: 256, seed: 2)
    func run() throws -> ([EpochRecord], Double, [Float]) {
      let model = MLPClassifier(inputs: 8, hidden: [32], classes: 3, dropout: 0.1, seed: 3)
      var masks: ParameterMasks? = nil
      let records = try SparsityNN.train(
        model, on: train, configuration: TrainingConfiguration(epochs: 12, batchSize: 32, learningRate: 1e-2, seed: 4),
        masks: &masks)
      return (records.map { var r = $0; r.seconds = 0; return r }, accuracy(of: model, on: test), (model.layers[0] as! Linear).weight.value)
    }
    let (first, accuracy1, weights1) = try run()
    let (second, accuracy2, weights2) = try run()
    #expect(first == second)
    #expect(weights1 == weights2)
    #expect(accuracy1 == accuracy2)
    #expect(first.last!.loss < first.first!.loss / 2)
    #expect(accuracy1 > 0.9)
  }

  @Test("masked training keeps pruned weights at zero (fixed masks) and the pattern (SR-STE)")
  func maskedTraining() throws {
    let train = toyData(count: 256, seed: 5)
    let model = MLPClassifier(inputs: 8, hidden: [16], classes: 3, seed: 6)
    var masks: ParameterMasks? = try prune(model, PruningConfiguration(pattern: .twoFour, sparsityLevel: 1)) { name, _ in name == "layers.0" }
    let mask = masks!.masks["layers.0.weight"]!
    #expect(mask.conforms(to: .twoFour))
    try SparsityNN.train(model, on: train, configuration: TrainingConfiguration(epochs: 2, batchSize: 32), masks: &masks)
    let kept: [Bool] = mask.tensor.scalars(as: Bool.self)
    let trained: [Float] = (model.layers[0] as! Linear).weight.value
    #expect(trained.indices.allSatisfy { kept[$0] || trained[$0] == 0 })
    #expect(trained.indices.filter { kept[$0] && trained[$0] != 0 }.count > kept.count / 3)

    var srste: ParameterMasks? = masks
    srste!.mode = .srste(configuration: PruningConfiguration(pattern: .twoFour, sparsityLevel: 1), decay: 2e-4)
    try SparsityNN.train(model, on: train, configuration: TrainingConfiguration(epochs: 2, batchSize: 32), masks: &srste)
    #expect(Mask(nonzerosOf: (model.layers[0] as! Linear).weight.tensor).conforms(to: .twoFour))
  }
}

@Suite("Sparsify and state dictionaries")
struct SparsifyTests {
  static func maxRelativeError(_ a: [Float], _ b: [Float]) -> Double {
    let scale = max(b.map { Double(abs($0)) }.max() ?? 0, 1e-30)
    return zip(a, b).map { Double(abs($0 - $1)) }.max()! / scale
  }

  @Test(
    "a sparsified model's outputs equal the masked dense model's",
    arguments: [
      (PruningConfiguration(pattern: .twoFour, sparsityLevel: 1), WeightForm.twoFour),
      (PruningConfiguration(pattern: .block(rows: 8, columns: 8), sparsityLevel: 0.9), .bsr(8, 8)),
      (PruningConfiguration(pattern: .unstructured, sparsityLevel: 0.8), .csr),
    ])
  func sparsifiedEqualsMasked(configuration: PruningConfiguration, format: WeightForm) throws {
    let images = Variable(randomVariable([37, 64], seed: 40).value, shape: [37, 64])
    let models: [any Classifier] = [
      MLPClassifier(inputs: 64, hidden: [64, 32], classes: 10, seed: 41),
      VisionTransformer(imageSide: 8, patch: 2, dimension: 32, depth: 2, heads: 4, mlpHidden: 64, classes: 10, seed: 42),
    ]
    for model in models {
      let eligible: (String, Linear) -> Bool = { _, l in l.inFeatures % 8 == 0 && l.outFeatures % 8 == 0 }
      _ = try prune(model, configuration, filter: eligible)
      model.train(false)
      let dense = Gradients.disabled { model.logits(images) }
      let swapped = try sparsify(model, form: format, filter: eligible)
      #expect(model.packedLayers().map(\.name) == swapped, "the swapped layers are PackedLinear in the tree")
      #expect(model.packedLayers().allSatisfy { $0.layer.weight.form == format })
      #expect(!swapped.isEmpty)
      let sparse = Gradients.disabled { model.logits(images) }
      #expect(Self.maxRelativeError(sparse.value, dense.value) <= 1e-5, "\(format) on \(type(of: model))")
      densify(model)
      #expect(Gradients.disabled { model.logits(images) }.value == dense.value)
    }
  }

  @Test("quantize and sparsify compose in either order: the same int8 2:4 layers, outputs as W8A8 of the pruned weights")
  func quantizeComposesWithSparsify() throws {
    let images = Variable(randomVariable([9, 64], seed: 50).value, shape: [9, 64])
    let hidden: (String, Linear) -> Bool = { name, _ in name != "layers.2" }
    func pruned() throws -> MLPClassifier {
      let model = MLPClassifier(inputs: 64, hidden: [64, 32], classes: 10, seed: 51)
      _ = try prune(model, PruningConfiguration(pattern: .twoFour, sparsityLevel: 1), filter: hidden)
      model.train(false)
      return model
    }
    let int8Dense = WeightForm(.dense, encoding: .int8Dynamic)
    let int8TwoFour = WeightForm(.nOfM(n: 2, m: 4), encoding: .int8Dynamic)
    // Reference: each pruned Linear replaced by a W8A8 dense layer of the same weight.
    let reference = try pruned()
    try sparsify(reference, forms: { name, layer in hidden(name, layer) ? int8Dense : nil })
    let expected = Gradients.disabled { reference.logits(images) }.value

    let a = try pruned()
    #expect(try quantize(a, encoding: .int8Dynamic) { name, _ in name != "layers.2" } == ["layers.0", "layers.1"])
    #expect(a.packedLayers().allSatisfy { $0.layer.weight.form == int8Dense })
    try sparsify(a, layout: .nOfM(n: 2, m: 4)) { name, _ in name != "layers.2" }
    let b = try pruned()
    try sparsify(b, form: .twoFour, filter: hidden)
    try quantize(b, encoding: .int8Dynamic) { _, layer in layer is PackedLinear }
    for model in [a, b] {
      #expect(model.packedLayers().map { $0.layer.weight.form } == [int8TwoFour, int8TwoFour])
      // W8A8 is exact in int32: the 2:4 and dense int8 layers give identical outputs.
      #expect(Gradients.disabled { model.logits(images) }.value == expected)
    }
    // A quantized dense layer without 2:4 zeros cannot take the 2:4 layout; nothing is swapped.
    let c = MLPClassifier(inputs: 64, hidden: [64], classes: 8, seed: 52)
    try quantize(c, encoding: .int8Dynamic)
    #expect(throws: SparsifyError.self) { try sparsify(c, layout: .nOfM(n: 2, m: 4)) }
    #expect(c.packedLayers().allSatisfy { $0.layer.weight.form == int8Dense })
  }

  @Test("sparsify refuses a weight that does not fit, naming the layer, and swaps nothing")
  func sparsifyError() {
    let model = MLPClassifier(inputs: 8, hidden: [8], classes: 8, seed: 43)
    #expect(throws: SparsifyError.self) { try sparsify(model, form: .twoFour) }
    #expect(model.packedLayers().isEmpty)
    do {
      try sparsify(model, form: .twoFour)
    } catch {
      #expect(error.layer == "layers.0")
      #expect("\(error)".contains("layers.0.weight"))
    }
  }

  @Test("names follow PyTorch state-dict keys and round-trip through safetensors")
  func stateDictRoundTrip() throws {
    let vit = VisionTransformer(imageSide: 8, patch: 4, dimension: 8, depth: 1, heads: 2, mlpHidden: 16, classes: 10, seed: 44)
    let names = vit.namedParameters().map(\.name)
    #expect(names.first == "pos_embed")
    #expect(names.contains("blocks.0.attention.query.weight"))
    #expect(names.contains("blocks.0.mlp.fc2.bias"))
    #expect(names.contains("head.weight"))
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("nn-\(UUID()).safetensors").path
    defer { try? FileManager.default.removeItem(atPath: path) }
    try SafetensorsFile.write(vit.stateDict(), to: path)
    let other = VisionTransformer(imageSide: 8, patch: 4, dimension: 8, depth: 1, heads: 2, mlpHidden: 16, classes: 10, seed: 45)
    #expect(other.stateDict().map(\.tensor) != vit.stateDict().map(\.tensor))
    let file = try SafetensorsFile(contentsOf: path)
    try other.load(Dictionary(uniqueKeysWithValues: try file.entries.map { ($0.name, try file.tensor(named: $0.name)) }))
    #expect(other.stateDict().map(\.tensor) == vit.stateDict().map(\.tensor))
  }

  @Test("loading reports the first missing, unexpected or mis-shaped tensor")
  func loadErrors() {
    let model = MLPClassifier(inputs: 4, hidden: [3], classes: 2, seed: 46)
    var tensors = Dictionary(uniqueKeysWithValues: model.stateDict().map { ($0.name, $0.tensor) })
    let before = model.stateDict().map(\.tensor)
    tensors["extra"] = Tensor(zeros: [1])
    #expect(throws: StateDictError.unexpectedTensor("extra")) { try model.load(tensors) }
    tensors["extra"] = nil
    tensors["layers.1.bias"] = Tensor(zeros: [3])
    #expect(throws: StateDictError.shapeMismatch(tensor: "layers.1.bias", expected: [2], found: [3])) { try model.load(tensors) }
    tensors["layers.1.bias"] = nil
    #expect(throws: StateDictError.missingTensor("layers.1.bias")) { try model.load(tensors) }
    #expect(model.stateDict().map(\.tensor) == before)
  }
}
