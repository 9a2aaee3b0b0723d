import SparsityCore
import SparsityFormats

/// Seeded random `float32` matrices with an exact sparsity pattern, for tests and benchmarks.
///
/// Values are uniform in [-1, 1) (never exactly zero where kept); the kept positions are
/// chosen uniformly at random with an exact count, so a "90%" matrix has exactly
/// `round(0.1 · count)` kept blocks (or elements).
///
/// ```swift
/// let w = SyntheticWeights.blockSparse(rows: 4096, columns: 1024, block: 32, sparsity: 0.9, seed: 1)
/// let bsr = try BSRMatrix(dense: w, blockRows: 32, blockColumns: 32)
/// ```
public enum SyntheticWeights {
  /// A `[rows, columns]` matrix whose zeros fit `form`: dense; 2:4 (exactly two kept per group;
  /// `sparsity` ignored); blocks of the form's size, `sparsity` of them zero; or unstructured
  /// with `sparsity` zeros (CSR).
  public static func matrix(_ form: WeightForm, rows: Int, columns: Int, sparsity: Double, seed: UInt64) -> Tensor {
    switch form.layout {
    case .dense: dense(rows: rows, columns: columns, seed: seed)
    case .nOfM: semiStructured(rows: rows, columns: columns, seed: seed)
    case let .block(r, c): blockSparse(rows: rows, columns: columns, blockRows: r, blockColumns: c, sparsity: sparsity, seed: seed)
    case .csr: unstructured(rows: rows, columns: columns, sparsity: sparsity, seed: seed)
    }
  }

  /// A dense `[rows, columns]` matrix.
  public static func dense(rows: Int, columns: Int, seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    var t = Tensor(zeros: [rows, columns], dtype: .float32)
    t.withUnsafeMutableBufferPointer(as: Float.self) { b in
      for i in 0..<b.count { b[i] = nonzeroUniform(&rng) }
    }
    return t
  }

  /// Uniform in [-1, 1) without zero.
  static func nonzeroUniform(_ rng: inout SeededGenerator) -> Float {
    while true {
      let v = Float(Double(rng.next() >> 40) * 0x1p-23 - 1)
      if v != 0 { return v }
    }
  }

  /// A matrix whose `blockRows × blockColumns` blocks are kept with exact count
  /// `round((1 - sparsity) · blocks)`.
  public static func blockSparse(
    rows: Int, columns: Int, blockRows: Int, blockColumns: Int, sparsity: Double, seed: UInt64
  ) -> Tensor {
    precondition(rows % blockRows == 0 && columns % blockColumns == 0, "shape must be a multiple of the block")
    let (gr, gc) = (rows / blockRows, columns / blockColumns)
    var rng = SeededGenerator(seed: seed)
    let keep = chosen(count: gr * gc, kept: Int(((1 - sparsity) * Double(gr * gc)).rounded()), &rng)
    var t = dense(rows: rows, columns: columns, seed: seed &+ 1)
    t.withUnsafeMutableBufferPointer(as: Float.self) { b in
      for r in 0..<rows {
        for c in 0..<columns where !keep[(r / blockRows) * gc + c / blockColumns] { b[r * columns + c] = 0 }
      }
    }
    return t
  }

  /// A matrix with square `block × block` blocks (see ``blockSparse(rows:columns:blockRows:blockColumns:sparsity:seed:)``).
  public static func blockSparse(rows: Int, columns: Int, block: Int, sparsity: Double, seed: UInt64) -> Tensor {
    blockSparse(rows: rows, columns: columns, blockRows: block, blockColumns: block, sparsity: sparsity, seed: seed)
  }

  /// A matrix with exactly `round((1 - sparsity) · count)` nonzeros at random positions.
  public static func unstructured(rows: Int, columns: Int, sparsity: Double, seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    let keep = chosen(count: rows * columns, kept: Int(((1 - sparsity) * Double(rows * columns)).rounded()), &rng)
    var t = dense(rows: rows, columns: columns, seed: seed &+ 1)
    t.withUnsafeMutableBufferPointer(as: Float.self) { b in
      for i in 0..<b.count where !keep[i] { b[i] = 0 }
    }
    return t
  }

  /// A 2:4 matrix: in every group of 4 along a row, 2 random positions kept (a ragged last
  /// group keeps at most 2 of its columns).
  public static func semiStructured(rows: Int, columns: Int, seed: UInt64) -> Tensor {
    var rng = SeededGenerator(seed: seed)
    var t = dense(rows: rows, columns: columns, seed: seed &+ 1)
    let pairs: [(Int, Int)] = [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]
    t.withUnsafeMutableBufferPointer(as: Float.self) { b in
      for r in 0..<rows {
        for g in stride(from: 0, to: columns, by: 4) {
          let (i0, i1) = pairs[Int(rng.next() % 6)]
          for j in 0..<4 where g + j < columns && j != i0 && j != i1 { b[r * columns + g + j] = 0 }
        }
      }
    }
    return t
  }

  /// `kept` of `count` flags set, uniformly at random (partial Fisher–Yates).
  static func chosen(count: Int, kept: Int, _ rng: inout SeededGenerator) -> [Bool] {
    let kept = Swift.max(0, Swift.min(count, kept))
    var flags = [Bool](repeating: false, count: count)
    if kept * 2 <= count {
      var set = 0
      while set < kept {
        let i = Int(rng.next() % UInt64(count))
        if !flags[i] {
          flags[i] = true
          set += 1
        }
      }
    } else {
      flags = [Bool](repeating: true, count: count)
      var cleared = 0
      while cleared < count - kept {
        let i = Int(rng.next() % UInt64(count))
        if flags[i] {
          flags[i] = false
          cleared += 1
        }
      }
    }
    return flags
  }
}
