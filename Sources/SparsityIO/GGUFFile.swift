#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import SparsityCore

/// A validated GGUF file (versions 2 and 3): its metadata, its tensor infos and their bytes.
///
/// Opening a file memory-maps it read-only and checks every rule that ggml's reader
/// (`gguf_init_from_file_impl`) checks, and a few more, before anything is returned: every
/// length, count, product and offset is checked for overflow and bounds before it is used, so
/// a malformed or adversarial file gives a ``GGUFError``, never a crash.
///
/// ```swift
/// let file = try GGUFFile(contentsOf: "SmolLM2-135M-Instruct.Q4_1.gguf")
/// let layers = try file.integer("llama.block_count")           // 30
/// let tokens = try file.strings("tokenizer.ggml.tokens")       // 49152 strings
/// for info in file.tensors { print(info.name, info.type, info.shape) }
/// let wq = try file.dequantized("blk.0.attn_q.weight")         // float32 [576, 576]
/// ```
///
/// Versions 2 and 3 have the same layout; version 3 only added big-endian files, which no flag
/// marks (their version reads byte-swapped) and which are not read here. Version 1, which used
/// 32-bit counts and lengths, is rejected, as ggml does.
///
/// The checks, in file order: the magic `GGUF`; version 2 or 3 (a version whose low 16 bits
/// are zero is a byte-swapped file); `tensor_count` and `metadata_kv_count` no larger than the
/// remaining bytes could hold; every string at most 1 GiB, within the file and valid UTF-8
/// (keys, values and tensor names alike); value type ids 0…12; arrays of at most 2^30 elements
/// that fit in the remaining bytes, never of arrays; `BOOL` bytes 0 or 1; keys non-empty,
/// without NUL bytes and unique; `general.alignment`, when present, a `UINT32` nonzero power of
/// two of at most 1 MiB (else 32); tensor names of 1–63 bytes without NUL bytes, unique; 1–4
/// dimensions, each ≥ 1; element counts and byte sizes that do not overflow; known ggml type ids; rows
/// (`dimensions[0]`) that are whole blocks of their type; offsets that are multiples of the
/// alignment and exactly where the previous tensors end, each padded to the alignment (so
/// tensors are contiguous, in order, and never overlap); data within the file; and no bytes
/// after the padding that follows the last tensor.
///
/// Stricter than ggml's `gguf.cpp` (each an error here, accepted there): an empty key; a NUL
/// byte in a key or tensor name (ggml's `strcmp` lookups would see a shorter one); invalid
/// UTF-8; a `BOOL` byte other than 0 and 1 (ggml reads any nonzero byte as true); an empty
/// tensor name; a tensor with no dimensions (ggml: one element) or a dimension of 0 (an empty
/// tensor; ggml's overflow check divides by it); and bytes after the padding that follows the
/// last tensor (ggml ignores them). Keys and names are compared as Swift strings, so two that
/// differ only in Unicode normalization are duplicates here (ggml compares bytes). gguf-py
/// (0.19) accepts far more: nested arrays, strings cut off by the end of the file, any offsets —
/// see `scripts/make_malformed_gguf_corpus.py --compare-reference`. More lenient than ggml's
/// allocating reader, like llama.cpp's mmap loader: the padding after the last tensor may be
/// missing (ggml reads it; llama.cpp only checks that each tensor's bytes are in the file).
/// Neither checked here nor there: the key naming convention (lower_snake_case segments) and
/// the content of padding bytes.
///
/// Tensor bytes are views of the mapping (``bytes(of:)``); the mapping lives as long as the
/// file value or any tensor borrowing it. If another process truncates the file while it is
/// mapped, reading a tensor can crash (SIGBUS): do not modify files being read.
public struct GGUFFile: Sendable {
  /// The format version: 2 or 3.
  public let version: Int
  /// The data alignment: `general.alignment`, or 32 when the file has none.
  public let alignment: Int
  /// The metadata values by key.
  public let metadata: [String: GGUFValue]
  /// The metadata keys in file order.
  public let metadataKeys: [String]
  /// The tensors' infos in file order (which is also their data's order).
  public let tensors: [GGUFTensorInfo]
  /// Where the data section starts in the file (the tensor infos' end, padded to ``alignment``).
  public let dataOffset: Int

  private let file: FileBytes
  private let indexByName: [String: Int]

  /// Opens and validates the GGUF file at `path`, memory-mapping it read-only.
  ///
  /// - Throws: ``GGUFError`` naming the rule a malformed file breaks, or
  ///   ``GGUFError/io(path:detail:)`` when the file cannot be opened or mapped.
  public init(contentsOf path: String) throws(GGUFError) {
    let bytes: FileBytes
    do {
      bytes = try FileBytes(mapping: path)
    } catch {
      throw .io(path: path, detail: error.detail)
    }
    try self.init(validating: bytes)
  }

  /// Validates a GGUF file held in memory (the bytes are copied).
  public init(bytes: [UInt8]) throws(GGUFError) {
    try self.init(validating: FileBytes(copying: bytes))
  }

  private init(validating file: FileBytes) throws(GGUFError) {
    let parsed = try GGUFParser.parse(file.buffer)
    self.file = file
    self.version = parsed.version
    self.alignment = parsed.alignment
    self.metadata = parsed.metadata
    self.metadataKeys = parsed.metadataKeys
    self.tensors = parsed.tensors
    self.dataOffset = parsed.dataOffset
    self.indexByName = parsed.indexByName
  }

  /// The file's size in bytes.
  public var fileSize: Int { file.buffer.count }

  /// Whether `prefix` starts with the GGUF magic (`47 47 55 46`, "GGUF").
  public static func hasMagic(_ prefix: some Sequence<UInt8>) -> Bool {
    Array(prefix.prefix(4)) == GGUFParser.magic
  }

  /// Whether the file at `path` starts with the GGUF magic (reads 4 bytes; `false` when it
  /// cannot be read). Decides the format by content, not by extension.
  public static func hasMagic(atPath path: String) -> Bool {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var prefix = [UInt8](repeating: 0, count: 4)
    let count = prefix.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, 4) }
    return count == 4 && hasMagic(prefix)
  }

  // MARK: Tensors

  /// The info of the tensor named `name`, or `nil`.
  public func tensor(named name: String) -> GGUFTensorInfo? {
    indexByName[name].map { tensors[$0] }
  }

  /// The tensor's bytes: a view of the mapping, valid while this file value (or a copy of it)
  /// is alive — keep it alive with `withExtendedLifetime(file)` while the view is used.
  ///
  /// - Precondition: `info` is one of ``tensors`` (its bytes lie in the data section).
  public func bytes(of info: GGUFTensorInfo) -> UnsafeRawBufferPointer {
    let dataLength = fileSize - dataOffset
    precondition(
      info.offset >= 0 && info.byteCount >= 0 && info.offset <= dataLength
        && info.byteCount <= dataLength - info.offset,
      "tensor '\(info.name)' is not in this file's data section")
    let start = dataOffset + info.offset
    return UnsafeRawBufferPointer(rebasing: file.buffer[start..<(start + info.byteCount)])
  }

  /// The tensor named `name` as float32, in row-major ``GGUFTensorInfo/shape``, bit-exact with
  /// gguf-py's `gguf.quants.dequantize` (see ``GGUFDequantization``).
  ///
  /// An F32 tensor whose bytes are 4-byte aligned is a view of the mapping (copied on first
  /// write, as ``SafetensorsFile`` tensors are); other types are decoded into a new buffer.
  ///
  /// - Throws: ``GGUFError/missingTensor(_:)``, or ``GGUFError/unsupportedType(name:type:)``
  ///   for a type that ``GGMLType/isDequantizable`` says cannot be decoded.
  public func dequantized(_ name: String) throws(GGUFError) -> Tensor {
    guard let info = tensor(named: name) else { throw .missingTensor(name) }
    return try dequantized(info)
  }

  /// The tensor of `info` as float32 (see ``dequantized(_:)-(String)``).
  public func dequantized(_ info: GGUFTensorInfo) throws(GGUFError) -> Tensor {
    guard info.type.isDequantizable else { throw .unsupportedType(name: info.name, type: info.type) }
    let raw = bytes(of: info)
    if info.type == .f32, let base = raw.baseAddress, Int(bitPattern: base) % 4 == 0 {
      return Tensor(shape: info.shape, dtype: .float32, storage: TensorStorage(borrowing: raw, owner: file))
    }
    let count = info.elementCount
    let storage = TensorStorage(uninitializedByteCount: count * 4)
    let output = UnsafeMutableBufferPointer(
      start: storage.baseAddress.bindMemory(to: Float.self, capacity: count), count: count)
    try GGUFDequantization.dequantize(raw, type: info.type, count: count, into: output, name: info.name)
    return Tensor(shape: info.shape, dtype: .float32, storage: storage)
  }

  /// A Q8_0 matrix's own int8 values (`shape`, row-major) and block scales (`[rows, columns / 32]`,
  /// float32, exact from the stored f16), without going through float: `value = q · scale`, as
  /// ``dequantized(_:)-(GGUFTensorInfo)`` computes it. A block whose scale is zero keeps zero
  /// values (its elements dequantize to zero) with scale 1. `nil` when the tensor is not a Q8_0
  /// matrix, or has a negative or non-finite block scale (it then loads as float32 only).
  public func q8_0Blocks(_ info: GGUFTensorInfo) -> (values: Tensor, scales: Tensor)? {
    guard info.type == .q8_0, info.shape.count == 2 else { return nil }
    let (rows, columns) = (info.shape[0], info.shape[1])
    let blocks = rows * columns / 32
    let raw = bytes(of: info)
    guard let base = raw.baseAddress, raw.count == blocks * 34 else { return nil }
    var values = [Int8](repeating: 0, count: rows * columns)
    var scales = [Float](repeating: 1, count: blocks)
    for b in 0..<blocks {
      let block = base + 34 * b
      let d = GGUFDequantization.float(fromHalf: UInt16(littleEndian: block.loadUnaligned(as: UInt16.self)))
      guard d >= 0, d.isFinite else { return nil }
      guard d > 0 else { continue }
      scales[b] = d
      for j in 0..<32 { values[32 * b + j] = block.load(fromByteOffset: 2 + j, as: Int8.self) }
    }
    return (Tensor(values, shape: [rows, columns]), Tensor(scales, shape: [rows, columns / 32]))
  }

  /// Drops the resident pages of the tensor's bytes (`madvise(MADV_DONTNEED)`; a later read
  /// faults them in again from the file), e.g. after it has been dequantized or packed.
  /// Does nothing for a file read from memory.
  public func evictPages(of info: GGUFTensorInfo) {
    file.evictPages(bytes(of: info))
  }

  /// Maps the pages of the tensor's bytes in one call before they are all read
  /// (`MADV_POPULATE_READ` where supported).
  public func populatePages(of info: GGUFTensorInfo) {
    file.populatePages(bytes(of: info))
  }

  // MARK: Typed metadata

  /// The value of `key`, or `nil`.
  public func value(_ key: String) -> GGUFValue? { metadata[key] }

  private func required(_ key: String) throws(GGUFError) -> GGUFValue {
    guard let value = metadata[key] else { throw .missingKey(key) }
    return value
  }

  /// The `STRING` value of `key`.
  ///
  /// - Throws: ``GGUFError/missingKey(_:)`` or ``GGUFError/wrongValueType(key:expected:found:)``.
  public func string(_ key: String) throws(GGUFError) -> String {
    let value = try required(key)
    guard case .string(let string) = value else {
      throw .wrongValueType(key: key, expected: "STRING", found: value.typeName)
    }
    return string
  }

  /// The value of `key`, of any integer type, as an `Int`.
  ///
  /// - Throws: ``GGUFError/missingKey(_:)``, ``GGUFError/wrongValueType(key:expected:found:)``
  ///   (not an integer), or ``GGUFError/valueOutOfRange(key:value:)`` (a `UINT64` above `Int.max`).
  public func integer(_ key: String) throws(GGUFError) -> Int {
    let value = try required(key)
    if let integer = value.intValue { return integer }
    if case .uint64(let big) = value { throw .valueOutOfRange(key: key, value: "\(big)") }
    throw .wrongValueType(key: key, expected: "an integer", found: value.typeName)
  }

  /// The value of `key` as a `Double`: a `FLOAT32` (widened exactly, so `1e-5` stored as f32
  /// reads 9.99999974737875e-06), a `FLOAT64`, or an integer.
  public func float(_ key: String) throws(GGUFError) -> Double {
    let value = try required(key)
    switch value {
    case .float32(let v): return Double(v)
    case .float64(let v): return v
    case .uint64(let v): return Double(v)
    default:
      if let integer = value.intValue { return Double(integer) }
      throw .wrongValueType(key: key, expected: "a number", found: value.typeName)
    }
  }

  /// The `BOOL` value of `key`.
  public func bool(_ key: String) throws(GGUFError) -> Bool {
    let value = try required(key)
    guard case .bool(let bool) = value else {
      throw .wrongValueType(key: key, expected: "BOOL", found: value.typeName)
    }
    return bool
  }

  /// The `[STRING]` array of `key`.
  public func strings(_ key: String) throws(GGUFError) -> [String] {
    let value = try required(key)
    guard case .array(.string(let strings)) = value else {
      throw .wrongValueType(key: key, expected: "[STRING]", found: value.typeName)
    }
    return strings
  }

  /// The array of `key`, of any integer element type, as `Int`s.
  ///
  /// - Throws: as ``integer(_:)``, for the array and its elements.
  public func integers(_ key: String) throws(GGUFError) -> [Int] {
    let value = try required(key)
    guard case .array(let array) = value else {
      throw .wrongValueType(key: key, expected: "an integer array", found: value.typeName)
    }
    switch array {
    case .uint8(let a): return a.map(Int.init)
    case .int8(let a): return a.map(Int.init)
    case .uint16(let a): return a.map(Int.init)
    case .int16(let a): return a.map(Int.init)
    case .uint32(let a): return a.map(Int.init)
    case .int32(let a): return a.map(Int.init)
    case .int64(let a): return a.map(Int.init)
    case .uint64(let a):
      var result: [Int] = []
      result.reserveCapacity(a.count)
      for v in a {
        guard let integer = Int(exactly: v) else { throw .valueOutOfRange(key: key, value: "\(v)") }
        result.append(integer)
      }
      return result
    default:
      throw .wrongValueType(key: key, expected: "an integer array", found: value.typeName)
    }
  }

  /// The array of `key`, of `FLOAT32`, `FLOAT64` or integer elements, as `Double`s.
  public func floats(_ key: String) throws(GGUFError) -> [Double] {
    let value = try required(key)
    if case .array(.float32(let a)) = value { return a.map(Double.init) }
    if case .array(.float64(let a)) = value { return a }
    if case .array(.uint64(let a)) = value { return a.map(Double.init) }
    if case .array = value, let integers = try? integers(key) { return integers.map(Double.init) }
    throw .wrongValueType(key: key, expected: "a number array", found: value.typeName)
  }
}

// MARK: - Parsing

/// The validated contents of a GGUF file.
struct GGUFParser {
  static let magic: [UInt8] = [0x47, 0x47, 0x55, 0x46]
  /// ggml's `GGUF_MAX_STRING_LENGTH` (1 GiB) and `GGUF_MAX_ARRAY_ELEMENTS` (2^30).
  static let maxStringLength: UInt64 = 1 << 30
  static let maxArrayElements: UInt64 = 1 << 30
  static let defaultAlignment = 32
  /// ggml's `GGUF_MAX_ALIGNMENT` (1 MiB): larger alignments only serve to blow up padding.
  static let maxAlignment: UInt32 = 1 << 20
  /// The fewest bytes one metadata pair takes (key length, a 1-byte key, type, a 1-byte value)
  /// and one tensor info (name length, a 1-byte name, n_dims, one dimension, type, offset).
  static let minimumPairBytes = 8 + 1 + 4 + 1
  /// The most pairs or tensor infos reserved up front (more grow as they are read).
  static let reservationLimit = 4096
  static let minimumTensorInfoBytes = 8 + 1 + 4 + 8 + 4 + 8

  var version = 0
  var alignment = defaultAlignment
  var metadata: [String: GGUFValue] = [:]
  var metadataKeys: [String] = []
  var tensors: [GGUFTensorInfo] = []
  var indexByName: [String: Int] = [:]
  var dataOffset = 0

  static func parse(_ file: UnsafeRawBufferPointer) throws(GGUFError) -> GGUFParser {
    var result = GGUFParser()
    var reader = GGUFByteReader(file: file)
    try result.readHeader(&reader)
    return result
  }

  private mutating func readHeader(_ reader: inout GGUFByteReader) throws(GGUFError) {
    let file = reader.file
    let prefix = Array(file.prefix(4))
    guard prefix == Array(GGUFParser.magic.prefix(prefix.count)) else { throw .invalidMagic(prefix) }
    guard prefix.count == 4 else { throw .truncated(what: "the magic", offset: 0) }
    reader.offset = 4
    let rawVersion = try reader.u32("the version")
    if rawVersion == 0 { throw .unsupportedVersion(0) }
    if rawVersion & 0xFFFF == 0 { throw .byteSwapped(version: rawVersion) }
    guard rawVersion == 2 || rawVersion == 3 else { throw .unsupportedVersion(rawVersion) }
    version = Int(rawVersion)
    let tensorCount = try reader.u64("tensor_count")
    let pairCount = try reader.u64("metadata_kv_count")
    let remaining = reader.remaining
    guard pairCount <= UInt64(remaining / GGUFParser.minimumPairBytes) else {
      throw .countTooLarge(field: "metadata_kv_count", count: pairCount, remainingBytes: remaining)
    }
    guard tensorCount <= UInt64(remaining / GGUFParser.minimumTensorInfoBytes) else {
      throw .countTooLarge(field: "tensor_count", count: tensorCount, remainingBytes: remaining)
    }

    try readMetadata(&reader, count: Int(pairCount))
    if let value = metadata["general.alignment"] {
      guard case .uint32(let raw) = value else {
        throw .invalidAlignment("must be UINT32, found \(value.typeName)")
      }
      guard raw != 0, raw & (raw - 1) == 0 else {
        throw .invalidAlignment("\(raw) is not a nonzero power of two")
      }
      guard raw <= GGUFParser.maxAlignment else {
        throw .invalidAlignment("\(raw) is more than the limit of 1 MiB")
      }
      alignment = Int(raw)
    }

    let infoRemaining = reader.remaining
    guard tensorCount <= UInt64(infoRemaining / GGUFParser.minimumTensorInfoBytes) else {
      throw .countTooLarge(field: "tensor_count", count: tensorCount, remainingBytes: infoRemaining)
    }
    let rawOffsets = try readTensorInfos(&reader, count: Int(tensorCount))
    try checkData(infoEnd: reader.offset, fileSize: file.count, rawOffsets: rawOffsets)
  }

  // MARK: Metadata

  private mutating func readMetadata(_ reader: inout GGUFByteReader, count: Int) throws(GGUFError) {
    // Counts come from the file: reserve a bounded amount, so a false count cannot make the
    // reader allocate many times the file's size before the pairs run out.
    metadataKeys.reserveCapacity(min(count, GGUFParser.reservationLimit))
    metadata.reserveCapacity(min(count, GGUFParser.reservationLimit))
    for index in 0..<count {
      let key = try reader.string("metadata key \(index)")
      if key.isEmpty { throw .invalidKey(index: index, detail: "the key is empty") }
      if key.utf8.contains(0) { throw .invalidKey(index: index, detail: "the key holds a NUL byte") }
      if metadata[key] != nil { throw .duplicateKey(key) }
      let typeID = try reader.u32("the value type of metadata \(ggufQuoted(key))")
      guard let type = GGUFValueType(rawValue: typeID) else {
        throw .unknownValueType(key: key, typeID: typeID)
      }
      let value = try readValue(&reader, type: type, key: key)
      metadata[key] = value
      metadataKeys.append(key)
    }
  }

  private func readValue(_ reader: inout GGUFByteReader, type: GGUFValueType, key: String)
    throws(GGUFError) -> GGUFValue
  {
    func what() -> String { "the value of metadata \(ggufQuoted(key))" }
    switch type {
    case .uint8: return .uint8(try reader.u8(what()))
    case .int8: return .int8(Int8(bitPattern: try reader.u8(what())))
    case .uint16: return .uint16(try reader.u16(what()))
    case .int16: return .int16(Int16(bitPattern: try reader.u16(what())))
    case .uint32: return .uint32(try reader.u32(what()))
    case .int32: return .int32(Int32(bitPattern: try reader.u32(what())))
    case .float32: return .float32(Float(bitPattern: try reader.u32(what())))
    case .uint64: return .uint64(try reader.u64(what()))
    case .int64: return .int64(Int64(bitPattern: try reader.u64(what())))
    case .float64: return .float64(Double(bitPattern: try reader.u64(what())))
    case .bool:
      let offset = reader.offset
      let byte = try reader.u8(what())
      guard byte <= 1 else { throw .invalidBool(key: key, value: byte, offset: offset) }
      return .bool(byte == 1)
    case .string: return .string(try reader.string(what()))
    case .array: return .array(try readArray(&reader, key: key))
    }
  }

  private func readArray(_ reader: inout GGUFByteReader, key: String) throws(GGUFError) -> GGUFArray {
    let typeID = try reader.u32("the element type of metadata \(ggufQuoted(key))")
    guard let type = GGUFValueType(rawValue: typeID) else {
      throw .unknownValueType(key: key, typeID: typeID)
    }
    if type == .array { throw .nestedArray(key: key) }
    let rawCount = try reader.u64("the element count of metadata \(ggufQuoted(key))")
    let width = type.byteWidth ?? 8  // a string takes at least its 8-byte length
    let remaining = reader.remaining
    guard rawCount <= GGUFParser.maxArrayElements, rawCount <= UInt64(remaining / width) else {
      throw .invalidArrayLength(key: key, count: rawCount, remainingBytes: remaining)
    }
    let count = Int(rawCount)
    switch type {
    case .uint8: return .uint8(reader.integers(UInt8.self, count: count))
    case .int8: return .int8(reader.integers(UInt8.self, count: count).map { Int8(bitPattern: $0) })
    case .uint16: return .uint16(reader.integers(UInt16.self, count: count))
    case .int16: return .int16(reader.integers(Int16.self, count: count))
    case .uint32: return .uint32(reader.integers(UInt32.self, count: count))
    case .int32: return .int32(reader.integers(Int32.self, count: count))
    case .float32: return .float32(reader.integers(UInt32.self, count: count).map { Float(bitPattern: $0) })
    case .uint64: return .uint64(reader.integers(UInt64.self, count: count))
    case .int64: return .int64(reader.integers(Int64.self, count: count))
    case .float64: return .float64(reader.integers(UInt64.self, count: count).map { Double(bitPattern: $0) })
    case .bool:
      let start = reader.offset
      let bytes = reader.integers(UInt8.self, count: count)
      if let bad = bytes.firstIndex(where: { $0 > 1 }) {
        throw .invalidBool(key: key, value: bytes[bad], offset: start + bad)
      }
      return .bool(bytes.map { $0 == 1 })
    case .string:
      var strings: [String] = []
      strings.reserveCapacity(count)
      for index in 0..<count {
        strings.append(try reader.string("element \(index) of metadata \(ggufQuoted(key))"))
      }
      return .string(strings)
    case .array:
      throw .nestedArray(key: key)  // handled above
    }
  }

  // MARK: Tensor infos

  /// Reads and checks every tensor info; returns the stored offsets (checked by `checkData`).
  private mutating func readTensorInfos(_ reader: inout GGUFByteReader, count: Int)
    throws(GGUFError) -> [UInt64]
  {
    var rawOffsets: [UInt64] = []
    let reservation = min(count, GGUFParser.reservationLimit)
    rawOffsets.reserveCapacity(reservation)
    tensors.reserveCapacity(reservation)
    indexByName.reserveCapacity(reservation)
    for index in 0..<count {
      let name = try reader.string("the name of tensor \(index)")
      let nameBytes = name.utf8.count
      if nameBytes == 0 { throw .invalidTensorName(index: index, name: name, detail: "the name is empty") }
      if nameBytes >= 64 {
        throw .invalidTensorName(
          index: index, name: name, detail: "the name has \(nameBytes) bytes, at most 63 are allowed")
      }
      if name.utf8.contains(0) {
        throw .invalidTensorName(index: index, name: name, detail: "the name holds a NUL byte")
      }
      if indexByName[name] != nil { throw .duplicateTensorName(name) }

      let dimensionCount = try reader.u32("the dimension count of tensor \(ggufQuoted(name))")
      guard (1...4).contains(dimensionCount) else {
        throw .invalidDimensionCount(name: name, count: dimensionCount)
      }
      var dimensions: [Int] = []
      dimensions.reserveCapacity(Int(dimensionCount))
      for axis in 0..<Int(dimensionCount) {
        let extent = try reader.u64("dimension \(axis) of tensor \(ggufQuoted(name))")
        guard extent >= 1, extent <= UInt64(Int64.max) else {
          throw .invalidDimension(name: name, index: axis, value: extent)
        }
        dimensions.append(Int(extent))
      }
      let typeID = try reader.u32("the type of tensor \(ggufQuoted(name))")
      guard let type = GGMLType(rawValue: typeID) else {
        throw .unknownTensorType(name: name, typeID: typeID)
      }
      var elements = 1
      for extent in dimensions {
        let (product, overflow) = elements.multipliedReportingOverflow(by: extent)
        if overflow { throw .sizeOverflow(name: name) }
        elements = product
      }
      guard dimensions[0] % type.blockElements == 0 else {
        throw .rowNotBlockAligned(name: name, type: type, elements: dimensions[0])
      }
      guard var byteCount = type.rowBytes(elements: dimensions[0]) else { throw .sizeOverflow(name: name) }
      for extent in dimensions.dropFirst() {
        let (product, overflow) = byteCount.multipliedReportingOverflow(by: extent)
        if overflow { throw .sizeOverflow(name: name) }
        byteCount = product
      }
      let offset = try reader.u64("the offset of tensor \(ggufQuoted(name))")
      rawOffsets.append(offset)
      indexByName[name] = index
      // The offset is set once `checkData` has found it to be where it must be.
      tensors.append(GGUFTensorInfo(name: name, dimensions: dimensions, type: type, offset: 0, byteCount: byteCount))
    }
    return rawOffsets
  }

  // MARK: Data section

  /// Checks that each tensor starts where the previous ones end (padded to the alignment),
  /// that its bytes are in the file, and that nothing follows the last tensor's padding.
  private mutating func checkData(infoEnd: Int, fileSize: Int, rawOffsets: [UInt64]) throws(GGUFError) {
    // infoEnd ≤ fileSize and alignment ≤ 2^31: no overflow.
    dataOffset = GGUFParser.alignUp(infoEnd, alignment)
    guard !tensors.isEmpty else {
      // No data: the padding to the data section is optional (ggml and gguf-py accept both).
      if fileSize > dataOffset { throw .trailingBytes(expected: dataOffset, actual: fileSize) }
      return
    }
    let dataLength = fileSize - dataOffset  // negative when the padding itself is cut off
    var expected = 0  // invariant: 0 ≤ expected ≤ max(dataLength, 0) + alignment
    for index in tensors.indices {
      let name = tensors[index].name
      let offset = rawOffsets[index]
      if offset % UInt64(alignment) != 0 {
        throw .misalignedOffset(name: name, offset: offset, alignment: alignment)
      }
      guard offset == UInt64(expected) else { throw .invalidOffset(name: name, offset: offset, expected: expected) }
      let byteCount = tensors[index].byteCount
      guard expected <= dataLength, byteCount <= dataLength - expected else {
        let (end, overflow) = (dataOffset + expected).addingReportingOverflow(byteCount)
        throw .truncatedData(name: name, end: overflow ? Int.max : end, fileSize: fileSize)
      }
      tensors[index].offset = expected
      expected = GGUFParser.alignUp(expected + byteCount, alignment)  // ≤ dataLength + alignment
    }
    let paddedEnd = dataOffset + expected
    if fileSize > paddedEnd { throw .trailingBytes(expected: paddedEnd, actual: fileSize) }
  }

  static func alignUp(_ value: Int, _ alignment: Int) -> Int {
    (value + alignment - 1) / alignment * alignment
  }
}

/// Little-endian reads from a file buffer; each checks the bytes left first.
struct GGUFByteReader {
  let file: UnsafeRawBufferPointer
  var offset = 0

  var remaining: Int { file.count - offset }

  private mutating func load<T: FixedWidthInteger>(_: T.Type, _ what: () -> String) throws(GGUFError) -> T {
    let size = MemoryLayout<T>.size
    guard remaining >= size else { throw .truncated(what: what(), offset: offset) }
    let value = T(littleEndian: file.loadUnaligned(fromByteOffset: offset, as: T.self))
    offset += size
    return value
  }

  mutating func u8(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt8 { try load(UInt8.self, what) }
  mutating func u16(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt16 { try load(UInt16.self, what) }
  mutating func u32(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt32 { try load(UInt32.self, what) }
  mutating func u64(_ what: @autoclosure () -> String) throws(GGUFError) -> UInt64 { try load(UInt64.self, what) }

  /// A `gguf_string`: a u64 length (≤ 1 GiB and ≤ the bytes left), then that many bytes of
  /// UTF-8.
  mutating func string(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
    let start = offset
    let length = try load(UInt64.self) { "the length of \(what())" }
    guard length <= GGUFParser.maxStringLength, length <= UInt64(remaining) else {
      throw .invalidStringLength(what: what(), offset: start, length: length, remainingBytes: remaining)
    }
    let count = Int(length)
    if count == 0 { return "" }
    let bytes = UnsafeBufferPointer(
      start: file.baseAddress!.advanced(by: offset).assumingMemoryBound(to: UInt8.self), count: count)
    guard let string = String(validating: bytes, as: UTF8.self) else {
      throw .invalidUTF8(what: what(), offset: start)
    }
    offset += count
    return string
  }

  /// `count` little-endian integers; the caller has checked that they are in the file.
  mutating func integers<T: FixedWidthInteger>(_: T.Type, count: Int) -> [T] {
    let size = MemoryLayout<T>.size
    precondition(count >= 0 && count <= remaining / size)
    if count == 0 { return [] }
    let base = file.baseAddress!.advanced(by: offset)
    offset += count * size
    return [T](unsafeUninitializedCapacity: count) { buffer, initialized in
      for i in 0..<count {
        buffer[i] = T(littleEndian: base.loadUnaligned(fromByteOffset: i * size, as: T.self))
      }
      initialized = count
    }
  }
}
