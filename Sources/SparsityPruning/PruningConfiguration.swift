import SparsityCore
import SparsityFormats

/// How scores are computed.
public enum PruningMethod: String, Sendable, Hashable, Codable, CaseIterable, CustomStringConvertible {
  /// `|W|` (``Magnitude``).
  case magnitude
  /// PyTorch's `WeightNormSparsifier`: block means of `|W|` or `W²` (``WeightNorm``).
  case weightNorm = "norm"
  /// `|W_ij| · ‖X_j‖₂` (``Wanda``); needs calibration inputs.
  case wanda
  /// OBS-based pruning with weight updates (``SparseGPT``); needs calibration inputs.
  case sparseGPT = "sparsegpt"

  /// Whether the method needs each layer's calibration inputs.
  public var needsCalibration: Bool { self == .wanda || self == .sparseGPT }

  public var description: String { rawValue }
}

/// Everything that decides how one tensor is pruned: the defaults of a ``Sparsifier``, which
/// per-tensor ``TensorConfiguration``s override.
///
/// ```swift
/// var config = PruningConfiguration(method: .wanda, pattern: .unstructured, sparsityLevel: 0.5)
/// config.pattern = .twoFour; config.sparsityLevel = 1
/// ```
///
/// `sparsityLevel` means what PyTorch's `sparsity_level` means: the fraction of the pattern's
/// cells that are pruned — elements (unstructured), blocks, rows or columns — and for N:M
/// patterns the fraction of groups that are made N:M (1 = all; see
/// ``Mask/init(scores:pattern:sparsityLevel:scope:name:)``).
///
/// With ``PruningMethod/weightNorm`` the pattern selects PyTorch's `sparse_block_shape` and
/// `zeros_per_block`: `block:RxC` → `(R, C)`, zeros `zerosPerBlock ?? R·C`; `N:M` → `(1, M)`,
/// zeros `M − N`; `N:RxC` → `(R, C)`, zeros `R·C − N`; `unstructured` → `(1, 1)`; `rows` →
/// `(1, in)`; `columns` → `(out, 1)`. Its block count rounds half to even (PyTorch's `round`),
/// where the other methods take ⌊level · cells⌋.
public struct PruningConfiguration: Sendable, Hashable {
  /// The scoring method (default magnitude).
  public var method: PruningMethod
  /// Where zeros may be (default unstructured).
  public var pattern: SparsityPattern
  /// Fraction of cells pruned, 0 … 1 (default 0.5).
  public var sparsityLevel: Double
  /// Comparison group; `nil` picks the method's own: `.row` for unstructured Wanda (the
  /// paper's per-output comparison), `.layer` otherwise.
  public var scope: ComparisonScope?
  /// Weight norm only: zeros per block when the pattern is `block:RxC` (`nil` = whole block).
  public var zerosPerBlock: Int?
  /// Weight norm only: L1 or L2 (default L2, as PyTorch).
  public var norm: BlockNorm
  /// SparseGPT only.
  public var sparseGPT: SparseGPTOptions

  /// A configuration; every option has PyTorch's or the method's published default.
  public init(
    method: PruningMethod = .magnitude, pattern: SparsityPattern = .unstructured, sparsityLevel: Double = 0.5,
    scope: ComparisonScope? = nil, zerosPerBlock: Int? = nil, norm: BlockNorm = .l2,
    sparseGPT: SparseGPTOptions = SparseGPTOptions()
  ) {
    self.method = method
    self.pattern = pattern
    self.sparsityLevel = sparsityLevel
    self.scope = scope
    self.zerosPerBlock = zerosPerBlock
    self.norm = norm
    self.sparseGPT = sparseGPT
  }

  /// The comparison group actually used.
  public var effectiveScope: ComparisonScope {
    scope ?? (method == .wanda && pattern == .unstructured ? .row : .layer)
  }

  /// PyTorch `WeightNormSparsifier` parameters for a weight of `shape` (see the type's
  /// documentation).
  public func weightNormParameters(for shape: [Int]) throws(PruningError)
    -> (blockRows: Int, blockColumns: Int, zerosPerBlock: Int)
  {
    let (rows, columns) = Mask.matrixView(shape)
    func noZeros(_ implied: Int) throws(PruningError) -> Int {
      if let z = zerosPerBlock, z != implied {
        throw .invalidOption(
          name: "zerosPerBlock", rule: "pattern \(pattern) already fixes \(implied) zeros per block; got \(z)")
      }
      return implied
    }
    switch pattern {
    case .unstructured: return (1, 1, try noZeros(1))
    case let .block(r, c): return (r, c, zerosPerBlock ?? r * c)
    case let .nOfM(n, m): return (1, m, try noZeros(m - n))
    case let .nOfMInBlocks(n, r, c): return (r, c, try noZeros(r * c - n))
    case .rows: return (1, Swift.max(columns, 1), try noZeros(Swift.max(columns, 1)))
    case .columns: return (Swift.max(rows, 1), 1, try noZeros(Swift.max(rows, 1)))
    }
  }

  /// Checks the options against each other (not against a tensor).
  public func validated() throws(PruningError) -> PruningConfiguration {
    do { _ = try pattern.validated() } catch {
      throw .unsupportedPattern(tensor: nil, method: method.rawValue, pattern: pattern, rule: error.rule)
    }
    if method == .weightNorm {
      guard !sparsityLevel.isNaN else {
        throw .invalidSparsity(tensor: nil, value: sparsityLevel, rule: "the sparsity level is not a number")
      }
    } else {
      try Mask.checkLevel(sparsityLevel, tensor: nil)
    }
    if zerosPerBlock != nil && method != .weightNorm {
      throw .invalidOption(name: "zerosPerBlock", rule: "applies to the weight-norm method only")
    }
    if effectiveScope == .global && (method != .magnitude || pattern != .unstructured) {
      throw .invalidOption(name: "scope", rule: "global ranking is for unstructured magnitude pruning")
    }
    if effectiveScope == .row && pattern != .unstructured {
      throw .invalidOption(name: "scope", rule: "the row scope applies to unstructured sparsity only")
    }
    if method == .sparseGPT, case .nOfM = pattern, sparsityLevel != 1 {
      throw .unsupportedPattern(
        tensor: nil, method: "sparsegpt", pattern: pattern, rule: "it makes every group N:M; the sparsity level must be 1")
    }
    return self
  }

  /// Prunes one weight (not global magnitude, which ranks several tensors together).
  ///
  /// - Parameters:
  ///   - weight: the current weight (for a ``Sparsifier``: already multiplied by its mask).
  ///   - statistics: the layer's calibration statistics; required by Wanda and SparseGPT.
  /// - Returns: the mask, and for SparseGPT the updated weight.
  public func prune(weight: Tensor, name: String, statistics: LayerInputStatistics?) throws(PruningError)
    -> (mask: Mask, updatedWeight: Tensor?)
  {
    switch method {
    case .magnitude:
      return (try Magnitude.mask(for: weight, pattern: pattern, sparsityLevel: sparsityLevel, scope: effectiveScope, name: name), nil)
    case .weightNorm:
      _ = try Magnitude.finiteValues(weight, name: name)
      let p = try weightNormParameters(for: weight.shape)
      let mask = try WeightNorm.mask(
        for: weight, sparsityLevel: sparsityLevel, blockRows: p.blockRows, blockColumns: p.blockColumns,
        zerosPerBlock: p.zerosPerBlock, norm: norm, name: name)
      return (mask, nil)
    case .wanda:
      guard let statistics else {
        throw .missingCalibration(tensor: name, expectedName: name + CalibrationInputs.nameSuffix)
      }
      return (try Wanda.mask(for: weight, statistics: statistics, pattern: pattern, sparsityLevel: sparsityLevel, scope: effectiveScope, name: name), nil)
    case .sparseGPT:
      guard let statistics else {
        throw .missingCalibration(tensor: name, expectedName: name + CalibrationInputs.nameSuffix)
      }
      let result = try SparseGPT.prune(
        weight: weight, hessian: statistics.hessian(), pattern: pattern, sparsityLevel: sparsityLevel,
        scope: effectiveScope, options: sparseGPT, name: name)
      return (result.mask, result.weight)
    }
  }
}

extension PruningConfiguration: Codable {
  enum CodingKeys: String, CodingKey {
    case method, pattern, sparsityLevel = "sparsity_level", scope, zerosPerBlock = "zeros_per_block", norm
    case dampening, blockSize = "block_size"
  }

  public init(from decoder: any Decoder) throws {
    let c = try decoder.container(keyedBy: CodingKeys.self)
    method = try c.decode(PruningMethod.self, forKey: .method)
    let text = try c.decode(String.self, forKey: .pattern)
    guard let pattern = SparsityPattern(text) else {
      throw DecodingError.dataCorruptedError(forKey: .pattern, in: c, debugDescription: "'\(text)' is not a sparsity pattern")
    }
    self.pattern = pattern
    sparsityLevel = try c.decode(Double.self, forKey: .sparsityLevel)
    scope = try c.decodeIfPresent(ComparisonScope.self, forKey: .scope)
    zerosPerBlock = try c.decodeIfPresent(Int.self, forKey: .zerosPerBlock)
    norm = try c.decodeIfPresent(BlockNorm.self, forKey: .norm) ?? .l2
    sparseGPT = SparseGPTOptions(
      dampening: try c.decodeIfPresent(Double.self, forKey: .dampening) ?? 0.01,
      blockSize: try c.decodeIfPresent(Int.self, forKey: .blockSize) ?? 128)
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.container(keyedBy: CodingKeys.self)
    try c.encode(method, forKey: .method)
    try c.encode(pattern.description, forKey: .pattern)
    try c.encode(sparsityLevel, forKey: .sparsityLevel)
    try c.encodeIfPresent(scope, forKey: .scope)
    try c.encodeIfPresent(zerosPerBlock, forKey: .zerosPerBlock)
    try c.encode(norm, forKey: .norm)
    try c.encode(sparseGPT.dampening, forKey: .dampening)
    try c.encode(sparseGPT.blockSize, forKey: .blockSize)
  }
}

/// Per-tensor overrides of a ``Sparsifier``'s defaults (PyTorch's per-module config dicts):
/// every field that is set replaces the default's.
///
/// ```swift
/// try sparsifier.prepare(model, configurations: [
///   TensorConfiguration(tensor: "fc1.weight"),                          // defaults
///   TensorConfiguration(tensor: "fc2.weight", sparsityLevel: 0.9),      // override
/// ])
/// ```
public struct TensorConfiguration: Sendable, Hashable {
  /// The tensor's name (PyTorch's `tensor_fqn`).
  public var tensor: String
  /// Replaces ``PruningConfiguration/method``.
  public var method: PruningMethod?
  /// Replaces ``PruningConfiguration/pattern``.
  public var pattern: SparsityPattern?
  /// Replaces ``PruningConfiguration/sparsityLevel``.
  public var sparsityLevel: Double?
  /// Replaces ``PruningConfiguration/scope``.
  public var scope: ComparisonScope?
  /// Replaces ``PruningConfiguration/zerosPerBlock``.
  public var zerosPerBlock: Int?
  /// Replaces ``PruningConfiguration/norm``.
  public var norm: BlockNorm?
  /// Replaces ``PruningConfiguration/sparseGPT``.
  public var sparseGPT: SparseGPTOptions?

  /// Overrides for `tensor`; unset fields keep the defaults.
  public init(
    tensor: String, method: PruningMethod? = nil, pattern: SparsityPattern? = nil, sparsityLevel: Double? = nil,
    scope: ComparisonScope? = nil, zerosPerBlock: Int? = nil, norm: BlockNorm? = nil, sparseGPT: SparseGPTOptions? = nil
  ) {
    self.tensor = tensor
    self.method = method
    self.pattern = pattern
    self.sparsityLevel = sparsityLevel
    self.scope = scope
    self.zerosPerBlock = zerosPerBlock
    self.norm = norm
    self.sparseGPT = sparseGPT
  }

  /// `defaults` with this configuration's fields replacing theirs.
  public func applied(to defaults: PruningConfiguration) -> PruningConfiguration {
    var c = defaults
    if let method { c.method = method }
    if let pattern { c.pattern = pattern }
    if let sparsityLevel { c.sparsityLevel = sparsityLevel }
    if let scope { c.scope = scope }
    if let zerosPerBlock { c.zerosPerBlock = zerosPerBlock }
    if let norm { c.norm = norm }
    if let sparseGPT { c.sparseGPT = sparseGPT }
    return c
  }
}
