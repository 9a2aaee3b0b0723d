import ArgumentParser
import Foundation
import Sparsity

/// The form `text` names for storing a tensor in a file (N:M, csr, bsr:RxC, dense).
func fileForm(_ text: String, option: String) throws -> WeightForm {
  do { return try WeightForm(parsing: text) } catch { throw CLIError("\(option) \(error)") }
}

struct Compress: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Store matrices of a safetensors file in a sparse format (2:4, CSR or BSR).",
    discussion: """
      Every rank-2 tensor whose name matches --include (all of them by default) is compressed; \
      other tensors are copied unchanged. A tensor that cannot be stored (not 2:4, a shape the \
      format does not allow) is an error naming it and the rule, and nothing is written. \
      2:4 is written in the CUTLASS layout PyTorch uses (NAME.packed, NAME.meta) for f16, bf16 and int8 values, \
      as NAME.values + NAME.positions (2-bit positions) otherwise; CSR and BSR as NAME.crow_indices, \
      NAME.col_indices, NAME.values. --dtype int8 quantizes the values too (see `sparsity quantize`).
      """)

  @Argument(help: "The input safetensors file.")
  var file: String

  @OptionGroup var outputFile: OutputFileOption
  var output: String { outputFile.output }

  @Option(help: "The sparse format: 2:4 (or any N:M), csr, or bsr:RxC (e.g. bsr:32x32).")
  var format: String

  @Option(help: "Compress only tensors whose name matches this regular expression (anywhere in the name).")
  var include: String?

  @OptionGroup var quantization: QuantizationOptions

  func run() throws {
    let layout = try fileForm(self.format, option: "--format").layout
    let format = WeightForm(layout, encoding: try quantization.encoding())
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
      let compressed = try stored.stored(as: format, name: name)
      archive.tensors[i].value = compressed
      rows.append([name, stored.form.description, formatBytes(stored.byteCount), compressed.form.description, formatBytes(compressed.byteCount)])
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

  @OptionGroup var outputFile: OutputFileOption
  var output: String { outputFile.output }

  func run() throws {
    var archive = try TensorArchive(contentsOf: file)
    var count = 0
    for i in archive.tensors.indices where archive.tensors[i].value.form.isSparse {
      archive.tensors[i].value = .dense(archive.tensors[i].value.dense())
      count += 1
    }
    try archive.write(to: output)
    say("wrote \(output): \(count) sparse tensor(s) decompressed, \(archive.tensors.count) tensor(s) in all")
  }
}
