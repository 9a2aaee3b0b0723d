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

  /// Causal grouped-query attention of a decoder: `queries` new tokens at positions
  /// `offset ..< offset + queries` against `offset + queries` cached keys and values (the earlier
  /// tokens' then the new ones'). Query `i` (row `i` of `query`, `heads · headDimension` values
  /// from `queryRowStride · i`) sees keys `0 ... offset + i`; query head `h` reads kv head
  /// `h / (heads / kvHeads)` of `key`/`value` rows (`kvRowStride` apart). Output row `i` goes to
  /// `out + i · outRowStride`.
  public static func causal(
    query: UnsafePointer<Float>, queryRowStride: Int, key: UnsafePointer<Float>, value: UnsafePointer<Float>,
    kvRowStride: Int, into out: UnsafeMutablePointer<Float>, outRowStride: Int, queries: Int, offset: Int, heads: Int,
    kvHeads: Int, headDimension: Int, workers: Int = Parallel.workerCount
  ) {
    if let problem = CPUFeatures.host.kernelSupportProblem { preconditionFailure(problem) }
    precondition(kvHeads > 0 && heads % kvHeads == 0, "attention: \(heads) query heads do not group over \(kvHeads) kv heads")
    precondition(queryRowStride >= heads * headDimension && outRowStride >= heads * headDimension, "attention: query/output rows too short")
    precondition(kvRowStride >= kvHeads * headDimension, "attention: key/value rows too short")
    precondition(offset >= 0 && queries >= 0, "attention: negative offset or query count")
    causalAttentionForward(
      CausalAttentionOperands(
        q: query, qRowStride: queryRowStride, k: key, v: value, kvRowStride: kvRowStride, out: out, outRowStride: outRowStride),
      queries: queries, offset: offset, heads: heads, kvHeads: kvHeads, headDimension: headDimension, workers: workers)
  }
}
