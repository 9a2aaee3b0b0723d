import SparsityCore
import SparsityFormats
import _SparsityKernelsImpl

/// One implementation of `y = x · Wᵀ + bias`, named as in the autotuning cache and reports.
///
/// Every kernel is correct for every token count `M`; they differ in speed. ``LinearDispatcher``
/// times the candidates of a weight once per shape bucket and remembers the winner. The kernels
/// of each weight form are listed in ``KernelTable``.
public struct LinearKernel: Hashable, Sendable, Codable, CustomStringConvertible {
  /// The kernel's name (`dense-gemm`, `2:4-panel`, …).
  public let name: String
  /// Whether it runs one activation row at a time (a candidate only for small M).
  public let isRowWise: Bool

  init(_ name: String, rowWise: Bool = false) {
    self.name = name
    isRowWise = rowWise
  }

  /// The kernel of this name in ``KernelTable``, or `nil`.
  public init?(name: String) {
    guard let kernel = KernelTable.allKernels.first(where: { $0.name == name }) else { return nil }
    self = kernel
  }

  public init(from decoder: any Decoder) throws {
    let name = try decoder.singleValueContainer().decode(String.self)
    guard let kernel = LinearKernel(name: name) else {
      throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown kernel '\(name)'"))
    }
    self = kernel
  }

  public func encode(to encoder: any Encoder) throws {
    var c = encoder.singleValueContainer()
    try c.encode(name)
  }

  /// Packed dense GEMM: register tiles, k-blocked, both cores.
  public static let denseGEMM = LinearKernel("dense-gemm")
  /// Dense GEMV, one activation row at a time.
  public static let denseGEMV = LinearKernel("dense-gemv", rowWise: true)
  /// Block-sparse: the dense microkernel over each block row's nonzero blocks.
  public static let bsr = LinearKernel("bsr")
  /// Block-sparse, one activation row at a time.
  public static let bsrGEMV = LinearKernel("bsr-gemv", rowWise: true)
  /// Unstructured: activation-major (xᵀ token panels, one broadcast weight per nonzero).
  public static let csrPanel = LinearKernel("csr-panel")
  /// Unstructured, row-wise SpMV per activation row.
  public static let csrSpMV = LinearKernel("csr-spmv", rowWise: true)
  /// 2:4: activation-major with the positions decoded from 4-bit codes.
  public static let semiStructuredPanel = LinearKernel("2:4-panel")
  /// 2:4 for small M: 8 output rows per vector, x values picked with in-lane permutes.
  public static let semiStructuredGEMV = LinearKernel("2:4-gemv", rowWise: true)

  /// Int8 weights × int8 activations quantized per token (W8A8), int32 sums: register tiles of
  /// 6 rows × 32 columns (`vpdpbusd` with AVX512-VNNI; `vpmaddwd` on int16 without it).
  public static let int8DynamicGEMM = LinearKernel("w8a8-gemm")
  /// W8A8 one activation row at a time, 64 columns per pass.
  public static let int8DynamicGEMV = LinearKernel("w8a8-gemv", rowWise: true)
  /// W8A8 with a weight scale per row and 32-column block (GGUF Q8_0): the 6 × 32 `vpdpbusd`
  /// tile, each block's int32 sums scaled into float accumulators.
  public static let int8DynamicGroupedGEMM = LinearKernel("w8a8-group-gemm")
  /// Grouped W8A8 one activation row at a time, 64 columns per pass.
  public static let int8DynamicGroupedGEMV = LinearKernel("w8a8-group-gemv", rowWise: true)
  /// W8A8 with 2:4 weights: per 16 columns and 8 inputs a `vpshufb` picks each column's 4
  /// activations, one `vpdpbusd` multiplies them by its 4 kept values (6 × 32 tiles).
  public static let int8DynamicSemiStructuredGEMM = LinearKernel("w8a8-2:4-gemm")
  /// W8A8 2:4 one activation row at a time, 64 columns per pass.
  public static let int8DynamicSemiStructuredGEMV = LinearKernel("w8a8-2:4-gemv", rowWise: true)
  /// W8A8 with block-sparse weights: the dense 6 × 32 tile over the kept 32-column × 4-input
  /// units only.
  public static let int8DynamicBlockGEMM = LinearKernel("w8a8-bsr-gemm")
  /// W8A8 block-sparse one activation row at a time.
  public static let int8DynamicBlockGEMV = LinearKernel("w8a8-bsr-gemv", rowWise: true)
  /// bf16 weights × bf16-rounded activations, fp32 sums: 6 × 32 tiles of `vdpbf16ps` (fp32 FMA
  /// on widened values without AVX512-BF16).
  public static let bf16GEMM = LinearKernel("bf16-gemm")
  /// bf16 one activation row at a time.
  public static let bf16GEMV = LinearKernel("bf16-gemv", rowWise: true)
  /// bf16 with block-sparse weights: the dense 6 × 32 tile over the kept 32-column × 2-input units.
  public static let bf16BlockGEMM = LinearKernel("bf16-bsr-gemm")
  /// bf16 block-sparse one activation row at a time.
  public static let bf16BlockGEMV = LinearKernel("bf16-bsr-gemv", rowWise: true)
  /// bf16 with 2:4 weights: per 16 columns and group of 4 inputs a `vpshufb` picks each
  /// column's 2 activations, one `vdpbf16ps` multiplies them by its 2 kept values (6 × 32 tiles).
  public static let bf16SemiStructuredGEMM = LinearKernel("bf16-2:4-gemm")
  /// bf16 2:4 one activation row at a time, 64 columns per pass.
  public static let bf16SemiStructuredGEMV = LinearKernel("bf16-2:4-gemv", rowWise: true)
  /// Int8 weights × float32 activations (weight-only), many rows: each panel dequantized into
  /// a thread's scratch and run by the dense GEMM microkernel.
  public static let int8WeightOnlyGEMM = LinearKernel("int8-gemm")
  /// Int8 weights × float32 activations (weight-only), one activation row at a time: the bytes
  /// widen to float32 in registers.
  public static let int8WeightOnlyGEMV = LinearKernel("int8-gemv", rowWise: true)
  /// Int8 2:4 weights × float32 activations (weight-only), many rows: the fp32 2:4 token-panel
  /// tile over k-blocks dequantized per row chunk.
  public static let int8WeightOnlySemiStructuredGEMM = LinearKernel("int8-2:4-gemm")
  /// Int8 2:4 weight-only one activation row at a time: bytes widened in registers, `vpermilps`
  /// picks each lane's x.
  public static let int8WeightOnlySemiStructuredGEMV = LinearKernel("int8-2:4-gemv", rowWise: true)
  /// Int8 block-sparse weights × float32 activations (weight-only), many rows: each column
  /// pair's kept units dequantized, then 6 × 32 fp32 FMA tiles over them.
  public static let int8WeightOnlyBlockGEMM = LinearKernel("int8-bsr-gemm")
  /// Int8 block-sparse weight-only one activation row at a time: bytes widened in registers.
  public static let int8WeightOnlyBlockGEMV = LinearKernel("int8-bsr-gemv", rowWise: true)

  /// Whether the kernel runs a dense packed weight (a weight's own, or a sparse one's fallback).
  public var isDense: Bool { self == .denseGEMM || self == .denseGEMV }
  public var description: String { name }
}

/// A weight in one packed form of the kernels: what ``LinearWeight`` holds.
protocol PackedOperand: Sendable {
  /// The kernels that run this packed form: the panel kernel, then the row-wise one.
  var kernels: [LinearKernel] { get }
  /// Bytes of values and indices.
  var byteCount: Int { get }
  /// Writes the dense row-major weight (quantized forms: the dequantized values).
  func unpack(into w: UnsafeMutablePointer<Float>)
  /// The weight as a file would store it, from the packed arrays: the exact values (int8 and
  /// scales for quantized forms), in CSR for sparse float forms.
  func stored() -> StoredTensor
  /// The nonzero values row by row, read from the packed arrays (no dense buffer for a sparse form).
  func nonzeros() -> CSRMatrix
  /// The panel kernel (`kernels[0]`) on raw buffers: `x [m, k]`, `y [m, n]`, `bias [n]` or nil.
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int)
  /// The row-wise kernel (`kernels[1]`), one activation row at a time.
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int)
}

extension PackedOperand {
  /// Runs one of ``kernels``: the row-wise one or the panel one.
  func run(
    _ kernel: LinearKernel, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?,
    workers: Int
  ) {
    if kernel.isRowWise {
      multiplyRows(x: x, m: m, y: y, bias: bias, workers: workers)
    } else {
      multiply(x: x, m: m, y: y, bias: bias, workers: workers)
    }
  }
}

/// The kernel table: for every weight form the kernels run, how a stored matrix is packed for
/// it and which kernels run the packed form. ``LinearWeight``, ``LinearDispatcher`` and the
/// benchmarks read it; adding an encoding or a layout means its packed storage, its kernels and
/// its row here — nothing else switches over weight forms.
///
/// | form | packed from | kernels |
/// |---|---|---|
/// | `dense` | any stored form (a dense f32 tensor is read in place) | `dense-gemm`, `dense-gemv` |
/// | `2:4` | logical 2:4 or CUTLASS 2:4, or the nonzeros of any other form | `2:4-panel`, `2:4-gemv` |
/// | `bsr:RxC` (R a multiple of 8) | BSR with the same blocks, or the nonzeros of any form | `bsr`, `bsr-gemv` |
/// | `bsr:RxC` (other R) | as above; runs the CSR kernels on the nonzeros | `csr-panel`, `csr-spmv` |
/// | `csr` | the nonzeros of any form | `csr-panel`, `csr-spmv` |
/// | `w8a8+dense` | int8 values + row scales (quantized stored forms), or any float form quantized per row | `w8a8-gemm`, `w8a8-gemv` |
/// | `w8a8+dense`, scales per group of 32·j columns | int8 values + `[rows, groups]` scales (GGUF Q8_0) | `w8a8-group-gemm`, `w8a8-group-gemv` |
/// | `w8a8+2:4` | int8 2:4 values (logical or CUTLASS) + row scales, or a 2:4 float form quantized per row | `w8a8-2:4-gemm`, `w8a8-2:4-gemv` |
/// | `w8a8+bsr:RxC` | int8 values in any layout + row scales, or a block-sparse float form quantized per row | `w8a8-bsr-gemm`, `w8a8-bsr-gemv` |
/// | `int8+dense`, `int8+2:4`, `int8+bsr:RxC` | as the w8a8 forms (float activations) | `int8-gemm`/`-gemv`, `int8-2:4-gemm`/`-gemv`, `int8-bsr-gemm`/`-gemv` |
/// | `bf16+dense` | any float form, rounded to bf16 (bf16 files as they are) | `bf16-gemm`, `bf16-gemv` |
/// | `bf16+bsr:RxC` | any float form's nonzeros, rounded to bf16 | `bf16-bsr-gemm`, `bf16-bsr-gemv` |
/// | `bf16+2:4` | any 2:4 float form (logical or CUTLASS), rounded to bf16 | `bf16-2:4-gemm`, `bf16-2:4-gemv` |
public enum KernelTable {
  /// Every kernel, in table order.
  public static let allKernels: [LinearKernel] = [
    .denseGEMM, .denseGEMV, .semiStructuredPanel, .semiStructuredGEMV, .bsr, .bsrGEMV, .csrPanel, .csrSpMV,
    .int8DynamicGEMM, .int8DynamicGEMV, .int8DynamicGroupedGEMM, .int8DynamicGroupedGEMV, .int8DynamicSemiStructuredGEMM, .int8DynamicSemiStructuredGEMV, .int8DynamicBlockGEMM,
    .int8DynamicBlockGEMV, .int8WeightOnlyGEMM, .int8WeightOnlyGEMV, .int8WeightOnlySemiStructuredGEMM,
    .int8WeightOnlySemiStructuredGEMV, .int8WeightOnlyBlockGEMM, .int8WeightOnlyBlockGEMV, .bf16GEMM, .bf16GEMV,
    .bf16SemiStructuredGEMM, .bf16SemiStructuredGEMV, .bf16BlockGEMM, .bf16BlockGEMV,
  ]

  /// The forms the kernels run, as examples of each row (block shapes and N:M vary).
  public static let forms: [WeightForm] =
    [.dense, .twoFour, .bsr(32, 32), .csr]
    + [WeightForm.Encoding.int8Dynamic, .int8, .bfloat16].flatMap { encoding in
      [WeightForm.Layout.dense, .nOfM(n: 2, m: 4), .block(rows: 32, columns: 32)].map { WeightForm($0, encoding: encoding) }
    }

  /// Whether the kernels run `form`: every layout in float32 (2:4 the only N:M), and dense, 2:4
  /// and block-sparse in each other encoding.
  public static func supports(_ form: WeightForm) -> Bool {
    switch (form.encoding, form.layout) {
    case (.float32, let .nOfM(n, m)): n == 2 && m == 4
    case (.float32, _): true
    case (.int8, .dense), (.int8Dynamic, .dense): true
    case (.int8Dynamic, .nOfM(2, 4)), (.int8Dynamic, .block), (.int8, .nOfM(2, 4)), (.int8, .block): true
    case (.bfloat16, .dense), (.bfloat16, .nOfM(2, 4)), (.bfloat16, .block): true
    default: false
    }
  }

  /// Packs `stored` for the kernels of `form`, without a dense intermediate for sparse forms:
  /// the stored arrays are packed directly where the layouts agree, and through the nonzeros
  /// (CSR) otherwise. Returns the packed weight and its density (stored values over `out · in`).
  static func pack(_ stored: StoredTensor, as form: WeightForm, name: String) throws(KernelError)
    -> (operand: any PackedOperand, density: Double)
  {
    guard supports(form) else {
      throw .unsupportedWeight("'\(name)': the kernels run \(forms.map(\.description).joined(separator: ", ")) in float32, not \(form)")
    }
    guard stored.shape.count == 2 else {
      throw .unsupportedWeight("'\(name)' must be a matrix, got shape \(stored.shape)")
    }
    let quantized: Bool
    if case .quantized = stored { quantized = true } else { quantized = false }
    guard quantized || (stored.dtype.isFloatingPoint && stored.dtype.isNumeric) else {
      throw .unsupportedWeight("'\(name)' must hold floating-point values, not \(stored.dtype)")
    }
    let (n, k) = (stored.shape[0], stored.shape[1])
    func convert<T>(_ body: () throws(SparseFormatError) -> T) throws(KernelError) -> T {
      do { return try body() } catch { throw .unsupportedWeight("\(error)") }
    }
    if form.encoding == .bfloat16, case .nOfM = form.layout {
      let logical = try convert { () throws(SparseFormatError) in try twoFour(stored, name: name) }
      let bits = logical.values.dtype == .bfloat16 ? logical.values : float32(logical.values).converted(to: .bfloat16)
      let packed = bits.withUnsafeBufferPointer(as: BFloat16.self) { v in
        v.withMemoryRebound(to: UInt16.self) { b in
          logical.indices.withUnsafeBufferPointer { i in
            PackedBF16SemiStructuredWeight(
              bits: b.baseAddress ?? UnsafePointer(bitPattern: 16)!, positions: i.baseAddress ?? UnsafePointer(bitPattern: 16)!, n: n, k: k)
          }
        }
      }
      return (BF16SemiStructuredOperand(weight: packed), 0.5)
    }
    if form.encoding == .bfloat16, case let .block(r, c) = form.layout {
      let csr = try convert { () throws(SparseFormatError) in try stored.csr(name: name) }
      let bits = csr.values.dtype == .bfloat16 ? csr.values : float32(csr.values).converted(to: .bfloat16)
      let packed = bits.withUnsafeBufferPointer(as: BFloat16.self) { v in
        v.withMemoryRebound(to: UInt16.self) { b in
          csr.rowOffsets.withUnsafeBufferPointer { o in
            csr.columnIndices.withUnsafeBufferPointer { i in
              PackedBF16BlockWeight(
                n: n, k: k, rowOffsets: o.baseAddress!, columns: i.baseAddress ?? UnsafePointer(bitPattern: 16)!,
                bits: b.baseAddress ?? UnsafePointer(bitPattern: 16)!)
            }
          }
        }
      }
      return (BF16BlockOperand(weight: packed, blockRows: r, blockColumns: c), packed.units.density)
    }
    if form.encoding == .bfloat16 {
      let values = stored.dtype == .bfloat16 && stored.form.layout == .dense ? stored.dense() : stored.dense().converted(to: .float32).converted(to: .bfloat16)
      let packed = values.withUnsafeBufferPointer(as: BFloat16.self) { v in
        v.withMemoryRebound(to: UInt16.self) { PackedBF16Weight(bits: $0.baseAddress ?? UnsafePointer(bitPattern: 16)!, n: n, k: k) }
      }
      return (BF16Operand(weight: packed), 1)
    }
    if form.encoding != .float32 {
      // Int8 (dense): quantized values as stored, or float values quantized per row now.
      let q = try convert { () throws(SparseFormatError) in try stored.stored(as: form, name: name) }
      guard case let .quantized(matrix) = q else { preconditionFailure("stored(as: \(form)) is quantized") }
      if let group = matrix.groupSize {
        guard form.encoding == .int8Dynamic, form.layout == .dense, group % int8GroupedBlock == 0 else {
          throw .unsupportedWeight(
            "'\(name)': int8 with a scale per \(group) columns runs as w8a8+dense with groups of a multiple of \(int8GroupedBlock), not \(form); dequantize it (f32) or quantize per row first")
        }
        return (Int8DynamicGroupedOperand(weight: packGrouped(matrix, n: n, k: k)), 1)
      }
      if case .nOfM = form.layout {
        let logical: SemiStructuredMatrix
        switch matrix.values {
        case let .nOfM(m): logical = m
        case let .cutlass(c): logical = try convert { () throws(SparseFormatError) in try SemiStructuredMatrix(c, name: name) }
        default: preconditionFailure("stored(as: \(form)) keeps 2:4 values")
        }
        if form.encoding == .int8 {
          let packed = logical.values.withUnsafeBufferPointer(as: Int8.self) { v in
            logical.indices.withUnsafeBufferPointer { i in
              matrix.scales.withUnsafeBufferPointer(as: Float.self) { s in
                PackedInt8WeightOnlySemiStructuredWeight(
                  n: n, k: k, values: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, positions: i.baseAddress ?? UnsafePointer(bitPattern: 16)!,
                  scales: s.baseAddress ?? UnsafePointer(bitPattern: 16)!)
              }
            }
          }
          return (Int8WeightOnlySemiStructuredOperand(weight: packed), 0.5)
        }
        let packed = logical.values.withUnsafeBufferPointer(as: Int8.self) { v in
          logical.indices.withUnsafeBufferPointer { i in
            matrix.scales.withUnsafeBufferPointer(as: Float.self) { s in
              PackedInt8SemiStructuredWeight(
                values: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, positions: i.baseAddress ?? UnsafePointer(bitPattern: 16)!,
                scales: s.baseAddress ?? UnsafePointer(bitPattern: 16)!, n: n, k: k)
            }
          }
        }
        return (Int8DynamicSemiStructuredOperand(weight: packed), 0.5)
      }
      if case let .block(r, c) = form.layout {
        let csr = try convert { () throws(SparseFormatError) in try matrix.values.csr(name: name) }
        let packed = csr.values.withUnsafeBufferPointer(as: Int8.self) { v in
          csr.rowOffsets.withUnsafeBufferPointer { o in
            csr.columnIndices.withUnsafeBufferPointer { i in
              matrix.scales.withUnsafeBufferPointer(as: Float.self) { s in
                PackedInt8BlockWeight(
                  n: n, k: k, rowOffsets: o.baseAddress!, columns: i.baseAddress ?? UnsafePointer(bitPattern: 16)!,
                  values: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, scales: s.baseAddress ?? UnsafePointer(bitPattern: 16)!)
              }
            }
          }
        }
        let operand: any PackedOperand =
          form.encoding == .int8Dynamic
          ? Int8DynamicBlockOperand(weight: packed, blockRows: r, blockColumns: c)
          : Int8WeightOnlyBlockOperand(weight: packed, blockRows: r, blockColumns: c)
        return (operand, packed.units.density)
      }
      let values = matrix.values.dense()
      let packed = values.withUnsafeBufferPointer(as: Int8.self) { v in
        matrix.scales.withUnsafeBufferPointer(as: Float.self) { s in
          PackedInt8Weight(values: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, scales: s.baseAddress ?? UnsafePointer(bitPattern: 16)!, n: n, k: k)
        }
      }
      let operand: any PackedOperand = form.encoding == .int8Dynamic ? Int8DynamicOperand(weight: packed) : Int8WeightOnlyOperand(weight: packed)
      return (operand, 1)
    }
    switch form.layout {
    case .dense:
      var dense = stored.dense()
      if dense.dtype != .float32 { dense = dense.converted(to: .float32) }
      let p = dense.withUnsafeBufferPointer(as: Float.self) { PackedDenseWeight(weight: $0.baseAddress!, n: n, k: k) }
      return (p, 1)
    case .nOfM:
      let matrix = try convert { () throws(SparseFormatError) in try twoFour(stored, name: name) }
      return (packSemiStructured(float32(matrix.values), n: n, k: k, positions: matrix.indices), 0.5)
    case let .block(r, c):
      let matrix: BSRMatrix
      if case let .bsr(m) = stored, m.blockRows == r, m.blockColumns == c {
        matrix = m
      } else {
        matrix = try convert { () throws(SparseFormatError) in
          try BSRMatrix(csr: try stored.csr(name: name), blockRows: r, blockColumns: c, name: name)
        }
      }
      let density = Double(matrix.storedBlockCount) / Double(Swift.max(1, (n / r) * (k / c)))
      guard r % 8 == 0 else {
        // Other block heights run the unstructured kernels on the same nonzeros.
        return (packCSR(try convert { () throws(SparseFormatError) in CSRMatrix(matrix) }), density)
      }
      let p = float32(matrix.values).withUnsafeBufferPointer(as: Float.self) { v in
        PackedBSRWeight(
          n: n, k: k, r: r, c: c, rowOffsets: matrix.rowOffsets, columnIndices: matrix.columnIndices, values: v.baseAddress!)
      }
      return (p, density)
    case .csr:
      let matrix = try convert { () throws(SparseFormatError) in try stored.csr(name: name) }
      return (packCSR(matrix), Double(matrix.storedValueCount) / Double(Swift.max(1, n * k)))
    }
  }

  /// Packs the logical 2:4 form (values `[n, groups·2]` f32, one position byte per value).
  static func packSemiStructured(_ values: Tensor, n: Int, k: Int, positions: [UInt8]) -> PackedSemiStructuredWeight {
    values.withUnsafeBufferPointer(as: Float.self) { v in
      positions.withUnsafeBufferPointer { i in
        PackedSemiStructuredWeight(
          n: n, k: k, values: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, positions: i.baseAddress ?? UnsafePointer(bitPattern: 16)!)
      }
    }
  }

  /// Packs CSR in column blocks of `columnBlock` inputs (default: about 16 nonzeros per row and
  /// block, a power of two in 128…2048 — measured on Zen 3, small blocks win at 70% sparsity,
  /// large ones at 99%).
  static func packCSR(_ m: CSRMatrix, columnBlock: Int? = nil) -> PackedCSRWeight {
    let density = Double(m.storedValueCount) / Double(Swift.max(1, m.shape[0] * m.shape[1]))
    let columnBlock = columnBlock ?? defaultColumnBlock(density: density)
    return float32(m.values).withUnsafeBufferPointer(as: Float.self) { v in
      PackedCSRWeight(
        n: m.shape[0], k: m.shape[1], rowOffsets: m.rowOffsets, columnIndices: m.columnIndices,
        values: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, kBlock: columnBlock)
    }
  }

  /// The default CSR column block for a density.
  static func defaultColumnBlock(density: Double) -> Int {
    let wanted = 16 / Swift.max(density, 1e-6)
    var block = 128
    while Double(block) < wanted && block < 2048 { block *= 2 }
    return block
  }

  /// `stored`'s 2:4 values and positions: as stored (logical or CUTLASS), else from its nonzeros.
  private static func twoFour(_ stored: StoredTensor, name: String) throws(SparseFormatError) -> SemiStructuredMatrix {
    switch stored {
    case let .nOfM(m) where m.n == 2 && m.m == 4: m
    case let .cutlass(cutlass): try SemiStructuredMatrix(cutlass)
    default: try SemiStructuredMatrix(csr: try stored.csr(name: name), n: 2, m: 4, name: name)
    }
  }

  private static func float32(_ t: Tensor) -> Tensor { t.dtype == .float32 ? t : t.converted(to: .float32) }
}

// MARK: - The rows' kernels

/// Collects nonzeros row by row into a CSR matrix (entries must arrive in row order, columns
/// ascending within a row).
struct CSRBuilder {
  let rows: Int
  let columns: Int
  var offsets: [Int32] = [0]
  var indices: [Int32] = []
  var values: [Float] = []

  init(rows: Int, columns: Int, reserve: Int) {
    self.rows = rows
    self.columns = columns
    indices.reserveCapacity(reserve)
    values.reserveCapacity(reserve)
  }

  mutating func append(column: Int, _ value: Float) {
    guard value.magnitude != 0 else { return }
    indices.append(Int32(column))
    values.append(value)
  }

  mutating func endRow() { offsets.append(Int32(indices.count)) }

  func matrix() -> CSRMatrix {
    // The arrays are built valid: the initialiser's checks cannot fail.
    try! CSRMatrix(shape: [rows, columns], rowOffsets: offsets, columnIndices: indices, values: Tensor(values, shape: [values.count]), name: "packed weight")
  }
}

extension PackedDenseWeight: PackedOperand {
  var kernels: [LinearKernel] { [.denseGEMM, .denseGEMV] }
  func stored() -> StoredTensor {
    var t = Tensor(zeros: [n, k], dtype: .float32)
    t.withUnsafeMutableBufferPointer(as: Float.self) { if let base = $0.baseAddress { unpack(into: base) } }
    return .dense(t)
  }
  func nonzeros() -> CSRMatrix {
    var b = CSRBuilder(rows: n, columns: k, reserve: n * k)
    var row = [Float](repeating: 0, count: n * k)
    row.withUnsafeMutableBufferPointer { unpack(into: $0.baseAddress!) }
    for r in 0..<n {
      for c in 0..<k { b.append(column: c, row[r * k + c]) }
      b.endRow()
    }
    return b.matrix()
  }
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    denseLinear(weight: self, x: x, m: m, y: y, bias: bias, workers: workers)
  }
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    denseLinearRows(weight: self, x: x, m: m, y: y, bias: bias, workers: workers)
  }
}

extension PackedSemiStructuredWeight: PackedOperand {
  func stored() -> StoredTensor { .csr(nonzeros()) }
  var kernels: [LinearKernel] { [.semiStructuredPanel, .semiStructuredGEMV] }
  func nonzeros() -> CSRMatrix {
    var b = CSRBuilder(rows: n, columns: k, reserve: n * groups * 2)
    let v = values.pointer
    for r in 0..<n {
      let (rb, lane) = (r / 8, r % 8)
      for g in 0..<groups {
        let code = Int(codes[rb * groups + g] >> (4 * UInt32(lane))) & 0xF
        let (i0, i1) = (code & 3, code >> 2)
        let v0 = v[((rb * groups + g) * 2) * 8 + lane], v1 = v[((rb * groups + g) * 2 + 1) * 8 + lane]
        let (first, second) = i0 <= i1 ? ((i0, v0), (i1, v1)) : ((i1, v1), (i0, v0))
        if 4 * g + first.0 < k { b.append(column: 4 * g + first.0, first.1) }
        if 4 * g + second.0 < k { b.append(column: 4 * g + second.0, second.1) }
      }
      b.endRow()
    }
    return b.matrix()
  }
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    semiStructuredPanelLinear(weight: self, x: x, m: m, y: y, bias: bias, workers: workers)
  }
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    semiStructuredLinearRows(weight: self, x: x, m: m, y: y, bias: bias, workers: workers)
  }
}

extension PackedBSRWeight: PackedOperand {
  func stored() -> StoredTensor { .csr(nonzeros()) }
  var kernels: [LinearKernel] { [.bsr, .bsrGEMV] }
  func nonzeros() -> CSRMatrix {
    var b = CSRBuilder(rows: n, columns: k, reserve: blockCount * r * c)
    for row in 0..<n {
      let (br, s, j) = (row / r, row % r / width, row % width)
      let lo = Int(rowOffsets[br])
      let count = Int(rowOffsets[br + 1]) - lo
      let panel = data.pointer + lo * r * c + s * count * c * width
      for block in 0..<count {
        let k0 = Int(kStarts[lo + block])
        for kk in 0..<c { b.append(column: k0 + kk, panel[(block * c + kk) * width + j]) }
      }
      b.endRow()
    }
    return b.matrix()
  }
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    bsrLinear(weight: self, x: x, m: m, y: y, bias: bias, workers: workers)
  }
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    bsrLinearRows(weight: self, x: x, m: m, y: y, bias: bias, workers: workers)
  }
}

extension PackedCSRWeight: PackedOperand {
  func stored() -> StoredTensor { .csr(nonzeros()) }
  var kernels: [LinearKernel] { [.csrPanel, .csrSpMV] }
  func nonzeros() -> CSRMatrix {
    var b = CSRBuilder(rows: n, columns: k, reserve: nonzeroCount)
    for r in 0..<n {
      for block in 0..<blockCount {
        for i in Int(offsets[block * n + r])..<Int(offsets[block * n + r + 1]) {
          b.append(column: block * kBlock + Int(columns[i]), values[i])
        }
      }
      b.endRow()
    }
    return b.matrix()
  }
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    csrPanelLinear(weight: self, x: x, m: m, y: y, bias: bias, workers: workers)
  }
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    csrLinearRows(weight: self, x: x, m: m, y: y, bias: bias, workers: workers)
  }
}

/// A packed form run by the panel-dot driver (``panelDotLinear(weight:x:m:y:bias:workers:)``):
/// int8 dynamic and bf16, dense, 2:4 and block-sparse.
protocol PanelDotOperand: PackedOperand {
  associatedtype Weight: PanelDotWeight
  var weight: Weight { get }
}

extension PanelDotOperand {
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    panelDotLinear(weight: weight, x: x, m: m, y: y, bias: bias, workers: workers)
  }
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    panelDotLinearRows(weight: weight, x: x, m: m, y: y, bias: bias, workers: workers)
  }
}

/// An int8 dense weight run with dynamic int8 activations (W8A8).
struct Int8DynamicOperand: PanelDotOperand {
  let weight: PackedInt8Weight
  var kernels: [LinearKernel] { [.int8DynamicGEMM, .int8DynamicGEMV] }
  var byteCount: Int { weight.byteCount }
  func unpack(into w: UnsafeMutablePointer<Float>) { weight.unpackDequantized(into: w) }
  func nonzeros() -> CSRMatrix { weight.dequantizedNonzeros() }
  func stored() -> StoredTensor { weight.stored(activations: .dynamic) }
}

/// An int8 dense weight run with float32 activations (weight-only).
struct Int8WeightOnlyOperand: PackedOperand {
  let weight: PackedInt8Weight
  var kernels: [LinearKernel] { [.int8WeightOnlyGEMM, .int8WeightOnlyGEMV] }
  var byteCount: Int { weight.byteCount }
  func unpack(into w: UnsafeMutablePointer<Float>) { weight.unpackDequantized(into: w) }
  func nonzeros() -> CSRMatrix { weight.dequantizedNonzeros() }
  func stored() -> StoredTensor { weight.stored(activations: .none) }
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    int8WeightOnlyGEMM(weight: weight, x: x, m: m, y: y, bias: bias, workers: workers)
  }
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    int8WeightOnlyLinear(weight: weight, x: x, m: m, y: y, bias: bias, workers: workers)
  }
}

extension PackedInt8Weight {
  /// The int8 values `[n, k]` row-major.
  func values() -> [Int8] {
    var q = [Int8](repeating: 0, count: n * k)
    for r in 0..<n {
      for c in 0..<k { q[r * k + c] = value(row: r, column: c) }
    }
    return q
  }

  func unpackDequantized(into w: UnsafeMutablePointer<Float>) {
    for r in 0..<n {
      let s = scales.pointer[r]
      for c in 0..<k { w[r * k + c] = Float(value(row: r, column: c)) * s }
    }
  }

  func dequantizedNonzeros() -> CSRMatrix {
    var b = CSRBuilder(rows: n, columns: k, reserve: n * k)
    for r in 0..<n {
      let s = scales.pointer[r]
      for c in 0..<k { b.append(column: c, Float(value(row: r, column: c)) * s) }
      b.endRow()
    }
    return b.matrix()
  }

  func stored(activations: ActivationQuantization) -> StoredTensor {
    let scales = Tensor(Array(UnsafeBufferPointer(start: self.scales.pointer, count: n)), shape: [n])
    // The packed arrays were checked when they were made: the parts agree.
    return .quantized(try! QuantizedMatrix(values: .dense(Tensor(values(), shape: [n, k])), scales: scales, activations: activations, name: "packed weight"))
  }
}

/// Packs a per-group int8 matrix (groups a multiple of 32 columns) for the grouped W8A8 kernels,
/// each scale repeated over its 32-column blocks.
private func packGrouped(_ matrix: QuantizedMatrix, n: Int, k: Int) -> PackedInt8GroupedWeight {
  let repeats = (matrix.groupSize ?? int8GroupedBlock) / int8GroupedBlock
  let scales = matrix.scales.scalars(as: Float.self).flatMap { repeatElement($0, count: repeats) }
  return matrix.values.dense().withUnsafeBufferPointer(as: Int8.self) { v in
    scales.withUnsafeBufferPointer { s in
      PackedInt8GroupedWeight(values: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, scales: s.baseAddress ?? UnsafePointer(bitPattern: 16)!, n: n, k: k)
    }
  }
}

/// An int8 dense weight with a scale per row and 32-column block (GGUF Q8_0), run with dynamic
/// int8 activations.
struct Int8DynamicGroupedOperand: PanelDotOperand {
  let weight: PackedInt8GroupedWeight
  var kernels: [LinearKernel] { [.int8DynamicGroupedGEMM, .int8DynamicGroupedGEMV] }
  var byteCount: Int { weight.byteCount }
  func unpack(into w: UnsafeMutablePointer<Float>) {
    for r in 0..<weight.n {
      for c in 0..<weight.k { w[r * weight.k + c] = Float(weight.value(row: r, column: c)) * weight.scale(row: r, block: c / int8GroupedBlock) }
    }
  }
  func nonzeros() -> CSRMatrix {
    var b = CSRBuilder(rows: weight.n, columns: weight.k, reserve: weight.n * weight.k)
    for r in 0..<weight.n {
      for c in 0..<weight.k { b.append(column: c, Float(weight.value(row: r, column: c)) * weight.scale(row: r, block: c / int8GroupedBlock)) }
      b.endRow()
    }
    return b.matrix()
  }
  /// The exact values and one scale per 32-column block.
  func stored() -> StoredTensor {
    let (n, k, blocks) = (weight.n, weight.k, weight.blocks)
    var values = [Int8](repeating: 0, count: n * k)
    var scales = [Float](repeating: 0, count: n * blocks)
    for r in 0..<n {
      for c in 0..<k { values[r * k + c] = weight.value(row: r, column: c) }
      for b in 0..<blocks { scales[r * blocks + b] = weight.scale(row: r, block: b) }
    }
    // The packed arrays were checked when they were made: the parts agree.
    return .quantized(
      try! QuantizedMatrix(values: .dense(Tensor(values, shape: [n, k])), scales: Tensor(scales, shape: [n, blocks]), activations: .dynamic, name: "packed weight"))
  }
}

/// A 2:4 int8 weight run with dynamic int8 activations (W8A8 2:4).
struct Int8DynamicSemiStructuredOperand: PanelDotOperand {
  let weight: PackedInt8SemiStructuredWeight
  var kernels: [LinearKernel] { [.int8DynamicSemiStructuredGEMM, .int8DynamicSemiStructuredGEMV] }
  var byteCount: Int { weight.byteCount }
  var reader: TwoFourReader<Int8> { TwoFourReader(n: weight.n, k: weight.k, scales: weight.scales.pointer, kept: weight.kept) }
  func unpack(into w: UnsafeMutablePointer<Float>) { reader.unpack(into: w) }
  func nonzeros() -> CSRMatrix { reader.nonzeros() }
  func stored() -> StoredTensor { reader.stored(scales: weight.scales.pointer, activations: .dynamic) }
}

/// A bf16 dense weight (bf16-rounded activations, fp32 sums).
struct BF16Operand: PanelDotOperand {
  let weight: PackedBF16Weight
  var kernels: [LinearKernel] { [.bf16GEMM, .bf16GEMV] }
  var byteCount: Int { weight.byteCount }
  func unpack(into w: UnsafeMutablePointer<Float>) {
    for r in 0..<weight.n {
      for c in 0..<weight.k { w[r * weight.k + c] = Float(bitPattern: UInt32(weight.bits(row: r, column: c)) << 16) }
    }
  }
  func nonzeros() -> CSRMatrix {
    var b = CSRBuilder(rows: weight.n, columns: weight.k, reserve: weight.n * weight.k)
    for r in 0..<weight.n {
      for c in 0..<weight.k { b.append(column: c, Float(bitPattern: UInt32(weight.bits(row: r, column: c)) << 16)) }
      b.endRow()
    }
    return b.matrix()
  }
  func stored() -> StoredTensor {
    var bits = [BFloat16](repeating: BFloat16(bitPattern: 0), count: weight.n * weight.k)
    for r in 0..<weight.n {
      for c in 0..<weight.k { bits[r * weight.k + c] = BFloat16(bitPattern: weight.bits(row: r, column: c)) }
    }
    return .dense(Tensor(bits, shape: [weight.n, weight.k]))
  }
}

/// A 2:4 bf16 weight (bf16-rounded activations, fp32 sums).
struct BF16SemiStructuredOperand: PanelDotOperand {
  let weight: PackedBF16SemiStructuredWeight
  var kernels: [LinearKernel] { [.bf16SemiStructuredGEMM, .bf16SemiStructuredGEMV] }
  var byteCount: Int { weight.byteCount }
  var reader: TwoFourReader<BFloat16> {
    let weight = weight
    return TwoFourReader(
      n: weight.n, k: weight.k, kept: { r, g, slot in
        let (bits, position) = weight.kept(row: r, group: g, slot: slot)
        return (BFloat16(bitPattern: bits), position)
      }, float: { _, v in Float(v) })
  }
  func unpack(into w: UnsafeMutablePointer<Float>) { reader.unpack(into: w) }
  func nonzeros() -> CSRMatrix { reader.nonzeros() }
  func stored() -> StoredTensor { .nOfM(reader.logical()) }
}

/// A block-sparse int8 weight's reading (the W8A8 and weight-only BSR operands share the packed
/// weight): `blockRows` × `blockColumns` is the file form's block shape (the packed units are 32 × 4).
struct Int8Blocks {
  let weight: PackedInt8BlockWeight
  let blockRows: Int
  let blockColumns: Int

  func unpack(into w: UnsafeMutablePointer<Float>) {
    let (n, k) = (weight.n, weight.k)
    let q = weight.dense()
    for r in 0..<n {
      let s = weight.scales.pointer[r]
      for c in 0..<k { w[r * k + c] = Float(q[r * k + c]) * s }
    }
  }
  func nonzeros() -> CSRMatrix {
    var dense = [Float](repeating: 0, count: weight.n * weight.k)
    dense.withUnsafeMutableBufferPointer { unpack(into: $0.baseAddress!) }
    return try! CSRMatrix(dense: Tensor(dense, shape: [weight.n, weight.k]), name: "packed weight")
  }
  func stored(activations: ActivationQuantization) -> StoredTensor {
    let (n, k) = (weight.n, weight.k)
    let scales = Tensor(Array(UnsafeBufferPointer(start: weight.scales.pointer, count: n)), shape: [n])
    // The packed values came from a matrix of these blocks: they fit them.
    let values = try! StoredTensor.dense(Tensor(weight.dense(), shape: [n, k])).stored(
      as: WeightForm(.block(rows: blockRows, columns: blockColumns)), name: "packed weight")
    return .quantized(try! QuantizedMatrix(values: values, scales: scales, activations: activations, name: "packed weight"))
  }
}

/// A block-sparse int8 weight run with dynamic int8 activations (W8A8 BSR).
struct Int8DynamicBlockOperand: PanelDotOperand {
  let blocks: Int8Blocks
  var weight: PackedInt8BlockWeight { blocks.weight }
  init(weight: PackedInt8BlockWeight, blockRows: Int, blockColumns: Int) {
    blocks = Int8Blocks(weight: weight, blockRows: blockRows, blockColumns: blockColumns)
  }
  var kernels: [LinearKernel] { [.int8DynamicBlockGEMM, .int8DynamicBlockGEMV] }
  var byteCount: Int { blocks.weight.byteCount }
  func unpack(into w: UnsafeMutablePointer<Float>) { blocks.unpack(into: w) }
  func nonzeros() -> CSRMatrix { blocks.nonzeros() }
  func stored() -> StoredTensor { blocks.stored(activations: .dynamic) }
}

/// A block-sparse int8 weight run with float32 activations (weight-only BSR).
struct Int8WeightOnlyBlockOperand: PackedOperand {
  let blocks: Int8Blocks
  init(weight: PackedInt8BlockWeight, blockRows: Int, blockColumns: Int) {
    blocks = Int8Blocks(weight: weight, blockRows: blockRows, blockColumns: blockColumns)
  }
  var kernels: [LinearKernel] { [.int8WeightOnlyBlockGEMM, .int8WeightOnlyBlockGEMV] }
  var byteCount: Int { blocks.weight.byteCount }
  func unpack(into w: UnsafeMutablePointer<Float>) { blocks.unpack(into: w) }
  func nonzeros() -> CSRMatrix { blocks.nonzeros() }
  func stored() -> StoredTensor { blocks.stored(activations: .none) }
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    int8WeightOnlyBlockGEMM(weight: blocks.weight, x: x, m: m, y: y, bias: bias, workers: workers)
  }
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    int8WeightOnlyBlockLinearRows(weight: blocks.weight, x: x, m: m, y: y, bias: bias, workers: workers)
  }
}

/// A block-sparse bf16 weight (bf16-rounded activations, fp32 sums); `blockRows` × `blockColumns`
/// is the file form's block shape (the packed units are 32 × 2).
struct BF16BlockOperand: PanelDotOperand {
  let weight: PackedBF16BlockWeight
  let blockRows: Int
  let blockColumns: Int
  var kernels: [LinearKernel] { [.bf16BlockGEMM, .bf16BlockGEMV] }
  var byteCount: Int { weight.byteCount }
  func unpack(into w: UnsafeMutablePointer<Float>) {
    for (i, bits) in weight.dense().enumerated() { w[i] = Float(bitPattern: UInt32(bits) << 16) }
  }
  func nonzeros() -> CSRMatrix {
    var dense = [Float](repeating: 0, count: weight.n * weight.k)
    dense.withUnsafeMutableBufferPointer { unpack(into: $0.baseAddress!) }
    return try! CSRMatrix(dense: Tensor(dense, shape: [weight.n, weight.k]), name: "packed weight")
  }
  func stored() -> StoredTensor {
    let bits = weight.dense().map { BFloat16(bitPattern: $0) }
    // The packed values came from a matrix of these blocks: they fit them.
    return try! StoredTensor.dense(Tensor(bits, shape: [weight.n, weight.k])).stored(
      as: WeightForm(.block(rows: blockRows, columns: blockColumns)), name: "packed weight")
  }
}

/// A 2:4 int8 weight run with float32 activations (weight-only 2:4).
struct Int8WeightOnlySemiStructuredOperand: PackedOperand {
  let weight: PackedInt8WeightOnlySemiStructuredWeight
  var kernels: [LinearKernel] { [.int8WeightOnlySemiStructuredGEMM, .int8WeightOnlySemiStructuredGEMV] }
  var byteCount: Int { weight.byteCount }
  var reader: TwoFourReader<Int8> { TwoFourReader(n: weight.n, k: weight.k, scales: weight.scales.pointer, kept: weight.kept) }
  func unpack(into w: UnsafeMutablePointer<Float>) { reader.unpack(into: w) }
  func nonzeros() -> CSRMatrix { reader.nonzeros() }
  func stored() -> StoredTensor { reader.stored(scales: weight.scales.pointer, activations: .none) }
  func multiply(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    int8WeightOnlySemiStructuredPanelLinear(weight: weight, x: x, m: m, y: y, bias: bias, workers: workers)
  }
  func multiplyRows(x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, workers: Int) {
    int8WeightOnlySemiStructuredLinearRows(weight: weight, x: x, m: m, y: y, bias: bias, workers: workers)
  }
}

/// A packed 2:4 weight read through its kept values (`kept(row, group, slot)`: value and position
/// in the group): the logical 2:4 matrix it stores exactly, and its dense float values
/// (`float(row, value)`: dequantized or widened). The int8 (W8A8, weight-only) and bf16 2:4
/// operands share it.
struct TwoFourReader<Value: TensorScalar> {
  let n: Int
  let k: Int
  let kept: (_ row: Int, _ group: Int, _ slot: Int) -> (value: Value, position: Int)
  let float: (_ row: Int, _ value: Value) -> Float

  func unpack(into w: UnsafeMutablePointer<Float>) {
    w.update(repeating: 0, count: n * k)
    for r in 0..<n {
      for g in 0..<(k + 3) / 4 {
        for slot in 0..<2 {
          let (v, position) = kept(r, g, slot)
          if 4 * g + position < k { w[r * k + 4 * g + position] = float(r, v) }
        }
      }
    }
  }

  func nonzeros() -> CSRMatrix {
    var dense = [Float](repeating: 0, count: n * k)
    dense.withUnsafeMutableBufferPointer { unpack(into: $0.baseAddress!) }
    return try! CSRMatrix(dense: Tensor(dense, shape: [n, k]), name: "packed weight")
  }

  /// The kept values and positions as the logical 2:4 matrix.
  func logical() -> SemiStructuredMatrix {
    let groups = (k + 3) / 4
    var values = [Value](repeating: Value(converting: 0), count: n * groups * 2)
    var positions = [UInt8](repeating: 0, count: n * groups * 2)
    for r in 0..<n {
      for g in 0..<groups {
        for slot in 0..<2 {
          let (v, position) = kept(r, g, slot)
          values[(r * groups + g) * 2 + slot] = v
          positions[(r * groups + g) * 2 + slot] = UInt8(position)
        }
      }
    }
    // The packed arrays were checked when they were made: the parts agree.
    return try! SemiStructuredMatrix(
      shape: [n, k], n: 2, m: 4, values: Tensor(values, shape: [n, groups * 2]), indices: positions, name: "packed weight")
  }
}

extension TwoFourReader where Value == Int8 {
  /// Int8 values with the row scales `scales`.
  init(n: Int, k: Int, scales: UnsafeMutablePointer<Float>, kept: @escaping (Int, Int, Int) -> (value: Int8, position: Int)) {
    let s = UnsafePointer(scales)
    self.init(n: n, k: k, kept: kept, float: { r, v in Float(v) * s[r] })
  }

  /// The exact quantized form: the int8 2:4 values, the scales, `activations`.
  func stored(scales: UnsafeMutablePointer<Float>, activations: ActivationQuantization) -> StoredTensor {
    let scales = Tensor(Array(UnsafeBufferPointer(start: scales, count: n)), shape: [n])
    return .quantized(try! QuantizedMatrix(values: .nOfM(logical()), scales: scales, activations: activations, name: "packed weight"))
  }
}
