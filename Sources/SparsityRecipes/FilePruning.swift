import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

/// `sparsity prune` as a library call: read a safetensors file → select its matrices → score
/// (magnitude, block norm, Wanda, SparseGPT; optionally after an N:M channel permutation) →
/// mask → store (dense with zeros, or compressed) → write atomically, with a report per tensor.
///
/// ```swift
/// var options = FilePruning.Options(configuration: PruningConfiguration(pattern: .twoFour, sparsityLevel: 1))
/// options.select = { $0.hasPrefix("encoder.") }
/// options.storage = .auto
/// let report = try FilePruning.prune("model.safetensors", to: "pruned.safetensors", options: options)
/// ```
public enum FilePruning {
  /// How pruned tensors are written: dense with zeros, a given form, or the smallest of the
  /// forms that could hold them.
  public struct Storage: Sendable, Equatable {
    private let fixed: WeightForm?

    /// Dense, in their dtype, with zeros.
    public static let dense = Storage(fixed: .dense)
    /// The fewest bytes among the pattern's own file form (``WeightForm/fileForm(forPruned:)``:
    /// N:M, BSR with the pattern's blocks), CSR and dense: never a form larger than another of them.
    public static let auto = Storage(fixed: nil)
    /// This form (N:M, CSR, BSR).
    public static func form(_ form: WeightForm) -> Storage { Storage(fixed: form) }

    /// `pruned` (a matrix pruned to `pattern`) as it is written, its values in `encoding`
    /// (int8: quantized per row after pruning, so the zeros stay).
    ///
    /// - Throws: ``SparseFormatError`` naming `name` when it does not fit the fixed form.
    public func store(_ pruned: Tensor, pattern: SparsityPattern, encoding: WeightForm.Encoding = .float32, name: String) throws
      -> StoredTensor
    {
      let dense = StoredTensor.dense(pruned)
      if let fixed { return try dense.stored(as: WeightForm(fixed.layout, encoding: encoding), name: name) }
      let candidates = [WeightForm.fileForm(forPruned: pattern), .csr, .dense].map { WeightForm($0.layout, encoding: encoding) }
      let best = dense.compactest(of: candidates, name: name)
      // Every candidate failing leaves the float tensor: quantize it dense (the error, if any, names the tensor).
      return encoding == .float32 || best.form.encoding == encoding ? best : try dense.stored(as: WeightForm(.dense, encoding: encoding), name: name)
    }
  }

  /// What to prune and how.
  public struct Options: Sendable {
    /// Method, pattern, sparsity level, scope and method options.
    public var configuration: PruningConfiguration
    /// Which tensors (by name) to prune; every floating-point matrix by default.
    public var select: @Sendable (String) -> Bool = { _ in true }
    /// Layer inputs for Wanda and SparseGPT (and the calibration error of the report).
    public var calibration: CalibrationInputs?
    /// Held-out layer inputs for the report's output error.
    public var heldOut: CalibrationInputs?
    /// Search an input-channel permutation first (N:M patterns, N < M ≤ 8).
    public var permute = false
    /// The permutation search's seed.
    public var seed: UInt64 = 0
    /// How the pruned tensors are stored.
    public var storage = Storage.dense
    /// The pruned tensors' value encoding: float32, or int8 (quantized after pruning).
    public var encoding = WeightForm.Encoding.float32

    public init(configuration: PruningConfiguration) {
        self.configuration = configuration
    }

    /// The options checked before any work: the configuration, calibration for the methods
    /// that need it, the permutation's pattern and a storable form.
    public func validated() throws -> Options {
      var checked = self
      checked.configuration = try configuration.validated()
      if configuration.method.needsCalibration && calibration == nil {
        throw FilePruningError("--method \(configuration.method) needs --calibration FILE with a W:input tensor per weight")
      }
      if permute { _ = try permutationGroup() }
      return checked
    }

    /// N and M of the permutation search.
    func permutationGroup() throws -> (n: Int, m: Int) {
      guard case let .nOfM(n, m) = configuration.pattern, n < m, m <= 8 else {
        throw FilePruningError("--permute needs an N:M pattern with N < M ≤ 8, got \(configuration.pattern)")
      }
      return (n, m)
    }
  }

  /// One pruned tensor's line of the report.
  public struct TensorReport: Codable, Sendable {
    public var tensor: String
    public var shape: [Int]
    public var dtype: String
    public var method: String
    public var pattern: String
    /// The fraction of zeros after pruning.
    public var sparsity: Double
    /// Whether the result follows the pattern.
    public var conforms: Bool
    /// The share of the weight's norm that the mask keeps.
    public var keptNorm: Double
    /// ‖XWᵀ − XŴᵀ‖/‖XWᵀ‖ on the calibration inputs.
    public var calibrationError: Double?
    /// The same on the held-out inputs.
    public var heldOutError: Double?
    public var permutationGain: Double?
    public var permutationEfficacy: Double?
    /// The stored form (``WeightForm`` spelling).
    public var format: String
    public var seconds: Double
  }

  /// Where the pipeline is: `(tensor index, tensor count, tensor name, stage)`.
  public typealias Progress = (_ index: Int, _ count: Int, _ tensor: String, _ stage: String) -> Void

  /// Prunes the selected matrices of `input` and writes every tensor to `output` (atomically:
  /// on any error nothing is written). Permutations are stored as `W:permutation` tensors and
  /// the configuration as the `sparsity_pruning` metadata entry.
  ///
  /// - Throws: ``FilePruningError`` for options that do not fit the file (nothing selected,
  ///   missing calibration rows), ``PruningError``, file and format errors naming the tensor.
  @discardableResult
  public static func prune(_ input: String, to output: String, options: Options, progress: @escaping Progress = { _, _, _, _ in })
    throws -> [TensorReport]
  {
    let options = try options.validated()
    let configuration = options.configuration
    let method = configuration.method
    var archive = try TensorArchive(contentsOf: input)
    var selected: [(index: Int, name: String, weight: Tensor)] = []
    for (i, entry) in archive.tensors.enumerated() where options.select(entry.name) {
      let dtype = entry.value.dtype
      guard entry.value.shape.count == 2, dtype.isFloatingPoint, dtype.isNumeric else { continue }
      selected.append((i, entry.name, entry.value.dense()))
    }
    if selected.isEmpty {
      throw FilePruningError("no floating-point matrix in \(input) matches the selection (nothing written)")
    }
    // Inputs of every selected weight, validated up front so that errors come before any work.
    var calibrationOf: [String: Tensor] = [:]
    var heldOutOf: [String: Tensor] = [:]
    for (_, name, weight) in selected {
      if let c = options.calibration { calibrationOf[name] = try c.inputs(forWeight: name, shape: weight.shape) }
      if let h = options.heldOut { heldOutOf[name] = try h.inputs(forWeight: name, shape: weight.shape) }
    }

    // Permutations (N:M only): weights and their inputs move to the permuted column order.
    var permutations: [String: PermutationSearch.Result] = [:]
    var model = NamedTensors(selected.map { ($0.name, $0.weight) })
    if options.permute {
      let (n, m) = try options.permutationGroup()
      for (k, (_, name, weight)) in selected.enumerated() {
        progress(k, selected.count, name, "permutation search")
        var scores = weight.abs()
        if method == .wanda, let x = calibrationOf[name] {
          scores = try Wanda.scores(for: weight, columnNorms: try LayerInputStatistics(inputs: x, name: name).columnNorms, name: name)
        }
        let result = try PermutationSearch.run(scores: scores, n: n, m: m, seed: options.seed, name: name)
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
      model, calibration: options.calibration == nil ? nil : CalibrationInputs(calibrationOf),
      progress: { index, _, name in progress(index, selected.count, name, method.rawValue) })
    var masks: [String: Mask] = [:]
    for group in sparsifier.groups { masks[group.tensor] = sparsifier.state[group.tensor]?.mask }
    sparsifier.squash(&model)
    let seconds = Dictionary(steps.map { ($0.tensor, $0.seconds) }, uniquingKeysWith: +)

    var reports: [TensorReport] = []
    for (k, (index, name, original)) in selected.enumerated() {
      progress(k, selected.count, name, "report")
      guard let pruned = model.parameter(named: name), let reference = dense.parameter(named: name), let mask = masks[name] else {
        continue
      }
      let stored = try options.storage.store(pruned, pattern: configuration.pattern, encoding: options.encoding, name: name)
      archive.tensors[index].value = stored
      let search = permutations[name]
      reports.append(
        TensorReport(
          tensor: name, shape: original.shape, dtype: original.dtype.rawValue, method: method.rawValue,
          pattern: configuration.pattern.description, sparsity: pruned.sparsity, conforms: pruned.conforms(to: configuration.pattern),
          keptNorm: PruningMetrics.keptNormFraction(original: reference, mask: mask),
          calibrationError: calibrationOf[name].map { PruningMetrics.relativeOutputError(original: reference, pruned: pruned, inputs: $0) },
          heldOutError: heldOutOf[name].map { PruningMetrics.relativeOutputError(original: reference, pruned: pruned, inputs: $0) },
          permutationGain: search?.relativeGain, permutationEfficacy: search?.efficacy, format: stored.form.description,
          seconds: seconds[name] ?? 0))
    }
    for (name, search) in permutations.sorted(by: { $0.key < $1.key }) {
      archive.tensors.append((name + ChannelPermutation.nameSuffix, .dense(search.permutation.tensor)))
    }
    archive.metadata["sparsity_pruning"] = describe(configuration, permuted: !permutations.isEmpty)
    try archive.write(to: output)
    return reports
  }

  /// The `sparsity_pruning` metadata entry: method, pattern, level, scope (and the permutation suffix).
  static func describe(_ c: PruningConfiguration, permuted: Bool) -> String {
    var parts = ["\"method\":\"\(c.method)\"", "\"pattern\":\"\(c.pattern)\"", "\"sparsity_level\":\(c.sparsityLevel)"]
    parts.append("\"scope\":\"\(c.effectiveScope.rawValue)\"")
    if permuted { parts.append("\"permutation_suffix\":\"\(ChannelPermutation.nameSuffix)\"") }
    return "{" + parts.joined(separator: ",") + "}"
  }

  /// Calibration inputs from a safetensors file of `W:input` tensors.
  ///
  /// - Throws: ``FilePruningError`` when the file holds none.
  public static func inputs(contentsOf path: String) throws -> CalibrationInputs {
    let file = try SafetensorsFile(contentsOf: path)
    let inputs = CalibrationInputs(fileTensors: try file.tensors())
    if inputs.inputs.isEmpty {
      throw FilePruningError("\(path) holds no W:input tensor (calibration inputs are named after their weight plus ':input')")
    }
    return inputs
  }
}

/// A pruning request that does not fit its file or options, in one line.
public struct FilePruningError: Error, CustomStringConvertible, Equatable, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}
