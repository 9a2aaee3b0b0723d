import Foundation
import SparsityCore
import SparsityTestSupport
import Testing

@testable import SparsityIO

/// Paths of the committed fixtures (copied into the test bundle).
enum Fixtures {
  static let directory = fixturesDirectory(in: .module)

  static func path(_ name: String) -> String { directory + "/" + name }

  static func bytes(_ name: String) throws -> [UInt8] { try fileBytes(path(name)) }
}

func directoryListing(_ path: String) throws -> [String] {
  try FileManager.default.contentsOfDirectory(atPath: path).sorted()
}

/// `count` deterministic pseudo-random bytes that are valid elements of `dtype` (0/1 for bool).
func sampleBytes(_ count: Int, dtype: DType, seed: UInt64) -> [UInt8] {
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  return (0..<count).map { _ in
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return dtype == .bool ? UInt8(state & 1) : UInt8(truncatingIfNeeded: state >> 24)
  }
}

func sampleTensor(shape: [Int], dtype: DType, seed: UInt64) -> Tensor? {
  guard let byteCount = dtype.byteCount(elements: shape.reduce(1, *)) else { return nil }
  return sampleBytes(byteCount, dtype: dtype, seed: seed).withUnsafeBytes {
    Tensor(shape: shape, dtype: dtype, copying: $0)
  }
}

/// Whether two name → tensor lists hold the same tensors, in any order.
func sameTensors(
  _ a: [(name: String, tensor: Tensor)], _ b: [(name: String, tensor: Tensor)]
) -> Bool {
  guard a.count == b.count else { return false }
  let byName = Dictionary(b.map { ($0.name, $0.tensor) }, uniquingKeysWith: { x, _ in x })
  return a.allSatisfy { byName[$0.name]?.isBitwiseEqual(to: $0.tensor) == true }
}

/// The address of a tensor's first byte (to tell views of a mapping from copies).
func address(of tensor: Tensor) -> Int {
  tensor.withUnsafeBytes { Int(bitPattern: $0.baseAddress) }
}

extension SafetensorsError {
  /// The case's name, to compare errors whose details are free text.
  var caseName: String {
    switch self {
    case .io: "io"
    case .fileTooSmall: "fileTooSmall"
    case .headerTooLarge: "headerTooLarge"
    case .headerOutOfBounds: "headerOutOfBounds"
    case .invalidHeaderStart: "invalidHeaderStart"
    case .invalidJSON: "invalidJSON"
    case .duplicateName: "duplicateName"
    case .invalidEntry: "invalidEntry"
    case .unknownDType: "unknownDType"
    case .validationOverflow: "validationOverflow"
    case .partialByte: "partialByte"
    case .sizeMismatch: "sizeMismatch"
    case .invalidOffsets: "invalidOffsets"
    case .truncatedData: "truncatedData"
    case .trailingBytes: "trailingBytes"
    case .invalidMetadata: "invalidMetadata"
    case .missingTensor: "missingTensor"
    case .invalidName: "invalidName"
    }
  }
}

/// Runs `body`, which must throw a ``SafetensorsError``, and returns that error (else `nil`, recording an issue).
func expectSafetensorsError(
  sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> SafetensorsError? {
  #expect(throws: SafetensorsError.self, sourceLocation: sourceLocation, performing: body)
}
