extension Tensor {
  /// The naive reference matrix product `a · b`, accumulated in `Double`.
  ///
  /// This is the oracle that every fast kernel is tested against: three plain loops, no
  /// blocking, no reassociation beyond `Double` accumulation. The result has `a`'s dtype.
  ///
  /// - Precondition: `a` is `[m, k]`, `b` is `[k, n]`, same numeric dtype.
  /// - Complexity: O(m·n·k).
  public static func referenceMatmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    precondition(a.rank == 2 && b.rank == 2, "matmul needs matrices, got \(a.shape) and \(b.shape)")
    precondition(a.shape[1] == b.shape[0], "matmul shapes \(a.shape) and \(b.shape) do not chain")
    precondition(a.dtype == b.dtype, "matmul dtypes differ: \(a.dtype) and \(b.dtype)")
    let (m, k, n) = (a.shape[0], a.shape[1], b.shape[1])
    let x = a.doubleValues
    let y = b.doubleValues
    var out = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
      for j in 0..<n {
        var acc = 0.0
        for p in 0..<k { acc += x[i * k + p] * y[p * n + j] }
        out[i * n + j] = acc
      }
    }
    return Tensor(doubles: out, shape: [m, n], dtype: a.dtype)
  }

  /// The naive reference linear layer `y = x · Wᵀ + bias`, accumulated in `Double`.
  ///
  /// - Parameters:
  ///   - x: `[tokens, in]`.
  ///   - weight: `[out, in]` (PyTorch `nn.Linear` layout).
  ///   - bias: `[out]`, optional.
  /// - Returns: `[tokens, out]` in `x`'s dtype.
  public static func referenceLinear(_ x: Tensor, weight: Tensor, bias: Tensor? = nil) -> Tensor {
    precondition(x.rank == 2 && weight.rank == 2, "linear needs matrices, got \(x.shape), \(weight.shape)")
    precondition(x.shape[1] == weight.shape[1], "x \(x.shape) does not match weight \(weight.shape)")
    let (m, k, n) = (x.shape[0], x.shape[1], weight.shape[0])
    let xs = x.doubleValues
    let w = weight.doubleValues
    let b = bias?.doubleValues
    if let b { precondition(b.count == n, "bias has \(b.count) elements, expected \(n)") }
    var out = [Double](repeating: 0, count: m * n)
    for i in 0..<m {
      for j in 0..<n {
        var acc = b?[j] ?? 0
        for p in 0..<k { acc += xs[i * k + p] * w[j * k + p] }
        out[i * n + j] = acc
      }
    }
    return Tensor(doubles: out, shape: [m, n], dtype: x.dtype)
  }

  /// Whether every element is within `absoluteTolerance + relativeTolerance·|other|` of
  /// `other` (NumPy's `allclose`); shapes must match exactly.
  public func isClose(
    to other: Tensor, relativeTolerance: Double = 1e-5, absoluteTolerance: Double = 1e-8
  ) -> Bool {
    firstMismatch(with: other, relativeTolerance: relativeTolerance, absoluteTolerance: absoluteTolerance) == nil
  }

  /// The first flat index where `isClose` fails, with both values, or `nil`; a shape mismatch
  /// reports index -1.
  public func firstMismatch(
    with other: Tensor, relativeTolerance: Double = 1e-5, absoluteTolerance: Double = 1e-8
  ) -> (index: Int, value: Double, expected: Double)? {
    guard shape == other.shape else { return (-1, .nan, .nan) }
    let a = doubleValues
    let b = other.doubleValues
    for i in 0..<a.count {
      // Equal values (infinities included) match; otherwise both must be finite and within
      // tolerance, so NaN never matches and an infinity only matches itself (as in NumPy).
      if a[i] == b[i] { continue }
      let diff = Swift.abs(a[i] - b[i])
      if !(a[i].isFinite && b[i].isFinite && diff <= absoluteTolerance + relativeTolerance * Swift.abs(b[i])) {
        return (i, a[i], b[i])
      }
    }
    return nil
  }
}
