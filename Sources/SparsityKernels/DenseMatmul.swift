import SparsityCore
import _SparsityKernelsImpl

/// Dense `float32` products on raw row-major buffers with the packed GEMM of ``LinearKernel/denseGEMM``:
/// the building block for training (forward and backward passes of linear layers).
public enum DenseMatmul {
  /// `c[m, n] = op(a) · op(b) (+ bias[n])`, BLAS's GEMM on row-major buffers: `op(a)` is
  /// `[m, k]`, held as is or, with `transposeA`, as its transpose `[k, m]`; `op(b)` is `[k, n]`,
  /// held as is or, with `transposeB`, as `[n, k]` (a linear layer's weight: `x · Wᵀ` is
  /// `multiply(x, W, transposeB: true)`).
  ///
  /// A linear layer's backward pass needs no transposed copies: `g · W` is
  /// `multiply(g, W)` and `gᵀ · x` is `multiply(g, x, transposeA: true)` — the GEMM's packing
  /// reads either layout. `b` is packed on every call (O(n·k)), small beside the O(m·n·k) product
  /// for the batch sizes of training. Runs on `workers` threads.
  public static func multiply(
    _ a: UnsafePointer<Float>, transposeA: Bool = false, _ b: UnsafePointer<Float>, transposeB: Bool = false,
    m: Int, n: Int, k: Int, into c: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil,
    workers: Int = Parallel.workerCount
  ) {
    if let problem = CPUFeatures.host.kernelSupportProblem { preconditionFailure(problem) }
    guard m > 0, n > 0 else { return }
    if k == 0 {
      fillBias(y: c, m: m, n: n, bias: bias)
      return
    }
    // The GEMM's weight operand is `[n, k]` row-major: op(b)ᵀ, held as such exactly when transposeB.
    let packed = PackedDenseWeight(weight: b, n: n, k: k, transposed: !transposeB, workers: workers)
    denseLinear(weight: packed, x: a, m: m, xTransposed: transposeA, y: c, bias: bias, workers: workers)
  }
}
