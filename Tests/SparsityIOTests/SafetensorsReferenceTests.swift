import SparsityCore
import SparsityTestSupport
import Testing

@testable import SparsityIO

/// Checks against `Fixtures/reference.sft`, written by the Python `safetensors` package
/// (scripts/make_safetensors_fixtures.py), and its sidecar `reference.json`.
@Suite struct SafetensorsReferenceTests {
  struct ExpectedTensor {
    var name: String
    var dtype: String
    var shape: [Int]
    var dataOffsets: [Int]
    var bytes: [UInt8]
    /// Element values as JSON number text, or `nil` for the storage-only dtypes.
    var values: [String]?
  }

  struct Expected {
    var headerLength: Int
    var metadata: [String: String]
    var tensors: [ExpectedTensor]
  }

  /// Parses the sidecar with the package's own strict JSON parser (numbers stay exact text).
  static func expected() throws -> Expected {
    let bytes = try Fixtures.bytes("reference.json")
    let root = try bytes.withUnsafeBytes { try JSONParser.parse($0) }
    guard case .object(let members) = root else { throw FixtureError("sidecar is not an object") }
    let fields = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
    guard case .object(let metadataMembers)? = fields["metadata"],
      case .array(let tensorValues)? = fields["tensors"],
      let headerLength = fields["header_length"]?.nonNegativeInt
    else { throw FixtureError("sidecar lacks metadata, tensors or header_length") }
    var metadata: [String: String] = [:]
    for (key, value) in metadataMembers {
      guard case .string(let string) = value else { throw FixtureError("metadata \(key)") }
      metadata[key] = string
    }
    let tensors = try tensorValues.map { value -> ExpectedTensor in
      guard case .object(let members) = value else { throw FixtureError("tensor") }
      let t = Dictionary(members.map { ($0.key, $0.value) }, uniquingKeysWith: { a, _ in a })
      guard case .string(let name)? = t["name"], case .string(let dtype)? = t["dtype"],
        case .array(let shape)? = t["shape"], case .array(let offsets)? = t["data_offsets"],
        case .string(let hex)? = t["hex"], let valuesField = t["values"]
      else { throw FixtureError("tensor fields") }
      var values: [String]?
      if case .array(let numbers) = valuesField {
        values = numbers.compactMap { if case .number(let text) = $0 { text } else { nil } }
      }
      let hexDigits = Array(hex.utf8)
      let bytes = stride(from: 0, to: hexDigits.count, by: 2).compactMap {
        UInt8(String(decoding: hexDigits[$0..<$0 + 2], as: UTF8.self), radix: 16)
      }
      return ExpectedTensor(
        name: name, dtype: dtype, shape: shape.compactMap(\.nonNegativeInt),
        dataOffsets: offsets.compactMap(\.nonNegativeInt), bytes: bytes, values: values)
    }
    return Expected(headerLength: headerLength, metadata: metadata, tensors: tensors)
  }

  struct FixtureError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
  }

  @Test func readsTheReferenceFileExactly() throws {
    let expected = try Self.expected()
    #expect(expected.tensors.count >= 15)
    let file = try SafetensorsFile(contentsOf: Fixtures.path("reference.sft"))
    #expect(file.metadata == expected.metadata)
    #expect(file.entries.map(\.name) == expected.tensors.map(\.name))
    for (entry, reference) in zip(file.entries, expected.tensors) {
      #expect(entry.dtype.rawValue == reference.dtype, "\(entry.name)")
      #expect(entry.shape == reference.shape, "\(entry.name)")
      #expect([entry.dataRange.lowerBound, entry.dataRange.upperBound] == reference.dataOffsets)
      let tensor = try file.tensor(named: entry.name)
      #expect(tensor.withUnsafeBytes { Array($0) } == reference.bytes, "\(entry.name)")
      try checkValues(tensor, reference)
    }
  }

  private func checkValues(_ tensor: Tensor, _ reference: ExpectedTensor) throws {
    guard let values = reference.values else {
      #expect(!tensor.dtype.isNumeric, "\(reference.name) has no reference values")
      return
    }
    #expect(values.count == tensor.count, "\(reference.name)")
    switch tensor.dtype {
    case .int64: #expect(tensor.scalars(as: Int64.self).map(String.init) == values)
    case .uint64: #expect(tensor.scalars(as: UInt64.self).map(String.init) == values)
    default:
      let doubles = try values.map { text in
        guard let value = Double(text) else { throw FixtureError("value \(text)") }
        return value
      }
      let actual = tensor.doubleValues
      #expect(actual == doubles, "\(reference.name)")
      // Signed zeros must survive too.
      #expect(actual.map(\.sign) == doubles.map(\.sign), "\(reference.name)")
    }
  }

  @Test func writesTheReferenceFileByteForByte() throws {
    let reference = try Fixtures.bytes("reference.sft")
    let file = try SafetensorsFile(bytes: reference)
    let tensors = try file.tensors()
    #expect(try SafetensorsFile.serialize(tensors, metadata: file.metadata) == reference)
    // The input order does not matter: the writer sorts like the reference.
    #expect(
      try SafetensorsFile.serialize(tensors.reversed(), metadata: file.metadata) == reference)
    #expect(try SafetensorsFile.serialize(tensors.sorted { $0.name < $1.name }, metadata: file.metadata) == reference)
    try withTemporaryDirectory { directory in
      let path = directory + "/copy.safetensors"
      try SafetensorsFile.write(tensors, metadata: file.metadata, to: path)
      #expect(try fileBytes(path) == reference)
      let written = try SafetensorsFile(contentsOf: path)
      #expect(sameTensors(try written.tensors(), tensors))
    }
  }

  @Test func headerLengthMatchesTheReference() throws {
    let expected = try Self.expected()
    let reference = try Fixtures.bytes("reference.sft")
    let length = reference.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
    #expect(length == expected.headerLength)
    #expect(length % 8 == 0)
  }
}
