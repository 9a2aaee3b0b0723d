/// Why a GGUF file could not be read, or a metadata value or tensor could not be given.
///
/// Each case names the rule that was broken and, where there is one, the metadata key or
/// tensor and the byte offset in the file. The ``description`` is one line suitable for a CLI
/// error message:
///
/// ```swift
/// do { _ = try GGUFFile(contentsOf: "model.gguf") }
/// catch { print("error: \(error)") }  // error: tensor 'blk.0.attn_q.weight' has offset 64, expected 0
/// ```
public enum GGUFError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A system call failed for `path`.
  case io(path: String, detail: String)
  /// The file ends inside a fixed-size field; `offset` is where the field starts.
  case truncated(what: String, offset: Int)
  /// The file does not start with `GGUF` (the first bytes, at most 4, are given).
  case invalidMagic([UInt8])
  /// The version is not 2 or 3 (0, the retired 1, or a newer one).
  case unsupportedVersion(UInt32)
  /// The low 16 bits of the version are zero: a file of the other byte order (big-endian).
  case byteSwapped(version: UInt32)
  /// `tensor_count` or `metadata_kv_count` is more than the remaining bytes could hold.
  case countTooLarge(field: String, count: UInt64, remainingBytes: Int)
  /// A string's length is over 1 GiB or past the end of the file.
  case invalidStringLength(what: String, offset: Int, length: UInt64, remainingBytes: Int)
  /// A key, string value or tensor name is not valid UTF-8.
  case invalidUTF8(what: String, offset: Int)
  /// Metadata key number `index` (from 0) is empty or holds a NUL byte.
  case invalidKey(index: Int, detail: String)
  /// Two metadata pairs have the same key.
  case duplicateKey(String)
  /// A value (or array element) type id is not 0…12.
  case unknownValueType(key: String, typeID: UInt32)
  /// An array's elements are arrays (ggml rejects these too).
  case nestedArray(key: String)
  /// An array has more than 2^30 elements, or more than the remaining bytes could hold.
  case invalidArrayLength(key: String, count: UInt64, remainingBytes: Int)
  /// A `BOOL` byte is neither 0 nor 1.
  case invalidBool(key: String, value: UInt8, offset: Int)
  /// `general.alignment` is not a `UINT32` or not a nonzero power of two.
  case invalidAlignment(String)
  /// Tensor number `index` has an empty name, one of 64 bytes or more, or one with a NUL byte.
  case invalidTensorName(index: Int, name: String, detail: String)
  /// Two tensors have the same name.
  case duplicateTensorName(String)
  /// A tensor has no dimensions or more than 4.
  case invalidDimensionCount(name: String, count: UInt32)
  /// A tensor dimension (`index` from 0, as stored) is 0 or above `Int64.max`.
  case invalidDimension(name: String, index: Int, value: UInt64)
  /// A tensor's element count or byte size overflows 64 bits.
  case sizeOverflow(name: String)
  /// A tensor's type id is not a ggml type that gguf-py knows.
  case unknownTensorType(name: String, typeID: UInt32)
  /// A tensor's first dimension is not a whole number of its type's blocks.
  case rowNotBlockAligned(name: String, type: GGMLType, elements: Int)
  /// A tensor's offset is not a multiple of the alignment.
  case misalignedOffset(name: String, offset: UInt64, alignment: Int)
  /// A tensor's offset is not where the previous tensors end (each padded to the alignment):
  /// a gap, an overlap or tensors out of order.
  case invalidOffset(name: String, offset: UInt64, expected: Int)
  /// A tensor's data runs past the end of the file; `end` is its last byte + 1 in the file.
  case truncatedData(name: String, end: Int, fileSize: Int)
  /// The file has bytes after the padding that follows the last tensor (or the tensor infos).
  case trailingBytes(expected: Int, actual: Int)
  /// No metadata value has this key.
  case missingKey(String)
  /// A metadata value has another type than the accessor reads.
  case wrongValueType(key: String, expected: String, found: String)
  /// A metadata integer does not fit an `Int`.
  case valueOutOfRange(key: String, value: String)
  /// No tensor has this name.
  case missingTensor(String)
  /// The tensor's type cannot be dequantized by this library.
  case unsupportedType(name: String, type: GGMLType)

  public var description: String {
    switch self {
    case .io(let path, let detail):
      "\(path): \(detail)"
    case .truncated(let what, let offset):
      "file ends inside \(what) at byte \(offset)"
    case .invalidMagic(let bytes):
      "not a GGUF file: starts with \(bytes.map { String($0, radix: 16).leftPadded(2) }.joined(separator: " ")), expected 47 47 55 46 ('GGUF')"
    case .unsupportedVersion(let version):
      "unsupported GGUF version \(version) (2 and 3 are read)"
    case .byteSwapped(let version):
      "GGUF version \(version) has zero low 16 bits: a big-endian file, which is not read"
    case .countTooLarge(let field, let count, let remaining):
      "\(field) \(count) cannot fit in the \(remaining) bytes that follow"
    case .invalidStringLength(let what, let offset, let length, let remaining):
      "\(what) at byte \(offset) has length \(length), but \(remaining) bytes follow (limit 1 GiB)"
    case .invalidUTF8(let what, let offset):
      "\(what) at byte \(offset) is not valid UTF-8"
    case .invalidKey(let index, let detail):
      "metadata key \(index): \(detail)"
    case .duplicateKey(let key):
      "duplicate metadata key \(ggufQuoted(key))"
    case .unknownValueType(let key, let id):
      "metadata \(ggufQuoted(key)) has unknown value type \(id) (0…12 are defined)"
    case .nestedArray(let key):
      "metadata \(ggufQuoted(key)) is an array of arrays, which is not read"
    case .invalidArrayLength(let key, let count, let remaining):
      "metadata \(ggufQuoted(key)) has \(count) elements, more than \(remaining) bytes can hold or the limit of 2^30"
    case .invalidBool(let key, let value, let offset):
      "metadata \(ggufQuoted(key)) has BOOL byte \(value) at byte \(offset) (0 or 1 expected)"
    case .invalidAlignment(let detail):
      "invalid general.alignment: \(detail)"
    case .invalidTensorName(let index, let name, let detail):
      "tensor \(index) \(ggufQuoted(name)): \(detail)"
    case .duplicateTensorName(let name):
      "duplicate tensor name \(ggufQuoted(name))"
    case .invalidDimensionCount(let name, let count):
      "tensor \(ggufQuoted(name)) has \(count) dimensions (1…4 are read)"
    case .invalidDimension(let name, let index, let value):
      "tensor \(ggufQuoted(name)) has dimension \(index) = \(value) (1…Int64.max are read)"
    case .sizeOverflow(let name):
      "tensor \(ggufQuoted(name)): element count or byte size overflows"
    case .unknownTensorType(let name, let id):
      "tensor \(ggufQuoted(name)) has unknown ggml type \(id)"
    case .rowNotBlockAligned(let name, let type, let elements):
      "tensor \(ggufQuoted(name)): rows of \(elements) elements are not whole \(type) blocks of \(type.blockElements)"
    case .misalignedOffset(let name, let offset, let alignment):
      "tensor \(ggufQuoted(name)) has offset \(offset), not a multiple of the alignment \(alignment)"
    case .invalidOffset(let name, let offset, let expected):
      "tensor \(ggufQuoted(name)) has offset \(offset), expected \(expected) (where the previous tensors end)"
    case .truncatedData(let name, let end, let size):
      "tensor \(ggufQuoted(name)) ends at byte \(end), past the end of the \(size)-byte file"
    case .trailingBytes(let expected, let actual):
      "file has trailing bytes: the data ends (with padding) at byte \(expected), the file has \(actual)"
    case .missingKey(let key):
      "no metadata key \(ggufQuoted(key))"
    case .wrongValueType(let key, let expected, let found):
      "metadata \(ggufQuoted(key)) is \(found), expected \(expected)"
    case .valueOutOfRange(let key, let value):
      "metadata \(ggufQuoted(key)) = \(value) does not fit an Int"
    case .missingTensor(let name):
      "no tensor named \(ggufQuoted(name))"
    case .unsupportedType(let name, let type):
      "tensor \(ggufQuoted(name)) has type \(type), which cannot be dequantized (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 can)"
    }
  }
}

extension String {
  fileprivate func leftPadded(_ width: Int) -> String {
    count >= width ? self : String(repeating: "0", count: width - count) + self
  }
}

/// A name or key in single quotes for a one-line message: control characters escaped, and
/// names longer than 200 characters cut with "…".
func ggufQuoted(_ text: String) -> String {
  var result = "'"
  for (index, scalar) in text.unicodeScalars.enumerated() {
    if index == 200 {
      result += "…"
      break
    }
    if scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}" {
      result += "\\u{" + String(scalar.value, radix: 16) + "}"
    } else {
      result.unicodeScalars.append(scalar)
    }
  }
  return result + "'"
}
