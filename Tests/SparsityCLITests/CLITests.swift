import Foundation
import Sparsity
import SparsityTestSupport
import Testing

/// End-to-end tests of the `sparsity` executable: exit codes, one-line errors, files written or
/// not written.
@Suite(.serialized)
struct CLITests {
  /// The built `sparsity` executable, next to the test bundle.
  static let binary: URL = {
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    // `swift test` runs `…/debug/<package>PackageTests.xctest`; the products are beside it.
    for _ in 0..<3 where !FileManager.default.fileExists(atPath: directory.appendingPathComponent("sparsity").path) {
      directory.deleteLastPathComponent()
    }
    return directory.appendingPathComponent("sparsity")
  }()

  struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
  }

  static func run(_ arguments: [String], in directory: URL) throws -> Result {
    let process = Process()
    process.executableURL = binary
    process.arguments = arguments
    process.currentDirectoryURL = directory
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let stdout = out.fileHandleForReading.readDataToEndOfFile()
    let stderr = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Result(
      status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
      stderr: String(decoding: stderr, as: UTF8.self))
  }

  /// A fresh directory holding `model.safetensors`: a 2:4 f16 matrix, a 16×16-block f32
  /// matrix, an unstructured f32 matrix, a bias, and a few broken files.
  static func workspace() throws -> URL {
    let directory = try makeTemporaryDirectory("sparsity-cli")
    var rng = SeededGenerator(seed: 7)
    let w = Tensor.randomNormal([64, 128], using: &rng)
    // Two kept positions per group of 4, varying with row and group: 2:4 (and 4:8), but not
    // 1:2 and not whole columns.
    let pairs: [[Int]] = [[0, 1], [0, 3], [1, 2], [2, 3], [0, 2], [1, 3]]
    var keep = [Bool](repeating: false, count: 64 * 128)
    for r in 0..<64 {
      for c in 0..<128 { keep[r * 128 + c] = pairs[(r + c / 4) % 6].contains(c % 4) }
    }
    let keep24 = Tensor(keep, shape: [64, 128])
    let twoFour = w.masked(by: keep24).converted(to: .float16)
    let blockKeep = Tensor((0..<(64 * 128)).map { i in ((i / 128) / 16 + (i % 128) / 16) % 3 == 0 }, shape: [64, 128])
    let blocky = w.masked(by: blockKeep)
    let unstructured = w.masked(by: w.compared(.greater, 0.8))
    let archive = TensorArchive(
      tensors: [
        ("fc.weight", .dense(twoFour)), ("blocks.weight", .dense(blocky)), ("loose.weight", .dense(unstructured)),
        ("fc.bias", .dense(Tensor.randomNormal([64], using: &rng))),
      ], metadata: ["format": "pt"])
    try archive.write(to: directory.appendingPathComponent("model.safetensors").path)
    // A truncated copy and a file whose sparse tensor lacks a component.
    let bytes = try Data(contentsOf: directory.appendingPathComponent("model.safetensors"))
    try bytes.prefix(bytes.count - 10).write(to: directory.appendingPathComponent("truncated.safetensors"))
    try SafetensorsFile.write(
      [("x.packed", Tensor(zeros: [32, 32], dtype: .float16))],
      metadata: ["sparsity:x": #"{"format":"semi_structured_cutlass","shape":[32,64]}"#],
      to: directory.appendingPathComponent("broken-sparse.safetensors").path)
    return directory
  }

  /// The demo's recipe end to end on a few epochs (debug build): records, report and weights.
  @Test func demoRunsTheRecipeAndWritesItsReport() throws {
    let directory = try Self.workspace()
    let result = try Self.run(
      ["demo", "--models", "mlp", "--epoch-scale", "0.07", "--output-dir", "out", "--json"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let records = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] ?? []
    #expect(records.map { $0["stage"] as? String } == ["dense"] + Array(repeating: ["oneshot", "retrained"], count: 3).flatMap { $0 })
    #expect(Set(records.compactMap { $0["pattern"] as? String }) == ["dense", "2:4", "block 4x4 80%", "block 4x4 90%"])
    for record in records {
      #expect(record["model"] as? String == "mlp")
      let accuracy = record["accuracy"] as? Double ?? -1
      #expect((0...1).contains(accuracy))
      #expect((record["inference_ms"] as? Double ?? 0) > 0)
      if record["stage"] as? String != "dense" {
        #expect((record["max_relative_difference"] as? Double ?? 1) <= 1e-5)
      }
    }
    // A few epochs already beat chance by far.
    #expect((records.first?["accuracy"] as? Double ?? 0) > 0.5)
    for file in ["report.html", "results.json", "mlp-2of4.safetensors", "mlp-block-4x4-90.safetensors"] {
      #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("out/\(file)").path), "\(file)")
    }
    let html = try String(contentsOf: directory.appendingPathComponent("out/report.html"), encoding: .utf8)
    #expect(html.contains("<svg") && html.contains("test accuracy") && html.contains("layers.1.weight"))
    // The retrained 2:4 weights are 2:4 in the pruned layers.
    let weights = try SafetensorsFile(contentsOf: directory.appendingPathComponent("out/mlp-2of4.safetensors").path)
    #expect(Mask(nonzerosOf: try weights.tensor(named: "layers.1.weight")).conforms(to: .twoFour))
  }

  @Test func inspectReportsPatternsAndFootprints() throws {
    let directory = try Self.workspace()
    let result = try Self.run(["inspect", "model.safetensors", "--json"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let records = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]] ?? []
    let byName = Dictionary(uniqueKeysWithValues: records.map { ($0["name"] as? String ?? "", $0) })
    #expect(byName["fc.weight"]?["satisfied_patterns"] as? [String] == ["2:4", "4:8"])
    #expect((byName["fc.weight"]?["bytes"] as? [String: Int])?["2:4-cutlass"] == 64 * 64 * 2 + 64 * 8 * 2)
    #expect((byName["blocks.weight"]?["satisfied_patterns"] as? [String])?.contains("block:16x16") == true)
    #expect(byName["fc.bias"]?["sparsity"] as? Double == 0)
    let text = try Self.run(["inspect", "model.safetensors"], in: directory)
    #expect(text.status == 0)
    #expect(text.stdout.contains("fc.weight") && text.stdout.contains("2:4 4:8"))
  }

  @Test(arguments: ["2:4", "csr", "bsr:16x16", "bsr:8x32"])
  func compressThenDecompressIsExact(format: String) throws {
    let directory = try Self.workspace()
    let include = format == "2:4" ? ["--include", "^fc\\.weight$"] : []
    let compressed = try Self.run(["compress", "model.safetensors", "-o", "c.safetensors", "--format", format] + include, in: directory)
    #expect(compressed.status == 0, "\(compressed.stderr)")
    let stored = try TensorArchive(contentsOf: directory.appendingPathComponent("c.safetensors").path)
    #expect(stored["fc.weight"]?.form.description == (format == "2:4" ? "2:4" : format))
    let back = try Self.run(["decompress", "c.safetensors", "-o", "d.safetensors"], in: directory)
    #expect(back.status == 0, "\(back.stderr)")
    let original = try TensorArchive(contentsOf: directory.appendingPathComponent("model.safetensors").path)
    let restored = try TensorArchive(contentsOf: directory.appendingPathComponent("d.safetensors").path)
    #expect(restored.metadata == original.metadata)
    for (name, value) in original.tensors {
      #expect(restored[name] == value, "\(name)")
    }
  }

  @Test func maskPictureIsWritten() throws {
    let directory = try Self.workspace()
    let result = try Self.run(["inspect", "model.safetensors", "--mask", "blocks.weight", "-o", "m.svg"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let svg = try String(contentsOf: directory.appendingPathComponent("m.svg"), encoding: .utf8)
    #expect(svg.hasPrefix("<svg") && svg.contains("blocks.weight") && svg.hasSuffix("</svg>\n"))
  }

  struct ErrorCase: Sendable, CustomTestStringConvertible {
    var arguments: [String]
    /// Text the one-line message must contain.
    var message: String
    /// A file that must not exist afterwards.
    var output: String? = nil
    var testDescription: String { arguments.joined(separator: " ") }
  }

  static let errorCases: [ErrorCase] = [
    ErrorCase(
      arguments: ["compress", "model.safetensors", "-o", "o.safetensors", "--format", "2:4"],
      message: "tensor 'blocks.weight' is not 2:4: row 0, columns 0..<4 hold 4 nonzeros", output: "o.safetensors"),
    ErrorCase(
      arguments: ["compress", "model.safetensors", "-o", "o.safetensors", "--format", "2:4", "--include", "loose"],
      message: "tensor 'loose.weight' is not 2:4: row 0, columns 52..<56 hold 3 nonzeros", output: "o.safetensors"),
    ErrorCase(
      arguments: ["compress", "model.safetensors", "-o", "o.safetensors", "--format", "bsr:3x3"],
      message: "needs rows divisible by 3", output: "o.safetensors"),
    ErrorCase(
      arguments: ["compress", "model.safetensors", "-o", "o.safetensors", "--format", "bsr:0x4"],
      message: "bsr:0x4", output: "o.safetensors"),
    ErrorCase(
      arguments: ["compress", "model.safetensors", "-o", "o.safetensors", "--format", "csr", "--include", "("],
      message: "--include '(' is not a valid regular expression", output: "o.safetensors"),
    ErrorCase(
      arguments: ["compress", "model.safetensors", "-o", "o.safetensors", "--format", "csr", "--include", "bias"],
      message: "tensor 'fc.bias' with shape [64] matches --include but is not a matrix", output: "o.safetensors"),
    ErrorCase(
      arguments: ["compress", "missing.safetensors", "-o", "o.safetensors", "--format", "csr"],
      message: "missing.safetensors", output: "o.safetensors"),
    ErrorCase(
      arguments: ["compress", "truncated.safetensors", "-o", "o.safetensors", "--format", "csr"],
      message: "truncated", output: "o.safetensors"),
    ErrorCase(
      arguments: ["compress", "model.safetensors", "-o", "no/such/dir/o.safetensors", "--format", "csr"],
      message: "does not exist"),
    ErrorCase(
      arguments: ["decompress", "broken-sparse.safetensors", "-o", "o.safetensors"],
      message: "sparse tensor 'x' is missing its component tensor 'x.meta'", output: "o.safetensors"),
    ErrorCase(arguments: ["inspect", "model.safetensors", "--mask", "nope", "-o", "m.svg"], message: "no tensor named 'nope'", output: "m.svg"),
    ErrorCase(arguments: ["inspect", "model.safetensors", "--mask", "fc.weight"], message: "--mask needs -o FILE.svg"),
    ErrorCase(arguments: ["inspect"], message: "Missing expected argument"),
    ErrorCase(arguments: ["demo", "--models", "mlp,cnn"], message: "--models: 'cnn' is not a valid value"),
    ErrorCase(arguments: ["demo", "--epoch-scale", "0"], message: "--epoch-scale must be a positive number"),
    ErrorCase(arguments: ["train", "--model", "resnet"], message: "--model must be one of mlp, vit"),
    ErrorCase(arguments: ["train", "--pattern", "rows"], message: "training supports 2:4, block:RxC, unstructured and none"),
    ErrorCase(arguments: ["train", "--pattern", "block:3"], message: "--pattern 'block:3'"),
    ErrorCase(arguments: ["train", "--method", "obs"], message: "--method must be one of"),
    ErrorCase(arguments: ["train", "--epochs", "0"], message: "--epochs must be positive"),
    ErrorCase(
      arguments: ["distill", "--model", "nowhere", "--weights", "model.safetensors", "-o", "o.safetensors", "--sparse-training", "activations"],
      message: "--sparse-training takes 'weights'", output: "o.safetensors"),
    ErrorCase(arguments: ["train", "--sparse-training", "weights", "--pruned-decay=-1"], message: "--pruned-decay must be ≥ 0"),
    ErrorCase(arguments: ["train", "--pruned-decay", "0.01"], message: "--pruned-decay needs --sparse-training weights or both"),
    ErrorCase(arguments: ["train", "--sparse-training", "activations", "--pruned-decay", "0.01"], message: "--pruned-decay needs 2:4 weights"),
    ErrorCase(arguments: ["bench", "--training", "--peers", "missing.json"], message: "--peers missing.json: not a JSON file"),
  ]

  @Test(arguments: errorCases)
  func errorsAreOneLineAndWriteNothing(_ c: ErrorCase) throws {
    let directory = try Self.workspace()
    let result = try Self.run(c.arguments, in: directory)
    #expect(result.status != 0)
    let lines = result.stderr.split(separator: "\n", omittingEmptySubsequences: false).filter { !$0.isEmpty }
    #expect(lines.count == 1, "stderr: \(result.stderr)")
    #expect(lines.first?.hasPrefix("error: ") == true)
    #expect(result.stderr.contains(c.message), "stderr: \(result.stderr)")
    if let output = c.output {
      #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(output).path))
    }
    // No temporary files left behind either.
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasPrefix(".") }
    #expect(leftovers.isEmpty, "\(leftovers)")
  }
}

/// `sparsity classify`: inference with a model `train` saved, packed from the file.
@Suite(.serialized)
struct ClassifyCLITests {
  @Test func classifiesWithTheSavedWeightsInTheirPackedForms() throws {
    let directory = try makeTemporaryDirectory("sparsity-classify")
    let trained = try CLITests.run(
      ["train", "--model", "mlp", "--epochs", "1", "--retrain-epochs", "1", "--pattern", "2:4", "--output", "w.safetensors",
       "--json"], in: directory)
    #expect(trained.status == 0, "\(trained.stderr)")
    let records = try #require(JSONSerialization.jsonObject(with: Data(trained.stdout.utf8)) as? [[String: Any]])
    let retrained = try #require(records.last { $0["stage"] as? String == "retrained" }?["accuracy"] as? Double)

    let result = try CLITests.run(["classify", "--model", "mlp", "--weights", "w.safetensors", "--json"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let report = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    let accuracy = try #require(report["accuracy"] as? Double)
    // The same weights on the same 360 test images: the packed 2:4 kernels may round a borderline
    // image differently, never more.
    #expect(abs(accuracy - retrained) <= 1.0 / 360 + 1e-9, "classify \(accuracy), train \(retrained)")
    let layers = try #require(report["layers"] as? [String])
    #expect(layers == ["layers.0: 2:4", "layers.1: 2:4", "layers.2: dense"])
  }

  @Test func aFileOfAnotherModelIsAnErrorNamingTheTensor() throws {
    let directory = try makeTemporaryDirectory("sparsity-classify")
    let trained = try CLITests.run(["train", "--model", "mlp", "--epochs", "1", "--pattern", "none", "--output", "w.safetensors"], in: directory)
    #expect(trained.status == 0, "\(trained.stderr)")
    let result = try CLITests.run(["classify", "--model", "vit", "--weights", "w.safetensors"], in: directory)
    #expect(result.status != 0)
    #expect(result.stderr.hasPrefix("error: ") && result.stderr.contains("patch_embed"), "\(result.stderr)")
  }
}
