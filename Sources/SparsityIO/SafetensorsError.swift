import SparsityCore

/// Why a safetensors file could not be read or written.
///
/// Each case names the rule that was broken and, where there is one, the tensor. The
/// ``description`` is one line suitable for a CLI error message:
///
/// ```swift
/// do { _ = try SafetensorsFile(contentsOf: "model.safetensors") }
/// catch let error as SafetensorsError { print("error: \(error)") }
/// ```
public enum SafetensorsError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A system call failed for `path`.
  case io(path: String, detail: String)
  /// The file is shorter than the 8-byte header length.
  case fileTooSmall(size: Int)
  /// The header length exceeds the 100,000,000-byte limit.
  case headerTooLarge(UInt64)
  /// The header length points past the end of the file.
  case headerOutOfBounds(headerLength: UInt64, fileSize: Int)
  /// The header does not start with `{`.
  case invalidHeaderStart
  /// The header is not valid UTF-8 JSON; the detail names the byte offset within the header.
  case invalidJSON(String)
  /// Two tensors have the same name.
  case duplicateName(String)
  /// A tensor's header entry is malformed (not an object, missing or extra keys, bad shape…).
  case invalidEntry(name: String, detail: String)
  /// A tensor's dtype is not a safetensors dtype.
  case unknownDType(name: String, dtype: String)
  /// A tensor's element count or bit size overflows.
  case validationOverflow(name: String)
  /// A sub-byte tensor's elements do not fill whole bytes.
  case partialByte(name: String, dtype: DType, elements: Int)
  /// A tensor's byte range does not match its shape and dtype.
  case sizeMismatch(name: String, expectedBytes: Int, actualBytes: Int)
  /// A tensor's data offsets are reversed, overlap another tensor or leave a gap.
  case invalidOffsets(name: String, detail: String)
  /// The data section is shorter than the header says.
  case truncatedData(expected: Int, actual: Int)
  /// The data section has bytes after the last tensor.
  case trailingBytes(expected: Int, actual: Int)
  /// `__metadata__` is not an object of strings.
  case invalidMetadata(String)
  /// No tensor has this name.
  case missingTensor(String)
  /// A tensor name cannot be written (empty, or the reserved `__metadata__`).
  case invalidName(name: String, detail: String)

  public var description: String {
    switch self {
    case .io(let path, let detail):
      "\(path): \(detail)"
    case .fileTooSmall(let size):
      "file too small: \(size) bytes, a safetensors file has at least 8"
    case .headerTooLarge(let length):
      "header length \(length) exceeds the limit of 100000000 bytes"
    case .headerOutOfBounds(let length, let size):
      "header length \(length) runs past the end of the \(size)-byte file"
    case .invalidHeaderStart:
      "header does not start with '{'"
    case .invalidJSON(let detail):
      "header is not valid JSON: \(detail)"
    case .duplicateName(let name):
      "duplicate tensor name '\(name)'"
    case .invalidEntry(let name, let detail):
      "tensor '\(name)': \(detail)"
    case .unknownDType(let name, let dtype):
      "tensor '\(name)' has unknown dtype '\(dtype)'"
    case .validationOverflow(let name):
      "tensor '\(name)': element count × bit width overflows"
    case .partialByte(let name, let dtype, let elements):
      "tensor '\(name)': \(elements) elements of \(dtype) do not fill whole bytes"
    case .sizeMismatch(let name, let expected, let actual):
      "tensor '\(name)': shape and dtype need \(expected) bytes but data_offsets span \(actual)"
    case .invalidOffsets(let name, let detail):
      "tensor '\(name)': invalid data_offsets: \(detail)"
    case .truncatedData(let expected, let actual):
      "data section truncated: header describes \(expected) bytes, file holds \(actual)"
    case .trailingBytes(let expected, let actual):
      "data section has trailing bytes: header describes \(expected) bytes, file holds \(actual)"
    case .invalidMetadata(let detail):
      "invalid __metadata__: \(detail)"
    case .missingTensor(let name):
      "no tensor named '\(name)'"
    case .invalidName(let name, let detail):
      "invalid tensor name '\(name)': \(detail)"
    }
  }
}
