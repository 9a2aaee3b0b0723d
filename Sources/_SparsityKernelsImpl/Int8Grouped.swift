import SparsityCore
#if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

// Int8 weights with one scale per group of 32 consecutive inputs of a row (GGUF Q8_0's blocks;
// coarser groups repeat their scale over their 32-input blocks), run against int8 activations
// quantized per token and block of 32 inputs, as llama.cpp quantizes activations for its Q8_0 dot
// products (`dx = amax / 127`, `xq = round_half_even(x · (127 / amax))`, an all-zero block
// giving zeros and `dx = 0`):
//
//   y[m, n] = F[m, n] + b[n],   F[m, n] = Σ_blocks (Float(Σ_{k ∈ block} xq[m, k] · wq[n, k]) · dx[m, block]) · sw[n, block]
//
// F is summed over the blocks in order by fused multiply-adds starting from +0, so the AVX-512,
// AVX2 and portable builds give the same bits (``int8GroupedReference``). The weight bytes are
// stored offset by +128 (unsigned: `vpdpbusd`'s unsigned operand) and the activations signed, so
// a block's sum is corrected by 128 · Σ_{k ∈ block} xq[m, k] — one number per token and block,
// made when the activations are prepared — instead of a per-column, per-block compensation that
// would add 4 bytes per 32 weights.

/// Inputs per scale block of ``PackedInt8GroupedWeight``.
package let int8GroupedBlock = 32

/// An int8 weight `[n, k]` (k a multiple of 32) with a scale per row and block of 32 inputs,
/// packed for the grouped W8A8 kernels: per panel of 16 output columns and block of 32 inputs,
/// 576 bytes — the 8 k-steps' values in ``PackedInt8Weight``'s order but offset by +128
/// (`[step][16 columns][4 inputs]`, 512 bytes), then the 16 columns' fp32 scales — so a kernel
/// reads one stream per panel. 1.125 bytes per weight.
package final class PackedInt8GroupedWeight: @unchecked Sendable {
  package let n: Int
  package let k: Int
  /// k-steps of 4 inputs.
  package let groups: Int
  /// Scale blocks per row: `k / 32`.
  package let blocks: Int
  package let panels: Int
  package let data: ByteBuffer

  /// Packs row-major int8 values `q [n, k]` and their scales `s [n, k/32]`.
  package init(values q: UnsafePointer<Int8>, scales s: UnsafePointer<Float>, n: Int, k: Int) {
    precondition(k % int8GroupedBlock == 0, "grouped int8 weights need whole blocks of 32 inputs")
    self.n = n
    self.k = k
    groups = k / 4
    blocks = k / int8GroupedBlock
    panels = (n + 15) / 16
    data = ByteBuffer(count: panels * blocks * int8GroupedBlockBytes)
    let d = data.pointer
    for r in 0..<n {
      let (p, j) = (r / 16, r % 16)
      for b in 0..<blocks {
        let block = d + (p * blocks + b) * int8GroupedBlockBytes
        for c in 0..<int8GroupedBlock {
          block.storeBytes(of: UInt8(bitPattern: q[r * k + b * int8GroupedBlock + c]) ^ 0x80, toByteOffset: ((c / 4) * 16 + j) * 4 + c % 4, as: UInt8.self)
        }
        block.storeBytes(of: s[r * blocks + b], toByteOffset: 512 + 4 * j, as: Float.self)
      }
    }
  }

  /// Bytes held: the values and the scales.
  package var byteCount: Int { data.count }

  /// The int8 value of row `r`, column `c`.
  @inline(__always)
  package func value(row r: Int, column c: Int) -> Int8 {
    let block = data.pointer + (r / 16 * blocks + c / int8GroupedBlock) * int8GroupedBlockBytes
    return Int8(bitPattern: block.load(fromByteOffset: ((c % int8GroupedBlock / 4) * 16 + r % 16) * 4 + c % 4, as: UInt8.self) ^ 0x80)
  }

  /// The scale of row `r`'s block `b`.
  @inline(__always)
  package func scale(row r: Int, block b: Int) -> Float {
    (data.pointer + (r / 16 * blocks + b) * int8GroupedBlockBytes).load(fromByteOffset: 512 + 4 * (r % 16), as: Float.self)
  }
}

/// Bytes per panel and block of ``PackedInt8GroupedWeight``: 8 k-steps × 64 bytes, 16 scales.
package let int8GroupedBlockBytes = 576

/// One block of activations quantized as llama.cpp quantizes Q8_0 activations: the scale
/// `amax / 127` and `round_half_even(x · (127 / amax))` (zeros and scale 0 for an all-zero block;
/// NaN gives 0).
@inline(__always)
package func int8BlockScale(amax: Float) -> (scale: Float, reciprocal: Float) {
  amax > 0 ? (amax / 127, 127 / amax) : (0, 0)
}

/// The grouped W8A8 product computed naively, in the kernels' order: activations quantized per
/// token and 32-input block (``int8BlockScale(amax:)``), exact int32 block sums,
/// `F = fma(Float(sum) · dx, sw, F)` over the blocks from +0, then `F + b`. `q [n, k]`,
/// `s [n, k/32]`, `x [m, k]`.
package func int8GroupedReference(
  x: UnsafePointer<Float>, m: Int, q: UnsafePointer<Int8>, s: UnsafePointer<Float>, n: Int, k: Int, bias: UnsafePointer<Float>?,
  y: UnsafeMutablePointer<Float>
) {
  let blocks = k / int8GroupedBlock
  var xq = [Int8](repeating: 0, count: Swift.max(1, m * k))
  var dx = [Float](repeating: 0, count: Swift.max(1, m * blocks))
  for r in 0..<m {
    for b in 0..<blocks {
      let range = (r * k + b * int8GroupedBlock)..<(r * k + (b + 1) * int8GroupedBlock)
      let (scale, reciprocal) = int8BlockScale(amax: range.reduce(Float(0)) { Swift.max($0, x[$1].magnitude) })
      dx[r * blocks + b] = scale
      for c in range { xq[c] = int8Quantized(x[c], reciprocal: reciprocal) }
    }
  }
  for r in 0..<m {
    for j in 0..<n {
      var f: Float = 0
      for b in 0..<blocks {
        var sum: Int32 = 0
        for c in (b * int8GroupedBlock)..<((b + 1) * int8GroupedBlock) { sum += Int32(xq[r * k + c]) * Int32(q[j * k + c]) }
        f = f.addingProduct(Float(sum) * dx[r * blocks + b], s[j * blocks + b])
      }
      y[r * n + j] = bias.map { f + $0[j] } ?? f
    }
  }
}

/// Quantizes 32 activations (``int8BlockScale(amax:)``) into `out` — int8 in VNNI builds, int16
/// otherwise — and returns the sum of the quantized values and the block's scale.
@inline(__always)
private func quantizeBlock32(_ x: UnsafePointer<Float>, into out: UnsafeMutableRawPointer) -> (sum: Int32, scale: Float) {
  typealias V = SIMD16<Float>
  let lo = UnsafeRawPointer(x).loadUnaligned(as: V.self)
  let hi = UnsafeRawPointer(x + 16).loadUnaligned(as: V.self)
  let (scale, reciprocal) = int8BlockScale(amax: pointwiseMaxFast(abs16(lo), abs16(hi)).max())
  var qlo = SIMD16<Int32>(), qhi = SIMD16<Int32>()
  #if SPARSITY_ISA_AVX512
    // Rounded half to even (the MXCSR default); |x · 127/amax| ≤ 127 needs no clamp.
    let rv = _mm512_set1_ps(reciprocal)
    qlo = unsafeBitCast(_mm512_cvtps_epi32(_mm512_mul_ps(lo, rv)), to: SIMD16<Int32>.self)
    qhi = unsafeBitCast(_mm512_cvtps_epi32(_mm512_mul_ps(hi, rv)), to: SIMD16<Int32>.self)
  #elseif SPARSITY_ISA_AVX2
    let rv = _mm256_set1_ps(reciprocal)
    let l = unsafeBitCast(lo, to: (__m256, __m256).self), h = unsafeBitCast(hi, to: (__m256, __m256).self)
    qlo = unsafeBitCast((_mm256_cvtps_epi32(_mm256_mul_ps(l.0, rv)), _mm256_cvtps_epi32(_mm256_mul_ps(l.1, rv))), to: SIMD16<Int32>.self)
    qhi = unsafeBitCast((_mm256_cvtps_epi32(_mm256_mul_ps(h.0, rv)), _mm256_cvtps_epi32(_mm256_mul_ps(h.1, rv))), to: SIMD16<Int32>.self)
  #else
    for i in 0..<16 {
      qlo[i] = Int32(int8Quantized(lo[i], reciprocal: reciprocal))
      qhi[i] = Int32(int8Quantized(hi[i], reciprocal: reciprocal))
    }
  #endif
  // A NaN lane converts to 0x80000000, whose low bytes are the 0 that the reference gives it.
  let blo = SIMD16<Int8>(truncatingIfNeeded: qlo), bhi = SIMD16<Int8>(truncatingIfNeeded: qhi)
  #if SPARSITY_VNNI
    out.storeBytes(of: blo, as: SIMD16<Int8>.self)
    out.storeBytes(of: bhi, toByteOffset: 16, as: SIMD16<Int8>.self)
  #else
    out.storeBytes(of: SIMD16<Int16>(truncatingIfNeeded: blo), as: SIMD16<Int16>.self)
    out.storeBytes(of: SIMD16<Int16>(truncatingIfNeeded: bhi), toByteOffset: 32, as: SIMD16<Int16>.self)
  #endif
  return ((SIMD16<Int32>(truncatingIfNeeded: blo) &+ SIMD16<Int32>(truncatingIfNeeded: bhi)).wrappedSum(), scale)
}

extension PackedInt8GroupedWeight: PanelDotWeight {
  package var steps: Int { groups }
  package static var inputsPerStep: Int { 4 }
  /// 384 inputs: 12 whole blocks.
  package static var stepsPerBlock: Int { 96 }
  package static var preparedBytesPerStep: Int { 0 }
  package func prepare(panel: Int, steps: Range<Int>, into: UnsafeMutableRawPointer) {}

  #if SPARSITY_VNNI
    /// One signed byte per activation (`vpdpbusd`'s signed operand).
    package static var activationBytes: Int { 1 }
  #else
    /// Int16 per activation, for `vpmaddwd` (and the portable loops).
    package static var activationBytes: Int { 2 }
  #endif

  /// The activations, then per block one int32 `128 · Σ_{k ∈ block} xq[k]` (the correction),
  /// then per block its float scale.
  package static func preparedRowBytes(paddedK: Int) -> Int { paddedK * activationBytes + paddedK / int8GroupedBlock * 8 }

  /// Per-token, per-block int8 quantization (llama.cpp's Q8_0 activations), each row's block
  /// corrections and scales after its values; the per-row scales are 1.
  package static func prepareRows(
    x: UnsafePointer<Float>, m: Int, k: Int, ldq: Int, into: UnsafeMutableRawPointer, scales: UnsafeMutablePointer<Float>
  ) {
    let stride = ldq * activationBytes
    let blocks = k / int8GroupedBlock
    for r in 0..<m {
      scales[r] = 1
      let row = into + r * stride
      let corrections = (row + k * activationBytes).assumingMemoryBound(to: Int32.self)
      let blockScales = UnsafeMutableRawPointer(corrections + blocks).assumingMemoryBound(to: Float.self)
      for b in 0..<blocks {
        let (sum, scale) = quantizeBlock32(x + r * k + b * int8GroupedBlock, into: row + b * int8GroupedBlock * activationBytes)
        corrections[b] = 128 * sum
        blockScales[b] = scale
      }
      if ldq > k { (row + k * activationBytes + blocks * 8).initializeMemory(as: UInt8.self, repeating: 0, count: stride - k * activationBytes - blocks * 8) }
    }
  }

  /// `y = F + b` (F the float sums the tiles left in `acc`).
  package func finish(
    acc: UnsafeMutablePointer<Int32>, ldacc: Int, a: PreparedActivations, row: Int, rows: Int, column: Int, columns: Int,
    y: UnsafeMutablePointer<Float>, ldy: Int, bias: UnsafePointer<Float>?
  ) {
    storeFloatSums(acc, ldacc: ldacc, row: row, rows: rows, column: column, columns: columns, y: y, ldy: ldy, bias: bias)
  }

  package func tile(
    a: PreparedActivations, row: Int, rows: Int, panel: Int, steps range: Range<Int>, prepared: UnsafeRawPointer,
    acc: UnsafeMutablePointer<Int32>
  ) {
    let b = UnsafePointer(data.pointer.assumingMemoryBound(to: UInt8.self))
    let f = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    let stepsPerScale = int8GroupedBlock / 4
    let blockRange = (range.lowerBound / stepsPerScale)..<(range.upperBound / stepsPerScale)
    let width = Self.activationBytes
    func activations(_ i: Int) -> UnsafeRawPointer { UnsafeRawPointer(a.rows + (row + i) * a.stride + range.lowerBound * 4 * width) }
    func corrections(_ i: Int) -> UnsafePointer<Int32> {
      UnsafeRawPointer(a.rows + (row + i) * a.stride + k * width).assumingMemoryBound(to: Int32.self) + blockRange.lowerBound
    }
    func weights(_ p: Int) -> UnsafePointer<UInt8> { b + (p * blocks + blockRange.lowerBound) * int8GroupedBlockBytes }
    let accumulate = range.lowerBound != 0
    #if SPARSITY_VNNI
      // Rows past `rows` read zero activations with zero corrections; a missing second panel
      // multiplies the first one again into sums that are not used.
      withUnsafeTemporaryAllocation(of: UInt8.self, capacity: range.count * 4 + blocks * 8) { zero in
        zero.initialize(repeating: 0)
        let zeroRow = UnsafeRawPointer(zero.baseAddress!)
        let zeroCorrections = UnsafeRawPointer(zero.baseAddress! + range.count * 4).assumingMemoryBound(to: Int32.self)
        let second = panel + 1 < panels ? panel + 1 : panel
        withUnsafeTemporaryAllocation(of: UnsafeRawPointer.self, capacity: 6) { rowPointers in
          withUnsafeTemporaryAllocation(of: UnsafePointer<Int32>.self, capacity: 6) { correctionPointers in
            for i in 0..<6 {
              rowPointers[i] = i < rows ? activations(i) : zeroRow
              correctionPointers[i] = i < rows ? corrections(i) : zeroCorrections
            }
            int8GroupedVNNIKernel6x32(
              blocks: blockRange.count, a: UnsafePointer(rowPointers.baseAddress!), corrections: UnsafePointer(correctionPointers.baseAddress!),
              scaleOffset: blocks, b0: weights(panel), b1: weights(second), f: f, accumulate: accumulate)
          }
        }
      }
    #else
      for i in 0..<rows {
        for half in 0..<2 where panel + half < panels {
          int8GroupedRowPanel(
            blocks: blockRange.count, a: activations(i), corrections: corrections(i), scaleOffset: blocks, b: weights(panel + half),
            f: f + i * 32 + half * 16, accumulate: accumulate)
        }
      }
    #endif
  }

  package func rowQuad(a: UnsafeRawPointer, quad: Int, acc: UnsafeMutablePointer<Int32>) {
    let b = UnsafePointer(data.pointer.assumingMemoryBound(to: UInt8.self))
    let f = UnsafeMutableRawPointer(acc).assumingMemoryBound(to: Float.self)
    let count = Swift.min(4, panels - quad * 4)
    let corrections = (a + k * Self.activationBytes).assumingMemoryBound(to: Int32.self)
    #if SPARSITY_VNNI
      int8GroupedVNNIKernel1x64(
        blocks: blocks, a: a, corrections: corrections, scaleOffset: blocks, b: b + quad * 4 * blocks * int8GroupedBlockBytes,
        panelStride: blocks * int8GroupedBlockBytes, panels: count, f: f)
    #else
      for p in 0..<count {
        let panel = quad * 4 + p
        int8GroupedRowPanel(
          blocks: blocks, a: a, corrections: corrections, scaleOffset: blocks, b: b + panel * blocks * int8GroupedBlockBytes,
          f: f + p * 16, accumulate: false)
      }
    #endif
  }
}

#if SPARSITY_VNNI
  /// 6 rows × 32 columns over `blocks` blocks of 32 inputs: per block, 8 k-steps of `vpdpbusd`
  /// (unsigned weights × broadcast signed activations) into 12 int32 accumulators, then each
  /// corrected by its row's `128 · Σ xq`, converted, scaled by the row's block scale (`scaleOffset`
  /// words past its correction) and multiply-added with the block's weight scales into 12 float
  /// accumulators (read from `f` first when `accumulate`).
  @inline(never)
  private func int8GroupedVNNIKernel6x32(
    blocks: Int, a: UnsafePointer<UnsafeRawPointer>, corrections: UnsafePointer<UnsafePointer<Int32>>, scaleOffset: Int, b0: UnsafePointer<UInt8>,
    b1: UnsafePointer<UInt8>, f: UnsafeMutablePointer<Float>, accumulate: Bool
  ) {
    let (a0, a1, a2, a3, a4, a5) = (a[0], a[1], a[2], a[3], a[4], a[5])
    let (r0, r1, r2, r3, r4, r5) = (corrections[0], corrections[1], corrections[2], corrections[3], corrections[4], corrections[5])
    var f00 = _mm512_setzero_ps(), f01 = _mm512_setzero_ps(), f10 = _mm512_setzero_ps(), f11 = _mm512_setzero_ps()
    var f20 = _mm512_setzero_ps(), f21 = _mm512_setzero_ps(), f30 = _mm512_setzero_ps(), f31 = _mm512_setzero_ps()
    var f40 = _mm512_setzero_ps(), f41 = _mm512_setzero_ps(), f50 = _mm512_setzero_ps(), f51 = _mm512_setzero_ps()
    if accumulate {
      f00 = _mm512_loadu_ps(f); f01 = _mm512_loadu_ps(f + 16); f10 = _mm512_loadu_ps(f + 32); f11 = _mm512_loadu_ps(f + 48)
      f20 = _mm512_loadu_ps(f + 64); f21 = _mm512_loadu_ps(f + 80); f30 = _mm512_loadu_ps(f + 96); f31 = _mm512_loadu_ps(f + 112)
      f40 = _mm512_loadu_ps(f + 128); f41 = _mm512_loadu_ps(f + 144); f50 = _mm512_loadu_ps(f + 160); f51 = _mm512_loadu_ps(f + 176)
    }
    for block in 0..<blocks {
      var c00 = _mm512_setzero_si512(), c01 = _mm512_setzero_si512(), c10 = _mm512_setzero_si512()
      var c11 = _mm512_setzero_si512(), c20 = _mm512_setzero_si512(), c21 = _mm512_setzero_si512()
      var c30 = _mm512_setzero_si512(), c31 = _mm512_setzero_si512(), c40 = _mm512_setzero_si512()
      var c41 = _mm512_setzero_si512(), c50 = _mm512_setzero_si512(), c51 = _mm512_setzero_si512()
      for g in (block * 8)..<(block * 8 + 8) {
        let o = block * int8GroupedBlockBytes + (g - block * 8) * 64
        let w0 = _mm512_loadu_si512(b0 + o)
        let w1 = _mm512_loadu_si512(b1 + o)
        let offset = g * 4
        var x = _mm512_set1_epi32(a0.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        c00 = _mm512_dpbusd_epi32(c00, w0, x); c01 = _mm512_dpbusd_epi32(c01, w1, x)
        x = _mm512_set1_epi32(a1.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        c10 = _mm512_dpbusd_epi32(c10, w0, x); c11 = _mm512_dpbusd_epi32(c11, w1, x)
        x = _mm512_set1_epi32(a2.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        c20 = _mm512_dpbusd_epi32(c20, w0, x); c21 = _mm512_dpbusd_epi32(c21, w1, x)
        x = _mm512_set1_epi32(a3.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        c30 = _mm512_dpbusd_epi32(c30, w0, x); c31 = _mm512_dpbusd_epi32(c31, w1, x)
        x = _mm512_set1_epi32(a4.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        c40 = _mm512_dpbusd_epi32(c40, w0, x); c41 = _mm512_dpbusd_epi32(c41, w1, x)
        x = _mm512_set1_epi32(a5.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        c50 = _mm512_dpbusd_epi32(c50, w0, x); c51 = _mm512_dpbusd_epi32(c51, w1, x)
      }
      let d0 = _mm512_loadu_ps(b0 + block * int8GroupedBlockBytes + 512), d1 = _mm512_loadu_ps(b1 + block * int8GroupedBlockBytes + 512)
      var r = _mm512_set1_epi32(r0[block])
      var x = _mm512_set1_ps(UnsafeRawPointer(r0 + scaleOffset).load(fromByteOffset: 4 * block, as: Float.self))
      f00 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c00, r)), x), d0, f00)
      f01 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c01, r)), x), d1, f01)
      r = _mm512_set1_epi32(r1[block])
      x = _mm512_set1_ps(UnsafeRawPointer(r1 + scaleOffset).load(fromByteOffset: 4 * block, as: Float.self))
      f10 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c10, r)), x), d0, f10)
      f11 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c11, r)), x), d1, f11)
      r = _mm512_set1_epi32(r2[block])
      x = _mm512_set1_ps(UnsafeRawPointer(r2 + scaleOffset).load(fromByteOffset: 4 * block, as: Float.self))
      f20 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c20, r)), x), d0, f20)
      f21 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c21, r)), x), d1, f21)
      r = _mm512_set1_epi32(r3[block])
      x = _mm512_set1_ps(UnsafeRawPointer(r3 + scaleOffset).load(fromByteOffset: 4 * block, as: Float.self))
      f30 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c30, r)), x), d0, f30)
      f31 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c31, r)), x), d1, f31)
      r = _mm512_set1_epi32(r4[block])
      x = _mm512_set1_ps(UnsafeRawPointer(r4 + scaleOffset).load(fromByteOffset: 4 * block, as: Float.self))
      f40 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c40, r)), x), d0, f40)
      f41 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c41, r)), x), d1, f41)
      r = _mm512_set1_epi32(r5[block])
      x = _mm512_set1_ps(UnsafeRawPointer(r5 + scaleOffset).load(fromByteOffset: 4 * block, as: Float.self))
      f50 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c50, r)), x), d0, f50)
      f51 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(c51, r)), x), d1, f51)
    }
    _mm512_storeu_ps(f, f00); _mm512_storeu_ps(f + 16, f01); _mm512_storeu_ps(f + 32, f10); _mm512_storeu_ps(f + 48, f11)
    _mm512_storeu_ps(f + 64, f20); _mm512_storeu_ps(f + 80, f21); _mm512_storeu_ps(f + 96, f30); _mm512_storeu_ps(f + 112, f31)
    _mm512_storeu_ps(f + 128, f40); _mm512_storeu_ps(f + 144, f41); _mm512_storeu_ps(f + 160, f50); _mm512_storeu_ps(f + 176, f51)
  }

  /// One activation row against up to 4 consecutive panels (`panels`; missing ones read panel 0
  /// again into sums that are not used): per block, two sets of 4 int32 accumulators over its 8
  /// k-steps, then corrected, converted, scaled by the row's block scale and multiply-added with
  /// the block's weight scales.
  @inline(never)
  private func int8GroupedVNNIKernel1x64(
    blocks: Int, a: UnsafeRawPointer, corrections: UnsafePointer<Int32>, scaleOffset: Int, b: UnsafePointer<UInt8>,
    panelStride: Int, panels: Int, f: UnsafeMutablePointer<Float>
  ) {
    let activationScales = UnsafeRawPointer(corrections + scaleOffset).assumingMemoryBound(to: Float.self)
    let p1 = panels > 1 ? panelStride : 0, p2 = panels > 2 ? 2 * panelStride : 0, p3 = panels > 3 ? 3 * panelStride : 0
    var f0 = _mm512_setzero_ps(), f1 = _mm512_setzero_ps(), f2 = _mm512_setzero_ps(), f3 = _mm512_setzero_ps()
    for block in 0..<blocks {
      var c0 = _mm512_setzero_si512(), c1 = _mm512_setzero_si512(), c2 = _mm512_setzero_si512(), c3 = _mm512_setzero_si512()
      var d0 = _mm512_setzero_si512(), d1 = _mm512_setzero_si512(), d2 = _mm512_setzero_si512(), d3 = _mm512_setzero_si512()
      var g = block * 8
      while g < block * 8 + 8 {
        let o = block * int8GroupedBlockBytes + (g - block * 8) * 64
        let x = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: g * 4, as: Int32.self))
        let x2 = _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: g * 4 + 4, as: Int32.self))
        c0 = _mm512_dpbusd_epi32(c0, _mm512_loadu_si512(b + o), x)
        c1 = _mm512_dpbusd_epi32(c1, _mm512_loadu_si512(b + p1 + o), x)
        c2 = _mm512_dpbusd_epi32(c2, _mm512_loadu_si512(b + p2 + o), x)
        c3 = _mm512_dpbusd_epi32(c3, _mm512_loadu_si512(b + p3 + o), x)
        d0 = _mm512_dpbusd_epi32(d0, _mm512_loadu_si512(b + o + 64), x2)
        d1 = _mm512_dpbusd_epi32(d1, _mm512_loadu_si512(b + p1 + o + 64), x2)
        d2 = _mm512_dpbusd_epi32(d2, _mm512_loadu_si512(b + p2 + o + 64), x2)
        d3 = _mm512_dpbusd_epi32(d3, _mm512_loadu_si512(b + p3 + o + 64), x2)
        g += 2
      }
      let r = _mm512_set1_epi32(corrections[block])
      let x = _mm512_set1_ps(activationScales[block])
      let sb = b + block * int8GroupedBlockBytes + 512
      f0 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_add_epi32(c0, d0), r)), x), _mm512_loadu_ps(sb), f0)
      f1 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_add_epi32(c1, d1), r)), x), _mm512_loadu_ps(sb + p1), f1)
      f2 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_add_epi32(c2, d2), r)), x), _mm512_loadu_ps(sb + p2), f2)
      f3 = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_add_epi32(c3, d3), r)), x), _mm512_loadu_ps(sb + p3), f3)
    }
    _mm512_storeu_ps(f, f0); _mm512_storeu_ps(f + 16, f1); _mm512_storeu_ps(f + 32, f2); _mm512_storeu_ps(f + 48, f3)
  }
#else
  /// One activation row (int16) against one 16-column panel over `blocks` blocks:
  /// `f[j] = fma(Float(Σ_{k ∈ block} x[k] · w[j][k]) · dx[block], scale[block][j], f[j])` block by
  /// block (from +0 unless `accumulate`; `dx` `scaleOffset` words past `corrections`).
  @inline(never)
  private func int8GroupedRowPanel(
    blocks: Int, a: UnsafeRawPointer, corrections: UnsafePointer<Int32>, scaleOffset: Int, b: UnsafePointer<UInt8>,
    f: UnsafeMutablePointer<Float>, accumulate: Bool
  ) {
    let x = a.assumingMemoryBound(to: Int16.self)
    let activationScales = UnsafeRawPointer(corrections + scaleOffset).assumingMemoryBound(to: Float.self)
    #if SPARSITY_ISA_AVX2 || SPARSITY_ISA_AVX512
      // Per k-step: 4 chunks of 4 columns × 4 inputs, the unsigned bytes widened to int16 and
      // multiplied by the row's 4 inputs with vpmaddwd (pairs of products in int32, exact: ≤ 2 · 255 · 128).
      var lo = accumulate ? _mm256_loadu_ps(f) : _mm256_setzero_ps()
      var hi = accumulate ? _mm256_loadu_ps(f + 8) : _mm256_setzero_ps()
      for block in 0..<blocks {
        var s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256(), s2 = _mm256_setzero_si256(), s3 = _mm256_setzero_si256()
        for g in (block * 8)..<(block * 8 + 8) {
          let xv = _mm256_set1_epi64x(UnsafeRawPointer(x + g * 4).loadUnaligned(as: Int64.self))
          let w = UnsafeRawPointer(b + block * int8GroupedBlockBytes + (g - block * 8) * 64)
          s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(w.loadUnaligned(as: __m128i.self)), xv))
          s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(w.loadUnaligned(fromByteOffset: 16, as: __m128i.self)), xv))
          s2 = _mm256_add_epi32(s2, _mm256_madd_epi16(_mm256_cvtepu8_epi16(w.loadUnaligned(fromByteOffset: 32, as: __m128i.self)), xv))
          s3 = _mm256_add_epi32(s3, _mm256_madd_epi16(_mm256_cvtepu8_epi16(w.loadUnaligned(fromByteOffset: 48, as: __m128i.self)), xv))
        }
        // Each sum holds two partial sums per column: add the pairs, put columns in order.
        // hadd leaves columns 0 1 4 5 2 3 6 7.
        let order = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7)
        let r = _mm256_set1_epi32(corrections[block])
        let first = _mm256_sub_epi32(_mm256_permutevar8x32_epi32(_mm256_hadd_epi32(s0, s1), order), r)
        let second = _mm256_sub_epi32(_mm256_permutevar8x32_epi32(_mm256_hadd_epi32(s2, s3), order), r)
        let sx = _mm256_set1_ps(activationScales[block])
        let scales = UnsafeRawPointer(b + block * int8GroupedBlockBytes + 512).assumingMemoryBound(to: Float.self)
        lo = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(first), sx), _mm256_loadu_ps(scales), lo)
        hi = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(second), sx), _mm256_loadu_ps(scales + 8), hi)
      }
      _mm256_storeu_ps(f, lo)
      _mm256_storeu_ps(f + 8, hi)
    #else
      for j in 0..<16 {
        var sum = accumulate ? f[j] : 0
        for block in 0..<blocks {
          var dot: Int32 = 0
          let base = b + block * int8GroupedBlockBytes
          for step in 0..<8 {
            for i in 0..<4 { dot &+= Int32(x[(block * 8 + step) * 4 + i]) &* (Int32(base[(step * 16 + j) * 4 + i]) &- 128) }
          }
          let scale = UnsafeRawPointer(base).load(fromByteOffset: 512 + 4 * j, as: Float.self)
          sum = sum.addingProduct(Float(dot) * activationScales[block], scale)
        }
        f[j] = sum
      }
    #endif
  }
#endif
