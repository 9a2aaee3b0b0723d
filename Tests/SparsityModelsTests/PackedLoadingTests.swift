import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityNN
import Testing

@testable import SparsityModels

/// Loading a model for inference builds its packed layers straight from the stored arrays: each
/// stored form (dense, 2:4, BSR, CSR), under the model's own tensor names and under Hugging
/// Face's `bert.` prefix, is checked with the library's allocation accounting (no dense
/// `[out, in]` buffer for a sparse weight) and against the dense model's outputs.
@Suite("Packed loading: compressed stays compressed")
struct PackedLoadingTests {
  static let configuration = BertConfiguration(
    vocabularySize: 12, hiddenSize: 32, layerCount: 2, headCount: 2, intermediateSize: 32, maxPositions: 16)

  /// How the encoder's Linear weights are pruned and stored.
  enum Stored: String, CaseIterable, CustomTestStringConvertible {
    case dense, denseWithZeros = "dense 2:4 zeros", twoFour = "2:4 (CUTLASS)", bsr = "bsr 8x8", csr
    var testDescription: String { rawValue }

    /// Whether entry `i` of a `[rows, k]` weight is kept.
    func keeps(_ i: Int, k: Int) -> Bool {
      let (row, column) = (i / k, i % k)
      switch self {
      case .dense: return true
      case .denseWithZeros: return column % 4 < 2
      // f32 CUTLASS 2:4 is 1:2 (PyTorch's layout): at most one of every two values kept.
      case .twoFour: return column % 2 == 0
      case .bsr: return (row / 8 + column / 8) % 2 == 0
      // Not 2:4 (row 0 keeps 3 of every 4) and no all-zero blocks: CSR is what suits it.
      case .csr: return row % 4 == 0 ? column % 4 != 3 : column % 8 == 0
      }
    }

    func store(_ w: Tensor, name: String) throws -> StoredTensor {
      switch self {
      case .dense, .denseWithZeros: .dense(w)
      case .twoFour: .cutlass(try CUTLASSSemiStructured(compressing: w, name: name))
      case .bsr: .bsr(try BSRMatrix(dense: w, blockRows: 8, blockColumns: 8, name: name))
      case .csr: .csr(try CSRMatrix(dense: w, name: name))
      }
    }

    /// The packed form the loader should choose.
    var expectedForm: WeightForm {
      switch self {
      case .dense: .dense
      case .denseWithZeros, .twoFour: .twoFour
      case .bsr: .bsr(8, 8)
      case .csr: .csr
      }
    }
  }

  /// A folder with config.json, and a weights file whose encoder Linear weights are pruned and
  /// stored as `stored` says; returns (folder, weights file, the trainable reference model).
  static func folder(_ stored: Stored, prefix: String) throws -> (String, String, BertModel) {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("packed-\(UUID())").path
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let c = configuration
    try """
      {"vocab_size": \(c.vocabularySize), "hidden_size": \(c.hiddenSize), "num_hidden_layers": \(c.layerCount),
       "num_attention_heads": \(c.headCount), "intermediate_size": \(c.intermediateSize),
       "max_position_embeddings": \(c.maxPositions), "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_act": "gelu"}
      """.write(toFile: directory + "/config.json", atomically: true, encoding: .utf8)
    let reference = BertModel(c, seed: 11)
    var archive = TensorArchive()
    for (name, tensor) in reference.stateDict() {
      var value = StoredTensor.dense(tensor)
      if name.hasPrefix("encoder."), name.hasSuffix(".weight"), tensor.rank == 2 {
        let k = tensor.shape[1]
        let pruned = Tensor(tensor.scalars(as: Float.self).enumerated().map { stored.keeps($0.offset, k: k) ? $0.element : 0 }, shape: tensor.shape)
        reference.setParameter(named: name, to: pruned)
        value = try stored.store(pruned, name: name)
      }
      archive.tensors.append((prefix + name, value))
    }
    let file = directory + "/weights.safetensors"
    try archive.write(to: file)
    return (directory, file, reference)
  }

  static func hiddenStates(_ model: BertModel) -> [Float] {
    model.train(false)
    return Gradients.disabled {
      model.hiddenStates(ids: [2, 5, 6, 7, 3, 0, 2, 8, 9, 10, 11, 3], attentionMask: [1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1], batch: 2, tokens: 6).value
    }
  }

  @Test(arguments: Stored.allCases, ["", "bert."])
  func loadsPackedWithoutDenseBuffers(stored: Stored, prefix: String) throws {
    let (directory, file, reference) = try Self.folder(stored, prefix: prefix)
    let (model, ledger) = try MemoryLedger.measure { try BertModel(directory: directory, weights: file, holding: .packed) }

    // Only inference layers, in the form the stored zeros suit; no trainable Linear left.
    #expect(model.linearLayers().isEmpty)
    let packed = model.packedLayers()
    #expect(packed.count == 6 * Self.configuration.layerCount)
    #expect(packed.allSatisfy { $0.layer.weight.form == stored.expectedForm }, "\(packed.map { "\($0.name): \($0.layer.weight.form)" })")
    // No trainable copy of any weight: the parameters left are the layer norms' (embedding
    // tables are frozen, read in place from the file).
    #expect(model.parameterCount == (1 + 2 * Self.configuration.layerCount) * 2 * Self.configuration.hiddenSize)

    // The largest weight is the stacked q/k/v, [96, 32] f32: 12,288 bytes dense.
    let stackedDense = 3 * Self.configuration.hiddenSize * Self.configuration.hiddenSize * 4
    if stored == .dense {
      // The accounting sees the dense packed weights (so the check below can fail).
      #expect(ledger.largestAllocation >= stackedDense)
    } else {
      #expect(
        ledger.largestAllocation < stackedDense,
        "a \(ledger.largestAllocation)-byte buffer was allocated loading \(stored) weights (dense is \(stackedDense) bytes)")
    }
    #expect(ledger.allocationCount > 0)

    // Outputs equal the dense (masked) model's within float rounding.
    let expected = Self.hiddenStates(reference)
    let actual = Self.hiddenStates(model)
    let scale = expected.map { abs($0) }.max() ?? 1
    let error = zip(actual, expected).map { abs($0 - $1) }.max() ?? 0
    #expect(error <= 1e-5 * scale, "max difference \(error)")
    // q/k/v run as one stacked product whose rows the three layers are (held once).
    #expect(model.layers.allSatisfy { ($0.query as? PackedLinear)?.isStacked == true })
  }

  @Test("each stored form packs without a buffer the size of its dense matrix", arguments: Stored.allCases)
  func packsEachFormWithoutDense(stored: Stored) throws {
    let (n, k) = (32, 32)
    var g = SeededGenerator(seed: 3)
    let w = Tensor.randomNormal([n, k], using: &g)
    let pruned = Tensor(w.scalars(as: Float.self).enumerated().map { stored.keeps($0.offset, k: k) ? $0.element : 0 }, shape: [n, k])
    let source = try stored.store(pruned, name: "w")
    let (layer, ledger) = try MemoryLedger.measure {
      try PackedLinear(source, as: source.packedForm, bias: nil, name: "w")
    }
    #expect(layer.weight.form == stored.expectedForm)
    let dense = n * k * 4
    if stored == .dense {
      #expect(ledger.largestAllocation >= dense)
    } else {
      #expect(ledger.largestAllocation < dense, "\(stored): a \(ledger.largestAllocation)-byte buffer (dense is \(dense) bytes)")
    }
    #expect(layer.denseWeight() == pruned)
  }

  @Test("a trainable load and a packed load of the same folder agree; densify restores trainable layers")
  func trainableAndPackedAgree() throws {
    let (directory, file, _) = try Self.folder(.csr, prefix: "")
    let trainable = try BertModel(directory: directory, weights: file)
    let packed = try BertModel(directory: directory, weights: file, holding: .packed)
    #expect(trainable.packedLayers().isEmpty)
    let expected = Self.hiddenStates(trainable)
    #expect(zip(Self.hiddenStates(packed), expected).allSatisfy { abs($0 - $1) <= 1e-5 })
    densify(packed)
    #expect(packed.packedLayers().isEmpty && packed.linearLayers().count == 12)
    #expect(zip(Self.hiddenStates(packed), expected).allSatisfy { abs($0 - $1) <= 1e-5 })
    #expect(packed.residentWeightBytes > 0)
  }

  @Test("a missing or mis-shaped tensor is an error naming it")
  func missingTensor() throws {
    let (directory, file, _) = try Self.folder(.bsr, prefix: "")
    var archive = try TensorArchive(contentsOf: file)
    archive.tensors.removeAll { $0.name == "encoder.layer.1.output.dense.weight" }
    try archive.write(to: file)
    #expect {
      try BertModel(directory: directory, weights: file, holding: .packed)
    } throws: { error in
      "\(error)".contains("encoder.layer.1.output.dense.weight")
    }
  }
}
