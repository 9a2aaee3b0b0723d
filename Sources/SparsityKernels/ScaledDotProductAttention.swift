import SparsityCore
import _SparsityKernelsImpl

/// Inference attention on raw `float32` buffers: `softmax(q·kᵀ / √d_head) · v` per sequence
/// and head, on the packed GEMM microkernel, without materialising the score tensor.
public enum ScaledDotProductAttention {
  /// Writes the attention of every sequence and head into `out`.
  ///
  /// Token `i` of sequence `n` is row `r = n · tokens + i`; head `h` of that row starts at
  /// `r · rowStride + h · headDimension` in `query`, `key` and `value` (so they may be slices of
  /// one fused q/k/v projection with `rowStride = 3 · hidden`) and at `r · outRowStride + h ·
  /// headDimension` in `out`. Keys whose `keyMask[r]` is 0 are ignored (score −10⁹, as padding
  /// is in BERT).
  public static func forward(
    query: UnsafePointer<Float>, key: UnsafePointer<Float>, value: UnsafePointer<Float>, rowStride: Int,
    into out: UnsafeMutablePointer<Float>, outRowStride: Int, batch: Int, tokens: Int, heads: Int, headDimension: Int,
    keyMask: UnsafeBufferPointer<Int32>? = nil, workers: Int = Parallel.workerCount
  ) {
    if let problem = CPUFeatures.host.kernelSupportProblem { preconditionFailure(problem) }
    precondition(rowStride >= heads * headDimension && outRowStride >= heads * headDimension, "attention: row strides shorter than a row")
    precondition(keyMask == nil || keyMask!.count == batch * tokens, "attention: the key mask must hold batch × tokens values")
    attentionForward(
      AttentionOperands(q: query, k: key, v: value, qkvRowStride: rowStride, out: out, outRowStride: outRowStride),
      batch: batch, tokens: tokens, heads: heads, headDimension: headDimension, keyMask: keyMask?.baseAddress,
      workers: workers)
  }
}
