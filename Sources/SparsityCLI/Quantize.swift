import ArgumentParser
import Foundation
import Sparsity

/// Quantization of the matrices of a safetensors file, keeping each one's layout.
struct Quantize: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Quantize the matrices of a safetensors file to int8 (per output row, torchao's semantics) or bf16, keeping their sparse layouts.",
    discussion: """
      Every floating-point matrix whose name matches --include and not --exclude is quantized: int8 values \
      (symmetric, one float32 scale per row: scale = max(|row|) / 127.5, round half to even — torchao's \
      Int8Tensor.from_hp(PerRow())) stored in the matrix's own layout (dense, 2:4, CSR, BSR: a pruned weight \
      keeps its zeros) plus NAME.scale, and a quantization entry saying whether the layer runs with dynamic \
      int8 activations (W8A8, the default) or float activations (--activations none). Other tensors are \
      copied unchanged. Embed, eval, generate and perplexity run such files on the int8 kernels.
      """)

  @Argument(help: "The input safetensors file.")
  var file: String

  @OptionGroup var outputFile: OutputFileOption
  var output: String { outputFile.output }

  @OptionGroup var quantization: QuantizationOptions

  @Option(help: "Quantize only matrices whose name matches this regular expression (anywhere in the name).")
  var include: String?

  @Option(help: "Leave matrices whose name matches this regular expression as they are.")
  var exclude: String?

  func run() throws {
    let encoding = try quantization.encoding()
    guard encoding != .float32 else { throw CLIError("--dtype f32 leaves the weights as they are: give --dtype int8 or bf16") }
    let include = try compileRegex(include, option: "--include")
    let exclude = try compileRegex(exclude, option: "--exclude")
    var archive = try TensorArchive(contentsOf: file)
    var rows: [[String]] = []
    var (before, after) = (0, 0)
    for i in archive.tensors.indices {
      let (name, stored) = archive.tensors[i]
      before += stored.byteCount
      defer { after += archive.tensors[i].value.byteCount }
      if let include, (try? include.firstMatch(in: name)) == nil { continue }
      if let exclude, (try? exclude.firstMatch(in: name)) != nil { continue }
      guard stored.shape.count == 2, stored.dtype.isFloatingPoint, stored.dtype.isNumeric else { continue }
      let quantized = try stored.stored(as: WeightForm(stored.form.layout, encoding: encoding), name: name)
      archive.tensors[i].value = quantized
      rows.append([name, stored.form.description, formatBytes(stored.byteCount), quantized.form.description, formatBytes(quantized.byteCount)])
    }
    if rows.isEmpty {
      throw CLIError("no floating-point matrix in \(file) matches the selection (nothing written)")
    }
    try archive.write(to: output)
    say(table(["TENSOR", "FROM", "BYTES", "TO", "BYTES"], rows))
    say("wrote \(output): \(rows.count) matri\(rows.count == 1 ? "x" : "ces") quantized; tensor data \(formatBytes(before)) → \(formatBytes(after))")
  }
}
