import Foundation
import SparsityTestSupport
import Testing

/// End-to-end tests of `sparsity bench` on tiny shapes (the numbers are not checked: speed is
/// the bench command's business, not the tests').
@Suite(.serialized)
struct BenchCommandTests {
  static func tempDirectory() throws -> URL { try makeTemporaryDirectory("sparsity-bench") }

  @Test func jsonHasOneRecordPerCase() throws {
    let dir = try Self.tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let result = try CLITests.run(
      ["bench", "--formats", "2:4,bsr,csr", "--shapes", "64x32", "--m", "1,8", "--sparsities", "0.9",
       "--blocks", "16", "--runs", "1", "--json", "--html", "report.html"], in: dir)
    #expect(result.status == 0, "\(result.stderr)")
    let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
    let records = try #require(object?["records"] as? [[String: Any]])
    // 2:4, BSR 16 at 0.9 and CSR at 0.9, each at M = 1 and 8.
    #expect(records.count == 6)
    for r in records {
      #expect((r["speedup"] as? Double ?? 0) > 0)
      #expect((r["median_ms"] as? Double ?? 0) > 0)
      #expect(r["n"] as? Int == 64 && r["k"] as? Int == 32)
      #expect(["2:4", "bsr", "csr"].contains(r["table"] as? String ?? ""))
    }
    let html = try String(contentsOf: dir.appendingPathComponent("report.html"), encoding: .utf8)
    #expect(html.contains("<svg") && html.contains("</html>"))
    #expect(result.stderr.contains("[6/6"), "progress lines on stderr")
  }

  @Test func markdownDescribesTheMachine() throws {
    let dir = try Self.tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let result = try CLITests.run(
      ["bench", "--formats", "dense,csr", "--shapes", "32x48", "--m", "3", "--sparsities", "0.5", "--runs", "1", "--markdown"],
      in: dir)
    #expect(result.status == 0, "\(result.stderr)")
    #expect(result.stdout.contains("## Machine"))
    #expect(result.stdout.contains("## Unstructured sparsity (CSR)"))
    #expect(result.stdout.contains("## Dense baseline"))
  }

  @Test(arguments: [
    (["--shapes", "64by64"], "OUTxIN"),
    (["--shapes", "64x64", "--blocks", "48"], "does not divide"),
    (["--formats", "coo"], "unknown format"),
    (["--sparsities", "1.5"], "--sparsities"),
  ])
  func badOptionsAreOneLineErrors(arguments: [String], message: String) throws {
    let dir = try Self.tempDirectory()
    defer { try? FileManager.default.removeItem(at: dir) }
    let result = try CLITests.run(["bench"] + arguments + ["--runs", "1"], in: dir)
    #expect(result.status != 0)
    #expect(result.stderr.contains(message), "\(result.stderr)")
    #expect(result.stdout.isEmpty)
  }
}
