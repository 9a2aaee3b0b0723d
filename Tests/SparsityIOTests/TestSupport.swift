import Foundation
import SparsityCore
import Testing

@testable import SparsityIO

/// Paths of the committed fixtures (copied into the test bundle).
enum Fixtures {
  static let directory: String = {
    if let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { return url.path }
    return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .appendingPathComponent("Fixtures").path
  }()

  static func path(_ name: String) -> String { directory + "/" + name }

  static func bytes(_ name: String) throws -> [UInt8] { try fileBytes(path(name)) }
}

func fileBytes(_ path: String) throws -> [UInt8] {
  Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// A fresh empty directory, removed when `body` returns.
func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
  let path = FileManager.default.temporaryDirectory
    .appendingPathComponent("sparsity-io-tests-\(UUID().uuidString)").path
  try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
  defer { try? FileManager.default.removeItem(atPath: path) }
  return try body(path)
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

/// Runs `body`, which must throw a ``SafetensorsError``, and returns that error.
func expectSafetensorsError(
  sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> SafetensorsError? {
  do {
    try body()
    Issue.record("expected a SafetensorsError, nothing was thrown", sourceLocation: sourceLocation)
  } catch let error as SafetensorsError {
    return error
  } catch {
    Issue.record("expected a SafetensorsError, got \(error)", sourceLocation: sourceLocation)
  }
  return nil
}
