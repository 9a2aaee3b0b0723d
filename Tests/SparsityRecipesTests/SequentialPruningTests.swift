import SparsityCore
import SparsityFormats
import SparsityModels
import SparsityNN
import SparsityPruning
import Testing

@testable import SparsityRecipes

/// The block-by-block driver on a small random decoder: every decoder Linear of every layer
/// ends 2:4, calibrated on the samples' rows, and later layers see the pruned layers' outputs.
@Suite("Sequential pruning driver")
struct SequentialPruningTests {
  static let c = LlamaConfiguration(
    vocabularySize: 50, hiddenSize: 16, intermediateSize: 24, layerCount: 3, headCount: 4, kvHeadCount: 2, maxPositions: 64)

  @Test(arguments: [PruningMethod.magnitude, .wanda, .sparseGPT])
  func prunesEveryDecoderLinearTo24(method: PruningMethod) throws {
    let model = LlamaModel(Self.c, seed: 1)
    let samples = Gradients.disabled { (0..<3).map { s in model.embedTokens((0..<20).map { Int32(($0 * 7 + s * 3) % 50) }) } }
    var seenInputs: [[Float]] = []
    let configuration = try PruningConfiguration(method: method, pattern: .nOfM(n: 2, m: 4), sparsityLevel: 1).validated()
    let reports = try SequentialPruning(configuration, tokens: 40).run(
      blocks: Self.c.layerCount, samples: samples, rows: { $0.shape[0] }, block: { model.layers[$0] },
      forward: { block, h in
        seenInputs.append(h.value)
        return (block as! LlamaDecoderLayer)(h, layer: 0, cache: nil)
      })
    #expect(reports.count == 3)
    for report in reports {
      #expect(report.masks.masks.count == 7)
      #expect(report.rows == (method.needsCalibration ? 40 : 0))
    }
    for (name, module) in model.namedModules() where name.hasPrefix("model.layers.") {
      guard let linear = module as? Linear else { continue }
      let w = linear.weight.value
      for g in stride(from: 0, to: w.count, by: 4) { #expect(w[g..<g + 4].count { $0 != 0 } <= 2, "\(name) group \(g / 4)") }
    }
    // Only the first two samples hold the 40 rows asked for; the third is never run.
    #expect(!seenInputs.contains(samples[2].value))
  }
}
