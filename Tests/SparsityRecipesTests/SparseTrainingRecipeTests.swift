import SparsityCore
import SparsityNN
import Testing

@testable import SparsityRecipes

/// `sparsity train --sparse-training` as API, on a slice of the digits: both models learn, the
/// sparse one is measured with 2:4 weights, and a seed gives the same numbers twice.
@Suite("2:4 sparse training of the digits models")
struct SparseTrainingRecipeTests {
  @Test("weights, activations and both train the MLP well above chance, reproducibly", arguments: SparseTrainingMode.allCases)
  func trains(mode: SparseTrainingMode) throws {
    let split = try Digits.builtIn().split()
    let train = LabeledData(split.train.subset(Array(0..<400)))
    let test = LabeledData(split.test.subset(Array(0..<200)))
    var c = DigitsModel.mlp.denseTraining(seed: 3)
    c.epochs = 3
    let records = try runSparseTraining(.mlp, mode: mode, seed: 3, train: train, test: test, configuration: c)
    #expect(records.map(\.training) == ["dense", mode.rawValue])
    for r in records { #expect(r.accuracy > 0.5, "\(r.training): \(r.accuracy)") }
    if mode == .both {
      let again = try runSparseTraining(.mlp, mode: mode, seed: 3, train: train, test: test, configuration: c)
      #expect(again.map(\.accuracy) == records.map(\.accuracy))
    }
  }
}
