import _SparsityKernelsImpl

/// Vectorised elementwise math on `float32` buffers for the NN layers (built for the kernels'
/// target CPU): GELU and its gradient, exp, row softmax. Accuracy: exp within a few ulps, GELU's
/// erf within 1.5e-7 absolute.
public enum VectorMath {
  static let supportChecked: Void = {
    if let problem = CPUFeatures.host.kernelSupportProblem { preconditionFailure(problem) }
  }()

  /// `y[i] = x[i] · Φ(x[i])` (exact-form GELU, as PyTorch's `approximate='none'`).
  public static func gelu(_ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>) {
    supportChecked
    precondition(y.count >= x.count, "gelu: output holds \(y.count) of \(x.count) values")
    guard let xa = x.baseAddress, let ya = y.baseAddress else { return }
    geluForward(xa, ya, count: x.count)
  }

  /// `dx[i] += g[i] · GELU′(x[i])`.
  public static func geluGradient(
    _ x: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>, accumulatingInto dx: UnsafeMutableBufferPointer<Float>
  ) {
    supportChecked
    precondition(g.count == x.count && dx.count == x.count, "geluGradient: buffers differ in length")
    guard let xa = x.baseAddress, let ga = g.baseAddress, let da = dx.baseAddress else { return }
    geluBackward(xa, ga, da, count: x.count)
  }

  /// `v[i] = e^v[i]`.
  public static func exp(_ v: UnsafeMutableBufferPointer<Float>) {
    supportChecked
    guard let a = v.baseAddress else { return }
    expInPlace(a, count: v.count)
  }

  /// Softmax of every row of `v [count / length, length]`, in place.
  public static func softmaxRows(_ v: UnsafeMutableBufferPointer<Float>, length: Int) {
    supportChecked
    precondition(length > 0 && v.count % length == 0, "softmaxRows: \(v.count) values are not rows of \(length)")
    guard let a = v.baseAddress else { return }
    _SparsityKernelsImpl.softmaxRows(a, rows: v.count / length, length: length)
  }
}
