import SparsityCore

/// Semi-structured N:M sparsity in its logical form: for every group of `m` consecutive
/// elements of a row, exactly `n` value slots and the positions (0..<m) they come from.
///
/// `values` is `[rows, groups · n]` and `indices` holds one position per value, strictly
/// increasing inside a group. A group with fewer than `n` nonzeros is filled with zero values
/// at positions taken in the order `m − n, m − n + 1, …, m − 1, 0, 1, …` — for 2:4 exactly the
/// positions the CUTLASS encoding picks, so the logical form of any 2:4 matrix re-encodes to
/// PyTorch's metadata without looking at the dense matrix. When the column count is not a
/// multiple of `m`, the last group is read as padded with zeros (its filler positions may lie
/// past the last column; their values are zero).
///
/// The hardware-specific storage of 2:4 (CUTLASS, as PyTorch holds it) is
/// ``CUTLASSSemiStructured``; this type is the format-neutral one the CPU kernels use.
///
/// ```swift
/// let w24 = try SemiStructuredMatrix(dense: weight, n: 2, m: 4, name: "fc1.weight")
/// w24.byteCount   // values + 2 bits per kept value: 53% of dense for f32
/// ```
public struct SemiStructuredMatrix: SparseMatrix, Equatable {
  public static let formatName = "semi-structured"
  public let shape: [Int]
  /// Kept values per group.
  public let n: Int
  /// Group size along a row.
  public let m: Int
  /// `[rows, groups · n]` kept values.
  public let values: Tensor
  /// One position in `0..<m` per value, row-major like `values`.
  public let indices: [UInt8]

  public var dtype: DType { values.dtype }
  public var storedValueCount: Int { values.count }
  /// Groups per row: `⌈columns / m⌉`.
  public var groupsPerRow: Int { (shape[1] + m - 1) / m }
  /// Bits needed for one position: ⌈log2 m⌉ (2 for 2:4).
  public var bitsPerIndex: Int { m <= 1 ? 0 : Int.bitWidth - (m - 1).leadingZeroBitCount }
  /// Values plus bit-packed positions (2 bits per value for 2:4, as in the CUTLASS metadata).
  public var byteCount: Int { values.byteCount + (indices.count * bitsPerIndex + 7) / 8 }
  /// The pattern this matrix obeys.
  public var pattern: SparsityPattern { .nOfM(n: n, m: m) }

  public init(dense: Tensor, name: String) throws(SparseFormatError) {
    try self.init(dense: dense, n: 2, m: 4, name: name)
  }

  /// Compresses `dense`, which must hold at most `n` nonzeros in every group of `m`.
  ///
  /// - Throws: ``SparseFormatError/patternViolation(tensor:pattern:rows:columns:nonzeros:allowed:)``
  ///   naming the first group (row-major) with too many nonzeros.
  public init(dense: Tensor, n: Int, m: Int, name: String = "tensor") throws(SparseFormatError) {
    let (rows, columns, width) = try MatrixInput.check(dense, name: name, format: "\(n):\(m)")
    guard (try? SparsityPattern.nOfM(n: n, m: m).validated()) != nil else {
      throw .shapeRule(tensor: name, shape: dense.shape, rule: "N:M needs 1 ≤ N ≤ M ≤ 16, got \(n):\(m)")
    }
    let keep = Mask(nonzerosOf: dense)
    if let violation = keep.firstViolation(of: .nOfM(n: n, m: m)) {
      throw violation.error(tensor: name, pattern: .nOfM(n: n, m: m))
    }
    let groups = (columns + m - 1) / m
    var values = Tensor(zeros: [rows, groups * n], dtype: dense.dtype)
    var indices = [UInt8](repeating: 0, count: rows * groups * n)
    let fillOrder = SemiStructuredMatrix.fillOrder(n: n, m: m)
    dense.withUnsafeBytes { src in
      values.withUnsafeMutableBytes { dst in
        keep.tensor.withUnsafeBufferPointer(as: Bool.self) { keep in
          var chosen = [Bool](repeating: false, count: m)
          for r in 0..<rows {
            for g in 0..<groups {
              let c0 = g * m
              let width_ = Swift.min(m, columns - c0)
              var count = 0
              for j in 0..<m { chosen[j] = j < width_ && keep[r * columns + c0 + j]; if chosen[j] { count += 1 } }
              for j in fillOrder where count < n && !chosen[j] {
                chosen[j] = true
                count += 1
              }
              var slot = (r * groups + g) * n
              for j in 0..<m where chosen[j] {
                indices[slot] = UInt8(j)
                if j < width_ {
                  copyElement(dst.baseAddress!, slot, src.baseAddress!, r * columns + c0 + j, width: width)
                }
                slot += 1
              }
            }
          }
        }
      }
    }
    self.shape = dense.shape
    self.n = n
    self.m = m
    self.values = values
    self.indices = indices
  }

  /// Assembles a matrix from its arrays and checks the invariants.
  public init(shape: [Int], n: Int, m: Int, values: Tensor, indices: [UInt8], name: String)
    throws(SparseFormatError)
  {
    try MatrixInput.checkShape(shape, name: name, format: "\(n):\(m)")
    guard (try? SparsityPattern.nOfM(n: n, m: m).validated()) != nil else {
      throw .shapeRule(tensor: name, shape: shape, rule: "N:M needs 1 ≤ N ≤ M ≤ 16, got \(n):\(m)")
    }
    self.shape = shape
    self.n = n
    self.m = m
    self.values = values
    self.indices = indices
    try checkInvariants(name: name)
  }

  /// Bytes per row of ``packedPositions``.
  public var packedPositionBytesPerRow: Int { (groupsPerRow * n * bitsPerIndex + 7) / 8 }

  /// The positions as files store them: ``bitsPerIndex`` bits each (2 for 2:4), row-major, packed
  /// least significant bits first, each row starting on a new byte, unused bits zero —
  /// `[rows, ⌈groups · n · bits / 8⌉]` U8 (2:4: one byte holds a row's positions of two groups).
  public var packedPositions: Tensor {
    let (rows, perRow, bits, count) = (shape[0], packedPositionBytesPerRow, bitsPerIndex, groupsPerRow * n)
    var bytes = [UInt8](repeating: 0, count: rows * perRow)
    for r in 0..<rows {
      for i in 0..<count {
        let bit = i * bits
        let value = UInt16(indices[r * count + i]) << UInt16(bit % 8)
        bytes[r * perRow + bit / 8] |= UInt8(truncatingIfNeeded: value)
        if bit % 8 + bits > 8 { bytes[r * perRow + bit / 8 + 1] |= UInt8(truncatingIfNeeded: value >> 8) }
      }
    }
    return Tensor(bytes, shape: [rows, perRow])
  }

  /// Assembles a matrix from its file arrays (``values`` and ``packedPositions``) and checks
  /// every invariant, the position bytes' shape and unused bits included.
  ///
  /// - Throws: ``SparseFormatError/invalidEncoding(tensor:format:detail:)`` naming the broken rule.
  public init(shape: [Int], n: Int, m: Int, values: Tensor, packedPositions: Tensor, name: String) throws(SparseFormatError) {
    try MatrixInput.checkShape(shape, name: name, format: "\(n):\(m)")
    guard (try? SparsityPattern.nOfM(n: n, m: m).validated()) != nil else {
      throw .shapeRule(tensor: name, shape: shape, rule: "N:M needs 1 ≤ N ≤ M ≤ 16, got \(n):\(m)")
    }
    for extent in shape { try MatrixInput.checkIndexRange(extent, name: name, shape: shape, format: "\(n):\(m)") }
    let bits = m <= 1 ? 0 : Int.bitWidth - (m - 1).leadingZeroBitCount
    let (rows, count) = (shape[0], (shape[1] + m - 1) / m * n)
    let perRow = (count * bits + 7) / 8
    guard packedPositions.dtype == .uint8, packedPositions.shape == [rows, perRow] else {
      throw .invalidEncoding(
        tensor: name, format: "\(n):\(m)",
        detail: "positions must be U8 [\(rows), \(perRow)] (\(bits)-bit positions of \(count) values per row), got \(packedPositions.dtype) \(packedPositions.shape)")
    }
    var indices = [UInt8](repeating: 0, count: rows * count)
    let fieldMask = UInt16(1 << bits) - 1
    let unusedBits = perRow * 8 - count * bits
    let badRow: Int? = packedPositions.withUnsafeBufferPointer(as: UInt8.self) { bytes in
      for r in 0..<rows {
        let row = bytes.baseAddress! + r * perRow
        for i in 0..<count {
          let bit = i * bits
          var word = UInt16(row[bit / 8])
          if bit / 8 + 1 < perRow { word |= UInt16(row[bit / 8 + 1]) << 8 }
          indices[r * count + i] = UInt8((word >> UInt16(bit % 8)) & fieldMask)
        }
        if unusedBits > 0, row[perRow - 1] >> UInt8(8 - unusedBits) != 0 { return r }
      }
      return nil
    }
    if let badRow {
      throw .invalidEncoding(tensor: name, format: "\(n):\(m)", detail: "row \(badRow): the unused bits after the last position must be zero")
    }
    try self.init(shape: shape, n: n, m: m, values: values, indices: indices, name: name)
  }

  /// Filler positions for groups with fewer than `n` nonzeros: `m − n, …, m − 1, 0, 1, …`.
  static func fillOrder(n: Int, m: Int) -> [Int] { Array((m - n)..<m) + Array(0..<(m - n)) }

  public func dense() -> Tensor {
    var result = Tensor(zeros: shape, dtype: dtype)
    let (rows, columns) = (shape[0], shape[1])
    let groups = groupsPerRow
    let width = values.elementByteWidth
    values.withUnsafeBytes { src in
      result.withUnsafeMutableBytes { dst in
        for r in 0..<rows {
          for g in 0..<groups {
            for s in 0..<n {
              let slot = (r * groups + g) * n + s
              let c = g * m + Int(indices[slot])
              if c < columns {
                copyElement(dst.baseAddress!, r * columns + c, src.baseAddress!, slot, width: width)
              }
            }
          }
        }
      }
    }
    return result
  }

  public func checkInvariants(name: String) throws(SparseFormatError) {
    let format = "\(n):\(m)"
    let groups = groupsPerRow
    let expected = [shape[0], groups * n]
    guard values.shape == expected, values.dtype.byteWidth != nil,
      indices.count == values.count
    else {
      throw .invalidEncoding(
        tensor: name, format: format,
        detail: "values \(values.shape) and \(indices.count) indices; expected \(expected) of each")
    }
    let columns = shape[1]
    var zeroFlags = [Bool]()
    zeroFlags.reserveCapacity(values.count)
    values.forEachZeroFlag { zeroFlags.append($0) }
    for slot in 0..<indices.count {
      let (row, group, s) = (slot / (groups * n), (slot / n) % groups, slot % n)
      let position = Int(indices[slot])
      guard position < m, s == 0 || position > Int(indices[slot - 1]) else {
        throw .invalidEncoding(
          tensor: name, format: format,
          detail: "row \(row), group \(group): positions must be increasing and below \(m)")
      }
      guard group * m + position < columns || zeroFlags[slot] else {
        throw .invalidEncoding(
          tensor: name, format: format,
          detail: "row \(row), group \(group): a nonzero value sits past the last column")
      }
    }
  }
}
