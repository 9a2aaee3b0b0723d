import Foundation
import SparsityCore
import Testing

@testable import SparsityIO

// Helpers of the GGUF reader's tests.

extension GGUFError {
  /// The case's name, to compare errors whose details are free text.
  var caseName: String {
    switch self {
    case .io: "io"
    case .truncated: "truncated"
    case .invalidMagic: "invalidMagic"
    case .unsupportedVersion: "unsupportedVersion"
    case .byteSwapped: "byteSwapped"
    case .countTooLarge: "countTooLarge"
    case .invalidStringLength: "invalidStringLength"
    case .invalidUTF8: "invalidUTF8"
    case .invalidKey: "invalidKey"
    case .duplicateKey: "duplicateKey"
    case .unknownValueType: "unknownValueType"
    case .nestedArray: "nestedArray"
    case .invalidArrayLength: "invalidArrayLength"
    case .invalidBool: "invalidBool"
    case .invalidAlignment: "invalidAlignment"
    case .invalidTensorName: "invalidTensorName"
    case .duplicateTensorName: "duplicateTensorName"
    case .invalidDimensionCount: "invalidDimensionCount"
    case .invalidDimension: "invalidDimension"
    case .sizeOverflow: "sizeOverflow"
    case .unknownTensorType: "unknownTensorType"
    case .rowNotBlockAligned: "rowNotBlockAligned"
    case .misalignedOffset: "misalignedOffset"
    case .invalidOffset: "invalidOffset"
    case .truncatedData: "truncatedData"
    case .trailingBytes: "trailingBytes"
    case .missingKey: "missingKey"
    case .wrongValueType: "wrongValueType"
    case .valueOutOfRange: "valueOutOfRange"
    case .missingTensor: "missingTensor"
    case .unsupportedType: "unsupportedType"
    }
  }
}

/// Runs `body`, which must throw a ``GGUFError``, and returns that error (else `nil`, recording an issue).
func expectGGUFError(
  sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> GGUFError? {
  #expect(throws: GGUFError.self, sourceLocation: sourceLocation, performing: body)
}

/// The GGUF fixtures and what gguf-py read from them (`Fixtures/gguf/reference.json`, written by
/// scripts/make_gguf_fixtures.py).
enum GGUFFixtures {
  static func path(_ name: String) -> String { Fixtures.path("gguf/" + name) }

  static let names = ["types.gguf", "v2-align64.gguf", "metadata-only.gguf"]

  /// `reference.json`: file name → its description.
  nonisolated(unsafe) static let reference: [String: [String: Any]] = {
    guard let data = FileManager.default.contents(atPath: path("reference.json")),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: [String: Any]]
    else { return [:] }
    return object
  }()

  /// The path of the real SmolLM2 model, when it is on this machine.
  static let smolLM2: String? = {
    let environment = ProcessInfo.processInfo.environment
    let candidates = [
      environment["SPARSITY_SMOLLM2_GGUF"],
      NSHomeDirectory() + "/.cache/swift-sparsity/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf",
    ]
    return candidates.compactMap { $0 }.first { FileManager.default.fileExists(atPath: $0) }
  }()
}

/// A reference metadata entry (type, value) as text, in the form the JSON file uses: integers as
/// decimal text, floats as hexadecimal bit patterns.
func referenceText(_ value: GGUFValue) -> Any {
  switch value {
  case .float32(let v): return String(format: "0x%08x", v.bitPattern)
  case .float64(let v): return "0x" + String(v.bitPattern, radix: 16).leftPadded(16)
  case .string(let v): return v
  case .bool(let v): return v
  case .array(let a): return (0..<a.count).map { referenceText(a[$0]) }
  default: return value.description
  }
}

extension String {
  func leftPadded(_ width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}

/// Whether two reference values (strings, bools, arrays of them) are equal.
func sameReference(_ a: Any, _ b: Any) -> Bool {
  switch (a, b) {
  case (let x as String, let y as String): x.unicodeScalars.elementsEqual(y.unicodeScalars)
  case (let x as Bool, let y as Bool): x == y
  case (let x as [Any], let y as [Any]): x.count == y.count && zip(x, y).allSatisfy(sameReference)
  default: false
  }
}

/// The bit patterns of a float32 tensor.
func bitPatterns(_ tensor: Tensor) -> [UInt32] {
  tensor.withUnsafeBufferPointer(as: Float.self) { $0.map(\.bitPattern) }
}
