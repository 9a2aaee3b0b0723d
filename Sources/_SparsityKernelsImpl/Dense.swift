#if canImport(Glibc)
  import Glibc
#endif

/// A dense weight `W [n, k]` packed for ``denseLinear``: panels of 16 output columns, k-major
/// (`data[p·k·16 + kk·16 + j] = W[16p + j][kk]`, zero past `n`).
package final class PackedDenseWeight: @unchecked Sendable {
  package let n: Int
  package let k: Int
  package let panels: Int
  package let data: FloatBuffer

  /// Packs a row-major `[n, k]` weight — or, with `transposed`, one held as its transpose
  /// `[k, n]` (a panel row is then a contiguous run of 16) — on `workers` threads.
  package init(weight w: UnsafePointer<Float>, n: Int, k: Int, transposed: Bool = false, workers: Int = 1) {
    self.n = n
    self.k = k
    panels = (n + 15) / 16
    // Every element is written below (the last panel's missing columns as zeros).
    data = FloatBuffer(count: panels * k * 16, zeroed: false)
    let d = Unchecked(data.pointer)
    let (panels, parts) = (panels, Swift.max(1, Swift.min(workers, panels)))
    parallelFor(parts) { part in
      for p in (panels * part / parts)..<(panels * (part + 1) / parts) {
        let columns = Swift.min(16, n - p * 16)
        if transposed {
          let out = d.value + p * k * 16
          if columns == 16 {
            // One 64-byte vector per row (a memmove call each would cost more than the copy).
            for kk in 0..<k {
              let v = UnsafeRawPointer(w + kk * n + p * 16).loadUnaligned(as: SIMD16<Float>.self)
              UnsafeMutableRawPointer(out + kk * 16).storeBytes(of: v, as: SIMD16<Float>.self)
            }
          } else {
            for kk in 0..<k {
              for j in 0..<16 { out[kk * 16 + j] = j < columns ? w[kk * n + p * 16 + j] : 0 }
            }
          }
          continue
        }
        for j in 0..<16 {
          let out = d.value + p * k * 16 + j
          guard j < columns else {
            for kk in 0..<k { out[kk * 16] = 0 }
            continue
          }
          let row = w + (p * 16 + j) * k
          for kk in 0..<k { out[kk * 16] = row[kk] }
        }
      }
    }
  }

  /// Bytes held (the packed, padded copy).
  package var byteCount: Int { panels * k * 16 * 4 }

  /// Writes the row-major `[n, k]` weight back.
  package func unpack(into w: UnsafeMutablePointer<Float>) {
    for p in 0..<panels {
      for j in 0..<Swift.min(16, n - p * 16) {
        let row = w + (p * 16 + j) * k
        let src = data.pointer + p * k * 16 + j
        for kk in 0..<k { row[kk] = src[kk * 16] }
      }
    }
  }
}

/// The L2 cache of a core in bytes (`sysconf`), 512 KiB when the system does not say.
package let level2CacheBytes: Int = {
  #if canImport(Glibc)
    let bytes = sysconf(Int32(_SC_LEVEL2_CACHE_SIZE))
    if bytes > 0 { return bytes }
  #endif
  return 512 * 1024
}()

/// Tunables of the dense GEMM: the k-block `kc` and the rows of an L2 block, in 6-row panels.
package struct DenseBlocking: Sendable {
  package var kc: Int
  package var mcPanels: Int

  /// The blocking for inner dimension `k` on a core with `level2` bytes of L2. One k-block up
  /// to 1,536, so each output tile is written once instead of re-read per block (with BLIS's
  /// kc = 256 the C reloads cost Zen 3 15–25% at K = 384…1,536, as measured), with about
  /// 384 KiB of packed activations per L2 block. Beyond 1,536: with 1 MiB of L2 or more
  /// (Zen 4), k-blocks of at most 4,096 (equal parts) × 48 panels — the weight micro-panel
  /// (≤ 256 KiB) stays in L2 — measured 5–15% ahead of 256 × 144 rows at K = 3,072…11,008
  /// (blockings timed interleaved, 2 threads); with less L2 (Zen 3, 512 KiB), BLIS's 256 ×
  /// 144 rows (larger k-blocks measured 10–35% slower there).
  package init(k: Int, level2: Int = level2CacheBytes) {
    if k <= 1536 {
      kc = Swift.max(1, k)
      mcPanels = Swift.min(48, Swift.max(4, 384 * 1024 / (kc * 6 * 4)))
    } else if level2 >= 1024 * 1024 {
      let blocks = (k + 4095) / 4096
      kc = (k + blocks - 1) / blocks
      mcPanels = 48
    } else {
      kc = 256
      mcPanels = 24
    }
  }
}

/// `y[m, n] = x[m, k] · Wᵀ + bias` with the packed GEMM (6×16 register tiles, 12×32 with
/// AVX-512; k-blocks and activation blocks chosen by ``DenseBlocking``), on `workers` threads
/// splitting the output columns (or the rows when there are few columns).
/// With `xTransposed`, `x` holds the activations as their transpose `[k, m]`.
package func denseLinear(
  weight: PackedDenseWeight, x: UnsafePointer<Float>, m: Int, xTransposed: Bool = false, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int, blocking: DenseBlocking? = nil
) {
  let (n, k, np) = (weight.n, weight.k, weight.panels)
  let blocking = blocking ?? DenseBlocking(k: k)
  let mp = (m + 5) / 6
  guard m > 0, n > 0 else { return }
  if k == 0 {
    fillBias(y: y, m: m, n: n, bias: bias)
    return
  }
  withPaddedBias(bias, count: n, padded: np * 16) { biasP in
    withActivationPanels(x: x, m: m, k: k, transposed: xTransposed, workers: workers) { ap in
      // Split the output columns (each item streams all of the packed activations), unless the
      // activations outweigh the weight (M > N) and there are rows enough: then split the rows
      // (each item streams the weight once).
      let splitColumns = (np >= 2 * workers || mp < workers) && !(m > n && mp >= 4 * workers * blocking.mcPanels / 4)
      let parts = Swift.max(1, Swift.min(workItems(workers), splitColumns ? np : mp))
      let out = Unchecked(y)
      parallelFor(parts) { w in
        let jr = splitColumns ? (np * w / parts)..<(np * (w + 1) / parts) : 0..<np
        let ir = splitColumns ? 0..<mp : (mp * w / parts)..<(mp * (w + 1) / parts)
        denseBlock(
          weight: weight, ap: ap, m: m, y: out.value, bias: biasP, panelRows: ir, panelColumns: jr,
          blocking: blocking)
      }
    }
  }
}

private func denseBlock(
  weight: PackedDenseWeight, ap: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, panelRows: Range<Int>, panelColumns: Range<Int>,
  blocking: DenseBlocking
) {
  let (n, k) = (weight.n, weight.k)
  let bp = UnsafePointer(weight.data.pointer)
  var pc = 0
  while pc < k {
    let len = Swift.min(blocking.kc, k - pc)
    let first = pc == 0
    var ic = panelRows.lowerBound
    while ic < panelRows.upperBound {
      let icEnd = Swift.min(ic + blocking.mcPanels, panelRows.upperBound)
      // One 6×16 tile (any edge, through a scratch tile when partial).
      func tile(_ ir: Int, _ jr: Int) {
        let columns = Swift.min(16, n - jr * 16)
        let rows = Swift.min(6, m - ir * 6)
        withTile(rows: rows, columns: columns, c: y + ir * 6 * n + jr * 16, ldc: n, accumulate: !first) { c, ldc in
          kernel6x16(
            segments: 1, length: len, kStarts: nil, a: ap + ir * k * 6 + pc * 6, b: bp + jr * k * 16 + pc * 16, c: c,
            ldc: ldc, accumulate: !first, bias: first ? bias.map { $0 + jr * 16 } : nil)
        }
      }
      #if SPARSITY_ISA_AVX512
        // 12×32 tiles where two full row panels meet two full column panels; 6×16 elsewhere.
        var jr = panelColumns.lowerBound
        while jr < panelColumns.upperBound {
          guard jr + 1 < panelColumns.upperBound, (jr + 2) * 16 <= n else {
            for ir in ic..<icEnd { tile(ir, jr) }
            jr += 1
            continue
          }
          var ir = ic
          while ir < icEnd {
            if ir + 1 < icEnd && (ir + 2) * 6 <= m {
              kernel12x32(
                segments: 1, length: len, kStarts: nil, a0: ap + ir * k * 6 + pc * 6, a1: ap + (ir + 1) * k * 6 + pc * 6,
                b0: bp + jr * k * 16 + pc * 16, b1: bp + (jr + 1) * k * 16 + pc * 16, c: y + ir * 6 * n + jr * 16, ldc: n,
                accumulate: !first, bias: first ? bias.map { $0 + jr * 16 } : nil)
              ir += 2
            } else {
              tile(ir, jr)
              tile(ir, jr + 1)
              ir += 1
            }
          }
          jr += 2
        }
      #else
        for jr in panelColumns {
          for ir in ic..<icEnd { tile(ir, jr) }
        }
      #endif
      ic = icEnd
    }
    pc += len
  }
}

/// `y = x · Wᵀ + bias` one activation row at a time with the GEMV kernel (streams the weight
/// once per row; the right kernel for M = 1, where a GEMM wastes its register tile).
package func denseLinearRows(
  weight: PackedDenseWeight, x: UnsafePointer<Float>, m: Int, y: UnsafeMutablePointer<Float>,
  bias: UnsafePointer<Float>?, workers: Int
) {
  let (n, k, np) = (weight.n, weight.k, weight.panels)
  guard m > 0, n > 0 else { return }
  withPaddedBias(bias, count: n, padded: np * 16) { biasP in
    let parts = Swift.max(1, Swift.min(workItems(workers), np))
    let out = Unchecked(y)
    let bp = UnsafePointer(weight.data.pointer)
    parallelFor(parts) { w in
      let y = out.value
      let range = (np * w / parts)..<(np * (w + 1) / parts)
      var p = range.lowerBound
      // Pairs of full panels: two weight streams at once.
      while p + 2 <= range.upperBound && (p + 2) * 16 <= n {
        for r in 0..<m {
          kernel1x32(
            length: k, x: x + r * k, b0: bp + p * k * 16, b1: bp + (p + 1) * k * 16, c: y + r * n + p * 16,
            bias: biasP.map { $0 + p * 16 })
        }
        p += 2
      }
      for p in p..<range.upperBound {
        let columns = Swift.min(16, n - p * 16)
        for r in 0..<m {
          withTile(rows: 1, columns: columns, c: y + r * n + p * 16, ldc: n, accumulate: false, fullRows: 1) {
            c, _ in
            kernel1x16(
              segments: 1, length: k, kStarts: nil, x: x + r * k, b: bp + p * k * 16, c: c,
              accumulate: false, bias: biasP.map { $0 + p * 16 })
          }
        }
      }
    }
  }
}

/// `y[m, n] = bias` (or zero): the product with an empty inner dimension.
package func fillBias(y: UnsafeMutablePointer<Float>, m: Int, n: Int, bias: UnsafePointer<Float>?) {
  for r in 0..<m {
    if let bias {
      (y + r * n).update(from: bias, count: n)
    } else {
      (y + r * n).update(repeating: 0, count: n)
    }
  }
}
