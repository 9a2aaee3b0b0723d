import SparsityCore
import _SparsityKernelsImpl

/// Dense `float32` products on raw row-major buffers with the packed GEMM of ``LinearKernel/denseGEMM``:
/// the building block for training (forward and backward passes of linear layers).
public enum DenseMatmul {
  /// `c[m, n] = a[m, k] · bᵀ (+ bias[n])`, where `b` is row-major `[n, k]` (a linear layer's weight).
  ///
  /// `b` is packed on every call (O(n·k)), which is small beside the O(m·n·k) product for the
  /// batch sizes of training. Runs on `workers` threads.
  public static func multiplyTransposed(
    _ a: UnsafePointer<Float>, rows m: Int, _ b: UnsafePointer<Float>, rows n: Int, inner k: Int,
    into c: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>? = nil,
    workers: Int = Parallel.workerCount
  ) {
    if let problem = CPUFeatures.host.kernelSupportProblem { preconditionFailure(problem) }
    guard m > 0, n > 0 else { return }
    if k == 0 {
      for i in 0..<m { for j in 0..<n { c[i * n + j] = bias?[j] ?? 0 } }
      return
    }
    let packed = PackedDenseWeight(weight: b, n: n, k: k)
    denseLinear(weight: packed, x: a, m: m, y: c, bias: bias, workers: workers)
  }
}
