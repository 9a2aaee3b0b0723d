import SparsityCore

/// What one tensor's zeros look like: how many, which patterns they follow, and what each
/// format would cost to store.
///
/// ```swift
/// let report = SparsityReport(name: "fc1.weight", tensor: weight)
/// report.sparsity            // 0.5
/// report.satisfiedPatterns   // ["2:4", "4:8"]
/// report.bytes["csr"]        // bytes as CSR
/// ```
public struct SparsityReport: Sendable, Codable, Equatable {
  /// A pattern checked against the tensor.
  public struct PatternCheck: Sendable, Codable, Equatable {
    /// The pattern's text form (`2:4`, `block:16x16`, `rows`).
    public var pattern: String
    /// Whether every group or block obeys it.
    public var conforms: Bool
    /// Fraction of its groups or blocks (or rows, columns) that are entirely zero.
    public var emptyFraction: Double
  }

  public var name: String
  public var dtype: String
  public var shape: [Int]
  public var elements: Int
  public var nonzeros: Int
  /// Fraction of zero elements.
  public var sparsity: Double
  /// The N:M, block, row and column patterns checked, in a fixed order.
  public var patterns: [PatternCheck]
  /// The patterns the zeros follow (only for a tensor that has zeros), e.g. `["2:4", "4:8"]`.
  public var satisfiedPatterns: [String]
  /// Bytes to store the tensor: `dense`, and each format that can hold it (`coo`, `csr`,
  /// `bsr:RxC`, `2:4` in the logical form, `2:4-cutlass` as PyTorch stores it).
  public var bytes: [String: Int]

  /// N:M patterns checked, in order.
  public static let nOfMPatterns: [SparsityPattern] = [
    .nOfM(n: 2, m: 4), .nOfM(n: 1, m: 4), .nOfM(n: 4, m: 8), .nOfM(n: 2, m: 8), .nOfM(n: 1, m: 2),
  ]
  /// Square block sizes checked.
  public static let blockSizes = [4, 8, 16, 32, 64]

  /// Analyses `tensor`, viewed as `[count / last, last]` (see ``SparsityPattern``).
  ///
  /// - Precondition: the dtype is byte-aligned (zero tests are defined).
  public init(name: String, tensor: Tensor) {
    self.name = name
    self.dtype = tensor.dtype.rawValue
    self.shape = tensor.shape
    self.elements = tensor.count
    let mask = Mask(nonzerosOf: tensor)
    self.nonzeros = mask.keptCount
    self.sparsity = tensor.count == 0 ? 0 : 1 - Double(nonzeros) / Double(tensor.count)
    let (rows, columns) = mask.matrixShape
    var checked = SparsityReport.nOfMPatterns
    checked += SparsityReport.blockSizes.filter { $0 <= max(rows, columns) }.map { .block(rows: $0, columns: $0) }
    checked += [.rows, .columns]
    self.patterns = checked.map { pattern in
      let stats = mask.statistics(for: pattern)
      return PatternCheck(pattern: pattern.description, conforms: stats.conforms, emptyFraction: stats.emptyFraction)
    }
    // A conforming block, row or column pattern with zeros necessarily has empty cells.
    self.satisfiedPatterns = nonzeros < elements ? patterns.filter(\.conforms).map(\.pattern) : []
    self.bytes = SparsityReport.footprints(of: tensor, rows: rows, columns: columns)
  }

  private static func footprints(of tensor: Tensor, rows: Int, columns: Int) -> [String: Int] {
    var bytes = ["dense": tensor.byteCount]
    let matrix = tensor.reshaped([rows, columns])
    if let csr = try? CSRMatrix(dense: matrix) {
      bytes["csr"] = csr.byteCount
      bytes["coo"] = COOMatrix(csr).byteCount
    }
    for b in blockSizes where rows % b == 0 && columns % b == 0 {
      if let m = try? BSRMatrix(dense: matrix, blockRows: b, blockColumns: b) {
        bytes["bsr:\(b)x\(b)"] = m.byteCount
      }
    }
    if let m = try? SemiStructuredMatrix(dense: matrix, n: 2, m: 4) { bytes["2:4"] = m.byteCount }
    if let m = try? CUTLASSSemiStructured(compressing: matrix, name: "") { bytes["2:4-cutlass"] = m.byteCount }
    return bytes
  }
}
