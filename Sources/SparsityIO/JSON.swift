/// A JSON value as parsed from a safetensors header.
///
/// Objects keep their members in document order; numbers keep their source text so that
/// callers decide how to interpret them (the header only needs non-negative integers).
enum JSONValue: Equatable {
  case null
  case bool(Bool)
  case number(String)
  case string(String)
  case array([JSONValue])
  case object([(key: String, value: JSONValue)])

  static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
    switch (lhs, rhs) {
    case (.null, .null): true
    case (.bool(let a), .bool(let b)): a == b
    case (.number(let a), .number(let b)): a == b
    case (.string(let a), .string(let b)): a == b
    case (.array(let a), .array(let b)): a == b
    case (.object(let a), .object(let b)):
      a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
    default: false
    }
  }

  /// The value as a non-negative integer that fits in `Int`, or `nil` (negative, fractional,
  /// exponent notation, too large, or not a number).
  var nonNegativeInt: Int? {
    guard case .number(let text) = self else { return nil }
    var result = 0
    for byte in text.utf8 {
      guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
      let (times10, o1) = result.multipliedReportingOverflow(by: 10)
      let (sum, o2) = times10.addingReportingOverflow(Int(byte - UInt8(ascii: "0")))
      if o1 || o2 { return nil }
      result = sum
    }
    return result
  }

  /// A short name of the value's kind, for error messages.
  var kindName: String {
    switch self {
    case .null: "null"
    case .bool: "a boolean"
    case .number: "a number"
    case .string: "a string"
    case .array: "an array"
    case .object: "an object"
    }
  }
}

/// Why a header is not valid JSON.
struct JSONParseError: Error, Equatable {
  /// What is wrong, without the position.
  var message: String
  /// Byte offset within the parsed text.
  var offset: Int
  /// The repeated key when the error is a duplicate key.
  var duplicateKey: String?
  /// Nesting depth of the object holding the duplicate key (1 = top level).
  var depth: Int = 0
}

/// A strict RFC 8259 JSON parser over UTF-8 bytes.
///
/// It rejects invalid UTF-8, unescaped control characters, lone surrogate escapes, duplicate
/// object keys, and nesting deeper than ``maxDepth``; it never traps on any input.
struct JSONParser {
  /// Deepest allowed nesting of arrays and objects.
  static let maxDepth = 64

  private let bytes: UnsafeRawBufferPointer
  private var position = 0
  private var depth = 0

  private init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  /// Parses one JSON value that spans all of `bytes` (surrounding whitespace allowed).
  static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONParseError) -> JSONValue {
    var parser = JSONParser(bytes)
    parser.skipWhitespace()
    let value = try parser.parseValue()
    parser.skipWhitespace()
    if parser.position < bytes.count {
      throw parser.error("unexpected '\(parser.describe(bytes[parser.position]))' after the value")
    }
    return value
  }

  // MARK: Values

  private mutating func parseValue() throws(JSONParseError) -> JSONValue {
    guard position < bytes.count else { throw error("unexpected end of input") }
    switch bytes[position] {
    case UInt8(ascii: "{"): return try parseObject()
    case UInt8(ascii: "["): return try parseArray()
    case UInt8(ascii: "\""): return .string(try parseString())
    case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
    case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
    case UInt8(ascii: "n"): try expectLiteral("null"); return .null
    case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try parseNumber()
    case let byte: throw error("unexpected '\(describe(byte))'")
    }
  }

  private mutating func parseObject() throws(JSONParseError) -> JSONValue {
    try enterContainer()
    position += 1  // {
    var members: [(key: String, value: JSONValue)] = []
    var keys = Set<String>()
    skipWhitespace()
    if peek() == UInt8(ascii: "}") {
      position += 1
      depth -= 1
      return .object(members)
    }
    while true {
      skipWhitespace()
      guard peek() == UInt8(ascii: "\"") else { throw error("expected a string key") }
      let keyOffset = position
      let key = try parseString()
      guard keys.insert(key).inserted else {
        throw JSONParseError(
          message: "duplicate key '\(key)'", offset: keyOffset, duplicateKey: key, depth: depth)
      }
      skipWhitespace()
      guard peek() == UInt8(ascii: ":") else { throw error("expected ':' after key '\(key)'") }
      position += 1
      skipWhitespace()
      members.append((key, try parseValue()))
      skipWhitespace()
      switch peek() {
      case UInt8(ascii: ","): position += 1
      case UInt8(ascii: "}"):
        position += 1
        depth -= 1
        return .object(members)
      default: throw error("expected ',' or '}' in object")
      }
    }
  }

  private mutating func parseArray() throws(JSONParseError) -> JSONValue {
    try enterContainer()
    position += 1  // [
    var elements: [JSONValue] = []
    skipWhitespace()
    if peek() == UInt8(ascii: "]") {
      position += 1
      depth -= 1
      return .array(elements)
    }
    while true {
      skipWhitespace()
      elements.append(try parseValue())
      skipWhitespace()
      switch peek() {
      case UInt8(ascii: ","): position += 1
      case UInt8(ascii: "]"):
        position += 1
        depth -= 1
        return .array(elements)
      default: throw error("expected ',' or ']' in array")
      }
    }
  }

  private mutating func enterContainer() throws(JSONParseError) {
    depth += 1
    if depth > JSONParser.maxDepth {
      throw error("nesting deeper than \(JSONParser.maxDepth) levels")
    }
  }

  private mutating func parseNumber() throws(JSONParseError) -> JSONValue {
    let start = position
    if peek() == UInt8(ascii: "-") { position += 1 }
    if peek() == UInt8(ascii: "0") {
      position += 1
    } else if try skipDigits() == 0 {
      throw error("expected a digit")
    }
    if peek() == UInt8(ascii: ".") {
      position += 1
      if try skipDigits() == 0 { throw error("expected a digit after '.'") }
    }
    if peek() == UInt8(ascii: "e") || peek() == UInt8(ascii: "E") {
      position += 1
      if peek() == UInt8(ascii: "+") || peek() == UInt8(ascii: "-") { position += 1 }
      if try skipDigits() == 0 { throw error("expected a digit in the exponent") }
    }
    return .number(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self))
  }

  /// Advances over ASCII digits and returns how many there were.
  private mutating func skipDigits() throws(JSONParseError) -> Int {
    let start = position
    while let byte = peek(), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
      position += 1
    }
    return position - start
  }

  private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
    let start = position
    for expected in UnsafeRawBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount) {
      guard peek() == expected else {
        position = start
        throw error("invalid literal, expected '\(literal)'")
      }
      position += 1
    }
  }

  // MARK: Strings

  /// Parses a string starting at its opening quote, validating UTF-8 and escapes.
  private mutating func parseString() throws(JSONParseError) -> String {
    position += 1  // opening quote
    var utf8: [UInt8] = []
    while true {
      guard let byte = peek() else { throw error("unterminated string") }
      switch byte {
      case UInt8(ascii: "\""):
        position += 1
        return String(decoding: utf8, as: UTF8.self)
      case UInt8(ascii: "\\"):
        position += 1
        try parseEscape(into: &utf8)
      case 0..<0x20:
        throw error("unescaped control character 0x\(hex(byte)) in string")
      case 0x20..<0x80:
        utf8.append(byte)
        position += 1
      default:
        let length = try validateUTF8Sequence()
        utf8.append(contentsOf: bytes[position..<position + length])
        position += length
      }
    }
  }

  /// Checks the multi-byte UTF-8 sequence at `position` and returns its length.
  private func validateUTF8Sequence() throws(JSONParseError) -> Int {
    let lead = bytes[position]
    let length: Int
    var scalar: UInt32
    switch lead {
    case 0xC2...0xDF: length = 2; scalar = UInt32(lead & 0x1F)
    case 0xE0...0xEF: length = 3; scalar = UInt32(lead & 0x0F)
    case 0xF0...0xF4: length = 4; scalar = UInt32(lead & 0x07)
    default: throw error("invalid UTF-8 byte 0x\(hex(lead))")
    }
    guard position + length <= bytes.count else { throw error("truncated UTF-8 sequence") }
    for i in 1..<length {
      let continuation = bytes[position + i]
      guard continuation & 0xC0 == 0x80 else {
        throw error("invalid UTF-8 continuation byte 0x\(hex(continuation))")
      }
      scalar = scalar << 6 | UInt32(continuation & 0x3F)
    }
    let minimum: UInt32 = length == 3 ? 0x800 : length == 4 ? 0x10000 : 0x80
    guard scalar >= minimum, scalar <= 0x10FFFF, !(0xD800...0xDFFF).contains(scalar) else {
      throw error("invalid UTF-8 sequence (overlong, surrogate or out of range)")
    }
    return length
  }

  private mutating func parseEscape(into utf8: inout [UInt8]) throws(JSONParseError) {
    guard let byte = peek() else { throw error("unterminated escape") }
    position += 1
    switch byte {
    case UInt8(ascii: "\""): utf8.append(byte)
    case UInt8(ascii: "\\"): utf8.append(byte)
    case UInt8(ascii: "/"): utf8.append(byte)
    case UInt8(ascii: "b"): utf8.append(0x08)
    case UInt8(ascii: "f"): utf8.append(0x0C)
    case UInt8(ascii: "n"): utf8.append(0x0A)
    case UInt8(ascii: "r"): utf8.append(0x0D)
    case UInt8(ascii: "t"): utf8.append(0x09)
    case UInt8(ascii: "u"):
      var scalar = try parseHex4()
      if (0xD800...0xDBFF).contains(scalar) {
        guard peek() == UInt8(ascii: "\\"), peek(at: 1) == UInt8(ascii: "u") else {
          throw error("lone leading surrogate in \\u escape")
        }
        position += 2
        let low = try parseHex4()
        guard (0xDC00...0xDFFF).contains(low) else {
          throw error("invalid trailing surrogate in \\u escape")
        }
        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
      } else if (0xDC00...0xDFFF).contains(scalar) {
        throw error("lone trailing surrogate in \\u escape")
      }
      guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
      UTF8.encode(unicode) { utf8.append($0) }
    default:
      position -= 1
      throw error("invalid escape '\\\(describe(byte))'")
    }
  }

  private mutating func parseHex4() throws(JSONParseError) -> UInt32 {
    var value: UInt32 = 0
    for _ in 0..<4 {
      guard let byte = peek() else { throw error("truncated \\u escape") }
      let digit: UInt8
      switch byte {
      case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
      case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
      case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
      default: throw error("invalid hex digit in \\u escape")
      }
      value = value << 4 | UInt32(digit)
      position += 1
    }
    return value
  }

  // MARK: Helpers

  private func peek(at distance: Int = 0) -> UInt8? {
    position + distance < bytes.count ? bytes[position + distance] : nil
  }

  private mutating func skipWhitespace() {
    while let byte = peek(),
      byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09
    {
      position += 1
    }
  }

  private func error(_ message: String) -> JSONParseError {
    JSONParseError(message: message, offset: position)
  }

  private func describe(_ byte: UInt8) -> String {
    byte >= 0x20 && byte < 0x7F ? String(UnicodeScalar(byte)) : "0x" + hex(byte)
  }

  private func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0F)]])
  }
}
