import SparsityFormats
import Testing

@Suite("SparsityPattern")
struct PatternTests {
  @Test(arguments: [
    ("unstructured", SparsityPattern.unstructured),
    ("rows", .rows),
    ("columns", .columns),
    ("2:4", .nOfM(n: 2, m: 4)),
    ("1:4", .nOfM(n: 1, m: 4)),
    ("4:8", .nOfM(n: 4, m: 8)),
    ("1:1", .nOfM(n: 1, m: 1)),
    ("16:16", .nOfM(n: 16, m: 16)),
    ("3:16", .nOfM(n: 3, m: 16)),
    ("block:4x4", .block(rows: 4, columns: 4)),
    ("block:1x32", .block(rows: 1, columns: 32)),
    ("block:64x1", .block(rows: 64, columns: 1)),
    ("8:4x4", .nOfMInBlocks(n: 8, rows: 4, columns: 4)),
    ("2:1x4", .nOfMInBlocks(n: 2, rows: 1, columns: 4)),
    ("16:4x4", .nOfMInBlocks(n: 16, rows: 4, columns: 4)),
    // Surrounding spaces and letter case are accepted.
    ("  2:4 ", .nOfM(n: 2, m: 4)),
    ("Unstructured", .unstructured),
    ("BLOCK:2X8", .block(rows: 2, columns: 8)),
    ("ROWS", .rows),
  ])
  func parses(_ text: String, _ expected: SparsityPattern) throws {
    #expect(try SparsityPattern(parsing: text) == expected)
    #expect(SparsityPattern(text) == expected)
  }

  @Test(arguments: [
    "", " ", "dense", "2-4", "2:", ":4", "2:4:8", "a:b", "2:x", "2 : 4", "0:4", "5:4", "2:17", "17:17",
    "-1:4", "2:0", "block", "block:", "block:4", "block:4x", "block:x4", "block:0x4", "block:4x0",
    "block:4x4x4", "block:-1x4", "0:4x4", "17:4x4", "2:0x4", "2:4x", "rows:2", "unstructured:1",
    "2:4 x", "block:4*4",
  ])
  func rejectsInvalidText(_ text: String) {
    #expect(throws: PatternSyntaxError.self) { try SparsityPattern(parsing: text) }
    #expect(SparsityPattern(text) == nil)
  }

  @Test(arguments: ["dense", "2:17", "block:4x", "0:4x4", "2:4:8"])
  func syntaxErrorNamesTheTextAndTheRule(_ text: String) throws {
    do {
      _ = try SparsityPattern(parsing: text)
      Issue.record("'\(text)' parsed")
    } catch {
      #expect(error.text == text)
      #expect(!error.rule.isEmpty)
      #expect(error.description.contains("'\(text)'"))
    }
  }

  static let valid: [SparsityPattern] = [
    .unstructured, .rows, .columns, .twoFour, .nOfM(n: 1, m: 2), .nOfM(n: 8, m: 16), .nOfM(n: 1, m: 1),
    .block(rows: 1, columns: 1), .block(rows: 16, columns: 16), .block(rows: 1, columns: 4),
    .nOfMInBlocks(n: 8, rows: 4, columns: 4), .nOfMInBlocks(n: 1, rows: 2, columns: 1),
  ]

  @Test(arguments: valid)
  func descriptionRoundTrips(_ pattern: SparsityPattern) throws {
    #expect(try SparsityPattern(parsing: pattern.description) == pattern)
    #expect(SparsityPattern(pattern.description) == pattern)
    #expect(try pattern.validated() == pattern)
  }

  @Test(arguments: [
    (SparsityPattern.unstructured, "unstructured"), (.twoFour, "2:4"), (.nOfM(n: 3, m: 16), "3:16"),
    (.block(rows: 4, columns: 8), "block:4x8"), (.rows, "rows"), (.columns, "columns"),
    (.nOfMInBlocks(n: 8, rows: 4, columns: 4), "8:4x4"),
  ])
  func descriptions(_ pattern: SparsityPattern, _ text: String) {
    #expect(pattern.description == text)
  }

  @Test(arguments: [
    SparsityPattern.nOfM(n: 0, m: 4), .nOfM(n: 5, m: 4), .nOfM(n: 2, m: 17), .nOfM(n: -1, m: 2),
    .block(rows: 0, columns: 4), .block(rows: 4, columns: -1), .nOfMInBlocks(n: 0, rows: 2, columns: 2),
    .nOfMInBlocks(n: 5, rows: 2, columns: 2), .nOfMInBlocks(n: 1, rows: 0, columns: 2),
  ])
  func validatedRejectsBadParameters(_ pattern: SparsityPattern) {
    #expect(throws: PatternSyntaxError.self) { try pattern.validated() }
  }

  @Test func twoFourIsTwoKeptOfFour() {
    #expect(SparsityPattern.twoFour == .nOfM(n: 2, m: 4))
  }
}
