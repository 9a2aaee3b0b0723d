/// Packs activation rows `x[m][k]` (row stride `ld`, default `k`) into panels of 6 rows,
/// k-major: panel p holds `dst[p·k·6 + kk·6 + i] = x[6p + i][kk]`, zero for rows past `m`.
/// With `transposed`, `x` holds the matrix as its transpose `[k][m]` (row stride `ld`, default
/// `m`): each panel row is then a contiguous run of 6.
package func packActivationPanels(
  x: UnsafePointer<Float>, m: Int, k: Int, ld: Int? = nil, transposed: Bool = false, panels: Range<Int>,
  into dst: UnsafeMutablePointer<Float>
) {
  let ld = ld ?? (transposed ? m : k)
  for p in panels {
    let out = dst + p * k * 6
    let r0 = p * 6
    let rows = Swift.min(6, m - r0)
    if transposed {
      for kk in 0..<k {
        let (o, s) = (out + kk * 6, x + kk * ld + r0)
        for i in 0..<6 { o[i] = i < rows ? s[i] : 0 }
      }
    } else if rows == 6 {
      let s0 = x + r0 * ld
      let s1 = s0 + ld, s2 = s1 + ld, s3 = s2 + ld, s4 = s3 + ld, s5 = s4 + ld
      for kk in 0..<k {
        let o = out + kk * 6
        o[0] = s0[kk]; o[1] = s1[kk]; o[2] = s2[kk]; o[3] = s3[kk]; o[4] = s4[kk]; o[5] = s5[kk]
      }
    } else {
      out.update(repeating: 0, count: k * 6)
      for i in 0..<Swift.max(0, rows) {
        let s = x + (r0 + i) * ld
        for kk in 0..<k { out[kk * 6 + i] = s[kk] }
      }
    }
  }
}

/// Packs all of `x` into 6-row panels with `workers` threads; calls `body` with the panels.
package func withActivationPanels<R>(
  x: UnsafePointer<Float>, m: Int, k: Int, transposed: Bool = false, workers: Int,
  _ body: (UnsafePointer<Float>) -> R
) -> R {
  let panels = (m + 5) / 6
  return Scratch.with(count: panels * k * 6) { dst in
    let parts = Swift.min(workers, panels)
    let d = Unchecked(dst)
    parallelFor(parts) { w in
      packActivationPanels(
        x: x, m: m, k: k, transposed: transposed, panels: (panels * w / parts)..<(panels * (w + 1) / parts),
        into: d.value)
    }
    return body(dst)
  }
}

/// Runs a tile kernel on `c` directly when the tile is full, otherwise on a 6×16 scratch tile
/// whose valid `rows × columns` part is copied in (when accumulating) and out.
@inline(__always)
package func withTile(
  rows: Int, columns: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool,
  fullRows: Int = 6, fullColumns: Int = 16,
  _ body: (UnsafeMutablePointer<Float>, Int) -> Void
) {
  if rows == fullRows && columns == fullColumns {
    body(c, ldc)
    return
  }
  withUnsafeTemporaryAllocation(of: Float.self, capacity: fullRows * fullColumns) { tile in
    let t = tile.baseAddress!
    if accumulate {
      for i in 0..<rows {
        for j in 0..<columns { t[i * fullColumns + j] = c[i * ldc + j] }
      }
    }
    body(t, fullColumns)
    for i in 0..<rows {
      for j in 0..<columns { c[i * ldc + j] = t[i * fullColumns + j] }
    }
  }
}

/// Copies `bias` (or zeros) into a buffer padded to `padded` floats and runs `body` with it.
package func withPaddedBias<R>(
  _ bias: UnsafePointer<Float>?, count: Int, padded: Int, _ body: (UnsafePointer<Float>?) -> R
) -> R {
  guard let bias else { return body(nil) }
  return Scratch.with(count: padded) { buffer in
    buffer.update(from: bias, count: count)
    (buffer + count).update(repeating: 0, count: padded - count)
    return body(UnsafePointer(buffer))
  }
}
