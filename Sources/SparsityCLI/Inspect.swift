import ArgumentParser
import Foundation
import Sparsity

struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show each tensor's dtype, shape, sparsity, the patterns it follows and its size in each format.",
    discussion: """
      With --mask NAME -o FILE.svg, draws tensor NAME's zero pattern instead (large tensors are \
      downsampled by a power of two so blocks stay aligned).

      A GGUF file (recognized by its magic bytes, whatever its extension) shows its version, \
      alignment, metadata (long strings cut, arrays as [TYPE × count] with their first items) and \
      tensor table (ggml type, row-major shape, bytes) with totals per type; --mask dequantizes \
      the tensor first (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1).
      """)

  @Argument(help: "A safetensors or GGUF file.")
  var file: String

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  @Option(help: "Draw this tensor's zero pattern as an SVG picture (needs -o).")
  var mask: String?

  @Option(name: .shortAndLong, help: "Where to write the SVG picture.")
  var output: String?

  func validate() throws {
    if mask != nil && output == nil { throw ValidationError("--mask needs -o FILE.svg") }
    if mask == nil && output != nil { throw ValidationError("-o is only used with --mask NAME") }
  }

  func run() throws {
    if GGUFFile.hasMagic(atPath: file) { return try runGGUF() }
    let archive = try TensorArchive(contentsOf: file)
    if let mask, let output {
      guard let stored = archive[mask] else {
        let names = archive.tensors.prefix(5).map(\.name).joined(separator: ", ")
        throw CLIError("no tensor named '\(mask)' in \(file) (it has: \(names)\(archive.tensors.count > 5 ? ", …" : ""))")
      }
      let tensor = stored.dense()
      guard tensor.dtype.byteWidth != nil else {
        throw CLIError("tensor '\(mask)' has sub-byte dtype \(tensor.dtype); its zeros cannot be read")
      }
      try Self.writeMask(of: tensor, name: mask, to: output)
      return
    }
    var reports: [InspectRecord] = []
    for (name, stored) in archive.tensors {
      let tensor = stored.dense()
      let report = tensor.dtype.byteWidth == nil ? nil : SparsityReport(name: name, tensor: tensor)
      reports.append(InspectRecord(name: name, storedFormat: stored.form.description, storedBytes: stored.byteCount, report: report))
    }
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      say(String(decoding: try encoder.encode(reports), as: UTF8.self))
      return
    }
    let total = reports.map(\.storedBytes).reduce(0, +)
    say("\(file): \(reports.count) tensors, \(formatBytes(total)) of tensor data\(archive.metadata.isEmpty ? "" : ", metadata keys: \(archive.metadata.keys.sorted().joined(separator: ", "))")")
    say(Self.residentSummary(archive))
    let rows = reports.map { r -> [String] in
      guard let report = r.report else {
        return [r.name, "?", "?", r.storedFormat, "–", "–", formatBytes(r.storedBytes), "–", "–", "–"]
      }
      let bsr = report.bytes.filter { $0.key.hasPrefix("bsr:") }.min { $0.value < $1.value }
      return [
        r.name, report.dtype, "[" + report.shape.map(String.init).joined(separator: ", ") + "]",
        r.storedFormat + (r.storedFormat == "dense" ? "" : " " + formatBytes(r.storedBytes)),
        formatPercent(report.sparsity),
        report.satisfiedPatterns.isEmpty ? "–" : report.satisfiedPatterns.joined(separator: " "),
        formatBytes(report.bytes["dense"] ?? 0),
        report.bytes["csr"].map(formatBytes) ?? "–",
        bsr.map { "\($0.key.dropFirst(4)) \(formatBytes($0.value))" } ?? "–",
        (report.bytes["2:4-cutlass"] ?? report.bytes["2:4"]).map(formatBytes) ?? "–",
      ]
    }
    say(table(["NAME", "DTYPE", "SHAPE", "STORED", "SPARSITY", "PATTERNS", "DENSE", "CSR", "BEST BSR", "2:4"], rows))
  }
}

extension Inspect {
  /// Writes the SVG picture of `tensor`'s zeros to `output` (atomically).
  static func writeMask(of tensor: Tensor, name: String, to output: String) throws {
    let svg = MaskPicture.svg(Mask(nonzerosOf: tensor), title: name)
    do {
      // Foundation's atomic write: a temporary file renamed into place.
      try Data(svg.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
    } catch {
      throw CLIError("cannot write \(output): \((error as NSError).localizedDescription)")
    }
    say("wrote \(output)")
  }

  /// What the tensors take once loaded for inference: each floating-point matrix packed in the
  /// form its zeros suit (as the model loaders pack Linear weights), other tensors as stored.
  static func residentSummary(_ archive: TensorArchive) -> String {
    var bytes = 0
    var forms: [String: Int] = [:]
    for (name, stored) in archive.tensors {
      let form = stored.packedForm
      guard stored.shape.count == 2, stored.dtype.isFloatingPoint, stored.dtype.isNumeric,
        let packed = try? LinearWeight(stored, as: form, name: name)
      else {
        bytes += stored.byteCount
        continue
      }
      bytes += packed.byteCount
      forms[form.description, default: 0] += 1
    }
    let list = forms.sorted { $0.key < $1.key }.map { "\($0.value) × \($0.key)" }.joined(separator: ", ")
    return "packed for the kernels: \(formatBytes(bytes)) (\(list.isEmpty ? "no matrices" : list); other tensors as stored)"
  }
}

/// One tensor in `inspect --json`.
struct InspectRecord: Encodable {
  var name: String
  var storedFormat: String
  var storedBytes: Int
  var report: SparsityReport?

  enum CodingKeys: String, CodingKey {
    case name, storedFormat = "stored_format", storedBytes = "stored_bytes", dtype, shape, elements, nonzeros,
      sparsity, patterns, satisfiedPatterns = "satisfied_patterns", bytes
  }

  func encode(to encoder: Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(name, forKey: .name)
    try c.encode(storedFormat, forKey: .storedFormat)
    try c.encode(storedBytes, forKey: .storedBytes)
    guard let report else { return }
    try c.encode(report.dtype, forKey: .dtype)
    try c.encode(report.shape, forKey: .shape)
    try c.encode(report.elements, forKey: .elements)
    try c.encode(report.nonzeros, forKey: .nonzeros)
    try c.encode(report.sparsity, forKey: .sparsity)
    try c.encode(report.patterns, forKey: .patterns)
    try c.encode(report.satisfiedPatterns, forKey: .satisfiedPatterns)
    try c.encode(report.bytes, forKey: .bytes)
  }
}

// MARK: - GGUF

extension Inspect {
  /// `inspect FILE.gguf`: header, metadata and tensor table (or `--mask` of a dequantized tensor).
  func runGGUF() throws {
    let gguf = try GGUFFile(contentsOf: file)
    if let mask, let output {
      guard let info = gguf.tensor(named: mask) else {
        let names = gguf.tensors.prefix(5).map(\.name).joined(separator: ", ")
        throw CLIError("no tensor named '\(mask)' in \(file) (it has: \(names)\(gguf.tensors.count > 5 ? ", …" : ""))")
      }
      try Self.writeMask(of: try gguf.dequantized(info), name: mask, to: output)
      return
    }
    let report = GGUFReport(gguf)
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      encoder.nonConformingFloatEncodingStrategy = .convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
      say(String(decoding: try encoder.encode(report), as: UTF8.self))
      return
    }
    let totalBytes = report.totals.map(\.bytes).reduce(0, +)
    say("\(file): GGUF version \(gguf.version), alignment \(gguf.alignment), \(gguf.metadata.count) metadata keys, "
      + "\(gguf.tensors.count) tensors, \(formatBytes(totalBytes)) of tensor data from byte \(gguf.dataOffset)")
    say()
    // Keys and names come from the file: control characters are escaped so each row is one line.
    func plain(_ text: String) -> String { String(ReportValue.quoted(text).dropFirst().dropLast()) }
    say(table(["KEY", "TYPE", "VALUE"], report.metadata.map { [plain($0.key), $0.typeText, $0.valueText] }))
    say()
    say(table(["NAME", "TYPE", "SHAPE", "BYTES"], report.tensors.map {
      [plain($0.name), $0.type, "[" + $0.shape.map(String.init).joined(separator: ", ") + "]", formatBytes($0.bytes)]
    }))
    say()
    say(table(["TYPE", "TENSORS", "ELEMENTS", "BYTES", "BITS/WEIGHT"], report.totals.map {
      [$0.type, "\($0.tensors)", "\($0.elements)", formatBytes($0.bytes),
       String(format: "%.2f", Double($0.bytes) * 8 / Double(max($0.elements, 1)))]
    }))
  }
}

/// What `inspect` shows of a GGUF file (`--json` encodes it).
struct GGUFReport: Encodable {
  /// Strings longer than this are cut (the full length is given).
  static let stringLimit = 80
  /// Arrays show this many first items.
  static let arrayItems = 4

  struct Entry: Encodable {
    var key: String
    var type: String
    var elementType: String?
    var count: Int?
    var value: ReportValue?
    var first: [ReportValue]?
    var length: Int?
    var truncated: Bool?

    enum CodingKeys: String, CodingKey {
      case key, type, elementType = "element_type", count, value, first, length, truncated
    }

    /// `UINT32`, `STRING`, `[STRING × 49152]`.
    var typeText: String { elementType.map { "[\($0) × \(count ?? 0)]" } ?? type }
    var valueText: String {
      if let first {
        let items = first.map(\.text).joined(separator: ", ")
        return (count ?? 0) > first.count ? (first.isEmpty ? "…" : items + ", …") : items
      }
      let text = value?.text ?? ""
      return truncated == true ? text + "… (\(length ?? 0) bytes)" : text
    }
  }

  struct TensorRow: Encodable {
    var name: String
    var type: String
    var typeID: UInt32
    var dimensions: [Int]
    var shape: [Int]
    var elements: Int
    var offset: Int
    var bytes: Int

    enum CodingKeys: String, CodingKey {
      case name, type, typeID = "type_id", dimensions, shape, elements, offset, bytes
    }
  }

  struct Total: Encodable {
    var type: String
    var tensors: Int
    var elements: Int
    var bytes: Int
  }

  var format = "gguf"
  var version: Int
  var alignment: Int
  var dataOffset: Int
  var fileSize: Int
  var metadata: [Entry]
  var tensors: [TensorRow]
  var totals: [Total]

  enum CodingKeys: String, CodingKey {
    case format, version, alignment, dataOffset = "data_offset", fileSize = "file_size", metadata, tensors, totals
  }

  init(_ file: GGUFFile) {
    version = file.version
    alignment = file.alignment
    dataOffset = file.dataOffset
    fileSize = file.fileSize
    metadata = file.metadataKeys.compactMap { key in file.metadata[key].map { Self.entry(key, $0) } }
    tensors = file.tensors.map {
      TensorRow(
        name: $0.name, type: $0.type.name, typeID: $0.type.rawValue, dimensions: $0.dimensions, shape: $0.shape,
        elements: $0.elementCount, offset: $0.offset, bytes: $0.byteCount)
    }
    var byType: [GGMLType: Total] = [:]
    for info in file.tensors {
      var total = byType[info.type] ?? Total(type: info.type.name, tensors: 0, elements: 0, bytes: 0)
      total.tensors += 1
      total.elements += info.elementCount
      total.bytes += info.byteCount
      byType[info.type] = total
    }
    totals = byType.values.sorted { ($0.bytes, $0.type) > ($1.bytes, $1.type) }
  }

  private static func entry(_ key: String, _ value: GGUFValue) -> Entry {
    var entry = Entry(key: key, type: value.type.name)
    switch value {
    case .array(let array):
      entry.elementType = array.elementType.name
      entry.count = array.count
      entry.first = (0..<min(arrayItems, array.count)).map { ReportValue(array[$0]) }
    case .string(let string):
      let characters = string.count
      entry.value = .string(characters > stringLimit ? String(string.prefix(stringLimit)) : string)
      if characters > stringLimit {
        entry.length = string.utf8.count
        entry.truncated = true
      }
    default:
      entry.value = ReportValue(value)
    }
    return entry
  }
}

/// A scalar metadata value in `inspect`'s output (strings in array items cut too).
enum ReportValue: Encodable {
  case string(String), unsigned(UInt64), signed(Int64), float(Float), double(Double), bool(Bool)

  init(_ value: GGUFValue) {
    switch value {
    case .uint8(let v): self = .unsigned(UInt64(v))
    case .uint16(let v): self = .unsigned(UInt64(v))
    case .uint32(let v): self = .unsigned(UInt64(v))
    case .uint64(let v): self = .unsigned(v)
    case .int8(let v): self = .signed(Int64(v))
    case .int16(let v): self = .signed(Int64(v))
    case .int32(let v): self = .signed(Int64(v))
    case .int64(let v): self = .signed(v)
    case .float32(let v): self = .float(v)
    case .float64(let v): self = .double(v)
    case .bool(let v): self = .bool(v)
    case .string(let v): self = .string(v.count > GGUFReport.stringLimit ? String(v.prefix(GGUFReport.stringLimit)) + "…" : v)
    case .array(let a): self = .string("[\(a.elementType) × \(a.count)]")  // not reached: arrays do not nest
    }
  }

  /// As printed in the table: numbers in full, strings quoted with escapes.
  var text: String {
    switch self {
    case .string(let v): Self.quoted(v)
    case .unsigned(let v): "\(v)"
    case .signed(let v): "\(v)"
    case .float(let v): "\(v)"
    case .double(let v): "\(v)"
    case .bool(let v): "\(v)"
    }
  }

  /// `text` in double quotes, with `"`, `\\` and control characters escaped (one line).
  static func quoted(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": result += "\\\""
      case "\\": result += "\\\\"
      case "\n": result += "\\n"
      case "\t": result += "\\t"
      case "\r": result += "\\r"
      default:
        if scalar.properties.generalCategory == .control || scalar == "\u{2028}" || scalar == "\u{2029}" {
          result += "\\u{" + String(scalar.value, radix: 16) + "}"
        } else {
          result.unicodeScalars.append(scalar)
        }
      }
    }
    return result + "\""
  }

  func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    switch self {
    case .string(let v): try container.encode(v)
    case .unsigned(let v): try container.encode(v)
    case .signed(let v): try container.encode(v)
    case .float(let v): try container.encode(v)
    case .double(let v): try container.encode(v)
    case .bool(let v): try container.encode(v)
    }
  }
}
