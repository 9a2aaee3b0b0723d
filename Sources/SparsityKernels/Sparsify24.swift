import Foundation
import SparsityCore
import SparsityFormats
import _SparsityKernelsImpl

/// Run-time 2:4 sparsification for sparse training (xFormers' `sp24`): a dense matrix made 2:4
/// along its rows **and** along its columns in one pass, with the mask to re-apply in the
/// backward pass.
///
/// Training needs both orientations of a sparse operand: `x · Wᵀ` forward, `dY · W` backward.
/// Each 4×4 tile of `A` keeps at most 2 elements per row and per column, so `A` is 2:4 along its
/// rows and `Aᵀ` along its rows too; ``sparsifyBothWays(_:algorithm:name:)`` writes both packed
/// for the 2:4 kernels, and the tile mask.
///
/// ```swift
/// let w24 = try Sparse24.sparsifyBothWays(weight, name: "fc1.weight")
/// let y = w24.weight.apply(x: x)                   // x · Wᵀ with W 2:4
/// let dx = w24.transposedWeight!.apply(x: dy)      // dY · W, with Wᵀ 2:4
/// let g24 = try Sparse24.apply(w24.mask, to: grad)  // the gradient, same mask
/// ```
public enum Sparse24 {
  /// How the kept elements of each 4×4 tile are chosen.
  ///
  /// Keys compare as floats to 19 of their 23 mantissa bits (values within 2⁻¹⁹ relative of each
  /// other rank as equal; PyTorch's and xFormers' tile kernels rank the 16-bit fp16/bf16
  /// values), −0 equals +0, ±∞ rank at the ends; NaN is rejected. Ties: among equal keys the
  /// element earlier in the tile's row-major order (`column + 4·row`) ranks first. Elements
  /// outside a ragged matrix are never kept (as if −∞).
  public enum Algorithm: String, CaseIterable, Sendable {
    /// The tile's 16 values by |x|, largest first; each is kept while its row and its column
    /// keep fewer than 2. Transposable; may keep fewer than 2 in a row or column (the 2:4 form
    /// then holds zeros). The choice for weights (xFormers' `largest_abs_values_greedy`).
    case largestAbsValuesGreedy
    /// The same greedy ranked by signed value: for post-ReLU² activations, all ≥ 0
    /// (`largest_values_greedy`).
    case largestValuesGreedy
    /// The 2 largest |x| of every row of 4, columns unconstrained (`largest_abs_notranspose`):
    /// not transposable, so the transposed form exists only when the mask happens to be.
    case largestAbsPerRow

    /// Whether every mask this algorithm makes keeps ≤ 2 per tile column.
    public var isTransposable: Bool { self != .largestAbsPerRow }

    var rule: Sparse24Rule {
      switch self {
      case .largestAbsValuesGreedy: .magnitudeGreedy
      case .largestValuesGreedy: .valueGreedy
      case .largestAbsPerRow: .magnitudePerRow
      }
    }
  }

  /// The kept elements of a `[rows, columns]` matrix: one `UInt16` per 4×4 tile, bit
  /// `column + 4·row` within the tile, tiles row-major `[⌈rows/4⌉, ⌈columns/4⌉]` (xFormers'
  /// `Indices4x4`). Every tile row keeps at most 2; bits outside the matrix are zero.
  public struct TileMask: Equatable, Sendable {
    /// Rows of the masked matrix.
    public let rows: Int
    /// Columns of the masked matrix.
    public let columns: Int
    /// One mask per tile, row-major.
    public let bits: [UInt16]
    /// Whether every tile column keeps at most 2 too (the mask of a 2:4 `Aᵀ`).
    public let isTransposable: Bool

    /// Tiles down: `⌈rows/4⌉`.
    public var tileRows: Int { (rows + 3) / 4 }
    /// Tiles across: `⌈columns/4⌉`.
    public var tileColumns: Int { (columns + 3) / 4 }

    /// Checks and wraps tile masks.
    ///
    /// - Throws: ``Sparse24Error/invalidMask(_:)`` when the count is not `⌈rows/4⌉·⌈columns/4⌉`,
    ///   a tile row keeps more than 2, or a bit lies outside the matrix.
    public init(rows: Int, columns: Int, bits: [UInt16]) throws(Sparse24Error) {
      guard rows >= 0, columns >= 0 else { throw .invalidMask("a mask of \(rows)x\(columns) elements") }
      let (tileRows, tileColumns) = ((rows + 3) / 4, (columns + 3) / 4)
      guard bits.count == tileRows * tileColumns else {
        throw .invalidMask(
          "\(bits.count) tile masks for a \(rows)x\(columns) matrix, which has \(tileRows)x\(tileColumns) tiles")
      }
      for i in 0..<tileRows {
        for j in 0..<tileColumns {
          let m = bits[i * tileColumns + j]
          var outside: UInt16 = 0
          for r in 0..<4 {
            for c in 0..<4 where 4 * i + r >= rows || 4 * j + c >= columns { outside |= 1 << (c + 4 * r) }
          }
          if m & outside != 0 {
            throw .invalidMask("tile (\(i), \(j)) keeps an element outside the \(rows)x\(columns) matrix")
          }
          for r in 0..<4 where (m >> (4 * r) & 0xF).nonzeroBitCount > 2 {
            throw .invalidMask("tile (\(i), \(j)) keeps \((m >> (4 * r) & 0xF).nonzeroBitCount) of row \(4 * i + r)'s 4; at most 2")
          }
        }
      }
      self.init(
        rows: rows, columns: columns, bits: bits,
        isTransposable: bits.withUnsafeBufferPointer { sparse24IsTransposable($0) })
    }

    init(rows: Int, columns: Int, bits: [UInt16], isTransposable: Bool) {
      self.rows = rows
      self.columns = columns
      self.bits = bits
      self.isTransposable = isTransposable
    }

    /// Whether element (`row`, `column`) is kept.
    public subscript(row: Int, column: Int) -> Bool {
      precondition((0..<rows).contains(row) && (0..<columns).contains(column), "(\(row), \(column)) outside \(rows)x\(columns)")
      return bits[(row / 4) * tileColumns + column / 4] >> ((column % 4) + 4 * (row % 4)) & 1 != 0
    }

    /// Kept elements.
    public var keptCount: Int { bits.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The mask element by element, a `bool` `[rows, columns]` tensor.
    public var elementMask: Mask {
      var kept = [Bool](repeating: false, count: rows * columns)
      for r in 0..<rows {
        for c in 0..<columns { kept[r * columns + c] = self[r, c] }
      }
      return Mask(Tensor(kept, shape: [rows, columns]))
    }

    /// The mask of the transposed matrix (each tile's bits transposed, tiles transposed), when
    /// it is a valid mask (``isTransposable``), else `nil`.
    public var transposed: TileMask? {
      guard isTransposable else { return nil }
      var out = [UInt16](repeating: 0, count: bits.count)
      for i in 0..<tileRows {
        for j in 0..<tileColumns {
          let m = bits[i * tileColumns + j]
          var t: UInt16 = 0
          for r in 0..<4 {
            for c in 0..<4 where m >> (c + 4 * r) & 1 != 0 { t |= 1 << (r + 4 * c) }
          }
          out[j * tileRows + i] = t
        }
      }
      return TileMask(rows: columns, columns: rows, bits: out, isTransposable: true)
    }
  }

  /// A matrix `A` made 2:4 both ways: its form along rows, `Aᵀ`'s along rows (columns of `A`),
  /// and the tile mask. The forms are held packed for the 2:4 kernels
  /// (``LinearWeight``s of form ``WeightForm/twoFour``).
  public struct BothWays: Sendable {
    /// The kept elements.
    public let mask: TileMask
    /// `A [rows, columns]` 2:4 along its rows, packed: `weight.apply(x:)` computes `x · Aᵀ`.
    public let weight: LinearWeight
    /// `Aᵀ [columns, rows]` 2:4 along its rows, packed: `transposedWeight.apply(x:)` computes
    /// `x · A`. `nil` when the mask is not transposable (``Algorithm/largestAbsPerRow``).
    public let transposedWeight: LinearWeight?
    let packed: PackedSemiStructuredWeight
    let packedTransposed: PackedSemiStructuredWeight?

    init(mask: TileMask, packed: PackedSemiStructuredWeight, transposed: PackedSemiStructuredWeight?) {
      self.mask = mask
      self.packed = packed
      packedTransposed = transposed
      weight = LinearWeight(form: .twoFour, n: packed.n, k: packed.k, density: 0.5, packed: packed)
      transposedWeight = transposed.map { LinearWeight(form: .twoFour, n: $0.n, k: $0.k, density: 0.5, packed: $0) }
    }

    /// `[rows, columns]` of `A`.
    public var shape: [Int] { [mask.rows, mask.columns] }

    /// Which packed form a product runs on.
    public enum Side: Sendable {
      /// `A`, 2:4 along its rows.
      case matrix
      /// `Aᵀ`, 2:4 along its rows (the columns of `A`); needs a transposable mask.
      case transposed
    }

    /// `y = x · Sᵀ (+ bias)` on the 2:4 kernel, with `S [n, k]` = `A` or `Aᵀ` (`side`), on raw
    /// row-major buffers: `x [tokens, k]`, or held as `xᵀ [k, tokens]` with `xTransposed`;
    /// `y [tokens, n]`, or written as `yᵀ [n, tokens]` with `yTransposed`; `bias [n]`.
    ///
    /// Every product of a 2:4 training step is one of these, none needing a transposed copy:
    /// with `A` a weight `W̃`, `x · W̃ᵀ` and `g · W̃` (`.transposed`); with `A` activations `h̃`,
    /// `h̃ · Wᵀ = (W · h̃ᵀ)ᵀ` (`x` = `W`, `yTransposed`) and `gᵀ · h̃` (`.transposed`, `x` = `g`
    /// held transposed).
    public func multiply(
      _ side: Side = .matrix, x: UnsafePointer<Float>, tokens: Int, xTransposed: Bool = false,
      into y: UnsafeMutablePointer<Float>, yTransposed: Bool = false, bias: UnsafePointer<Float>? = nil,
      workers: Int = Parallel.workerCount
    ) {
      if let problem = CPUFeatures.host.kernelSupportProblem { preconditionFailure(problem) }
      guard let operand = side == .matrix ? packed : packedTransposed else {
        preconditionFailure("Aᵀ has no 2:4 form: the mask is not transposable")
      }
      semiStructuredPanelLinear(
        weight: operand, x: x, m: tokens, xTransposed: xTransposed, y: y, yTransposed: yTransposed, bias: bias,
        workers: workers)
    }

    /// `A`'s 2:4 form in the logical layout (equal to `SemiStructuredMatrix(dense:)` of the
    /// masked `A`); unpacked from the packed form, a pass over it.
    public var matrix: SemiStructuredMatrix { Self.logical(packed) }

    /// `Aᵀ`'s 2:4 form in the logical layout, or `nil` (see ``transposedWeight``).
    public var transposedMatrix: SemiStructuredMatrix? { packedTransposed.map(Self.logical) }

    /// Bytes of both packed forms and the mask.
    public var byteCount: Int { packed.byteCount + (packedTransposed?.byteCount ?? 0) + 2 * mask.bits.count }

    private static func logical(_ p: PackedSemiStructuredWeight) -> SemiStructuredMatrix {
      let count = p.n * p.groups * 2
      var values = Tensor(zeros: [p.n, p.groups * 2], dtype: .float32)
      var positions = [UInt8](repeating: 0, count: count)
      values.withUnsafeMutableBufferPointer(as: Float.self) { v in
        positions.withUnsafeMutableBufferPointer { i in
          if count > 0 { p.logical(values: v.baseAddress!, positions: i.baseAddress!) }
        }
      }
      // The kernel wrote positions and values by SemiStructuredMatrix's own rules.
      return try! SemiStructuredMatrix(
        shape: [p.n, p.k], n: 2, m: 4, values: values, indices: positions, name: "sparsified")
    }
  }

  /// Makes `a` 2:4 both ways in one pass: chooses every 4×4 tile's kept elements by
  /// `algorithm`, and writes `A`'s and `Aᵀ`'s packed 2:4 forms and the mask.
  ///
  /// - Parameters:
  ///   - a: a `float32` matrix `[rows, columns]`, any sizes (ragged edge tiles included); `bfloat16`
  ///     and `float16` are read as the `float32` values they are exactly (the packed forms, like
  ///     the 2:4 kernels, are `float32`).
  ///   - algorithm: the selection; by default the transposable greedy by magnitude.
  ///   - name: names `a` in errors.
  /// - Throws: ``Sparse24Error`` for a tensor that is not a floating-point matrix or holds NaN, or a
  ///   CPU this build's kernels cannot run on.
  public static func sparsifyBothWays(
    _ a: Tensor, algorithm: Algorithm = .largestAbsValuesGreedy, name: String = "tensor"
  ) throws(Sparse24Error) -> BothWays {
    try sparsify(a, algorithm: algorithm, workers: Parallel.workerCount, name: name)
  }

  /// ``sparsifyBothWays(_:algorithm:name:)`` of the row-major `a [rows, columns]` read in place
  /// (a training step's buffers, without a copy into a ``Tensor``).
  public static func sparsifyBothWays(
    _ a: UnsafeBufferPointer<Float>, rows: Int, columns: Int, algorithm: Algorithm = .largestAbsValuesGreedy,
    name: String = "tensor"
  ) throws(Sparse24Error) -> BothWays {
    try checkBuffer(a.count, rows: rows, columns: columns, name: name)
    return try sparsify(a, rows: rows, columns: columns, algorithm: algorithm, workers: Parallel.workerCount, name: name)
  }

  /// Applies an existing mask to `a` (xFormers' `sparsify24_like` / `sparse24_apply`: a gradient
  /// takes its weight's mask): both 2:4 forms of `a` masked by `mask`; the transposed one only
  /// when `mask` is transposable. NaN values are kept or dropped like any other.
  ///
  /// - Throws: ``Sparse24Error/maskMismatch(tensor:shape:maskShape:)`` when the shapes differ,
  ///   or the errors of ``sparsifyBothWays(_:algorithm:name:)`` about `a`.
  public static func apply(_ mask: TileMask, to a: Tensor, name: String = "tensor") throws(Sparse24Error) -> BothWays {
    let a = try checkShape(of: a, against: mask, name: name)
    return a.withUnsafeBufferPointer(as: Float.self) { packed(mask, $0) }
  }

  /// ``apply(_:to:name:)`` to the row-major `a [mask.rows, mask.columns]` read in place.
  public static func apply(_ mask: TileMask, to a: UnsafeBufferPointer<Float>, name: String = "tensor") throws(Sparse24Error)
    -> BothWays
  {
    try checkBuffer(a.count, rows: mask.rows, columns: mask.columns, name: name)
    return packed(mask, a)
  }

  /// `a` with the elements `mask` does not keep set to zero, dense (xFormers'
  /// `sparse24_apply_dense_output`: the `dense` gradient mode).
  ///
  /// - Throws: as ``apply(_:to:name:)``.
  public static func applyDense(_ mask: TileMask, to a: Tensor, name: String = "tensor") throws(Sparse24Error) -> Tensor {
    let a = try checkShape(of: a, against: mask, name: name)
    var out = Tensor(shape: a.shape, dtype: .float32, storage: TensorStorage(uninitializedByteCount: a.count * 4))
    a.withUnsafeBufferPointer(as: Float.self) { x in
      out.withUnsafeMutableBufferPointer(as: Float.self) { y in masked(mask, x, into: y) }
    }
    return out
  }

  /// Zeroes, in place, the elements of the row-major `a [mask.rows, mask.columns]` that `mask`
  /// does not keep (``applyDense(_:to:name:)`` without a copy: the masked gradient of a step).
  public static func applyInPlace(_ mask: TileMask, to a: UnsafeMutableBufferPointer<Float>, name: String = "tensor")
    throws(Sparse24Error)
  {
    try checkBuffer(a.count, rows: mask.rows, columns: mask.columns, name: name)
    masked(mask, UnsafeBufferPointer(a), into: a)
  }

  /// Both packed forms of `a` under `mask` (sizes checked).
  private static func packed(_ mask: TileMask, _ a: UnsafeBufferPointer<Float>) -> BothWays {
    let (rows, columns) = (mask.rows, mask.columns)
    let forward = PackedSemiStructuredWeight(uninitializedN: rows, k: columns)
    let transposed = mask.isTransposable ? PackedSemiStructuredWeight(uninitializedN: columns, k: rows) : nil
    mask.bits.withUnsafeBufferPointer { m in
      // With no rule the kernel only reads the mask.
      _ = _SparsityKernelsImpl.sparsify24(
        a: a.baseAddress ?? UnsafePointer(bitPattern: 64)!, rows: rows, columns: columns, rule: nil,
        mask: UnsafeMutablePointer(mutating: m.baseAddress ?? UnsafePointer(bitPattern: 64)!), forward: forward,
        transposed: transposed, workers: Parallel.workerCount)
    }
    return BothWays(mask: mask, packed: forward, transposed: transposed)
  }

  /// `y = a` masked by `mask` (sizes checked; `y` may be `a`).
  private static func masked(_ mask: TileMask, _ a: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
    mask.bits.withUnsafeBufferPointer { m in
      guard let x = a.baseAddress, let m = m.baseAddress, let y = y.baseAddress else { return }
      sparse24MaskDense(a: x, rows: mask.rows, columns: mask.columns, mask: m, out: y, workers: Parallel.workerCount)
    }
  }

  /// ``sparsifyBothWays(_:algorithm:name:)`` on `workers` threads.
  package static func sparsify(_ a: Tensor, algorithm: Algorithm, workers: Int, name: String) throws(Sparse24Error) -> BothWays {
    let (rows, columns, a) = try check(a, name: name)
    let result = a.withUnsafeBufferPointer(as: Float.self) { x in
      Result { () throws(Sparse24Error) in
        try sparsify(x, rows: rows, columns: columns, algorithm: algorithm, workers: workers, name: name)
      }
    }
    return try result.get()
  }

  /// The sparsifier on a buffer of `rows × columns` values (sizes checked).
  private static func sparsify(
    _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int, algorithm: Algorithm, workers: Int, name: String
  ) throws(Sparse24Error) -> BothWays {
    let forward = PackedSemiStructuredWeight(uninitializedN: rows, k: columns)
    let transposed = algorithm.isTransposable ? PackedSemiStructuredWeight(uninitializedN: columns, k: rows) : nil
    var bits = [UInt16](repeating: 0, count: ((rows + 3) / 4) * ((columns + 3) / 4))
    let sawNaN = bits.withUnsafeMutableBufferPointer { m in
      _SparsityKernelsImpl.sparsify24(
        a: x.baseAddress ?? UnsafePointer(bitPattern: 64)!, rows: rows, columns: columns, rule: algorithm.rule,
        mask: m.baseAddress ?? UnsafeMutablePointer(bitPattern: 64)!, forward: forward, transposed: transposed,
        workers: workers)
    }
    if sawNaN {
      let index = x.firstIndex { $0.isNaN } ?? 0
      throw .notANumber(tensor: name, row: index / Swift.max(1, columns), column: index % Swift.max(1, columns))
    }
    let transposable = algorithm.isTransposable || bits.withUnsafeBufferPointer { sparse24IsTransposable($0) }
    let mask = TileMask(rows: rows, columns: columns, bits: bits, isTransposable: transposable)
    if transposed == nil && transposable {
      // The per-row choice happened to be transposable: make Aᵀ's form from the mask.
      return BothWays(mask: mask, packed: forward, transposed: packed(mask, x).packedTransposed)
    }
    return BothWays(mask: mask, packed: forward, transposed: transposed)
  }

  /// `a` fits `mask` (and passes ``check(_:name:)``); returns its `float32` values.
  private static func checkShape(of a: Tensor, against mask: TileMask, name: String) throws(Sparse24Error) -> Tensor {
    let (rows, columns, values) = try check(a, name: name)
    guard rows == mask.rows, columns == mask.columns else {
      throw .maskMismatch(tensor: name, shape: a.shape, maskShape: [mask.rows, mask.columns])
    }
    return values
  }

  /// A buffer of `count` values holds `[rows, columns]`; the CPU runs this build's kernels.
  private static func checkBuffer(_ count: Int, rows: Int, columns: Int, name: String) throws(Sparse24Error) {
    do { try CPUFeatures.requireKernelSupport() } catch { throw .unsupportedCPU(error.description) }
    guard rows >= 0, columns >= 0, count == rows * columns else {
      throw .maskMismatch(tensor: name, shape: [count], maskShape: [rows, columns])
    }
  }

  /// Rank 2, `float32` (or `bfloat16`/`float16`, converted), a CPU that runs this build's kernels;
  /// returns `(rows, columns)` and the `float32` values.
  private static func check(_ a: Tensor, name: String) throws(Sparse24Error) -> (rows: Int, columns: Int, values: Tensor) {
    do { try CPUFeatures.requireKernelSupport() } catch { throw .unsupportedCPU(error.description) }
    guard a.rank == 2 else { throw .notAMatrix(tensor: name, shape: a.shape) }
    switch a.dtype {
    case .float32: return (a.shape[0], a.shape[1], a)
    // Exactly representable in float32, so the choice and the kept values are the same.
    case .bfloat16, .float16: return (a.shape[0], a.shape[1], a.converted(to: .float32))
    default: throw .unsupportedDType(tensor: name, dtype: a.dtype)
    }
  }

  /// Times ``sparsifyBothWays(_:algorithm:name:)`` on a random `[rows, columns]` matrix with
  /// `workers` threads, median of `repetitions`, and the bandwidth it means counting the bytes
  /// read (`A`) and written (both packed forms and the mask): `call`, as a caller sees it (fresh
  /// output buffers, whose first-touch page faults the system serves), and `kernel`, the same
  /// pass into buffers written before (what the kernel itself streams); and `copy`, the memory
  /// bandwidth of this machine at this moment for the same kind of traffic: `A` copied into a
  /// buffer written before with non-temporal stores (``streamingCopy``), bytes read and written.
  /// Alternating, one of each per repetition.
  package static func measureThroughput(
    rows: Int, columns: Int, algorithm: Algorithm = .largestAbsValuesGreedy, workers: Int, repetitions: Int = 15
  ) throws(Sparse24Error) -> (call: Throughput, kernel: Throughput, copy: Throughput) {
    let a = SyntheticWeights.dense(rows: rows, columns: columns, seed: 24)
    let warm = try sparsify(a, algorithm: algorithm, workers: workers, name: "benchmark")
    var bits = warm.mask.bits
    var (calls, kernels, copies): ([Double], [Double], [Double]) = ([], [], [])
    var copy = [Float](repeating: 0, count: a.count)
    func seconds(since start: UInt64) -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9 }
    for _ in 0..<Swift.max(1, repetitions) {
      var start = DispatchTime.now().uptimeNanoseconds
      _ = try sparsify(a, algorithm: algorithm, workers: workers, name: "benchmark")
      calls.append(seconds(since: start))
      start = DispatchTime.now().uptimeNanoseconds
      a.withUnsafeBufferPointer(as: Float.self) { x in
        bits.withUnsafeMutableBufferPointer { m in
          _ = _SparsityKernelsImpl.sparsify24(
            a: x.baseAddress!, rows: rows, columns: columns, rule: algorithm.rule, mask: m.baseAddress!,
            forward: warm.packed, transposed: warm.packedTransposed, workers: workers)
        }
      }
      kernels.append(seconds(since: start))
      start = DispatchTime.now().uptimeNanoseconds
      a.withUnsafeBufferPointer(as: Float.self) { x in
        copy.withUnsafeMutableBufferPointer { y in
          _SparsityKernelsImpl.streamingCopy(x.baseAddress!, to: y.baseAddress!, count: x.count, workers: workers)
        }
      }
      copies.append(seconds(since: start))
    }
    func median(_ times: [Double], bytes: Int) -> Throughput {
      let seconds = times.sorted()[times.count / 2]
      return Throughput(seconds: seconds, gigabytesPerSecond: Double(bytes) / seconds * 1e-9)
    }
    return (
      median(calls, bytes: a.count * 4 + warm.byteCount), median(kernels, bytes: a.count * 4 + warm.byteCount),
      median(copies, bytes: 2 * a.count * 4)
    )
  }

  /// A median time and the bytes per second it means.
  package struct Throughput: Sendable {
    package var seconds: Double
    package var gigabytesPerSecond: Double
  }
}

/// A tensor that ``Sparse24`` cannot sparsify, or a mask that does not fit.
public enum Sparse24Error: Error, Equatable, Sendable, CustomStringConvertible {
  /// Not rank 2.
  case notAMatrix(tensor: String, shape: [Int])
  /// Not `float32`, `bfloat16` or `float16`.
  case unsupportedDType(tensor: String, dtype: DType)
  /// A NaN, which no ranking can place (the first one, row-major).
  case notANumber(tensor: String, row: Int, column: Int)
  /// The mask was made for another shape.
  case maskMismatch(tensor: String, shape: [Int], maskShape: [Int])
  /// Tile masks that break a rule (count, more than 2 per tile row, bits outside the matrix).
  case invalidMask(String)
  /// This build's kernels cannot run on this CPU (``KernelError/unsupportedCPU(_:)``'s text).
  case unsupportedCPU(String)

  public var description: String {
    switch self {
    case let .notAMatrix(tensor, shape):
      "tensor '\(tensor)' with shape \(shape) cannot be sparsified 2:4 both ways: it must be a matrix (rank 2)"
    case let .unsupportedDType(tensor, dtype):
      "tensor '\(tensor)' has dtype \(dtype); 2:4 sparsification takes float32, bfloat16 or float16"
    case let .notANumber(tensor, row, column):
      "tensor '\(tensor)' holds NaN at (\(row), \(column)); 2:4 sparsification cannot rank it"
    case let .maskMismatch(tensor, shape, maskShape):
      "tensor '\(tensor)' with shape \(shape) cannot take a 2:4 tile mask made for \(maskShape)"
    case let .invalidMask(detail): "invalid 2:4 tile mask: \(detail)"
    case let .unsupportedCPU(text): text
    }
  }
}
