import SparsityCore
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
    inParallel(x.count) { geluForward(xa + $0.lowerBound, ya + $0.lowerBound, count: $0.count) }
  }

  /// `dx[i] += g[i] · GELU′(x[i])`.
  public static func geluGradient(
    _ x: UnsafeBufferPointer<Float>, _ g: UnsafeBufferPointer<Float>, accumulatingInto dx: UnsafeMutableBufferPointer<Float>
  ) {
    supportChecked
    precondition(g.count == x.count && dx.count == x.count, "geluGradient: buffers differ in length")
    guard let xa = x.baseAddress, let ga = g.baseAddress, let da = dx.baseAddress else { return }
    inParallel(x.count) { geluBackward(xa + $0.lowerBound, ga + $0.lowerBound, da + $0.lowerBound, count: $0.count) }
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
    inParallel(v.count / length, grain: max(1, 32_768 / length)) { rows in
      _SparsityKernelsImpl.softmaxRows(a + rows.lowerBound * length, rows: rows.count, length: length)
    }
  }

  /// Layer normalisation of every row of `x [count / d, d]` (or of `x + residual`) into `y`;
  /// `inverseDeviation` (one value per row), when given, receives 1/√(variance + ε).
  public static func layerNorm(
    _ x: UnsafeBufferPointer<Float>, adding residual: UnsafeBufferPointer<Float>? = nil,
    into y: UnsafeMutableBufferPointer<Float>, d: Int, weight: UnsafeBufferPointer<Float>,
    bias: UnsafeBufferPointer<Float>, epsilon: Float, inverseDeviation: UnsafeMutableBufferPointer<Float>? = nil
  ) {
    supportChecked
    precondition(d > 0 && x.count % d == 0 && y.count == x.count && weight.count == d && bias.count == d, "layerNorm: buffer sizes")
    precondition(residual == nil || residual!.count == x.count, "layerNorm: the residual must match x")
    let rows = x.count / d
    precondition(inverseDeviation == nil || inverseDeviation!.count == rows, "layerNorm: one inverse deviation per row")
    guard rows > 0, let xa = x.baseAddress, let ya = y.baseAddress, let w = weight.baseAddress, let b = bias.baseAddress else { return }
    let inv = inverseDeviation?.baseAddress
    let add = residual?.baseAddress
    inParallel(rows, grain: max(1, 32_768 / d)) { r in
      layerNormRows(
        xa + r.lowerBound * d, ya + r.lowerBound * d, rows: r.count, d: d, weight: w, bias: b, epsilon: epsilon,
        inverseDeviation: inv.map { $0 + r.lowerBound }, residual: add.map { $0 + r.lowerBound * d })
    }
  }

  /// RMS normalisation of every row of `x [count / d, d]` into `y` (Llama's `RMSNorm`):
  /// `x / √(mean(x²) + ε) · weight`; `inverseRMS` (one value per row), when given, receives the factor.
  public static func rmsNorm(
    _ x: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>, d: Int, weight: UnsafeBufferPointer<Float>,
    epsilon: Float, inverseRMS: UnsafeMutableBufferPointer<Float>? = nil
  ) {
    supportChecked
    precondition(d > 0 && x.count % d == 0 && y.count == x.count && weight.count == d, "rmsNorm: buffer sizes")
    let rows = x.count / d
    precondition(inverseRMS == nil || inverseRMS!.count == rows, "rmsNorm: one factor per row")
    guard rows > 0, let xa = x.baseAddress, let ya = y.baseAddress, let w = weight.baseAddress else { return }
    let inv = inverseRMS?.baseAddress
    inParallel(rows, grain: max(1, 32_768 / d)) { r in
      rmsNormRows(
        xa + r.lowerBound * d, ya + r.lowerBound * d, rows: r.count, d: d, weight: w, epsilon: epsilon,
        inverseRMS: inv.map { $0 + r.lowerBound })
    }
  }

  /// SwiGLU of a stacked gate/up projection: `gateUp [rows, 2 · count]` holds each row's gate
  /// values then its up values; `y[r, i] = silu(gate[r, i]) · up[r, i]` with `silu(z) = z · σ(z)`.
  public static func siluGated(_ gateUp: UnsafeBufferPointer<Float>, into y: UnsafeMutableBufferPointer<Float>, count: Int) {
    supportChecked
    precondition(count > 0 && gateUp.count % (2 * count) == 0 && y.count * 2 == gateUp.count, "siluGated: buffer sizes")
    let rows = y.count / count
    guard rows > 0, let g = gateUp.baseAddress, let ya = y.baseAddress else { return }
    inParallel(rows, grain: max(1, 32_768 / count)) { r in
      siluGatedRows(
        g + r.lowerBound * 2 * count, upOffset: count, stride: 2 * count, rows: r.count, count: count,
        into: ya + r.lowerBound * count)
    }
  }

  /// Runs `body` over `0..<count` split among the workers when each part gets at least `grain`.
  static func inParallel(_ count: Int, grain: Int = 65_536, _ body: (Range<Int>) -> Void) {
    if count < 2 * grain {
      body(0..<count)
    } else {
      Parallel.forEachRange(count, minimumChunk: grain, body)
    }
  }
}
