import SparsityCore

/// One tensor's header entry in a safetensors file.
public struct SafetensorsEntry: Sendable, Hashable {
  /// The tensor's name (a header key), e.g. `"encoder.layer.0.attention.self.query.weight"`.
  public var name: String
  /// The element type.
  public var dtype: DType
  /// The extent of each dimension; `[]` for a scalar.
  public var shape: [Int]
  /// The tensor's bytes, relative to the start of the data section.
  public var dataRange: Range<Int>

  /// Creates an entry; ``SafetensorsFile`` makes these while validating a header.
  public init(name: String, dtype: DType, shape: [Int], dataRange: Range<Int>) {
    self.name = name
    self.dtype = dtype
    self.shape = shape
    self.dataRange = dataRange
  }
}

/// A validated safetensors file: its metadata, its tensor entries and their bytes.
///
/// Opening a file memory-maps it read-only and checks every rule of the format (the same
/// rules as the reference Rust reader: header size and bounds, strict JSON without duplicate
/// keys, known dtypes, sizes that match shapes, contiguous data with no gaps, overlaps or
/// trailing bytes). Tensors are then views of the mapping without copying, wherever the bytes
/// are aligned for their element type:
///
/// ```swift
/// let file = try SafetensorsFile(contentsOf: "model.safetensors")
/// for entry in file.entries { print(entry.name, entry.dtype, entry.shape) }
/// let weight = try file.tensor(named: "classifier.weight")
/// ```
///
/// Mutating such a tensor copies it first; the file is never written. The mapping lives as
/// long as the file value or any tensor read from it. If another process truncates the file
/// while it is mapped, reading a tensor can crash (SIGBUS): do not modify files being read.
///
/// The reader is stricter than the reference (safetensors 0.8) in a few places, each an error
/// here: a repeated tensor name (the reference keeps the last), an unknown key in an entry, a
/// header not starting with `{`, `"__metadata__": null`, and an empty tensor name. Names are
/// compared as Swift strings, so two names that differ only in Unicode normalization count as
/// duplicates.
public struct SafetensorsFile: Sendable {
  /// The `__metadata__` string map (empty when the file has none).
  public let metadata: [String: String]
  /// The tensors' entries in the order of their data in the file.
  public let entries: [SafetensorsEntry]

  private let bytes: FileBytes
  private let dataStart: Int
  private let indexByName: [String: Int]

  /// Opens and validates the safetensors file at `path`, memory-mapping it read-only.
  ///
  /// - Throws: ``SafetensorsError`` naming the rule a malformed file breaks, or
  ///   ``SafetensorsError/io(path:detail:)`` when the file cannot be opened or mapped.
  public init(contentsOf path: String) throws {
    let bytes: FileBytes
    do {
      bytes = try FileBytes(mapping: path)
    } catch {
      throw SafetensorsError.io(path: path, detail: error.detail)
    }
    try self.init(validating: bytes)
  }

  /// Validates a safetensors file held in memory (the bytes are copied).
  ///
  /// ```swift
  /// let file = try SafetensorsFile(bytes: SafetensorsFile.serialize([("x", Tensor([1, 2] as [Float]))]))
  /// ```
  public init(bytes: [UInt8]) throws {
    try self.init(validating: FileBytes(copying: bytes))
  }

  private init(validating bytes: FileBytes) throws(SafetensorsError) {
    let header = try SafetensorsHeader(parsing: bytes.buffer)
    self.bytes = bytes
    self.dataStart = header.dataStart
    self.metadata = header.metadata
    self.entries = header.entries
    var indexByName: [String: Int] = [:]
    for (index, entry) in header.entries.enumerated() { indexByName[entry.name] = index }
    self.indexByName = indexByName
  }

  /// The entry of the tensor named `name`, or `nil`.
  public func entry(named name: String) -> SafetensorsEntry? {
    indexByName[name].map { entries[$0] }
  }

  /// The tensor named `name`, sharing the file's bytes when they are aligned.
  ///
  /// - Throws: ``SafetensorsError/missingTensor(_:)`` when there is no such tensor.
  public func tensor(named name: String) throws -> Tensor {
    guard let entry = entry(named: name) else { throw SafetensorsError.missingTensor(name) }
    return tensor(for: entry)
  }

  /// Every tensor with its name, in ``entries`` order (views of the file where aligned).
  ///
  /// ```swift
  /// for (name, tensor) in try file.tensors() { print(name, tensor.shape) }
  /// ```
  public func tensors() throws -> [(name: String, tensor: Tensor)] {
    entries.map { ($0.name, tensor(for: $0)) }
  }

  /// A view of the entry's bytes when they are aligned to the element width, else a copy
  /// (typed access to misaligned memory is undefined behaviour).
  private func tensor(for entry: SafetensorsEntry) -> Tensor {
    let range = (dataStart + entry.dataRange.lowerBound)..<(dataStart + entry.dataRange.upperBound)
    let raw = UnsafeRawBufferPointer(rebasing: bytes.buffer[range])
    let alignment = entry.dtype.byteWidth ?? 1
    if let base = raw.baseAddress, Int(bitPattern: base) % alignment == 0 {
      let storage = TensorStorage(borrowing: raw, owner: bytes)
      return Tensor(shape: entry.shape, dtype: entry.dtype, storage: storage)
    }
    return Tensor(shape: entry.shape, dtype: entry.dtype, copying: raw)
  }
}

// MARK: - Header validation

/// The validated contents of a safetensors header.
struct SafetensorsHeader {
  /// Largest accepted header, as in the reference implementation.
  static let maxHeaderLength: UInt64 = 100_000_000

  var dataStart: Int
  var metadata: [String: String] = [:]
  var entries: [SafetensorsEntry] = []

  /// Validates a whole file: header length, JSON, every entry and the data section's extent.
  init(parsing file: UnsafeRawBufferPointer) throws(SafetensorsError) {
    guard file.count >= 8 else { throw .fileTooSmall(size: file.count) }
    var length: UInt64 = 0
    for i in 0..<8 { length |= UInt64(file[i]) << (8 * UInt64(i)) }
    guard length <= SafetensorsHeader.maxHeaderLength else { throw .headerTooLarge(length) }
    let headerLength = Int(length)  // ≤ 100_000_000, so 8 + length cannot overflow
    guard 8 + headerLength <= file.count else {
      throw .headerOutOfBounds(headerLength: length, fileSize: file.count)
    }
    dataStart = 8 + headerLength
    let header = UnsafeRawBufferPointer(rebasing: file[8..<dataStart])
    guard header.first == UInt8(ascii: "{") else { throw .invalidHeaderStart }

    let root: JSONValue
    do {
      root = try JSONParser.parse(header)
    } catch {
      if let key = error.duplicateKey, error.depth == 1 { throw .duplicateName(key) }
      throw .invalidJSON("\(error.message) at byte \(error.offset) of the header")
    }
    // The header starts with '{', so a valid JSON value is an object.
    guard case .object(let members) = root else { throw .invalidHeaderStart }

    var unordered: [SafetensorsEntry] = []
    for (name, value) in members {
      if name == "__metadata__" {
        metadata = try SafetensorsHeader.metadata(from: value)
      } else {
        unordered.append(try SafetensorsHeader.entry(named: name, from: value))
      }
    }
    // File order: by offsets; the header index breaks ties between empty tensors.
    entries = unordered.enumerated().sorted { a, b in
      let (x, y) = (a.element.dataRange, b.element.dataRange)
      return (x.lowerBound, x.upperBound, a.offset) < (y.lowerBound, y.upperBound, b.offset)
    }.map(\.element)

    var end = 0
    for entry in entries {
      guard entry.dataRange.lowerBound == end else {
        let previous = end == 0 ? "the data section starts at 0" : "the previous tensor ends at \(end)"
        let problem = entry.dataRange.lowerBound > end ? "leaves a gap" : "overlaps"
        throw .invalidOffsets(
          name: entry.name,
          detail: "begins at \(entry.dataRange.lowerBound) but \(previous) (\(problem))")
      }
      end = entry.dataRange.upperBound
    }
    let dataLength = file.count - dataStart
    if dataLength < end { throw .truncatedData(expected: end, actual: dataLength) }
    if dataLength > end { throw .trailingBytes(expected: end, actual: dataLength) }
  }

  private static func metadata(from value: JSONValue) throws(SafetensorsError) -> [String: String] {
    guard case .object(let members) = value else {
      throw .invalidMetadata("expected an object, found \(value.kindName)")
    }
    var result: [String: String] = [:]
    for (key, value) in members {
      guard case .string(let string) = value else {
        throw .invalidMetadata("value of '\(key)' must be a string, found \(value.kindName)")
      }
      result[key] = string
    }
    return result
  }

  private static func entry(named name: String, from value: JSONValue) throws(SafetensorsError)
    -> SafetensorsEntry
  {
    guard !name.isEmpty else { throw .invalidEntry(name: name, detail: "tensor name is empty") }
    guard case .object(let fields) = value else {
      throw .invalidEntry(name: name, detail: "expected an object, found \(value.kindName)")
    }
    var dtypeValue: JSONValue?
    var shapeValue: JSONValue?
    var offsetsValue: JSONValue?
    for (key, value) in fields {
      switch key {
      case "dtype": dtypeValue = value
      case "shape": shapeValue = value
      case "data_offsets": offsetsValue = value
      default: throw .invalidEntry(name: name, detail: "unexpected key '\(key)'")
      }
    }
    guard let dtypeValue, let shapeValue, let offsetsValue else {
      let missing = [("dtype", dtypeValue), ("shape", shapeValue), ("data_offsets", offsetsValue)]
        .filter { $0.1 == nil }.map { "'\($0.0)'" }.joined(separator: ", ")
      throw .invalidEntry(name: name, detail: "missing key \(missing)")
    }

    guard case .string(let dtypeName) = dtypeValue else {
      throw .invalidEntry(name: name, detail: "dtype must be a string, found \(dtypeValue.kindName)")
    }
    guard let dtype = DType(rawValue: dtypeName) else {
      throw .unknownDType(name: name, dtype: dtypeName)
    }
    guard case .array(let shapeElements) = shapeValue,
      let shape = integers(shapeElements)
    else {
      throw .invalidEntry(name: name, detail: "shape of '\(name)' must hold non-negative integers")
    }
    guard case .array(let offsetElements) = offsetsValue, offsetElements.count == 2,
      let offsets = integers(offsetElements)
    else {
      throw .invalidEntry(
        name: name, detail: "data_offsets of '\(name)' must be two non-negative integers")
    }
    let (begin, end) = (offsets[0], offsets[1])
    guard begin <= end else {
      throw .invalidOffsets(name: name, detail: "begin \(begin) is after end \(end)")
    }

    var elements = 1
    for extent in shape {
      let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
      guard !overflow else { throw .validationOverflow(name: name) }
      elements = product
    }
    let (bits, overflow) = elements.multipliedReportingOverflow(by: dtype.bitWidth)
    guard !overflow else { throw .validationOverflow(name: name) }
    guard bits % 8 == 0 else { throw .partialByte(name: name, dtype: dtype, elements: elements) }
    guard bits / 8 == end - begin else {
      throw .sizeMismatch(name: name, expectedBytes: bits / 8, actualBytes: end - begin)
    }
    return SafetensorsEntry(name: name, dtype: dtype, shape: shape, dataRange: begin..<end)
  }

  /// The values as non-negative `Int`s, or `nil` if any is not one.
  private static func integers(_ values: [JSONValue]) -> [Int]? {
    var result: [Int] = []
    result.reserveCapacity(values.count)
    for value in values {
      guard let integer = value.nonNegativeInt else { return nil }
      result.append(integer)
    }
    return result
  }
}
