import Testing

@testable import SparsityIO

private func parse(_ text: String) throws(JSONParseError) -> JSONValue {
  try parse(Array(text.utf8))
}

private func parse(_ bytes: [UInt8]) throws(JSONParseError) -> JSONValue {
  let result = bytes.withUnsafeBytes { buffer in Result { () throws(JSONParseError) in try JSONParser.parse(buffer) } }
  return try result.get()
}

@Suite struct JSONParserTests {
  @Test func parsesEveryKindOfValue() throws {
    let value = try parse(#" {"a": [1, -2.5e3, true, false, null], "b": {"c": "d"}, "e": []} "#)
    #expect(
      value
        == .object([
          ("a", .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null])),
          ("b", .object([("c", .string("d"))])),
          ("e", .array([])),
        ]))
  }

  @Test func keepsObjectMemberOrder() throws {
    guard case .object(let members) = try parse(#"{"z":1,"a":2,"m":3}"#) else {
      Issue.record("not an object")
      return
    }
    #expect(members.map(\.key) == ["z", "a", "m"])
  }

  @Test(arguments: [
    (#""\"\\\/\b\f\n\r\t""#, "\"\\/\u{8}\u{C}\n\r\t"),
    (#""\u0041\u00e9\u20AC""#, "Aé€"),
    (#""\ud83d\ude00""#, "😀"),
    (#""\u0000""#, "\u{0}"),
    ("\"é✓😀\"", "é✓😀"),
  ])
  func decodesStringEscapes(json: String, expected: String) throws {
    #expect(try parse(json) == .string(expected))
  }

  @Test func keepsCombiningSequencesDistinctInBytes() throws {
    // "e" + U+0301 is canonically equal to "é" as a Swift String, but keeps its own bytes.
    guard case .string(let decomposed) = try parse("\"e\u{301}\"") else {
      Issue.record("not a string")
      return
    }
    #expect(Array(decomposed.utf8) == [0x65, 0xCC, 0x81])
  }

  @Test(arguments: [
    "", " ", "{", "}", "[1,]", "[1 2]", #"{"a" 1}"#, #"{"a":1,}"#, "{1:2}", "tru", "nul", "01",
    "-", "1.", "1e", ".5", "+1", "--1", "[1]x", #""abc"#, #""\x""#, #""\u12G4""#, #""\ud800""#,
    #""\udc00""#, #""\ud800\u0041""#, "\"a\u{1}b\"", "\"tab\tin\"", "NaN", "Infinity",
  ])
  func rejectsInvalidJSON(json: String) {
    #expect(throws: JSONParseError.self) { try parse(json) }
  }

  @Test(arguments: [
    [0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22],
    [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], [0x22, 0xE2, 0x82, 0x22], [0x22, 0x80, 0x22],
    [0x22, 0xE2, 0x82],
  ] as [[UInt8]])
  func rejectsInvalidUTF8(bytes: [UInt8]) {
    #expect(throws: JSONParseError.self) { try parse(bytes) }
  }

  @Test func reportsDuplicateKeysByName() {
    #expect(throws: JSONParseError(message: "duplicate key 'k'", offset: 15, duplicateKey: "k", depth: 2)) {
      try parse(#"{"o":{"k":1,   "k":2}}"#)
    }
  }

  @Test func limitsNestingDepth() throws {
    let depth = JSONParser.maxDepth
    _ = try parse(String(repeating: "[", count: depth) + String(repeating: "]", count: depth))
    #expect(throws: JSONParseError.self) {
      try parse(String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1))
    }
    // Far deeper input fails fast instead of overflowing the stack.
    #expect(throws: JSONParseError.self) { try parse(String(repeating: "[", count: 1_000_000)) }
  }

  @Test(arguments: [
    ("0", 0), ("7", 7), ("9223372036854775807", Int.max), ("9223372036854775808", nil),
    ("-0", nil), ("-1", nil), ("1.0", nil), ("1e2", nil),
  ] as [(String, Int?)])
  func readsNonNegativeIntegers(text: String, expected: Int?) throws {
    #expect(try parse(text).nonNegativeInt == expected)
  }
}
