import SparsityCore
import SparsityFormats
import Synchronization
import _SparsityKernelsImpl

/// One implementation of `y = x · Wᵀ + bias`.
///
/// Every kernel is correct for every token count `M`; they differ in speed. ``LinearDispatcher``
/// times the candidates of a weight once per shape bucket and remembers the winner.
public enum LinearKernel: String, Sendable, CaseIterable, Codable, CustomStringConvertible {
  /// Packed dense GEMM: 6×16 register tiles, k-blocked, both cores.
  case denseGEMM = "dense-gemm"
  /// Dense GEMV, one activation row at a time (M = 1).
  case denseGEMV = "dense-gemv"
  /// Block-sparse: the dense microkernel over each block row's nonzero blocks.
  case bsr = "bsr"
  /// Block-sparse, one activation row at a time (M = 1).
  case bsrGEMV = "bsr-gemv"
  /// Unstructured: activation-major (xᵀ panels of 64 tokens, one broadcast weight per nonzero).
  case csrPanel = "csr-panel"
  /// Unstructured, row-wise SpMV per activation row (M = 1).
  case csrSpMV = "csr-spmv"
  /// 2:4: activation-major with the positions decoded from 4-bit codes, k-blocks of 64.
  case semiStructuredPanel = "2:4-panel"
  /// 2:4 for small M: 8 output rows per vector, x values picked with in-lane permutes.
  case semiStructuredGEMV = "2:4-gemv"

  /// Whether the kernel runs the dense fallback rather than the sparse weight.
  public var isDense: Bool { self == .denseGEMM || self == .denseGEMV }
  public var description: String { rawValue }
}

/// A linear layer's weight `W [out, in]`, packed once for fast `y = x · Wᵀ + bias`.
///
/// Build it from a dense tensor or from a compressed matrix; ``apply(x:bias:)`` then picks the
/// fastest kernel for the number of tokens (measured once per shape bucket by
/// ``LinearDispatcher/shared``, the dense kernels included, so sparsity never makes a layer
/// slower than its dense form by more than the dispatcher's 10% bias):
///
/// ```swift
/// let w = try LinearWeight(BSRMatrix(dense: weight, blockRows: 32, blockColumns: 32))
/// let y = w.apply(x: x, bias: b)          // x [tokens, in] f32 → y [tokens, out]
/// let z = w.apply(x: x, bias: b, kernel: .bsr)   // a specific kernel
/// ```
///
/// Values must be `float32`. The packed form is held in this object (the source matrix is not
/// retained); the dense fallback is packed lazily the first time a dense kernel runs.
public final class LinearWeight: Sendable {
  /// The storage format of the weight.
  public enum Format: Hashable, Sendable, CustomStringConvertible {
    case dense
    /// 2:4 semi-structured (2 kept in every 4 along the input dimension).
    case semiStructured
    /// Blocks of `blockRows × blockColumns`.
    case bsr(blockRows: Int, blockColumns: Int)
    /// Unstructured.
    case csr

    public var description: String {
      switch self {
      case .dense: "dense"
      case .semiStructured: "2:4"
      case .bsr(let r, let c): "bsr\(r)x\(c)"
      case .csr: "csr"
      }
    }
  }

  enum Packed: @unchecked Sendable {
    case dense(PackedDenseWeight)
    case bsr(PackedBSRWeight)
    case csr(PackedCSRWeight)
    case semiStructured(PackedSemiStructuredWeight)
  }

  /// The format this weight was built from.
  public let format: Format
  /// `out` (N), the number of output features.
  public let outFeatures: Int
  /// `in` (K), the number of input features.
  public let inFeatures: Int
  /// Stored (kept) values over `out · in`: 1 for dense, 0.5 for 2:4, the block or element
  /// density otherwise.
  public let density: Double
  let packed: Packed
  private let denseFallback = Mutex<PackedDenseWeight?>(nil)

  init(format: Format, n: Int, k: Int, density: Double, packed: Packed) {
    self.format = format
    outFeatures = n
    inFeatures = k
    self.density = density
    self.packed = packed
  }

  /// Packs a dense `float32` weight `[out, in]`.
  ///
  /// - Throws: ``KernelError`` when the CPU cannot run this build's kernels or the tensor is
  ///   not a `float32` matrix.
  public convenience init(dense weight: Tensor) throws(KernelError) {
    try CPUFeatures.requireKernelSupport()
    try Self.checkMatrix(weight, "dense weight")
    let (n, k) = (weight.shape[0], weight.shape[1])
    let p = weight.withUnsafeBufferPointer(as: Float.self) { PackedDenseWeight(weight: $0.baseAddress!, n: n, k: k) }
    self.init(format: .dense, n: n, k: k, density: 1, packed: .dense(p))
  }

  /// Packs a 2:4 semi-structured `float32` weight (53% of the dense bytes).
  public convenience init(_ matrix: SemiStructuredMatrix) throws(KernelError) {
    try CPUFeatures.requireKernelSupport()
    guard matrix.n == 2, matrix.m == 4 else {
      throw .unsupportedWeight("the semi-structured kernels take 2:4, not \(matrix.n):\(matrix.m)")
    }
    guard matrix.dtype == .float32 else {
      throw .unsupportedWeight("the kernels take float32 values, not \(matrix.dtype)")
    }
    let (n, k) = (matrix.shape[0], matrix.shape[1])
    let p = matrix.values.withUnsafeBufferPointer(as: Float.self) { v in
      matrix.indices.withUnsafeBufferPointer { i in
        PackedSemiStructuredWeight(n: n, k: k, values: v.baseAddress!, positions: i.baseAddress!)
      }
    }
    self.init(format: .semiStructured, n: n, k: k, density: 0.5, packed: .semiStructured(p))
  }

  /// Packs a block-sparse `float32` weight. Blocks with a multiple of 8 rows run the BSR
  /// kernels; other block shapes run the unstructured kernels on the same nonzeros.
  public convenience init(_ matrix: BSRMatrix) throws(KernelError) {
    try CPUFeatures.requireKernelSupport()
    guard matrix.dtype == .float32 else {
      throw .unsupportedWeight("the kernels take float32 values, not \(matrix.dtype)")
    }
    let (n, k) = (matrix.shape[0], matrix.shape[1])
    let (r, c) = (matrix.blockRows, matrix.blockColumns)
    let format = Format.bsr(blockRows: r, blockColumns: c)
    let total = Swift.max(1, (n / r) * (k / c))
    let density = Double(matrix.storedBlockCount) / Double(total)
    if r % 8 == 0 {
      let p = matrix.values.withUnsafeBufferPointer(as: Float.self) { v in
        PackedBSRWeight(
          n: n, k: k, r: r, c: c, rowOffsets: matrix.rowOffsets, columnIndices: matrix.columnIndices,
          values: v.baseAddress!)
      }
      self.init(format: format, n: n, k: k, density: density, packed: .bsr(p))
    } else {
      let csr: CSRMatrix
      do { csr = try CSRMatrix(dense: matrix.dense()) } catch { throw .unsupportedWeight("\(error)") }
      let p = Self.packCSR(csr)
      self.init(format: format, n: n, k: k, density: density, packed: .csr(p))
    }
  }

  /// Packs an unstructured `float32` weight (CSR), in column blocks of `columnBlock` inputs.
  ///
  /// The default picks the block from the density so a row holds about 16 nonzeros per block
  /// (between 128 and 2048 inputs): measured on Zen 3, small blocks win at 70% sparsity
  /// (the panel slice stays in L1/L2) and large ones at 99% (fewer accumulator reloads).
  public convenience init(_ matrix: CSRMatrix, columnBlock: Int? = nil) throws(KernelError) {
    try CPUFeatures.requireKernelSupport()
    guard matrix.dtype == .float32 else {
      throw .unsupportedWeight("the kernels take float32 values, not \(matrix.dtype)")
    }
    let (n, k) = (matrix.shape[0], matrix.shape[1])
    let density = Double(matrix.storedValueCount) / Double(Swift.max(1, n * k))
    self.init(format: .csr, n: n, k: k, density: density, packed: .csr(Self.packCSR(matrix, columnBlock: columnBlock)))
  }

  /// The default CSR column block for a density: about 16 nonzeros per row and block, a
  /// power of two in 128…2048.
  static func defaultColumnBlock(density: Double) -> Int {
    let wanted = 16 / Swift.max(density, 1e-6)
    var block = 128
    while Double(block) < wanted && block < 2048 { block *= 2 }
    return block
  }

  private static func packCSR(_ m: CSRMatrix, columnBlock: Int? = nil) -> PackedCSRWeight {
    let density = Double(m.storedValueCount) / Double(Swift.max(1, m.shape[0] * m.shape[1]))
    let columnBlock = columnBlock ?? defaultColumnBlock(density: density)
    return m.values.withUnsafeBufferPointer(as: Float.self) { v in
      PackedCSRWeight(
        n: m.shape[0], k: m.shape[1], rowOffsets: m.rowOffsets, columnIndices: m.columnIndices,
        values: v.baseAddress ?? UnsafePointer(bitPattern: 16)!, kBlock: columnBlock)
    }
  }

  private static func checkMatrix(_ t: Tensor, _ what: String) throws(KernelError) {
    guard t.rank == 2 else { throw .unsupportedWeight("\(what) must be a matrix, got shape \(t.shape)") }
    guard t.dtype == .float32 else { throw .unsupportedWeight("\(what) must be float32, got \(t.dtype)") }
  }

  // MARK: Properties

  /// Bytes of the packed weight this object holds (values and indices; the dense fallback,
  /// when it has been created, not included).
  public var byteCount: Int {
    switch packed {
    case .dense: outFeatures * inFeatures * 4
    case .bsr(let p): p.byteCount
    case .csr(let p): p.byteCount
    case .semiStructured(let p): p.byteCount
    }
  }

  /// The kernels that run this weight's own format.
  public var sparseKernels: [LinearKernel] {
    switch packed {
    case .dense: []
    case .bsr: [.bsr, .bsrGEMV]
    case .csr: [.csrPanel, .csrSpMV]
    case .semiStructured: [.semiStructuredPanel, .semiStructuredGEMV]
    }
  }

  /// The kernels worth timing for `tokens` rows: the format's own (the one-row-at-a-time
  /// kernels only for small M) and the dense ones.
  public func candidateKernels(tokens m: Int) -> [LinearKernel] {
    var list: [LinearKernel] = []
    for kernel in sparseKernels + [.denseGEMM, .denseGEMV] {
      let rowWise = kernel == .denseGEMV || kernel == .bsrGEMV || kernel == .csrSpMV || kernel == .semiStructuredGEMV
      if rowWise && m > 16 { continue }
      if kernel == .denseGEMM && m == 1 { continue }
      list.append(kernel)
    }
    return list
  }

  // MARK: Apply

  /// `y = x · Wᵀ + bias` with the kernel ``LinearDispatcher/shared`` picks for this shape.
  ///
  /// - Parameters:
  ///   - x: `float32` activations `[..., in]` (leading dimensions are the tokens).
  ///   - bias: `float32` `[out]`, optional.
  /// - Returns: `[..., out]`.
  public func apply(x: Tensor, bias: Tensor? = nil) -> Tensor {
    apply(x: x, bias: bias, kernel: LinearDispatcher.shared.kernel(for: self, tokens: Self.tokens(of: x)))
  }

  /// `y = x · Wᵀ + bias` with the kernel chosen by `dispatcher`.
  public func apply(x: Tensor, bias: Tensor? = nil, dispatcher: LinearDispatcher) -> Tensor {
    apply(x: x, bias: bias, kernel: dispatcher.kernel(for: self, tokens: Self.tokens(of: x)))
  }

  static func tokens(of x: Tensor) -> Int {
    precondition(x.rank >= 1, "x must have at least one dimension")
    return x.shape.dropLast().reduce(1, *)
  }

  /// `y = x · Wᵀ + bias` with a given kernel. A kernel of another format than this weight's
  /// (other than the dense ones) is a programmer error.
  public func apply(x: Tensor, bias: Tensor? = nil, kernel: LinearKernel) -> Tensor {
    if let problem = CPUFeatures.host.kernelSupportProblem { preconditionFailure(problem) }
    precondition(x.dtype == .float32, "x must be float32, got \(x.dtype)")
    precondition(x.rank >= 1 && x.shape.last == inFeatures, "x \(x.shape) does not end in \(inFeatures) features")
    if let bias {
      precondition(bias.dtype == .float32 && bias.shape == [outFeatures], "bias must be float32 [\(outFeatures)], got \(bias.dtype) \(bias.shape)")
    }
    let m = Self.tokens(of: x)
    // Every kernel writes every output element: no zero fill.
    let outShape = Array(x.shape.dropLast()) + [outFeatures]
    var y = Tensor(
      shape: outShape, dtype: .float32,
      storage: TensorStorage(uninitializedByteCount: m * outFeatures * 4))
    y.withUnsafeMutableBufferPointer(as: Float.self) { yb in
      x.withUnsafeBufferPointer(as: Float.self) { xb in
        if let bias {
          bias.withUnsafeBufferPointer(as: Float.self) { bb in
            run(kernel, x: xb.baseAddress, m: m, y: yb.baseAddress, bias: bb.baseAddress)
          }
        } else {
          run(kernel, x: xb.baseAddress, m: m, y: yb.baseAddress, bias: nil)
        }
      }
    }
    return y
  }

  /// `y = x · Wᵀ + bias` on raw row-major buffers — `x [tokens, in]`, `y [tokens, out]`,
  /// `bias [out]` — with the kernel ``LinearDispatcher/shared`` picks for `tokens`.
  public func apply(
    x: UnsafeBufferPointer<Float>, tokens m: Int, into y: UnsafeMutableBufferPointer<Float>,
    bias: UnsafeBufferPointer<Float>? = nil
  ) {
    if let problem = CPUFeatures.host.kernelSupportProblem { preconditionFailure(problem) }
    precondition(x.count == m * inFeatures && y.count == m * outFeatures, "apply: buffers do not hold \(m) tokens")
    precondition(bias == nil || bias!.count == outFeatures, "apply: bias must hold \(outFeatures) values")
    let kernel = LinearDispatcher.shared.kernel(for: self, tokens: m)
    run(kernel, x: x.baseAddress, m: m, y: y.baseAddress, bias: bias?.baseAddress)
  }

  /// Runs `kernel` on raw buffers: `x [m, in]`, `y [m, out]`, `bias [out]` or nil.
  func run(
    _ kernel: LinearKernel, x: UnsafePointer<Float>?, m: Int, y: UnsafeMutablePointer<Float>?,
    bias: UnsafePointer<Float>?
  ) {
    guard m > 0, outFeatures > 0, let y else { return }
    let workers = Parallel.workerCount
    // With an empty inner dimension the buffers may have no address.
    let x = x ?? UnsafePointer(bitPattern: 64)!
    if inFeatures == 0 {
      fillBias(y: y, m: m, n: outFeatures, bias: bias)
      return
    }
    switch (kernel, packed) {
    case (.denseGEMM, _):
      denseLinear(weight: denseWeight(), x: x, m: m, y: y, bias: bias, workers: workers)
    case (.denseGEMV, _):
      denseLinearRows(weight: denseWeight(), x: x, m: m, y: y, bias: bias, workers: workers)
    case (.bsr, .bsr(let p)):
      bsrLinear(weight: p, x: x, m: m, y: y, bias: bias, workers: workers)
    case (.bsrGEMV, .bsr(let p)):
      bsrLinearRows(weight: p, x: x, m: m, y: y, bias: bias, workers: workers)
    case (.csrPanel, .csr(let p)):
      csrPanelLinear(weight: p, x: x, m: m, y: y, bias: bias, workers: workers)
    case (.csrSpMV, .csr(let p)):
      csrLinearRows(weight: p, x: x, m: m, y: y, bias: bias, workers: workers)
    case (.semiStructuredPanel, .semiStructured(let p)):
      semiStructuredPanelLinear(weight: p, x: x, m: m, y: y, bias: bias, workers: workers)
    case (.semiStructuredGEMV, .semiStructured(let p)):
      semiStructuredLinearRows(weight: p, x: x, m: m, y: y, bias: bias, workers: workers)
    default:
      preconditionFailure("kernel \(kernel) does not run a \(format) weight; use one of \(sparseKernels + [.denseGEMM, .denseGEMV])")
    }
  }

  /// The dense packed weight (this weight's own for `.dense`, otherwise the fallback,
  /// unpacked from the sparse form on first use and kept).
  func denseWeight() -> PackedDenseWeight {
    if case .dense(let p) = packed { return p }
    return denseFallback.withLock { cached in
      if let cached { return cached }
      let made = Scratch.with(count: outFeatures * inFeatures) { w in
        unpack(into: w)
        return PackedDenseWeight(weight: w, n: outFeatures, k: inFeatures)
      }
      cached = made
      return made
    }
  }

  /// Drops the dense fallback (after tuning decided against it).
  func releaseDenseFallback() {
    denseFallback.withLock { $0 = nil }
  }

  /// Writes the dense row-major weight.
  func unpack(into w: UnsafeMutablePointer<Float>) {
    switch packed {
    case .dense(let p): p.unpack(into: w)
    case .bsr(let p): p.unpack(into: w)
    case .csr(let p): p.unpack(into: w)
    case .semiStructured(let p): p.unpack(into: w)
    }
  }

  /// The weight as a dense `float32` tensor `[out, in]`.
  public func dense() -> Tensor {
    var t = Tensor(zeros: [outFeatures, inFeatures], dtype: .float32)
    t.withUnsafeMutableBufferPointer(as: Float.self) { b in
      if let base = b.baseAddress { unpack(into: base) }
    }
    return t
  }
}

