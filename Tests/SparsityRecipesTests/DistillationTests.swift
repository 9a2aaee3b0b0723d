import SparsityCore
import SparsityFormats
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText
import SparsityTestSupport
import Testing

@testable import SparsityRecipes

@Suite("Masked distillation of a pruned BERT toward the dense one")
struct DistillationTests {
  static let configuration = BertConfiguration(
    vocabularySize: 12, hiddenSize: 16, layerCount: 2, headCount: 2, intermediateSize: 32, maxPositions: 16)
  static let vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "##s", "."]
  static let texts = [
    "the cat sat on the mat.", "cats sat.", "the mat", "on the cat", "the cats sat on the mats.", "mat", "cat on mat.",
    "the the cat", "sat on the mat", "cats on mats on cats.", "the cat.", "mats sat on the cat",
  ]

  /// A dense teacher and a copy of it pruned 2:4 (magnitude) in every encoder `Linear`.
  static func pair() throws -> (teacher: BertModel, student: SentenceEmbedder, masks: ParameterMasks) {
    let teacher = BertModel(configuration, seed: 5)
    let student = BertModel(configuration, seed: 5)
    let masks = try prune(student, PruningConfiguration(pattern: .twoFour, sparsityLevel: 1)) { name, _ in name.hasPrefix("encoder.") }
    let tokenizer = try WordPieceTokenizer(vocabulary: vocabulary)
    return (teacher, SentenceEmbedder(tokenizer: tokenizer, model: student), masks)
  }

  @Test("prunedWeightMasks finds exactly the pruned weights and their nonzeros")
  func masksFromZeros() throws {
    let (teacher, student, masks) = try Self.pair()
    #expect(teacher.prunedWeightMasks().masks.isEmpty)
    let found = student.model.prunedWeightMasks()
    #expect(found.masks.count == 12)
    #expect(Set(found.masks.keys) == Set(masks.masks.keys))
    for (name, mask) in found.masks { #expect(mask.conforms(to: .twoFour), "\(name)") }
  }

  @Test("distillation lowers the loss, keeps every pruned weight zero and the embeddings frozen")
  func lowersLossKeepsZeros() throws {
    let (teacher, student, masks) = try Self.pair()
    let frozen = student.model.namedParameters().filter { $0.name.hasPrefix("embeddings.") }.map(\.parameter.value)
    let before = student.distillationLoss(toward: teacher, texts: Self.texts)
    #expect(before > 0)
    var steps = 0
    let records = student.distill(
      toward: teacher, texts: Self.texts, masks: masks,
      configuration: DistillationConfiguration(epochs: 6, batchSize: 4, learningRate: 1e-2, warmupFraction: 0.1, seed: 1),
      progress: { _, _, _, _ in steps += 1 })
    let after = student.distillationLoss(toward: teacher, texts: Self.texts)
    #expect(records.count == 6 && steps == 6 * 3)
    #expect(records.last!.loss < records.first!.loss)
    #expect(after < 0.5 * before, "loss \(before) → \(after)")

    let parameters = Dictionary(uniqueKeysWithValues: student.model.namedParameters().map { ($0.name, $0.parameter) })
    for (name, mask) in masks.masks {
      let keep = mask.tensor.scalars(as: Bool.self)
      let value = parameters[name]!.value
      #expect(keep.indices.allSatisfy { keep[$0] || value[$0] == 0 }, "\(name): a pruned weight became nonzero")
      #expect(Mask(nonzerosOf: parameters[name]!.tensor).conforms(to: .twoFour))
    }
    #expect(student.model.namedParameters().filter { $0.name.hasPrefix("embeddings.") }.map(\.parameter.value) == frozen)
    // Kept weights and the layer norms trained.
    let teacherParameters = Dictionary(uniqueKeysWithValues: teacher.namedParameters().map { ($0.name, $0.parameter.value) })
    #expect(parameters["encoder.layer.1.output.LayerNorm.weight"]!.value != teacherParameters["encoder.layer.1.output.LayerNorm.weight"])
  }

  @Test("semi-sparse distillation lowers the loss and leaves every encoder Linear 2:4, Linear again", arguments: [
    Sparse24.Algorithm.largestAbsPerRow, .largestAbsValuesGreedy,
  ])
  func semiSparse(algorithm: Sparse24.Algorithm) throws {
    // The dense teacher itself is the start; the bar is the same model pruned 2:4 at once.
    let (teacher, pruned, _) = try Self.pair()
    let before = pruned.distillationLoss(toward: teacher, texts: Self.texts)
    let student = try SentenceEmbedder(tokenizer: WordPieceTokenizer(vocabulary: Self.vocabulary), model: BertModel(Self.configuration, seed: 5))
    let (records, layers) = student.distillSemiSparse(
      toward: teacher, texts: Self.texts, algorithm: algorithm,
      configuration: DistillationConfiguration(epochs: 6, batchSize: 4, learningRate: 1e-2, warmupFraction: 0.1, seed: 1))
    #expect(records.count == 6 && layers.count == 12)
    let linears = student.model.linearLayers().filter { $0.name.hasPrefix("encoder.") }
    #expect(linears.count == 12)
    for (name, layer) in linears {
      #expect(Mask(nonzerosOf: layer.weight.tensor).conforms(to: .twoFour), "\(name) is not 2:4")
    }
    #expect(student.model.namedModules().allSatisfy { !($0.module is SemiSparseLinear) })
    // Measured on the 2:4 model it leaves.
    let after = student.distillationLoss(toward: teacher, texts: Self.texts)
    #expect(after < before, "loss \(before) → \(after)")
  }

  @Test("the same seed gives the same weights")
  func reproducible() throws {
    func run() throws -> [Float] {
      let (teacher, student, masks) = try Self.pair()
      student.distill(
        toward: teacher, texts: Self.texts, masks: masks,
        configuration: DistillationConfiguration(epochs: 2, batchSize: 5, learningRate: 1e-2, seed: 3))
      return student.model.parameters().flatMap(\.value)
    }
    #expect(try run() == run())
  }
}

@Suite("Masked distillation of a pruned Llama decoder toward the dense one")
struct DecoderDistillationTests {
  static let c = LlamaConfiguration(
    vocabularySize: 40, hiddenSize: 16, intermediateSize: 24, layerCount: 2, headCount: 4, kvHeadCount: 2, maxPositions: 64)
  static let windows = (0..<6).map { s in (0..<12).map { ($0 * 7 + s * 5) % 40 } }

  @Test("both objectives lower their loss and keep every pruned weight zero", arguments: [
    DecoderDistillationObjective.logits, .logits(temperature: 2), .hiddenStates,
  ])
  func lowersLossKeepsZeros(objective: DecoderDistillationObjective) throws {
    let teacher = LlamaModel(Self.c, seed: 3)
    let student = LlamaModel(Self.c, seed: 3)
    let masks = try prune(student, PruningConfiguration(pattern: .twoFour, sparsityLevel: 1)) { name, _ in name.hasPrefix("model.layers.") }
    #expect(Set(student.prunedWeightMasks().masks.keys) == Set(masks.masks.keys) && masks.masks.count == 14)
    func loss() -> Double {
      Self.windows.reduce(0) { sum, w in
        let target = Gradients.disabled { teacher.hiddenStates(w.map(Int32.init), cache: nil).value }
        return sum + Double(Gradients.disabled { student.distillationLoss(w, target: target, teacher: teacher, objective: objective) }.scalar)
      }
    }
    let before = loss()
    let records = student.distill(
      toward: teacher, windows: Self.windows, masks: masks, objective: objective,
      configuration: DistillationConfiguration(epochs: 8, batchSize: 2, learningRate: 1e-2, warmupFraction: 0.1, seed: 1))
    let after = loss()
    #expect(records.count == 8 && before > 0)
    #expect(after < 0.5 * before, "loss \(before) → \(after)")
    let parameters = Dictionary(uniqueKeysWithValues: student.namedParameters().map { ($0.name, $0.parameter) })
    for (name, mask) in masks.masks {
      let keep = mask.tensor.scalars(as: Bool.self)
      let value = parameters[name]!.value
      #expect(keep.indices.allSatisfy { keep[$0] || value[$0] == 0 }, "\(name): a pruned weight became nonzero")
    }
  }
}
