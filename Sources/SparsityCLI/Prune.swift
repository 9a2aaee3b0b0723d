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

  @Option(name: .shortAndLong, help: "The output safetensors file.")
  var output: String

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

  @Option(help: "Store pruned weights compressed: auto (2:4 in f16/bf16/i8 → 2:4, block:RxC → bsr:RxC, else csr), 2:4, csr or bsr:RxC.")
  var compress: String?

  @Option(help: "Seed for the permutation search's random escapes.")
  var seed: UInt64 = 0

  @Option(help: "sparsegpt: dampening as a fraction of the Hessian's mean diagonal.")
  var dampening: Double = 0.01

  @Option(name: .customLong("block-size"), help: "sparsegpt: columns per lazy-update block.")
  var blockSize: Int = 128

  @Flag(help: "Print the report as JSON.")
  var json = false

  /// One pruned tensor's line of the report.
  struct LayerRecord: Codable {
    var tensor: String
    var shape: [Int]
    var dtype: String
    var method: String
    var pattern: String
    var sparsity: Double
    var conforms: Bool
    var keptNorm: Double
    var calibrationError: Double?
    var heldOutError: Double?
    var permutationGain: Double?
    var permutationEfficacy: Double?
    var format: String
    var seconds: Double
  }

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
    var layers: [LayerRecord]
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
    let configuration = try PruningConfiguration(
      method: method, pattern: parsedPattern, sparsityLevel: level,
      scope: scopeName.flatMap { ComparisonScope(rawValue: $0.lowercased()) }, zerosPerBlock: zerosPerBlock,
      norm: blockNorm, sparseGPT: SparseGPTOptions(dampening: dampening, blockSize: blockSize)
    ).validated()
    if let compress, compress.lowercased() != "auto" { _ = try fileForm(compress, option: "--compress") }
    let permutationGroup = try permutationShape(parsedPattern)
    let include = try compileRegex(include, option: "--include")
    let exclude = try compileRegex(exclude, option: "--exclude")

    var archive = try TensorArchive(contentsOf: file)
    var selected: [(index: Int, name: String, weight: Tensor)] = []
    for (i, entry) in archive.tensors.enumerated() {
      if let include, (try? include.firstMatch(in: entry.name)) == nil { continue }
      if let exclude, (try? exclude.firstMatch(in: entry.name)) != nil { continue }
      let dtype = entry.value.dtype
      guard entry.value.shape.count == 2, dtype.isFloatingPoint, dtype.isNumeric else { continue }
      selected.append((i, entry.name, entry.value.dense()))
    }
    if selected.isEmpty {
      throw CLIError("no floating-point matrix in \(file) matches the selection (nothing written)")
    }
    if method.needsCalibration && calibration == nil {
      throw CLIError("--method \(method) needs --calibration FILE with a W:input tensor per weight")
    }
    let calibrationInputs = try calibration.map { try Self.readInputs($0) }
    let heldOutInputs = try evaluate.map { try Self.readInputs($0) }
    // Inputs of every selected weight, validated up front so that errors come before any work.
    var calibrationOf: [String: Tensor] = [:]
    var heldOutOf: [String: Tensor] = [:]
    for (_, name, weight) in selected {
      if let calibrationInputs { calibrationOf[name] = try calibrationInputs.inputs(forWeight: name, shape: weight.shape) }
      if let heldOutInputs { heldOutOf[name] = try heldOutInputs.inputs(forWeight: name, shape: weight.shape) }
    }

    let progress = Progress(total: selected.count)
    // Permutations (N:M only): weights and their inputs move to the permuted column order.
    var permutations: [String: PermutationSearch.Result] = [:]
    var model = NamedTensors(selected.map { ($0.name, $0.weight) })
    if let (n, m) = permutationGroup {
      for (k, (_, name, weight)) in selected.enumerated() {
        progress.show(k, name, "permutation search")
        var scores = weight.abs()
        if method == .wanda, let x = calibrationOf[name] {
          scores = try Wanda.scores(for: weight, columnNorms: try LayerInputStatistics(inputs: x, name: name).columnNorms, name: name)
        }
        let result = try PermutationSearch.run(scores: scores, n: n, m: m, seed: seed, name: name)
        permutations[name] = result
        let p = result.permutation
        model.setParameter(named: name, to: p.permutingColumns(of: weight))
        if let x = calibrationOf[name] { calibrationOf[name] = p.permutingColumns(of: x) }
        if let x = heldOutOf[name] { heldOutOf[name] = p.permutingColumns(of: x) }
      }
    }
    let dense = model

    var sparsifier = Sparsifier(defaults: configuration)
    try sparsifier.prepare(model)
    let steps = try sparsifier.step(
      model, calibration: calibrationInputs == nil ? nil : CalibrationInputs(calibrationOf),
      progress: { index, _, name in progress.show(index, name, method.rawValue) })
    var masks: [String: Mask] = [:]
    for group in sparsifier.groups { masks[group.tensor] = sparsifier.state[group.tensor]?.mask }
    sparsifier.squash(&model)
    let seconds = Dictionary(steps.map { ($0.tensor, $0.seconds) }, uniquingKeysWith: +)

    var records: [LayerRecord] = []
    for (k, (index, name, original)) in selected.enumerated() {
      progress.show(k, name, "report")
      guard let pruned = model.parameter(named: name), let reference = dense.parameter(named: name), let mask = masks[name] else {
        continue
      }
      var stored = StoredTensor.dense(pruned)
      if let compress {
        let form = compress.lowercased() == "auto"
          ? WeightForm.fileForm(forPruned: parsedPattern, dtype: pruned.dtype) : try fileForm(compress, option: "--compress")
        stored = try stored.stored(as: form, name: name)
      }
      archive.tensors[index].value = stored
      let search = permutations[name]
      records.append(
        LayerRecord(
          tensor: name, shape: original.shape, dtype: original.dtype.rawValue, method: method.rawValue,
          pattern: parsedPattern.description, sparsity: pruned.sparsity,
          conforms: pruned.conforms(to: parsedPattern),
          keptNorm: PruningMetrics.keptNormFraction(original: reference, mask: mask),
          calibrationError: calibrationOf[name].map {
            PruningMetrics.relativeOutputError(original: reference, pruned: pruned, inputs: $0)
          },
          heldOutError: heldOutOf[name].map {
            PruningMetrics.relativeOutputError(original: reference, pruned: pruned, inputs: $0)
          },
          permutationGain: search?.relativeGain, permutationEfficacy: search?.efficacy, format: stored.form.description,
          seconds: seconds[name] ?? 0))
    }
    for (name, search) in permutations.sorted(by: { $0.key < $1.key }) {
      archive.tensors.append((name + ChannelPermutation.nameSuffix, .dense(search.permutation.tensor)))
    }
    archive.metadata["sparsity_pruning"] = Self.describe(configuration, permuted: !permutations.isEmpty)
    progress.finish()
    try archive.write(to: output)

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

  /// N and M for --permute, or `nil` without it.
  func permutationShape(_ pattern: SparsityPattern) throws -> (Int, Int)? {
    guard permute else { return nil }
    guard case let .nOfM(n, m) = pattern, n < m, m <= 8 else {
      throw CLIError("--permute needs an N:M pattern with N < M ≤ 8, got \(pattern)")
    }
    return (n, m)
  }

  static func readInputs(_ path: String) throws -> CalibrationInputs {
    let file = try SafetensorsFile(contentsOf: path)
    let inputs = CalibrationInputs(fileTensors: try file.tensors())
    if inputs.inputs.isEmpty {
      throw CLIError("\(path) holds no W:input tensor (calibration inputs are named after their weight plus ':input')")
    }
    return inputs
  }

  static func describe(_ c: PruningConfiguration, permuted: Bool) -> String {
    var parts = ["\"method\":\"\(c.method)\"", "\"pattern\":\"\(c.pattern)\"", "\"sparsity_level\":\(c.sparsityLevel)"]
    parts.append("\"scope\":\"\(c.effectiveScope.rawValue)\"")
    if permuted { parts.append("\"permutation_suffix\":\"\(ChannelPermutation.nameSuffix)\"") }
    return "{" + parts.joined(separator: ",") + "}"
  }

  static func reportTable(_ records: [LayerRecord]) -> String {
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
  let total: Int
  let enabled: Bool
  var shown = false

  init(total: Int) {
    self.total = total
    #if canImport(Glibc)
      enabled = isatty(2) != 0
    #else
      enabled = false
    #endif
  }

  func show(_ index: Int, _ name: String, _ stage: String) {
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
