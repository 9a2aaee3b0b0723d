import Foundation
import SparsityTestSupport
import Testing

/// `sparsity inspect` on GGUF files (the SparsityIO test fixtures, written by
/// scripts/make_gguf_fixtures.py).
@Suite(.serialized)
struct InspectGGUFTests {
  /// `Tests/SparsityIOTests/Fixtures/gguf/`, beside this test target.
  static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("SparsityIOTests/Fixtures/gguf")

  /// A fresh directory with a copy of `types.gguf` under a name without the extension (the
  /// format is told by the magic bytes) and a truncated copy.
  static func workspace() throws -> URL {
    let directory = try makeTemporaryDirectory("sparsity-inspect-gguf")
    let bytes = try Data(contentsOf: fixtures.appendingPathComponent("types.gguf"))
    try bytes.write(to: directory.appendingPathComponent("model.bin"))
    try bytes.prefix(bytes.count / 2).write(to: directory.appendingPathComponent("cut.gguf"))
    return directory
  }

  @Test func printsHeaderMetadataTensorsAndTotals() throws {
    let directory = try Self.workspace()
    defer { try? FileManager.default.removeItem(at: directory) }
    let result = try CLITests.run(["inspect", "model.bin"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let out = result.stdout
    #expect(out.contains("GGUF version 3, alignment 32, 29 metadata keys, 28 tensors"))
    #expect(out.contains("test.uint64") && out.contains("18446744073709551615"))
    #expect(out.contains("[STRING × 6]") && out.contains(#""a", "", "Ġthe", "<|im_start|>", …"#))
    #expect(out.contains("[INT32 × 0]"))
    #expect(out.contains("lorem ipsum") && out.contains("… (540 bytes)"))
    // Shapes are row-major (dimensions reversed); types are ggml's names.
    let q41 = try #require(out.split(separator: "\n").first { $0.hasPrefix("q4_1.cube ") })
    #expect(q41.contains("Q4_1") && q41.contains("[2, 3, 32]") && q41.contains("120 B"))
    #expect(out.contains("Q4_K") && out.contains("BITS/WEIGHT"))
  }

  @Test func printsTheSameAsJSON() throws {
    let directory = try Self.workspace()
    defer { try? FileManager.default.removeItem(at: directory) }
    let result = try CLITests.run(["inspect", "model.bin", "--json"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    #expect(object["format"] as? String == "gguf")
    #expect((object["version"] as? NSNumber)?.intValue == 3)
    let metadata = try #require(object["metadata"] as? [[String: Any]])
    #expect(metadata.count == 29)
    let tokens = try #require(metadata.first { $0["key"] as? String == "test.strings" })
    #expect(tokens["element_type"] as? String == "STRING" && (tokens["count"] as? NSNumber)?.intValue == 6)
    #expect((tokens["first"] as? [String])?.count == 4)
    let long = try #require(metadata.first { $0["key"] as? String == "test.long_string" })
    #expect(long["truncated"] as? Bool == true && (long["length"] as? NSNumber)?.intValue == 540)
    let tensors = try #require(object["tensors"] as? [[String: Any]])
    #expect(tensors.count == 28)
    let cube = try #require(tensors.first { $0["name"] as? String == "q4_1.cube" })
    #expect((cube["shape"] as? [NSNumber])?.map(\.intValue) == [2, 3, 32])
    #expect((cube["dimensions"] as? [NSNumber])?.map(\.intValue) == [32, 3, 2])
    #expect(cube["type"] as? String == "Q4_1" && (cube["bytes"] as? NSNumber)?.intValue == 120)
    let totals = try #require(object["totals"] as? [[String: Any]])
    #expect(totals.compactMap { $0["type"] as? String }.sorted() == [
      "BF16", "F16", "F32", "I32", "Q4_0", "Q4_1", "Q4_K", "Q5_0", "Q5_1", "Q8_0",
    ])
    #expect(totals.map { ($0["tensors"] as? NSNumber)?.intValue ?? 0 }.reduce(0, +) == 28)
  }

  @Test func drawsTheMaskOfADequantizedTensor() throws {
    let directory = try Self.workspace()
    defer { try? FileManager.default.removeItem(at: directory) }
    let result = try CLITests.run(["inspect", "model.bin", "--mask", "q8_0.matrix", "-o", "m.svg"], in: directory)
    #expect(result.status == 0, "\(result.stderr)")
    let svg = try String(contentsOf: directory.appendingPathComponent("m.svg"), encoding: .utf8)
    #expect(svg.hasPrefix("<svg") && svg.contains("q8_0.matrix"))
  }

  @Test(arguments: [
    (["inspect", "cut.gguf"], "ends at byte"),
    (["inspect", "model.bin", "--mask", "q4_k.unsupported", "-o", "m.svg"], "has type Q4_K, which cannot be dequantized"),
    (["inspect", "model.bin", "--mask", "nope", "-o", "m.svg"], "no tensor named 'nope'"),
  ])
  func reportsErrorsInOneLine(arguments: [String], message: String) throws {
    let directory = try Self.workspace()
    defer { try? FileManager.default.removeItem(at: directory) }
    let result = try CLITests.run(arguments, in: directory)
    #expect(result.status != 0)
    #expect(result.stderr.hasPrefix("error: ") && result.stderr.contains(message), "\(result.stderr)")
    #expect(result.stderr.split(separator: "\n").count == 1)
    #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("m.svg").path))
  }
}
