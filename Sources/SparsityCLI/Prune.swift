import ArgumentParser
import Dispatch
import Foundation
import Sparsity

#if canImport(Glibc)
  import Glibc
#endif

struct Prune: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Prune the matrices of a safetensors file by magnitude, block norm, Wanda or SparseGPT.",
    discussion: """
      Every rank-2 floating-point tensor whose name matches --include and not --exclude is pruned \
      (all of them by default); other tensors are copied unchanged. Output weights keep their \
      dtype, with zeros, or are stored compressed with --compress.

      --sparsity is the fraction pruned: of elements (unstructured, with --scope layer, row or \
      global), of blocks (block:RxC), of rows or columns. N:M patterns fix the sparsity at 1 − N/M; \
      --group-fraction F makes only the fraction F of groups with the lowest scores N:M.

      Wanda and SparseGPT need --calibration FILE: for each weight W, sample inputs of its layer \
      named "W:input" ([tokens, in_features]). With a calibration file the report gives each \
      layer's relative output error ‖XWᵀ − XŴᵀ‖/‖XWᵀ‖ on it; --evaluate FILE (same convention, \
      held-out inputs) adds the error on those.

      --permute (N:M only) first searches an input-channel permutation that raises the magnitude \
      N:M keeps (Wanda: the Wanda score), prunes the permuted weight, and stores the order as an \
      I32 tensor "W:permutation" (entry k = original column at position k): the layer must read \
      its inputs as x[:, permutation] (or its producer's output rows be permuted the same way).

      On any error nothing is written.
      """)

  @Argument(help: "The input safetensors file.")
  var file: String

  @OptionGroup var outputFile: OutputFileOption
  var output: String { outputFile.output }

  @Option(help: "unstructured, N:M (e.g. 2:4), block:RxC, rows, columns or N:RxC.")
  var pattern: String

  @Option(help: "Fraction pruned, 0…1 (required except for N:M patterns).")
  var sparsity: Double?

  @Option(name: .customLong("method"), help: "magnitude, norm (PyTorch WeightNormSparsifier), wanda or sparsegpt.")
  var methodName = "magnitude"

  @Option(name: .customLong("scope"), help: "Comparison group: layer, row or global (unstructured only; default: row for wanda, layer otherwise).")
  var scopeName: String?

  @Option(name: .customLong("zeros-per-block"), help: "norm with block:RxC: zeros per selected block (default: the whole block).")
  var zerosPerBlock: Int?

  @Option(help: "norm: 1 (|w|) or 2 (w², default).")
  var norm: Int = 2

  @Option(name: .customLong("group-fraction"), help: "N:M patterns: fraction of groups made N:M (default 1).")
  var groupFraction: Double?

  @Option(help: "Calibration inputs (a safetensors file with W:input tensors).")
  var calibration: String?

  @Option(help: "Held-out inputs (W:input tensors) to report the output error on.")
  var evaluate: String?

  @Option(help: "Prune only tensors whose name matches this regular expression (anywhere in the name).")
  var include: String?

  @Option(help: "Do not prune tensors whose name matches this regular expression.")
  var exclude: String?

  @Flag(help: "Search an input-channel permutation before N:M pruning (stored as W:permutation).")
  var permute = false

  @Option(help: "Store pruned weights compressed: auto (the fewest bytes of the pattern's own form — N:M, bsr:RxC — CSR and dense), N:M, csr or bsr:RxC.")
  var compress: String?

  @OptionGroup var quantization: QuantizationOptions

  @Option(help: "Seed for the permutation search's random escapes.")
  var seed: UInt64 = 0

  @Option(help: "sparsegpt: dampening as a fraction of the Hessian's mean diagonal.")
  var dampening: Double = 0.01

  @Option(name: .customLong("block-size"), help: "sparsegpt: columns per lazy-update block.")
  var blockSize: Int = 128

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  struct Summary: Codable {
    var tensors: Int
    var method: String
    var pattern: String
    var sparsity: Double
    var meanCalibrationError: Double?
    var meanHeldOutError: Double?
    var meanPermutationGain: Double?
    var seconds: Double
    var output: String
  }

  struct Report: Codable {
    var layers: [FilePruning.TensorReport]
    var summary: Summary
  }

  var method: PruningMethod { PruningMethod(rawValue: methodName.lowercased()) ?? .magnitude }

  func validate() throws {
    guard PruningMethod(rawValue: methodName.lowercased()) != nil else {
      throw ValidationError("--method '\(methodName)' is not one of \(PruningMethod.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    if let scopeName, ComparisonScope(rawValue: scopeName.lowercased()) == nil {
      throw ValidationError("--scope '\(scopeName)' is not one of layer, row, global")
    }
  }

  func run() throws {
    let start = DispatchTime.now()
    let parsedPattern: SparsityPattern
    do { parsedPattern = try SparsityPattern(parsing: pattern) } catch { throw CLIError("--pattern: \(error)") }
    let level = try sparsityLevel(for: parsedPattern)
    let blockNorm: BlockNorm
    do { blockNorm = try BlockNorm(p: norm) } catch { throw CLIError("--norm \(norm): \(error)") }
    var options = FilePruning.Options(
      configuration: try PruningConfiguration(
        method: method, pattern: parsedPattern, sparsityLevel: level,
        scope: scopeName.flatMap { ComparisonScope(rawValue: $0.lowercased()) }, zerosPerBlock: zerosPerBlock,
        norm: blockNorm, sparseGPT: SparseGPTOptions(dampening: dampening, blockSize: blockSize)
      ).validated())
    options.encoding = try quantization.encoding()
    if let compress {
      options.storage = compress.lowercased() == "auto" ? .auto : .form(try fileForm(compress, option: "--compress"))
    }
    if permute {
      guard case let .nOfM(n, m) = parsedPattern, n < m, m <= 8 else {
        throw CLIError("--permute needs an N:M pattern with N < M ≤ 8, got \(parsedPattern)")
      }
    }
    options.permute = permute
    options.seed = seed
    let include = try compileRegex(include, option: "--include")
    let exclude = try compileRegex(exclude, option: "--exclude")
    nonisolated(unsafe) let (includeRegex, excludeRegex) = (include, exclude)
    options.select = { name in
      if let includeRegex, (try? includeRegex.firstMatch(in: name)) == nil { return false }
      if let excludeRegex, (try? excludeRegex.firstMatch(in: name)) != nil { return false }
      return true
    }
    options.calibration = try calibration.map(FilePruning.inputs(contentsOf:))
    options.heldOut = try evaluate.map(FilePruning.inputs(contentsOf:))

    let progress = Progress()
    let records = try FilePruning.prune(file, to: output, options: options) { index, count, name, stage in
      progress.show(index, count, name, stage)
    }
    progress.finish()

    func mean(_ values: [Double?]) -> Double? {
      let present = values.compactMap { $0 }
      return present.isEmpty ? nil : present.reduce(0, +) / Double(present.count)
    }
    let summary = Summary(
      tensors: records.count, method: method.rawValue, pattern: parsedPattern.description, sparsity: level,
      meanCalibrationError: mean(records.map(\.calibrationError)), meanHeldOutError: mean(records.map(\.heldOutError)),
      meanPermutationGain: mean(records.map(\.permutationGain)),
      seconds: Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9, output: output)
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      encoder.keyEncodingStrategy = .convertToSnakeCase
      encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
      say(String(decoding: try encoder.encode(Report(layers: records, summary: summary)), as: UTF8.self))
    } else {
      say(Self.reportTable(records))
      var line = "pruned \(records.count) tensor(s) with \(method) to \(parsedPattern)"
      if let e = summary.meanCalibrationError { line += "; mean calibration error \(String(format: "%.4f", e))" }
      if let e = summary.meanHeldOutError { line += "; mean held-out error \(String(format: "%.4f", e))" }
      if let g = summary.meanPermutationGain { line += "; mean permutation gain \(String(format: "%+.2f%%", 100 * g))" }
      say(line + "; wrote \(output) in \(String(format: "%.1f", summary.seconds)) s")
    }
  }

  /// The sparsity level: --sparsity for counted patterns, --group-fraction (default 1) for
  /// N:M patterns, where a --sparsity that restates 1 − N/M is accepted.
  func sparsityLevel(for pattern: SparsityPattern) throws -> Double {
    guard let implied = pattern.impliedSparsity else {
      if groupFraction != nil { throw CLIError("--group-fraction applies to N:M patterns only") }
      guard let sparsity else { throw CLIError("--pattern \(pattern) needs --sparsity S (a fraction from 0 to 1)") }
      guard sparsity.isFinite, sparsity >= 0, sparsity <= 1 else {
        throw CLIError("--sparsity \(sparsity) is not a fraction from 0 to 1")
      }
      return sparsity
    }
    if let sparsity, Swift.abs(sparsity - implied) > 1e-9 {
      throw CLIError(
        "--pattern \(pattern) fixes the sparsity at \(implied); got --sparsity \(sparsity) (use --group-fraction F to make only a fraction of groups \(pattern))"
      )
    }
    let fraction = groupFraction ?? 1
    guard fraction.isFinite, fraction >= 0, fraction <= 1 else {
      throw CLIError("--group-fraction \(fraction) is not a fraction from 0 to 1")
    }
    if method == .sparseGPT && fraction != 1 {
      throw CLIError("--method sparsegpt makes every group \(pattern); --group-fraction must be 1")
    }
    return fraction
  }

  static func reportTable(_ records: [FilePruning.TensorReport]) -> String {
    func f(_ x: Double?) -> String { x.map { String(format: "%.4f", $0) } ?? "-" }
    let hasCalibration = records.contains { $0.calibrationError != nil }
    let hasHeldOut = records.contains { $0.heldOutError != nil }
    let hasPermutation = records.contains { $0.permutationGain != nil }
    var header = ["TENSOR", "SHAPE", "SPARSITY", "CONFORMS", "NORM KEPT"]
    if hasCalibration { header.append("CALIB ERR") }
    if hasHeldOut { header.append("HELD-OUT ERR") }
    if hasPermutation { header.append("PERM GAIN") }
    header += ["FORMAT", "SECONDS"]
    let rows = records.map { r -> [String] in
      var row = [r.tensor, r.shape.map(String.init).joined(separator: "x"), formatPercent(r.sparsity), r.conforms ? "yes" : "NO", formatPercent(r.keptNorm)]
      if hasCalibration { row.append(f(r.calibrationError)) }
      if hasHeldOut { row.append(f(r.heldOutError)) }
      if hasPermutation { row.append(r.permutationGain.map { String(format: "%+.2f%%", 100 * $0) } ?? "-") }
      row += [r.format, String(format: "%.2f", r.seconds)]
      return row
    }
    return table(header, rows)
  }
}

extension SparsityPattern {
  /// 1 − N/M for N:M patterns (and N-in-blocks), `nil` for counted patterns.
  fileprivate var impliedSparsity: Double? {
    switch self {
    case let .nOfM(n, m): 1 - Double(n) / Double(m)
    case let .nOfMInBlocks(n, r, c): 1 - Double(n) / Double(r * c)
    default: nil
    }
  }

}

/// A one-line progress indicator on standard error, shown only when it is a terminal.
final class Progress {
  let enabled: Bool
  var shown = false

  init() {
    #if canImport(Glibc)
      enabled = isatty(2) != 0
    #else
      enabled = false
    #endif
  }

  func show(_ index: Int, _ total: Int, _ name: String, _ stage: String) {
    guard enabled else { return }
    let width = 24
    let filled = total == 0 ? width : width * index / total
    let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
    FileHandle.standardError.write(Data("\r\u{1B}[K[\(bar)] \(index + 1)/\(total) \(stage): \(name)".utf8))
    shown = true
  }

  func finish() {
    guard enabled, shown else { return }
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
  }
}
