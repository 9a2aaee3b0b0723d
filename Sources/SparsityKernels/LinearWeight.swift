import SparsityCore
import SparsityFormats
import Synchronization
import _SparsityKernelsImpl

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
/// Floating-point values are packed as `float32`. The packed form is held in this object (the
/// source arrays are not retained); the dense fallback is packed lazily the first time a dense
/// kernel runs, and dropped when tuning decides against it.
public final class LinearWeight: Sendable {
  /// The packed form: layout × encoding.
  public let form: WeightForm
  /// `out` (N), the number of output features.
  public let outFeatures: Int
  /// `in` (K), the number of input features.
  public let inFeatures: Int
  /// Stored (kept) values over `out · in`: 1 for dense, 0.5 for 2:4, the block or element
  /// density otherwise.
  public let density: Double
  let packed: any PackedOperand
  /// The kernels that run this weight's own packed form (its panel kernel, then its row-wise one).
  public let ownKernels: [LinearKernel]
  private let denseFallback = Mutex<PackedDenseWeight?>(nil)

  init(form: WeightForm, n: Int, k: Int, density: Double, packed: any PackedOperand) {
    self.form = form
    outFeatures = n
    inFeatures = k
    self.density = density
    self.packed = packed
    ownKernels = packed.kernels
  }

  /// Packs a stored matrix `[out, in]` for the kernels of `form` (by default its own form),
  /// straight from its arrays: a sparse weight is never expanded to a dense buffer, and a
  /// dense `float32` tensor is read in place (from a mapped file: its pages, not a copy).
  /// Floating-point values of another dtype (f16, bf16 files) are converted to the form's
  /// `float32` encoding.
  ///
  /// ```swift
  /// let w = try LinearWeight(archive["fc1.weight"]!, as: .twoFour, name: "fc1.weight")
  /// ```
  ///
  /// - Throws: ``KernelError`` when the CPU cannot run this build's kernels, when ``KernelTable``
  ///   has no kernels for `form`, or when the values do not fit it (naming `name` and the rule).
  public convenience init(_ stored: StoredTensor, as form: WeightForm? = nil, name: String = "weight") throws(KernelError) {
    try CPUFeatures.requireKernelSupport()
    let form = form ?? stored.form
    let (packed, density) = try KernelTable.pack(stored, as: form, name: name)
    self.init(form: form, n: stored.shape[0], k: stored.shape[1], density: density, packed: packed)
  }

  /// Packs a dense `float32` weight `[out, in]` (other dtypes: ``init(_:as:name:)`` converts).
  public convenience init(dense weight: Tensor) throws(KernelError) {
    guard weight.dtype == .float32 else { throw .unsupportedWeight("a dense weight must be float32, got \(weight.dtype)") }
    try self.init(.dense(weight), as: .dense)
  }

  /// Packs a 2:4 semi-structured weight (53% of the dense bytes in f32).
  public convenience init(_ matrix: SemiStructuredMatrix) throws(KernelError) {
    try CPUFeatures.requireKernelSupport()
    guard matrix.n == 2, matrix.m == 4 else {
      throw .unsupportedWeight("the semi-structured kernels take 2:4, not \(matrix.n):\(matrix.m)")
    }
    guard matrix.dtype.isFloatingPoint, matrix.dtype.isNumeric else {
      throw .unsupportedWeight("the kernels take floating-point values, not \(matrix.dtype)")
    }
    let values = matrix.dtype == .float32 ? matrix.values : matrix.values.converted(to: .float32)
    let (n, k) = (matrix.shape[0], matrix.shape[1])
    let p = KernelTable.packSemiStructured(values, n: n, k: k, positions: matrix.indices)
    self.init(form: .twoFour, n: n, k: k, density: 0.5, packed: p)
  }

  /// Packs a block-sparse weight. Blocks with a multiple of 8 rows run the BSR kernels; other
  /// block shapes run the unstructured kernels on the same nonzeros.
  public convenience init(_ matrix: BSRMatrix) throws(KernelError) {
    try self.init(.bsr(matrix))
  }

  /// Packs an unstructured weight (CSR), in column blocks of `columnBlock` inputs (by default
  /// about 16 nonzeros per row and block, between 128 and 2048 inputs).
  public convenience init(_ matrix: CSRMatrix, columnBlock: Int? = nil) throws(KernelError) {
    guard let columnBlock else {
      try self.init(.csr(matrix))
      return
    }
    try CPUFeatures.requireKernelSupport()
    let (n, k) = (matrix.shape[0], matrix.shape[1])
    let density = Double(matrix.storedValueCount) / Double(Swift.max(1, n * k))
    self.init(form: .csr, n: n, k: k, density: density, packed: KernelTable.packCSR(matrix, columnBlock: columnBlock))
  }

  // MARK: Properties

  /// Bytes of the packed weight this object holds (values and indices; the dense fallback,
  /// when it has been created, not included).
  public var byteCount: Int { packed.byteCount }

  /// The kernels worth timing for `tokens` rows: the form's own (the one-row-at-a-time kernels
  /// only for small M, unless the form has no other) and, for a sparse float form, the dense
  /// ones on its dense fallback.
  public func candidateKernels(tokens m: Int) -> [LinearKernel] {
    // Float sparse forms may fall back to dense float kernels; quantized forms keep their own
    // numerics (and bytes).
    let all = ownKernels + (form.isSparse && form.encoding == .float32 ? [.denseGEMM, .denseGEMV] : [])
    let kept = all.filter { kernel in
      if kernel.isRowWise && m > 16 { return false }
      return !(kernel == .denseGEMM && m == 1)
    }
    return kept.isEmpty ? [ownKernels[0]] : kept
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
    if kernel.isDense {
      denseWeight().run(kernel, x: x, m: m, y: y, bias: bias, workers: workers)
    } else {
      precondition(ownKernels.contains(kernel), "kernel \(kernel) does not run a \(form) weight; use one of \(candidateKernels(tokens: m))")
      packed.run(kernel, x: x, m: m, y: y, bias: bias, workers: workers)
    }
  }

  /// The dense packed weight (this weight's own for `.dense`, otherwise the fallback,
  /// unpacked from the sparse form on first use and kept).
  func denseWeight() -> PackedDenseWeight {
    if let p = packed as? PackedDenseWeight { return p }
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
  func unpack(into w: UnsafeMutablePointer<Float>) { packed.unpack(into: w) }

  /// The weight as a dense `float32` tensor `[out, in]`.
  public func dense() -> Tensor {
    var t = Tensor(zeros: [outFeatures, inFeatures], dtype: .float32)
    t.withUnsafeMutableBufferPointer(as: Float.self) { b in
      if let base = b.baseAddress { unpack(into: base) }
    }
    return t
  }
}

extension LinearWeight {
  /// The nonzero values as compressed rows, read from the packed arrays (a sparse form is never
  /// expanded to a dense buffer).
  public func nonzeros() -> CSRMatrix { packed.nonzeros() }

  /// The weight as a file stores it, from the packed arrays: exact (int8 values and scales for
  /// quantized forms; CSR for sparse float forms, dense otherwise).
  public func stored() -> StoredTensor { packed.stored() }

  /// The weights of `parts` stacked row-wise (`[Σ out, in]`) in their common form, packed once:
  /// layers that read the same input then run as one product. A sparse form is stacked through
  /// its nonzeros, never through a dense buffer.
  ///
  /// - Throws: ``KernelError`` when the parts differ in form or input size, or the stacked
  ///   nonzeros do not fit the form.
  public static func stacking(_ parts: [LinearWeight]) throws(KernelError) -> LinearWeight {
    guard let first = parts.first, parts.allSatisfy({ $0.form == first.form && $0.inFeatures == first.inFeatures }) else {
      throw .unsupportedWeight("stacked weights must share one form and input size")
    }
    let stored = parts.map { $0.stored() }
    let stacked: StoredTensor
    do { stacked = try StoredTensor.stackingRows(stored, for: first.form, name: "stacked weight") } catch {
      throw .unsupportedWeight("\(error)")
    }
    return try LinearWeight(stacked, as: first.form, name: "stacked weight")
  }
}
