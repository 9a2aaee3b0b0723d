import ArgumentParser
import Foundation
import Sparsity

/// A sparse format a user can ask for on the command line.
enum TargetFormat: ExpressibleByArgument, CustomStringConvertible {
  case semiStructured
  case csr
  case bsr(rows: Int, columns: Int)

  init?(argument: String) {
    switch argument.lowercased() {
    case "2:4": self = .semiStructured
    case "csr": self = .csr
    default:
      guard argument.lowercased().hasPrefix("bsr:") else { return nil }
      let parts = argument.dropFirst(4).lowercased().split(separator: "x")
      guard parts.count == 2, let r = Int(parts[0]), let c = Int(parts[1]), r >= 1, c >= 1 else { return nil }
      self = .bsr(rows: r, columns: c)
    }
  }

  var description: String {
    switch self {
    case .semiStructured: "2:4"
    case .csr: "csr"
    case let .bsr(r, c): "bsr:\(r)x\(c)"
    }
  }

  static var defaultValueDescription: String { "2:4 | csr | bsr:RxC" }

  /// Compresses one dense matrix.
  func compress(_ tensor: Tensor, name: String) throws -> StoredTensor {
    switch self {
    case .semiStructured: .semiStructured(try CUTLASSSemiStructured(compressing: tensor, name: name))
    case .csr: .csr(try CSRMatrix(dense: tensor, name: name))
    case let .bsr(r, c): .bsr(try BSRMatrix(dense: tensor, blockRows: r, blockColumns: c, name: name))
    }
  }
}

struct Compress: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Store matrices of a safetensors file in a sparse format (2:4, CSR or BSR).",
    discussion: """
      Every rank-2 tensor whose name matches --include (all of them by default) is compressed; \
      other tensors are copied unchanged. A tensor that cannot be stored (not 2:4, a shape the \
      format does not allow) is an error naming it and the rule, and nothing is written. \
      2:4 is written in the CUTLASS layout PyTorch uses (NAME.packed, NAME.meta); CSR and BSR \
      as NAME.crow_indices, NAME.col_indices, NAME.values.
      """)

  @Argument(help: "The input safetensors file.")
  var file: String

  @Option(name: .shortAndLong, help: "The output safetensors file.")
  var output: String

  @Option(help: "The sparse format: 2:4, csr, or bsr:RxC (e.g. bsr:32x32).")
  var format: TargetFormat

  @Option(help: "Compress only tensors whose name matches this regular expression (anywhere in the name).")
  var include: String?

  func run() throws {
    let include = try compileRegex(include, option: "--include")
    var archive = try TensorArchive(contentsOf: file)
    var rows: [[String]] = []
    var before = 0
    var after = 0
    for i in archive.tensors.indices {
      let (name, stored) = archive.tensors[i]
      before += stored.byteCount
      defer { after += archive.tensors[i].value.byteCount }
      if let include, (try? include.firstMatch(in: name)) == nil { continue }
      guard stored.shape.count == 2 else {
        if self.include != nil {
          throw CLIError("tensor '\(name)' with shape \(stored.shape) matches --include but is not a matrix")
        }
        continue
      }
      let compressed = try format.compress(stored.dense(), name: name)
      archive.tensors[i].value = compressed
      rows.append([name, stored.formatName, formatBytes(stored.byteCount), compressed.formatName, formatBytes(compressed.byteCount)])
    }
    if rows.isEmpty {
      throw CLIError("no matrix in \(file)\(self.include.map { " matches --include '\($0)'" } ?? "") (nothing written)")
    }
    try archive.write(to: output)
    say(table(["TENSOR", "FROM", "BYTES", "TO", "BYTES"], rows))
    say("wrote \(output): \(rows.count) tensor(s) as \(format); tensor data \(formatBytes(before)) → \(formatBytes(after))")
  }
}

struct Decompress: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Write every sparse tensor of a safetensors file back as a dense tensor.")

  @Argument(help: "The input safetensors file.")
  var file: String

  @Option(name: .shortAndLong, help: "The output safetensors file.")
  var output: String

  func run() throws {
    var archive = try TensorArchive(contentsOf: file)
    var count = 0
    for i in archive.tensors.indices {
      if case .dense = archive.tensors[i].value { continue }
      archive.tensors[i].value = .dense(archive.tensors[i].value.dense())
      count += 1
    }
    try archive.write(to: output)
    say("wrote \(output): \(count) sparse tensor(s) decompressed, \(archive.tensors.count) tensor(s) in all")
  }
}
