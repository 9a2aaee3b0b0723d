import ArgumentParser
import Foundation
import Sparsity

struct Inspect: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Show each tensor's dtype, shape, sparsity, the patterns it follows and its size in each format.",
    discussion: """
      With --mask NAME -o FILE.svg, draws tensor NAME's zero pattern instead (large tensors are \
      downsampled by a power of two so blocks stay aligned).
      """)

  @Argument(help: "A safetensors file (dense or with sparse tensors).")
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
      let svg = MaskPicture.svg(Mask(nonzerosOf: tensor), title: mask)
      do {
        // Foundation's atomic write: a temporary file renamed into place.
        try Data(svg.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
      } catch {
        throw CLIError("cannot write \(output): \((error as NSError).localizedDescription)")
      }
      say("wrote \(output)")
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
