#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import SparsityCore

extension SafetensorsFile {
  /// The bytes of a safetensors file holding `tensors` and `metadata`.
  ///
  /// The layout matches the reference writer (Python `safetensors` package) byte for byte:
  /// tensors sorted by descending dtype alignment then by name, so every tensor's data is
  /// naturally aligned; a compact JSON header with `__metadata__` first (keys sorted) when
  /// `metadata` is not empty; the header padded with spaces to a multiple of 8 bytes.
  ///
  /// ```swift
  /// let bytes = try SafetensorsFile.serialize([("bias", Tensor([0.5, -1] as [Float]))])
  /// ```
  ///
  /// - Throws: ``SafetensorsError/duplicateName(_:)`` or ``SafetensorsError/invalidName(name:detail:)``
  ///   when a name is repeated, empty or `__metadata__`.
  public static func serialize(
    _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:]
  ) throws -> [UInt8] {
    let (header, order) = try layout(tensors, metadata: metadata)
    var result = header
    result.reserveCapacity(header.count + order.reduce(0) { $0 + tensors[$1].tensor.byteCount })
    for index in order {
      tensors[index].tensor.withUnsafeBytes { result.append(contentsOf: $0) }
    }
    return result
  }

  /// Writes a safetensors file atomically: into a temporary file in the same directory, which
  /// is flushed to disk and then renamed over `path`.
  ///
  /// On any error no partial output remains and an existing file at `path` is untouched.
  ///
  /// ```swift
  /// try SafetensorsFile.write([("weight", weight)], metadata: ["format": "pt"], to: "out.safetensors")
  /// ```
  ///
  /// - Throws: the errors of ``serialize(_:metadata:)``, and
  ///   ``SafetensorsError/io(path:detail:)`` naming `path` when the directory does not exist or
  ///   a write fails.
  public static func write(
    _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
    to path: String
  ) throws {
    let (header, order) = try layout(tensors, metadata: metadata)
    let slash = path.lastIndex(of: "/")
    let directory = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
    let fileName = slash.map { String(path[path.index(after: $0)...]) } ?? path
    guard !fileName.isEmpty else { throw SafetensorsError.io(path: path, detail: "not a file path") }
    let suffix = String(UInt64.random(in: 0...UInt64.max), radix: 16)
    let temporaryPath =
      (slash.map { String(path[...$0]) } ?? "") + ".\(fileName).tmp-\(getpid())-\(suffix)"

    let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    guard descriptor >= 0 else {
      let detail = errno == ENOENT ? "directory '\(directory)' does not exist" : errnoText()
      throw SafetensorsError.io(path: path, detail: "cannot create a temporary file: \(detail)")
    }
    var isOpen = true
    var renamed = false
    defer {
      if isOpen { close(descriptor) }
      if !renamed { unlink(temporaryPath) }
    }
    func fail(_ action: String) -> SafetensorsError {
      .io(path: path, detail: "\(action): \(errnoText())")
    }

    try header.withUnsafeBytes { try writeAll($0, to: descriptor, path: path) }
    for index in order {
      try tensors[index].tensor.withUnsafeBytes { try writeAll($0, to: descriptor, path: path) }
    }
    guard fsync(descriptor) == 0 else { throw fail("cannot flush to disk") }
    isOpen = false
    guard close(descriptor) == 0 else { throw fail("cannot close the temporary file") }
    guard rename(temporaryPath, path) == 0 else { throw fail("cannot rename into place") }
    renamed = true
    // Make the rename itself durable (best effort: some file systems refuse directory fsync).
    let directoryDescriptor = open(directory, O_RDONLY | O_CLOEXEC)
    if directoryDescriptor >= 0 {
      _ = fsync(directoryDescriptor)
      close(directoryDescriptor)
    }
  }

  /// Writes every byte, retrying after interrupts and short writes.
  private static func writeAll(
    _ bytes: UnsafeRawBufferPointer, to descriptor: Int32, path: String
  ) throws(SafetensorsError) {
    guard var pointer = bytes.baseAddress else { return }
    var remaining = bytes.count
    while remaining > 0 {
      let written = systemWrite(descriptor, pointer, remaining)
      if written < 0 {
        if errno == EINTR { continue }
        throw .io(path: path, detail: "write failed: \(errnoText())")
      }
      pointer += written
      remaining -= written
    }
  }

  /// The 8-byte length prefix and padded JSON header, and the order of the tensors' data.
  private static func layout(
    _ tensors: [(name: String, tensor: Tensor)], metadata: [String: String]
  ) throws(SafetensorsError) -> (header: [UInt8], order: [Int]) {
    var names = Set<String>()
    for (name, _) in tensors {
      if name.isEmpty { throw .invalidName(name: name, detail: "names must not be empty") }
      if name == "__metadata__" {
        throw .invalidName(name: name, detail: "the name is reserved for the metadata")
      }
      guard names.insert(name).inserted else { throw .duplicateName(name) }
    }
    let order = tensors.indices.sorted { a, b in
      let (x, y) = (alignmentRank(tensors[a].tensor.dtype), alignmentRank(tensors[b].tensor.dtype))
      if x != y { return x > y }
      return tensors[a].name.utf8.lexicographicallyPrecedes(tensors[b].name.utf8)
    }

    var json: [UInt8] = [UInt8(ascii: "{")]
    var needsComma = false
    if !metadata.isEmpty {
      json.append(contentsOf: #""__metadata__":{"#.utf8)
      let keys = metadata.keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
      for (i, key) in keys.enumerated() {
        if i > 0 { json.append(UInt8(ascii: ",")) }
        appendJSONString(key, to: &json)
        json.append(UInt8(ascii: ":"))
        appendJSONString(metadata[key] ?? "", to: &json)
      }
      json.append(UInt8(ascii: "}"))
      needsComma = true
    }
    var offset = 0
    for index in order {
      let (name, tensor) = tensors[index]
      if needsComma { json.append(UInt8(ascii: ",")) }
      needsComma = true
      appendJSONString(name, to: &json)
      json.append(contentsOf: #":{"dtype":""#.utf8)
      json.append(contentsOf: tensor.dtype.rawValue.utf8)
      json.append(contentsOf: #"","shape":["#.utf8)
      json.append(contentsOf: tensor.shape.map(String.init).joined(separator: ",").utf8)
      json.append(contentsOf: #"],"data_offsets":["#.utf8)
      json.append(contentsOf: "\(offset),\(offset + tensor.byteCount)]}".utf8)
      offset += tensor.byteCount
    }
    json.append(UInt8(ascii: "}"))
    json.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (8 - json.count % 8) % 8))

    var header: [UInt8] = []
    header.reserveCapacity(8 + json.count)
    for i in 0..<8 { header.append(UInt8(truncatingIfNeeded: UInt64(json.count) >> (8 * UInt64(i)))) }
    header.append(contentsOf: json)
    return (header, order)
  }

  /// The dtype's position in the reference writer's alignment order (higher = written first).
  private static func alignmentRank(_ dtype: DType) -> Int {
    DType.allCases.firstIndex(of: dtype) ?? 0
  }

  /// Appends `string` as a JSON string, escaped like serde_json (the reference writer).
  private static func appendJSONString(_ string: String, to json: inout [UInt8]) {
    json.append(UInt8(ascii: "\""))
    for byte in string.utf8 {
      switch byte {
      case UInt8(ascii: "\""): json.append(contentsOf: #"\""#.utf8)
      case UInt8(ascii: "\\"): json.append(contentsOf: #"\\"#.utf8)
      case 0x08: json.append(contentsOf: #"\b"#.utf8)
      case 0x0C: json.append(contentsOf: #"\f"#.utf8)
      case 0x0A: json.append(contentsOf: #"\n"#.utf8)
      case 0x0D: json.append(contentsOf: #"\r"#.utf8)
      case 0x09: json.append(contentsOf: #"\t"#.utf8)
      case 0..<0x20:
        let hex = Array("0123456789abcdef".utf8)
        json.append(contentsOf: #"\u00"#.utf8)
        json.append(hex[Int(byte >> 4)])
        json.append(hex[Int(byte & 0x0F)])
      default: json.append(byte)
      }
    }
    json.append(UInt8(ascii: "\""))
  }
}

/// `write(2)`, named so that it is not shadowed by ``SafetensorsFile/write(_:metadata:to:)``.
private func systemWrite(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
  write(descriptor, bytes, count)
}
