import SparsityCore

/// The CUTLASS storage of a 2:4 matrix: what PyTorch's `SparseSemiStructuredTensorCUTLASS`
/// holds, byte for byte.
///
/// A dense `[rows, columns]` matrix with at most two nonzeros in every group of four
/// consecutive elements of a row is stored as
///
/// - ``packed``: the two kept values of every group, `[rows, columns / 2]`, in the dense dtype;
/// - ``meta``: a 4-bit code per group (`idx0 | idx1 << 2`, the positions of the two kept
///   values), packed LSB-first into `int16` words (4 codes per word) or, for `int8` values,
///   `int32` words (8 codes), and then scattered into CUTLASS's `ColumnMajorInterleaved<2>`
///   order, exactly as `torch.sparse._semi_structured_conversions` does.
///
/// `float32` is stored as 1:2 (one kept value of every pair, TF32 tensor cores), with the
/// codes `0b0100` (first of the pair kept) and `0b1110` (second kept), as in PyTorch.
///
/// ```swift
/// let w = Tensor([Float16](repeating: 0, count: 32 * 64), shape: [32, 64])
/// let s = try CUTLASSSemiStructured(compressing: w, name: "layer.weight")
/// // s.packed: F16 [32, 32], s.meta: I16 [32, 4] (all 0xEEEE = -4370)
/// let back = s.dense()   // equal to w
/// ```
///
/// Unlike PyTorch, which silently drops a third nonzero, compression refuses input that is
/// not 2:4 (1:2 for `float32`) and names the first offending group. Where a group has fewer
/// nonzeros than it may keep, the kept positions are PyTorch's (nonzero flags `0000`, `0001`,
/// `0010` keep positions 2 and 3; `1000` keeps 0 and 2; `0100` keeps 1 and 2; an all-zero
/// `float32` pair keeps its second element), so ``packed`` and ``meta`` are byte-identical to
/// PyTorch's for every 2:4 input. Values are moved as bits: PyTorch's CPU converter quiets
/// signalling `float16` NaNs and rewrites every `bfloat16` NaN to `0xFFFF` on the way, which
/// this type does not copy.
///
/// Shapes follow PyTorch's `to_sparse_semi_structured` minimums: rows and columns must be
/// multiples of (32, 64) for `float16`/`bfloat16`, (16, 128) for `int8` and (32, 32) for
/// `float32`.
public struct CUTLASSSemiStructured: Sendable {
  /// The number of rows of the logical dense matrix.
  public let rows: Int
  /// The number of columns of the logical dense matrix.
  public let columns: Int
  /// The kept values, `[rows, columns / 2]`, in the dtype of the dense matrix.
  public let packed: Tensor
  /// The reordered metadata: `int16 [rows, columns / 16]` for `float16`/`bfloat16`,
  /// `int16 [rows, columns / 8]` for `float32`, `int32 [rows, columns / 32]` for `int8`,
  /// already in CUTLASS's `ColumnMajorInterleaved<2>` order (byte-identical to PyTorch's
  /// `meta` tensor).
  public let meta: Tensor

  /// The dense dtypes this format stores.
  public static let supportedDTypes: [DType] = [.float16, .bfloat16, .int8, .float32]

  /// The format's name in errors.
  public static let formatName = "CUTLASS 2:4"

  /// The dtype of the dense matrix (and of ``packed``).
  public var dtype: DType { packed.dtype }

  /// The logical dense shape, `[rows, columns]`.
  public var shape: [Int] { [rows, columns] }

  /// The bytes of ``packed`` and ``meta`` together.
  public var byteCount: Int { packed.byteCount + meta.byteCount }

  /// The metadata dtype for a dense dtype (`int32` for `int8`, `int16` otherwise), or `nil`
  /// for a dtype the format does not store.
  public static func metaDType(for dtype: DType) -> DType? {
    switch dtype {
    case .float16, .bfloat16, .float32: .int16
    case .int8: .int32
    default: nil
    }
  }

  /// The smallest shape PyTorch's `to_sparse_semi_structured` accepts for a dtype with the
  /// CUTLASS backend; both dimensions must also be multiples of it. `nil` for an
  /// unsupported dtype.
  public static func minimumShape(for dtype: DType) -> (rows: Int, columns: Int)? {
    switch dtype {
    case .float16, .bfloat16: (32, 64)
    case .int8: (16, 128)
    case .float32: (32, 32)
    default: nil
    }
  }

  /// Whether files store a 2:4 matrix of `dtype` and `shape` in this layout: 16- and 8-bit values
  /// whose shape meets PyTorch's rules. Other 2:4 matrices (f32 above all: this layout holds f32
  /// only as 1:2) take the logical N:M layout (``SemiStructuredMatrix``).
  public static func storesTwoFour(dtype: DType, shape: [Int]) -> Bool {
    [.float16, .bfloat16, .int8].contains(dtype) && (try? CUTLASSLayout.check(dense: shape, dtype: dtype, name: "")) != nil
  }

  // MARK: Compression

  /// Compresses a dense 2:4 matrix (1:2 for `float32`).
  ///
  /// - Parameters:
  ///   - dense: a rank-2 tensor of a ``supportedDTypes`` dtype whose shape obeys the rules
  ///     above.
  ///   - name: the tensor's name, used in errors.
  /// - Throws: ``SparseFormatError/shapeRule(tensor:shape:rule:)`` for a bad rank or shape,
  ///   ``SparseFormatError/unsupportedDType(tensor:dtype:format:supported:)`` for another
  ///   dtype, and ``SparseFormatError/patternViolation(tensor:pattern:rows:columns:nonzeros:allowed:)``
  ///   for the first group (in row-major order) with more than 2 nonzeros (for `float32`: the
  ///   first pair with 2 nonzeros). Zero means `== 0`: `-0.0` is zero, NaN is not.
  /// - Complexity: O(rows × columns), one pass, parallel over row blocks.
  public init(compressing dense: Tensor, name: String) throws(SparseFormatError) {
    let layout = try CUTLASSLayout.check(dense: dense.shape, dtype: dense.dtype, name: name)
    // Every byte of both outputs is written below (or the result is thrown away), so they
    // start uninitialised rather than zero-filled.
    var packed = Tensor.uninitializedForCUTLASS([layout.rows, layout.columns / 2], dtype: layout.dtype)
    var meta = Tensor.uninitializedForCUTLASS([layout.rows, layout.metaColumns], dtype: layout.metaDType)

    let violation: Violation? = dense.elementAlignedForCUTLASS().withUnsafeBytes { source in
      packed.withUnsafeMutableBytes { packedBytes in
        meta.withUnsafeMutableBytes { metaBytes in
          let src = source.baseAddress!
          let dst = packedBytes.baseAddress!
          let metaOut = metaBytes.baseAddress!
          return layout.forEachRowBlock { rowRange in
            switch layout.dtype {
            case .float16, .bfloat16:
              compressQuads(
                layout, rowRange, src.assumingMemoryBound(to: UInt16.self), zeroMask: 0x7FFF,
                dst.assumingMemoryBound(to: UInt16.self), metaOut.assumingMemoryBound(to: UInt16.self))
            case .int8:
              compressQuads(
                layout, rowRange, src.assumingMemoryBound(to: UInt8.self), zeroMask: 0xFF,
                dst.assumingMemoryBound(to: UInt8.self), metaOut.assumingMemoryBound(to: UInt32.self))
            default:
              compressPairs(
                layout, rowRange, src.assumingMemoryBound(to: UInt32.self),
                dst.assumingMemoryBound(to: UInt32.self), metaOut.assumingMemoryBound(to: UInt16.self))
            }
          }
        }
      }
    }
    if let v = violation {
      throw .patternViolation(
        tensor: name, pattern: layout.patternName, rows: v.row..<(v.row + 1),
        columns: v.column..<(v.column + layout.groupWidth), nonzeros: v.nonzeros,
        allowed: layout.groupWidth / 2)
    }
    self.rows = layout.rows
    self.columns = layout.columns
    self.packed = packed
    self.meta = meta
  }

  // MARK: Rebuilding from stored tensors

  /// Rebuilds the storage from stored packed values and reordered metadata (for example the
  /// `values()` and `indices()` of a PyTorch CUTLASS semi-structured tensor).
  ///
  /// The dense shape is `[packed.shape[0], 2 × packed.shape[1]]`. Tensors whose bytes are not
  /// aligned to their element size (a view into a file) are copied.
  ///
  /// - Parameters:
  ///   - packed: `[rows, columns / 2]` of a ``supportedDTypes`` dtype.
  ///   - meta: the reordered metadata, `int16` (`int32` for `int8` values), of the shape
  ///     described at ``meta``.
  ///   - name: the tensor's name, used in errors.
  /// - Throws: ``SparseFormatError/shapeRule(tensor:shape:rule:)`` for a bad rank or shape
  ///   (including a `meta` whose shape does not match), ``SparseFormatError/unsupportedDType(tensor:dtype:format:supported:)``,
  ///   and ``SparseFormatError/invalidEncoding(tensor:format:detail:)`` for a metadata dtype
  ///   that does not match or for the first (row-major) code that is not valid: both indices
  ///   must increase (`idx0 < idx1`), and `float32` allows only `0b0100` and `0b1110`.
  public init(packed: Tensor, meta: Tensor, name: String) throws(SparseFormatError) {
    let format = Self.formatName
    guard packed.rank == 2 else {
      throw .shapeRule(
        tensor: name, shape: packed.shape,
        rule: "\(format) packed values must be a matrix (rank 2), got rank \(packed.rank)")
    }
    guard meta.rank == 2 else {
      throw .shapeRule(
        tensor: name, shape: meta.shape,
        rule: "\(format) metadata must be a matrix (rank 2), got rank \(meta.rank)")
    }
    let denseShape = [packed.shape[0], packed.shape[1] * 2]
    let layout: CUTLASSLayout
    do {
      layout = try CUTLASSLayout.check(dense: denseShape, dtype: packed.dtype, name: name)
    } catch {
      if case let .shapeRule(tensor, _, rule) = error {
        throw .shapeRule(
          tensor: tensor, shape: packed.shape,
          rule: "packed values \(packed.shape) describe a dense \(denseShape) matrix; \(rule)")
      }
      throw error
    }
    guard meta.dtype == layout.metaDType else {
      throw .invalidEncoding(
        tensor: name, format: format,
        detail:
          "metadata has dtype \(meta.dtype), but \(layout.dtype) values need \(layout.metaDType) metadata")
    }
    guard meta.shape == [layout.rows, layout.metaColumns] else {
      throw .shapeRule(
        tensor: name, shape: meta.shape,
        rule:
          "\(format) metadata for packed values \(packed.shape) (dense \(denseShape), \(layout.dtype)) must have shape [\(layout.rows), \(layout.metaColumns)]")
    }
    if let bad = layout.firstInvalidCode(meta) {
      throw .invalidEncoding(tensor: name, format: format, detail: bad)
    }
    self.rows = layout.rows
    self.columns = layout.columns
    self.packed = packed.elementAlignedForCUTLASS()
    self.meta = meta.elementAlignedForCUTLASS()
  }

  // MARK: Decompression

  /// The dense matrix: kept values at their positions, zeros elsewhere.
  ///
  /// The exact inverse of ``init(compressing:name:)``: every value comes back bit for bit
  /// (NaN payloads included); only a `-0.0` at a position that was not kept comes back as
  /// `+0.0`.
  ///
  /// - Complexity: O(rows × columns).
  public func dense() -> Tensor {
    let layout = CUTLASSLayout(rows: rows, columns: columns, dtype: dtype)
    var out = Tensor.uninitializedForCUTLASS([rows, columns], dtype: dtype)  // every element is written
    packed.withUnsafeBytes { packedBytes in
      meta.withUnsafeBytes { metaBytes in
        out.withUnsafeMutableBytes { outBytes in
          let src = packedBytes.baseAddress!
          let metaIn = metaBytes.baseAddress!
          let dst = outBytes.baseAddress!
          _ = layout.forEachRowBlock { rowRange -> Violation? in
            switch layout.dtype {
            case .float16, .bfloat16:
              expandQuads(
                layout, rowRange, src.assumingMemoryBound(to: UInt16.self),
                metaIn.assumingMemoryBound(to: UInt16.self), dst.assumingMemoryBound(to: UInt16.self))
            case .int8:
              expandQuads(
                layout, rowRange, src.assumingMemoryBound(to: UInt8.self),
                metaIn.assumingMemoryBound(to: UInt32.self), dst.assumingMemoryBound(to: UInt8.self))
            default:
              expandPairs(
                layout, rowRange, src.assumingMemoryBound(to: UInt32.self),
                metaIn.assumingMemoryBound(to: UInt16.self), dst.assumingMemoryBound(to: UInt32.self))
            }
            return nil
          }
        }
      }
    }
    return out
  }

  // MARK: Transpose

  /// The CUTLASS storage of the transposed matrix (`dense()ᵀ`, shape `[columns, rows]`), for
  /// operations that need both orientations of a 2:4 weight (2:4 training).
  ///
  /// - Parameter name: the name of the transposed tensor, used in errors.
  /// - Throws: the errors of ``init(compressing:name:)`` for the transpose: a
  ///   `patternViolation` whose rows and columns are coordinates **in the transpose** (its row
  ///   `r` is column `r` of this matrix, its columns `c..<c+4` are rows `c..<c+4`), or a
  ///   `shapeRule` when `[columns, rows]` is not a storable shape.
  /// - Complexity: O(rows × columns).
  public func transposed(name: String) throws(SparseFormatError) -> CUTLASSSemiStructured {
    do {
      return try CUTLASSSemiStructured(compressing: dense().transposed(), name: name)
    } catch {
      if case let .patternViolation(tensor, pattern, r, c, nonzeros, allowed) = error {
        throw .patternViolation(
          tensor: tensor, pattern: "\(pattern) along the rows of the transpose (columns of the original)",
          rows: r, columns: c, nonzeros: nonzeros, allowed: allowed)
      }
      throw error
    }
  }
}

extension CUTLASSSemiStructured: Equatable {
  /// Whether both store the same shape with the same bytes.
  public static func == (a: CUTLASSSemiStructured, b: CUTLASSSemiStructured) -> Bool {
    a.rows == b.rows && a.columns == b.columns && a.packed.isBitwiseEqual(to: b.packed)
      && a.meta.isBitwiseEqual(to: b.meta)
  }
}

extension Tensor {
  /// A tensor whose bytes the caller will all write before anyone reads them.
  fileprivate static func uninitializedForCUTLASS(_ shape: [Int], dtype: DType) -> Tensor {
    let bytes = dtype.byteCount(elements: Tensor.elementCount(shape))!
    return Tensor(shape: shape, dtype: dtype, storage: TensorStorage(uninitializedByteCount: bytes))
  }

  /// This tensor, or an aligned copy when its bytes do not start at a multiple of the element
  /// size (possible for a tensor borrowed from a file), so typed pointers are valid.
  fileprivate func elementAlignedForCUTLASS() -> Tensor {
    let width = elementByteWidth
    let aligned = withUnsafeBytes { Int(bitPattern: $0.baseAddress) % width == 0 }
    if aligned { return self }
    return withUnsafeBytes { Tensor(shape: shape, dtype: dtype, copying: $0) }
  }
}

// MARK: - Layout arithmetic

/// The first group that breaks the pattern in a block of rows.
private struct Violation {
  var row: Int
  var column: Int
  var nonzeros: Int
}

/// Sizes and the metadata reorder of the CUTLASS 2:4 layout for one shape and dtype (also used
/// by the format conversions to read metadata without a dense matrix).
struct CUTLASSLayout {
  let rows: Int
  let columns: Int
  let dtype: DType
  /// Elements per group: 4 (2:4), or 2 for `float32` (1:2).
  let groupWidth: Int
  /// 4-bit codes per metadata word: 4 (`int16`) or 8 (`int32`).
  let codesPerWord: Int
  /// Metadata words per row.
  let metaColumns: Int
  let metaDType: DType
  /// Row-interleave parameters of CUTLASS `reorder_meta`.
  let rowGroup: Int
  let interweave: Int

  init(rows: Int, columns: Int, dtype: DType) {
    self.rows = rows
    self.columns = columns
    self.dtype = dtype
    groupWidth = dtype == .float32 ? 2 : 4
    codesPerWord = dtype == .int8 ? 8 : 4
    metaColumns = columns / (groupWidth * codesPerWord)
    metaDType = dtype == .int8 ? .int32 : .int16
    rowGroup = dtype == .int8 ? 16 : 32
    interweave = dtype == .int8 ? 2 : 4
  }

  var patternName: String {
    dtype == .float32 ? "1:2 (f32 2:4 is stored as 1:2, as in PyTorch)" : "2:4"
  }

  /// Checks rank, dtype and PyTorch's shape rules for a dense shape.
  static func check(dense shape: [Int], dtype: DType, name: String) throws(SparseFormatError) -> CUTLASSLayout {
    let format = CUTLASSSemiStructured.formatName
    guard shape.count == 2 else {
      throw .shapeRule(
        tensor: name, shape: shape, rule: "\(format) needs a matrix (rank 2), got rank \(shape.count)")
    }
    guard let minimum = CUTLASSSemiStructured.minimumShape(for: dtype) else {
      throw .unsupportedDType(
        tensor: name, dtype: dtype, format: format, supported: CUTLASSSemiStructured.supportedDTypes)
    }
    let (rows, columns) = (shape[0], shape[1])
    let layout = CUTLASSLayout(rows: rows, columns: columns, dtype: dtype)
    // The converter's own rules: rows fill whole reorder groups (32, or 16 for int8), and
    // every row holds an even number of metadata words, which the 2×2 swizzle of the reorder
    // needs. PyTorch asserts only whole words (16 columns for 16-bit, 32 for int8; 16 for f32,
    // which is already two words); an odd word count then fails inside its reorder scatter
    // with an index-out-of-bounds error.
    if rows % layout.rowGroup != 0 {
      throw .shapeRule(
        tensor: name, shape: shape,
        rule: "\(format) for \(dtype) needs rows divisible by \(layout.rowGroup)")
    }
    let columnMultiple = 2 * layout.groupWidth * layout.codesPerWord
    if columns % columnMultiple != 0 {
      throw .shapeRule(
        tensor: name, shape: shape,
        rule:
          "\(format) for \(dtype) needs columns divisible by \(columnMultiple) (an even number of \(layout.metaDType) metadata words per row)")
    }
    if rows < minimum.rows || columns < minimum.columns || rows % minimum.rows != 0
      || columns % minimum.columns != 0
    {
      throw .shapeRule(
        tensor: name, shape: shape,
        rule:
          "\(format) for \(dtype) needs both dimensions at least, and multiples of, (\(minimum.rows), \(minimum.columns)) (PyTorch to_sparse_semi_structured minimum)")
    }
    return layout
  }

  /// Where metadata word `(row, column)` (row-major order) lives in the reordered tensor, as
  /// an element offset: CUTLASS `reorder_meta` into `ColumnMajorInterleaved<2>`.
  @inline(__always)
  func storedOffset(row r: Int, column c: Int) -> Int {
    var dr = (r / rowGroup) * rowGroup + (r % 8) * interweave + (r % rowGroup) / 8
    var dc = c
    // Swizzle each 2×2 block of words: (even row, odd column) and (odd row, even column) swap.
    if dr & 1 == 0 && dc & 1 == 1 {
      dr += 1
      dc -= 1
    } else if dr & 1 == 1 && dc & 1 == 0 {
      dr -= 1
      dc += 1
    }
    return (dc >> 1) * rows * 2 + dr * 2 + (dc & 1)
  }

  /// Runs `body` over contiguous blocks of rows (concurrently for large matrices) and returns
  /// the violation of the first block (in row order) that reported one.
  fileprivate func forEachRowBlock(_ body: (Range<Int>) -> Violation?) -> Violation? {
    let blocks = rows * columns >= 1 << 16 ? Swift.min(Parallel.workerCount, rows) : 1
    if blocks <= 1 { return body(0..<rows) }
    let results = UnsafeMutableBufferPointer<Violation?>.allocate(capacity: blocks)
    results.initialize(repeating: nil)
    defer { results.deallocate() }
    Parallel.forEach(chunks: blocks) { b in
      let lo = rows * b / blocks
      let hi = rows * (b + 1) / blocks
      if lo < hi { results[b] = body(lo..<hi) }
    }
    return results.lazy.compactMap { $0 }.first
  }

  /// Metadata word `(row, column)` (row-major order) of the reordered `meta` bytes.
  @inline(__always)
  func metaWord(_ raw: UnsafeRawBufferPointer, row r: Int, column c: Int) -> UInt32 {
    let offset = storedOffset(row: r, column: c)
    return codesPerWord == 8
      ? raw.loadUnaligned(fromByteOffset: offset * 4, as: UInt32.self)
      : UInt32(raw.loadUnaligned(fromByteOffset: offset * 2, as: UInt16.self))
  }

  /// The first metadata code (in row-major dense order) that is not valid, described, or
  /// `nil` when all are valid.
  func firstInvalidCode(_ meta: Tensor) -> String? {
    meta.withUnsafeBytes { raw -> String? in
      for r in 0..<rows {
        for c in 0..<metaColumns {
          let word = metaWord(raw, row: r, column: c)
          for q in 0..<codesPerWord {
            let code = Int((word >> UInt32(4 * q)) & 0xF)
            let valid =
              dtype == .float32 ? (code == 0b0100 || code == 0b1110) : (code & 3) < (code >> 2)
            if valid { continue }
            let group = c * codesPerWord + q
            let first = group * groupWidth
            let offset = storedOffset(row: r, column: c)
            let binary = String(code, radix: 2)
            let codeText = "0b" + String(repeating: "0", count: 4 - binary.count) + binary
            let why =
              dtype == .float32
              ? "f32 pairs allow only 0b0100 (first kept) and 0b1110 (second kept)"
              : "it encodes indices (\(code & 3), \(code >> 2)), which must increase"
            return
              "row \(r), columns \(first)..<\(first + groupWidth): code \(codeText) (meta word [\(r), \(c)] in row-major order, nibble \(q), stored at meta[\(offset / metaColumns), \(offset % metaColumns)]) is invalid: \(why)"
          }
        }
      }
      return nil
    }
  }
}

// MARK: - Kernels (raw bits; no per-element dispatch)

/// The 4-bit code PyTorch's converter gives each nonzero-flag pattern `m0 | m1<<1 | m2<<2 |
/// m3<<3` of a group of four: its Espresso-minimised boolean functions, evaluated once.
/// (`m2` does not enter; patterns with more than 2 flags never reach the table's users.)
private let quadCodes: [UInt8] = (0..<16).map { (flags: Int) -> UInt8 in
  let m0 = flags & 1 != 0
  let m1 = flags & 2 != 0
  let m3 = flags & 8 != 0
  let expr0 = m0 && m1
  let expr1 = !m0 && m1
  let expr2 = !m0 && !m1
  let bit0 = expr1
  let bit1 = expr2
  let bit2 = expr0 || expr2 || m3
  let bit3 = expr1 || !m1
  let idx0 = (bit0 ? 1 : 0) | (bit1 ? 2 : 0)
  let idx1 = (bit2 ? 1 : 0) | (bit3 ? 2 : 0)
  return UInt8(idx0 | idx1 << 2)
}

/// Compresses rows of a 2:4 matrix of `E`-sized elements (`E` holds the bits; `zeroMask`
/// clears the sign of floats so that -0.0 is zero) into packed values and `W` metadata words.
@inline(never)
private func compressQuads<E: FixedWidthInteger & UnsignedInteger, W: FixedWidthInteger & UnsignedInteger>(
  _ layout: CUTLASSLayout, _ rowRange: Range<Int>, _ src: UnsafePointer<E>, zeroMask: E,
  _ packed: UnsafeMutablePointer<E>, _ meta: UnsafeMutablePointer<W>
) -> Violation? {
  let columns = layout.columns
  let codesPerWord = layout.codesPerWord
  return quadCodes.withUnsafeBufferPointer { table -> Violation? in
    for r in rowRange {
      let row = src + r * columns
      let out = packed + r * (columns / 2)
      for c in 0..<layout.metaColumns {
        var word: W = 0
        for q in 0..<codesPerWord {
          let g = c * codesPerWord + q
          let e = row + 4 * g
          let flags =
            (e[0] & zeroMask != 0 ? 1 : 0) | (e[1] & zeroMask != 0 ? 2 : 0)
            | (e[2] & zeroMask != 0 ? 4 : 0) | (e[3] & zeroMask != 0 ? 8 : 0)
          let nonzeros = flags.nonzeroBitCount
          if nonzeros > 2 { return Violation(row: r, column: 4 * g, nonzeros: nonzeros) }
          let code = Int(table[flags])
          out[2 * g] = e[code & 3]
          out[2 * g + 1] = e[code >> 2]
          word |= W(code) << (4 * q)
        }
        meta[layout.storedOffset(row: r, column: c)] = word
      }
    }
    return nil
  }
}

/// Compresses rows of a 1:2 `float32` matrix (bits as `UInt32`): the first element of each pair
/// when it is nonzero (code `0b0100`), otherwise the second (`0b1110`), as PyTorch does.
@inline(never)
private func compressPairs(
  _ layout: CUTLASSLayout, _ rowRange: Range<Int>, _ src: UnsafePointer<UInt32>,
  _ packed: UnsafeMutablePointer<UInt32>, _ meta: UnsafeMutablePointer<UInt16>
) -> Violation? {
  let columns = layout.columns
  for r in rowRange {
    let row = src + r * columns
    let out = packed + r * (columns / 2)
    for c in 0..<layout.metaColumns {
      var word: UInt16 = 0
      for q in 0..<4 {
        let g = c * 4 + q
        let a = row[2 * g]
        let b = row[2 * g + 1]
        let firstNonzero = a & 0x7FFF_FFFF != 0
        if firstNonzero && b & 0x7FFF_FFFF != 0 {
          return Violation(row: r, column: 2 * g, nonzeros: 2)
        }
        out[g] = firstNonzero ? a : b
        word |= (firstNonzero ? 0b0100 : 0b1110) << UInt16(4 * q)
      }
      meta[layout.storedOffset(row: r, column: c)] = word
    }
  }
  return nil
}

/// Writes 2:4 rows back: every group's two packed values at their positions, zeros elsewhere.
@inline(never)
private func expandQuads<E: FixedWidthInteger & UnsignedInteger, W: FixedWidthInteger & UnsignedInteger>(
  _ layout: CUTLASSLayout, _ rowRange: Range<Int>, _ packed: UnsafePointer<E>,
  _ meta: UnsafePointer<W>, _ dense: UnsafeMutablePointer<E>
) {
  let columns = layout.columns
  let codesPerWord = layout.codesPerWord
  for r in rowRange {
    let row = dense + r * columns
    let values = packed + r * (columns / 2)
    for c in 0..<layout.metaColumns {
      let word = meta[layout.storedOffset(row: r, column: c)]
      for q in 0..<codesPerWord {
        let g = c * codesPerWord + q
        let code = Int(truncatingIfNeeded: word >> (4 * q)) & 0xF
        (row + 4 * g).update(repeating: 0, count: 4)
        row[4 * g + (code & 3)] = values[2 * g]
        row[4 * g + (code >> 2)] = values[2 * g + 1]
      }
    }
  }
}

/// Writes 1:2 `float32` rows back: every pair's kept value at its position, zero beside it.
@inline(never)
private func expandPairs(
  _ layout: CUTLASSLayout, _ rowRange: Range<Int>, _ packed: UnsafePointer<UInt32>,
  _ meta: UnsafePointer<UInt16>, _ dense: UnsafeMutablePointer<UInt32>
) {
  let columns = layout.columns
  for r in rowRange {
    let row = dense + r * columns
    let values = packed + r * (columns / 2)
    for c in 0..<layout.metaColumns {
      let word = meta[layout.storedOffset(row: r, column: c)]
      for q in 0..<4 {
        let g = c * 4 + q
        let second = (word >> UInt16(4 * q)) & 0xF == 0b1110
        row[2 * g] = second ? 0 : values[g]
        row[2 * g + 1] = second ? values[g] : 0
      }
    }
  }
}
