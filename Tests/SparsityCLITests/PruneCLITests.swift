import Foundation
import Sparsity
import SparsityTestSupport
import Testing

/// End-to-end tests of `sparsity prune`: every method, the report, permutations, compression,
/// and one-line errors that leave no output behind.
@Suite(.serialized)
struct PruneCLITests {
  /// A directory with `model.safetensors` (a 64×128 f32 and a 64×64 bf16 matrix, a bias, an
  /// I32 tensor), `calibration.safetensors` and `heldout.safetensors` (W:input tensors of
  /// correlated inputs with an outlier feature).
  static func workspace() throws -> URL {
    let directory = try makeTemporaryDirectory("sparsity-prune")
    var rng = SeededGenerator(seed: 11)
    let fc1 = Tensor.randomNormal([64, 128], standardDeviation: 0.1, using: &rng)
    let fc2 = Tensor.randomNormal([64, 64], standardDeviation: 0.1, using: &rng).converted(to: .bfloat16)
    try TensorArchive(
      tensors: [
        ("fc1.weight", .dense(fc1)), ("fc1.bias", .dense(Tensor.randomNormal([64], using: &rng))),
        ("fc2.weight", .dense(fc2)), ("positions", .dense(Tensor([0, 1, 2, 3] as [Int32], shape: [2, 2]))),
      ], metadata: ["format": "pt"]
    ).write(to: directory.appendingPathComponent("model.safetensors").path)
    // One input distribution per layer, shared by the calibration and held-out samples.
    let mixings = [128: Tensor.randomNormal([8, 128], using: &rng), 64: Tensor.randomNormal([8, 64], using: &rng)]
    func inputs(_ tokens: Int, _ features: Int) -> Tensor {
      let mixing = mixings[features]!
      let latent = Tensor.randomNormal([tokens, 8], using: &rng)
      var x = Tensor.referenceMatmul(latent, mixing).doubleValues
      for t in 0..<tokens { x[t * features + 5] *= 20 }
      return Tensor(doubles: x, shape: [tokens, features], dtype: .float32) + Tensor.randomNormal([tokens, features], standardDeviation: 0.3, using: &rng)
    }
    for (file, tokens) in [("calibration", 512), ("heldout", 256)] {
      try SafetensorsFile.write(
        [("fc1.weight:input", inputs(tokens, 128)), ("fc2.weight:input", inputs(tokens, 64))], metadata: [:],
        to: directory.appendingPathComponent("\(file).safetensors").path)
    }
    return directory
  }

  static func report(_ stdout: String) throws -> (layers: [[String: Any]], summary: [String: Any]) {
    let object = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any])
    return (try #require(object["layers"] as? [[String: Any]]), try #require(object["summary"] as? [String: Any]))
  }

  @Test func magnitudeTwoFourKeepsOtherTensors() throws {
    let directory = try Self.workspace()
    let result = try CLITests.run(["prune", "model.safetensors", "-o", "out.safetensors", "--pattern", "2:4"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("fc1.weight") && result.stdout.contains("pruned 2 tensor(s)"))
    let original = try TensorArchive(contentsOf: directory.appendingPathComponent("model.safetensors").path)
    let pruned = try TensorArchive(contentsOf: directory.appendingPathComponent("out.safetensors").path)
    for name in ["fc1.weight", "fc2.weight"] {
      let w = try #require(pruned[name]).dense()
      #expect(w.conforms(to: .twoFour) && w.sparsity == 0.5, "\(name)")
      #expect(w.dtype == original[name]?.dtype)
    }
    #expect(pruned["fc1.bias"] == original["fc1.bias"])
    #expect(pruned["positions"] == original["positions"])
    #expect(pruned.metadata["format"] == "pt")
  }

  /// On correlated inputs, held-out error orders SparseGPT < Wanda < magnitude.
  @Test(arguments: [["--pattern", "2:4"], ["--pattern", "unstructured", "--sparsity", "0.5"]])
  func calibratedMethodsReportErrors(pattern: [String]) throws {
    let directory = try Self.workspace()
    var heldOut: [String: Double] = [:]
    for method in ["magnitude", "wanda", "sparsegpt"] {
      let result = try CLITests.run(
        ["prune", "model.safetensors", "-o", "\(method).safetensors", "--method", method, "--calibration", "calibration.safetensors",
         "--evaluate", "heldout.safetensors", "--include", "^fc1", "--json"] + pattern, in: directory)
      #expect(result.status == 0, "\(result.stderr)")
      let (layers, summary) = try Self.report(result.stdout)
      #expect(layers.count == 1)
      #expect(layers.first?["conforms"] as? Bool == true)
      #expect((layers.first?["sparsity"] as? Double).map { Swift.abs($0 - 0.5) < 1e-9 } == true)
      #expect(layers.first?["calibration_error"] is Double)
      heldOut[method] = try #require(summary["mean_held_out_error"] as? Double)
    }
    let (m, w, s) = (heldOut["magnitude"] ?? 0, heldOut["wanda"] ?? 0, heldOut["sparsegpt"] ?? 0)
    #expect(s < w && w < m, "sparsegpt \(s), wanda \(w), magnitude \(m)")
  }

  @Test func permuteStoresAValidPermutation() throws {
    let directory = try Self.workspace()
    let result = try CLITests.run(
      ["prune", "model.safetensors", "-o", "out.safetensors", "--pattern", "2:4", "--permute", "--include", "fc1", "--seed", "3",
       "--json"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let (layers, _) = try Self.report(result.stdout)
    #expect((layers.first?["permutation_gain"] as? Double).map { $0 > 0 } == true)
    let pruned = try TensorArchive(contentsOf: directory.appendingPathComponent("out.safetensors").path)
    let stored = try #require(pruned["fc1.weight:permutation"]).dense()
    let permutation = try ChannelPermutation(tensor: stored)
    let weight = try #require(pruned["fc1.weight"]).dense()
    #expect(weight.conforms(to: .twoFour))
    // The stored weight is the permuted, pruned one: restoring its columns gives a pruning of
    // the original weight (every kept value equals the original one at its place).
    let original = try TensorArchive(contentsOf: directory.appendingPathComponent("model.safetensors").path)
    let restored = permutation.restoringColumns(of: weight).floatValues
    let dense = try #require(original["fc1.weight"]).dense().floatValues
    #expect(zip(restored, dense).allSatisfy { $0.0 == 0 || $0.0 == $0.1 })
  }

  @Test func compressAutoPicksTheFormatPerTensor() throws {
    let directory = try Self.workspace()
    let result = try CLITests.run(
      ["prune", "model.safetensors", "-o", "out.safetensors", "--pattern", "2:4", "--compress", "auto"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let pruned = try TensorArchive(contentsOf: directory.appendingPathComponent("out.safetensors").path)
    // bf16 in PyTorch's CUTLASS layout; f32 (which CUTLASS holds only as 1:2) as values + 2-bit positions.
    guard case .cutlass = pruned["fc2.weight"], case let .nOfM(fc1) = pruned["fc1.weight"] else {
      Issue.record("fc2 should be CUTLASS 2:4 and fc1 logical 2:4, got \(String(describing: pruned["fc2.weight"]?.form)), \(String(describing: pruned["fc1.weight"]?.form))")
      return
    }
    // Smaller than every other form the weight could take: 53% of dense, below CSR.
    let csr = try StoredTensor.nOfM(fc1).stored(as: .csr, name: "fc1")
    #expect(fc1.byteCount * 32 == fc1.shape[0] * fc1.shape[1] * 4 * 17 && fc1.byteCount < csr.byteCount)
  }

  @Test func weightNormBlocks() throws {
    let directory = try Self.workspace()
    let result = try CLITests.run(
      ["prune", "model.safetensors", "-o", "out.safetensors", "--pattern", "block:4x4", "--sparsity", "0.5", "--method", "norm",
       "--include", "fc1", "--compress", "auto"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let pruned = try TensorArchive(contentsOf: directory.appendingPathComponent("out.safetensors").path)
    #expect(pruned["fc1.weight"]?.form.description == "bsr:4x4")
    let w = try #require(pruned["fc1.weight"]).dense()
    #expect(w.conforms(to: .block(rows: 4, columns: 4)) && w.sparsity == 0.5)
  }

  struct ErrorCase: Sendable, CustomTestStringConvertible {
    var arguments: [String]
    var message: String
    var testDescription: String { message }
  }

  @Test(arguments: [
    ErrorCase(arguments: ["--pattern", "2:4", "--method", "wanda"], message: "needs --calibration"),
    ErrorCase(arguments: ["--pattern", "2:4", "--sparsity", "0.7"], message: "fixes the sparsity at 0.5"),
    ErrorCase(arguments: ["--pattern", "unstructured"], message: "needs --sparsity"),
    ErrorCase(arguments: ["--pattern", "3:2", "--sparsity", "0.5"], message: "--pattern"),
    ErrorCase(arguments: ["--pattern", "2:4", "--include", "nothing-matches"], message: "no floating-point matrix"),
    ErrorCase(arguments: ["--pattern", "block:4x4", "--sparsity", "0.5", "--permute"], message: "--permute needs an N:M pattern"),
    ErrorCase(arguments: ["--pattern", "2:4", "--norm", "3", "--method", "norm"], message: "L-3 is not yet implemented."),
    ErrorCase(
      arguments: ["--pattern", "2:4", "--method", "sparsegpt", "--calibration", "model.safetensors"],
      message: "holds no W:input tensor"),
    ErrorCase(
      arguments: ["--pattern", "2:4", "--method", "sparsegpt", "--calibration", "partial.safetensors"],
      message: "tensor 'fc2.weight' needs calibration inputs, but there is no tensor 'fc2.weight:input'"),
    ErrorCase(arguments: ["--pattern", "2:4", "--compress", "zip"], message: "--compress 'zip'"),
  ])
  func errorsAreOneLineAndWriteNothing(_ c: ErrorCase) throws {
    let directory = try Self.workspace()
    try SafetensorsFile.write(
      [("fc1.weight:input", Tensor(repeating: Float(1), shape: [4, 128]))], metadata: [:],
      to: directory.appendingPathComponent("partial.safetensors").path)
    let result = try CLITests.run(["prune", "model.safetensors", "-o", "out.safetensors"] + c.arguments, in: directory)
    #expect(result.status != 0)
    #expect(result.stderr.contains(c.message), "\(result.stderr)")
    #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("out.safetensors").path))
  }
}
