import SparsityCore
import Synchronization
import _SparsityCPUID

#if SPARSITY_ISA_AVX512
  import _Builtin_intrinsics.intel
#endif

// "Sparsify both ways" for 2:4 sparse training: from a dense fp32 matrix A, in one pass, the
// kept elements of every 4×4 tile (a 16-bit mask, bit `column + 4·row`), A's 2:4 form and Aᵀ's
// 2:4 form, both written straight into `PackedSemiStructuredWeight`'s 8-row interleaved layout.
//
// Selection. The tile's in-bounds elements are ranked by a key (|x|, or x), larger first, the
// lower element index `column + 4·row` first among equal keys; going down that order, an element
// is kept when its row (and, for the transposable rules, its column) keeps fewer than 2 so far.
// Keys are compared as unsigned integers that order like the floats: |x| → its bits without the
// sign; x → `x + 0` (so −0 ties +0) with the sign bit flipped for positives and every bit
// flipped for negatives; the lowest 4 bits do not rank (values within 2⁻¹⁹ relative tie), so a
// tile's keys sort in 32-bit lanes with the index in those bits. NaN has no place in that order:
// the caller rejects it (the kernels report whether they saw one).
//
// 2:4 form of a group of 4 (a row's 4 columns of a tile, or a column's 4 rows): the positions
// `chosen` = kept ∧ nonzero (−0 counts as zero), topped up with unchosen positions in the order
// 2, 3, 0, 1 (`SemiStructuredMatrix`'s rule), increasing; a slot's value is A's element when it
// is kept, else +0. So the form equals `SemiStructuredMatrix(dense: A masked)` bit for bit.
//
// The AVX-512 path takes blocks of 8 rows × 64 columns (2 strips of 16 tiles, a tile per 32-bit
// lane after an in-lane 4×4 transpose of each row's vectors). Per strip, the 16 elements of its
// 16 tiles become 32-bit keys (ranking key, `15 − index` in the low 4 bits) in 16 registers,
// sorted by Batcher's odd–even merge network (63 comparators, `vpmaxud`/`vpminud`), then 16
// greedy steps keep or skip each tile's next element. The two forms' slot values are picked with
// blends, transposed 16×16 into the packed lines, and streamed out. Other tiles (ragged edges,
// the AVX2 and portable builds) run the same rule one tile at a time.

/// How the kept elements of a 4×4 tile are chosen.
package enum Sparse24Rule: Sendable {
  /// Ranked by |x|; at most 2 per row and per column (transposable).
  case magnitudeGreedy
  /// Ranked by signed value; at most 2 per row and per column (transposable).
  case valueGreedy
  /// Ranked by |x|; at most 2 per row (the 2 largest of every row of 4), columns free.
  case magnitudePerRow

  package var ranksMagnitude: Bool { self != .valueGreedy }
  package var limitsColumns: Bool { self != .magnitudePerRow }
}

/// The ranking key of `x`: an unsigned integer ordered like |x| (`magnitude`) or like x, equal
/// for equal floats (−0 and +0 included). Not meaningful for NaN.
@inline(__always)
package func sparse24Key(_ x: Float, magnitude: Bool) -> UInt32 {
  if magnitude { return x.bitPattern & 0x7FFF_FFFF }
  let bits = (x + 0).bitPattern
  return bits & 0x8000_0000 != 0 ? ~bits : bits | 0x8000_0000
}

/// The bits of a key that rank: all but the lowest 4 (the vector path keeps the element's index
/// there, so a 4×4 tile sorts in 32-bit lanes, 16 tiles per register).
package let sparse24RankMask: UInt32 = 0xFFFF_FFF0

/// The ranking key of `x`: ``sparse24Key(_:magnitude:)`` without its lowest 4 bits — |x| (or x)
/// to 19 of its 23 mantissa bits; values closer than that rank as equal (ties: lower index
/// first). PyTorch's and xFormers' tile kernels rank the 16-bit fp16/bf16 values themselves.
@inline(__always)
package func sparse24RankKey(_ x: Float, magnitude: Bool) -> UInt32 {
  sparse24Key(x, magnitude: magnitude) & sparse24RankMask
}

/// For each 4-bit set of chosen positions (at most 2; others map to (0, 1), never used), the two
/// positions of the 2:4 form as `p0 | p1 << 2`: the chosen ones, topped up in the order 2, 3, 0,
/// 1, increasing. Entry `n` is bits `4n..<4n+4`.
package let sparse24PositionCodes: UInt64 = 0x444E_4DCE_498E_498E

/// The two positions `p0 | p1 << 2` of a group whose chosen positions are `chosen` (4 bits).
@inline(__always)
package func sparse24PositionCode(_ chosen: UInt32) -> UInt32 {
  UInt32(truncatingIfNeeded: sparse24PositionCodes >> UInt64(4 * (chosen & 15))) & 15
}

/// The kept elements of one tile (`rows` × `columns` in bounds, each 1…4) at `a` with row stride
/// `stride`: bit `column + 4·row`. Sets `sawNaN` when an element is NaN.
@inline(__always)
package func sparse24ChooseTile(
  _ a: UnsafePointer<Float>, stride: Int, rows: Int, columns: Int, rule: Sparse24Rule, sawNaN: inout Bool
) -> UInt16 {
  withUnsafeTemporaryAllocation(of: UInt64.self, capacity: 16) { order in
    // Insertion sort, largest first, of `key << 32 | (15 − index)`.
    var count = 0
    let magnitude = rule.ranksMagnitude
    for r in 0..<rows {
      for c in 0..<columns {
        let x = a[r * stride + c]
        if x.isNaN { sawNaN = true }
        let item = UInt64(sparse24RankKey(x, magnitude: magnitude)) << 32 | UInt64(15 - (c + 4 * r))
        var i = count
        while i > 0 && order[i - 1] < item {
          order[i] = order[i - 1]
          i -= 1
        }
        order[i] = item
        count += 1
      }
    }
    var kept: UInt32 = 0
    var closed: UInt32 = 0  // elements whose row or column already keeps 2
    let limitsColumns = rule.limitsColumns
    for i in 0..<count {
      let e = 15 - UInt32(truncatingIfNeeded: order[i] & 15)
      let bit: UInt32 = 1 << e
      if closed & bit != 0 { continue }
      let row: UInt32 = 0xF << (e & 12)
      let column: UInt32 = 0x1111 << (e & 3)
      if kept & row != 0 { closed |= row }
      if limitsColumns && kept & column != 0 { closed |= column }
      kept |= bit
    }
    return UInt16(kept)
  }
}

/// Column `c` (0…3) of a tile mask as 4 bits, bit `r` = row `r`.
@inline(__always)
func tileColumnBits(_ m: UInt32, _ c: Int) -> UInt32 {
  let s = UInt32(c)
  return (m >> s) & 1 | (m >> (s + 3)) & 2 | (m >> (s + 6)) & 4 | (m >> (s + 9)) & 8
}

/// Whether every column of every tile keeps at most 2 (so the transposed form is 2:4 too).
package func sparse24IsTransposable(_ mask: UnsafeBufferPointer<UInt16>) -> Bool {
  for m in mask {
    let x = UInt32(m)
    for c in 0..<4 where tileColumnBits(x, c).nonzeroBitCount > 2 { return false }
  }
  return true
}

/// Where the two forms go: the packed weights' buffers and their block geometry.
struct Sparse24Targets {
  let a: UnsafePointer<Float>
  let rows: Int
  let columns: Int
  let tileRows: Int
  let tileColumns: Int
  let mask: UnsafeMutablePointer<UInt16>
  /// A's form: `[⌈rows/8⌉ blocks][tileColumns groups]`.
  let values: UnsafeMutablePointer<Float>
  let codes: UnsafeMutablePointer<UInt32>
  /// Aᵀ's form: `[⌈columns/8⌉ blocks][tileRows groups]`, or nil.
  let transposedValues: UnsafeMutablePointer<Float>?
  let transposedCodes: UnsafeMutablePointer<UInt32>?
  /// Whether the vector path writes the values with non-temporal stores: outputs larger than a
  /// core's share of the caches go to memory without first reading their lines in (measured on
  /// Zen 4: 2× faster at 4096×4096, 1.5× at 3072×768).
  let streaming: Bool

  /// A's form for row block `rb`, groups (tile columns) `groups`, from the mask.
  func emitRows(block rb: Int, groups: Range<Int>) {
    for g in groups {
      var word: UInt32 = 0
      let v = values + (rb * tileColumns + g) * 16
      for lane in 0..<8 {
        let r = 8 * rb + lane
        guard r < rows else {
          v[lane] = 0
          v[8 + lane] = 0
          continue
        }
        let kept = UInt32(mask[(r >> 2) * tileColumns + g]) >> UInt32(4 * (r & 3)) & 15
        let x = a + r * columns + 4 * g
        word |= emitGroup(kept: kept, x, stride: 1, v + lane) << UInt32(4 * lane)
      }
      codes[rb * tileColumns + g] = word
    }
  }

  /// Aᵀ's form for its row blocks (8 columns of A each) `blocks`, groups (tile rows) `strips`.
  func emitColumns(blocks: Range<Int>, strips: Range<Int>) {
    guard let transposedValues, let transposedCodes else { return }
    for cb in blocks {
      for i in strips {
        var word: UInt32 = 0
        let v = transposedValues + (cb * tileRows + i) * 16
        for lane in 0..<8 {
          let c = 8 * cb + lane
          guard c < columns else {
            v[lane] = 0
            v[8 + lane] = 0
            continue
          }
          let kept = tileColumnBits(UInt32(mask[i * tileColumns + (c >> 2)]), c & 3)
          let x = a + 4 * i * columns + c
          word |= emitGroup(kept: kept, x, stride: columns, v + lane) << UInt32(4 * lane)
        }
        transposedCodes[cb * tileRows + i] = word
      }
    }
  }

  /// One group of 4 (elements `x[j·stride]`, those with a `kept` bit in bounds): writes its two
  /// values at `v[0]` and `v[8]`, returns its positions code.
  @inline(__always)
  private func emitGroup(kept: UInt32, _ x: UnsafePointer<Float>, stride: Int, _ v: UnsafeMutablePointer<Float>) -> UInt32 {
    var chosen: UInt32 = 0
    for j in 0..<4 where kept >> UInt32(j) & 1 != 0 && x[j * stride].bitPattern & 0x7FFF_FFFF != 0 {
      chosen |= 1 << UInt32(j)
    }
    let code = sparse24PositionCode(chosen)
    let (p0, p1) = (Int(code & 3), Int(code >> 2))
    v[0] = kept >> UInt32(p0) & 1 != 0 ? x[p0 * stride] : 0
    v[8] = kept >> UInt32(p1) & 1 != 0 ? x[p1 * stride] : 0
    return code
  }
}

/// Chooses the 4×4 tiles' kept elements of `a [rows, columns]` by `rule` (or, with `rule` nil,
/// takes them from `mask`) and writes the mask (`[⌈rows/4⌉, ⌈columns/4⌉]`, when choosing), A's
/// 2:4 form into `forward` (n = rows, k = columns) and, when given, Aᵀ's into `transposed`
/// (n = columns, k = rows; only valid when every tile keeps ≤ 2 per column). Returns whether an
/// element of `a` was NaN (only looked for when choosing; the outputs are then meaningless).
package func sparsify24(
  a: UnsafePointer<Float>, rows: Int, columns: Int, rule: Sparse24Rule?, mask: UnsafeMutablePointer<UInt16>,
  forward: PackedSemiStructuredWeight, transposed: PackedSemiStructuredWeight?, workers: Int
) -> Bool {
  precondition(forward.n == rows && forward.k == columns, "sparsify24: forward form \(forward.n)x\(forward.k) for a \(rows)x\(columns) matrix")
  precondition(transposed.map { $0.n == columns && $0.k == rows } ?? true, "sparsify24: transposed form of the wrong shape")
  let targets = Sparse24Targets(
    a: a, rows: rows, columns: columns, tileRows: (rows + 3) / 4, tileColumns: (columns + 3) / 4, mask: mask,
    values: forward.values.pointer, codes: forward.codes, transposedValues: transposed?.values.pointer,
    transposedCodes: transposed?.codes,
    streaming: forward.byteCount + (transposed?.byteCount ?? 0) > 8 << 20)
  let rowBlocks = (rows + 7) / 8
  guard rowBlocks > 0, columns > 0 else { return false }
  let parts = Swift.max(1, Swift.min(workItems(workers), rowBlocks))
  let sawNaN = UnsafeMutableBufferPointer<Bool>.allocate(capacity: parts)
  sawNaN.initialize(repeating: false)
  defer { sawNaN.deallocate() }
  let flags = Unchecked(sawNaN)
  let shared = Unchecked(targets)
  parallelFor(parts) { p in
    flags.value[p] = sparsify24RowBlocks(
      shared.value, blocks: (rowBlocks * p / parts)..<(rowBlocks * (p + 1) / parts), rule: rule)
  }
  return sawNaN.contains(true)
}


/// Row blocks `blocks` (8 rows each) of ``sparsify24(a:rows:columns:rule:mask:forward:transposed:workers:)``.
func sparsify24RowBlocks(_ t: Sparse24Targets, blocks: Range<Int>, rule: Sparse24Rule?) -> Bool {
  var sawNaN = false
  #if SPARSITY_ISA_AVX512
    // The largest and smallest keys seen: NaN ranks above +∞ (and, by signed value, a negative
    // NaN below −∞).
    var extremes = (_mm512_setzero_si512(), _mm512_set1_epi32(-1))
    let scratch = UnsafeMutablePointer<__m512>.allocate(capacity: 64)
    let payloads = rule.map(sparse24Payloads) ?? _mm512_setzero_si512()
    defer { scratch.deallocate() }
  #endif
  #if SPARSITY_ISA_AVX512
    // Aᵀ's code words of the vector blocks are staged as whole lines: per 8 columns, the words of
    // 16 strips (64 bytes), written out once every 8 row blocks. Stored one by one, 8 words 4 KiB
    // apart per block and strip, each store read its line back in first (~25% of the time at
    // 4096×4096 on 2 threads).
    let vectorColumnBlocks = 8 * (t.columns / 64)
    let columnCodes = UnsafeMutablePointer<UInt32>.allocate(capacity: Swift.max(1, vectorColumnBlocks * 16))
    defer { columnCodes.deallocate() }
    var staged = blocks.lowerBound..<blocks.lowerBound  // row blocks whose words wait in `columnCodes`
    func flush() {
      guard let codes = t.transposedCodes, !staged.isEmpty else { return }
      let strips = (2 * staged.lowerBound)..<(2 * staged.upperBound)
      for cb in 0..<vectorColumnBlocks {
        let from = columnCodes + cb * 16
        let to = codes + cb * t.tileRows
        if strips.count == 16 && strips.lowerBound % 16 == 0 {
          _mm512_storeu_si512(to + strips.lowerBound, _mm512_loadu_si512(from))
        } else {
          for i in strips { to[i] = from[i % 16] }
        }
      }
      staged = staged.upperBound..<staged.upperBound
    }
  #endif
  for rb in blocks {
    var chunks = 0
    #if SPARSITY_ISA_AVX512
      if 8 * rb + 8 <= t.rows {
        chunks = t.columns / 64
        // Row-major block order reads A's 8 rows as streams; the prefetches keep 4 blocks of
        // them on the way (without, ~30% of the time went waiting for A's lines at 4096×4096).
        let ahead = 4
        for ch in 0..<chunks {
          var (r, c) = (8 * rb, 64 * (ch + ahead))
          if c >= 64 * chunks { (r, c) = (r + 8, c - 64 * chunks) }
          if r + 8 <= t.rows {
            for i in 0..<8 {
              let p = t.a + (r + i) * t.columns + c
              sparsity_prefetch(p); sparsity_prefetch(p + 16); sparsity_prefetch(p + 32); sparsity_prefetch(p + 48)
            }
          }
          sparse24Block(
            t, row: 8 * rb, column: 64 * ch, rule: rule, scratch: scratch, payloads: payloads, columnCodes: columnCodes,
            extremes: &extremes)
        }
        staged = staged.lowerBound..<(rb + 1)
        if (rb + 1) % 8 == 0 { flush() }
      }
    #endif
    // The tiles left: past the last whole 64 columns, or all of a ragged last row block.
    let firstTile = 16 * chunks
    let strips = (2 * rb)..<Swift.min(2 * rb + 2, t.tileRows)
    if let rule {
      for i in strips {
        for tc in firstTile..<t.tileColumns {
          t.mask[i * t.tileColumns + tc] = sparse24ChooseTile(
            t.a + 4 * i * t.columns + 4 * tc, stride: t.columns, rows: Swift.min(4, t.rows - 4 * i),
            columns: Swift.min(4, t.columns - 4 * tc), rule: rule, sawNaN: &sawNaN)
        }
      }
    }
    t.emitRows(block: rb, groups: firstTile..<t.tileColumns)
    t.emitColumns(blocks: (firstTile / 2)..<((t.columns + 7) / 8), strips: strips)
  }
  #if SPARSITY_ISA_AVX512
    flush()
  #endif
  #if SPARSITY_ISA_AVX512
    if let rule {
      let top = unsafeBitCast(extremes.0, to: SIMD16<UInt32>.self).max()
      let bottom = unsafeBitCast(extremes.1, to: SIMD16<UInt32>.self).min()
      if top > sparse24Key(.infinity, magnitude: rule.ranksMagnitude)
        || (!rule.ranksMagnitude && bottom < sparse24Key(-.infinity, magnitude: false))
      {
        sawNaN = true
      }
    }
    // The blocks' lines were streamed (non-temporal stores, weakly ordered): fence them
    // before the join publishes the results (a sequentially consistent fence is an `mfence`).
    atomicMemoryFence(ordering: .sequentiallyConsistent)
  #endif
  return sawNaN
}

/// `destination[0..<count] = source[0..<count]` with non-temporal stores where the build has
/// them (the lines go to memory without being read in first), `workers` threads on contiguous
/// parts: the least memory traffic of a pass that reads a matrix and writes as many bytes, the
/// bandwidth reference of the sparsifier's benchmark.
package func streamingCopy(_ source: UnsafePointer<Float>, to destination: UnsafeMutablePointer<Float>, count: Int, workers: Int) {
  let parts = Swift.max(1, Swift.min(workers, count / 4096))
  // Parts start on whole 64-byte lines of the destination (after its first `head` floats).
  let head = Swift.min(count, (16 - (Int(bitPattern: destination) / 4) % 16) % 16)
  func start(_ p: Int) -> Int { p == 0 ? 0 : p == parts ? count : head + (count - head) * p / parts / 16 * 16 }
  let pointers = Unchecked((source, destination))
  parallelFor(parts) { p in
    let (source, destination) = pointers.value
    var i = start(p)
    let end = start(p + 1)
    #if SPARSITY_ISA_AVX512
      while i < end && Int(bitPattern: destination + i) % 64 != 0 {
        destination[i] = source[i]
        i += 1
      }
      while i + 64 <= end {
        let (s, d) = (source + i, destination + i)
        let x0 = _mm512_loadu_ps(s), x1 = _mm512_loadu_ps(s + 16), x2 = _mm512_loadu_ps(s + 32), x3 = _mm512_loadu_ps(s + 48)
        _mm512_stream_ps(d, x0); _mm512_stream_ps(d + 16, x1); _mm512_stream_ps(d + 32, x2); _mm512_stream_ps(d + 48, x3)
        i += 64
      }
      atomicMemoryFence(ordering: .sequentiallyConsistent)
    #endif
    (destination + i).update(from: source + i, count: end - i)
  }
}

/// `out = a` with the elements the tile mask does not keep set to +0 (`a`, `out`: `[rows, columns]`).
package func sparse24MaskDense(
  a: UnsafePointer<Float>, rows: Int, columns: Int, mask: UnsafePointer<UInt16>, out: UnsafeMutablePointer<Float>,
  workers: Int
) {
  let tileColumns = (columns + 3) / 4
  let whole = columns / 4
  let parts = Swift.max(1, Swift.min(workItems(workers), rows / 16))
  let pointers = Unchecked((a, mask, out))
  parallelFor(parts) { p in
    let (a, mask, out) = pointers.value
    for r in (rows * p / parts)..<(rows * (p + 1) / parts) {
      let shift = UInt32(4 * (r & 3))
      let m = mask + (r >> 2) * tileColumns
      let x = UnsafeRawPointer(a + r * columns)
      let y = UnsafeMutableRawPointer(out + r * columns)
      for g in 0..<whole {
        let lanes = SIMD4<UInt32>(repeating: UInt32(m[g]) >> shift) &>> SIMD4<UInt32>(0, 1, 2, 3) & 1
        let v = x.loadUnaligned(fromByteOffset: 16 * g, as: SIMD4<UInt32>.self) & (SIMD4<UInt32>.zero &- lanes)
        y.storeBytes(of: v, toByteOffset: 16 * g, as: SIMD4<UInt32>.self)
      }
      for c in (4 * whole)..<columns {
        let kept = UInt32(m[c >> 2]) >> (shift + UInt32(c & 3)) & 1 != 0
        out[r * columns + c] = kept ? a[r * columns + c] : 0
      }
    }
  }
}

extension PackedSemiStructuredWeight {
  /// The logical 2:4 arrays: `values` `[n, groups·2]` and one position byte per value.
  package func logical(values out: UnsafeMutablePointer<Float>, positions: UnsafeMutablePointer<UInt8>) {
    let v = values.pointer
    for r in 0..<n {
      let (rb, lane) = (r / 8, r % 8)
      for g in 0..<groups {
        let code = codes[rb * groups + g] >> UInt32(4 * lane)
        let slot = (r * groups + g) * 2
        positions[slot] = UInt8(code & 3)
        positions[slot + 1] = UInt8(code >> 2 & 3)
        out[slot] = v[(rb * groups + g) * 16 + lane]
        out[slot + 1] = v[(rb * groups + g) * 16 + 8 + lane]
      }
    }
  }
}


#if SPARSITY_ISA_AVX512
  /// A constant vector of 16 dwords, lane `i` = `f(i)`.
  @inline(__always)
  private func lanes(_ f: (Int32) -> Int32) -> __m512i {
    unsafeBitCast(
      SIMD16<Int32>(
        f(0), f(1), f(2), f(3), f(4), f(5), f(6), f(7), f(8), f(9), f(10), f(11), f(12), f(13), f(14), f(15)),
      to: __m512i.self)
  }

  /// What the greedy needs of each element of a tile (see `sparse24ChooseTiles`): lane `15 − i`
  /// holds element i's own mask bit and, at bit 16, its row (bit `row`) and column (bit
  /// `4 + column`; none for the per-row rule).
  func sparse24Payloads(_ rule: Sparse24Rule) -> __m512i {
    lanes { lane in
      let i = 15 - lane
      let lines = 1 << (i >> 2) | (rule.limitsColumns ? 16 << (i & 3) : 0)
      return Int32(lines << 16 | 1 << i)
    }
  }

  @inline(__always)
  private func splat(_ x: Int32) -> __m512i { _mm512_set1_epi32(x) }

  @inline(__always)
  private func bits(_ v: __m512) -> __m512i { _mm512_castps_si512(v) }

  /// One block of 8 rows × 64 columns at (`row`, `column`): its 2 × 16 tiles chosen by `rule` (or
  /// read from the mask when nil) and both forms written, Aᵀ's code words into `columnCodes`
  /// (16 strips per 8 columns, see `sparsify24RowBlocks`). `scratch`: 64 float vectors;
  /// `payloads`: `rule`'s ``sparse24Payloads(_:)``; `extremes` tracks the largest and smallest
  /// keys (NaN watch).
  @inline(never)
  func sparse24Block(
    _ t: Sparse24Targets, row: Int, column: Int, rule: Sparse24Rule?, scratch: UnsafeMutablePointer<__m512>,
    payloads: __m512i, columnCodes: UnsafeMutablePointer<UInt32>, extremes: inout (__m512i, __m512i)
  ) {
    let ld = t.columns
    let tileRow = row / 4
    let tileColumn = column / 4
    // Each strip's 16 tiles, one per lane, its elements in 16 vectors: a 4×4 transpose in every
    // 128-bit lane of a row's 4 vectors (in-lane shuffles only). Lane p holds tile σ(p) =
    // 4·(p mod 4) + p/4 (σ is its own inverse): scratch[16·strip + c + 4·r] = elements (r, c).
    for h in 0..<2 {
      let e = scratch + 16 * h
      for r in 0..<4 {
        let p = t.a + (row + 4 * h + r) * ld + column
        let x0 = _mm512_loadu_ps(p), x1 = _mm512_loadu_ps(p + 16)
        let x2 = _mm512_loadu_ps(p + 32), x3 = _mm512_loadu_ps(p + 48)
        let t0 = _mm512_castps_pd(_mm512_unpacklo_ps(x0, x1)), t1 = _mm512_castps_pd(_mm512_unpackhi_ps(x0, x1))
        let t2 = _mm512_castps_pd(_mm512_unpacklo_ps(x2, x3)), t3 = _mm512_castps_pd(_mm512_unpackhi_ps(x2, x3))
        e[4 * r] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2))
        e[4 * r + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2))
        e[4 * r + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3))
        e[4 * r + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3))
      }
    }
    let tileOrder = lanes { 4 * ($0 & 3) + ($0 >> 2) }  // σ
    let masks = t.mask + tileRow * t.tileColumns + tileColumn
    let kept: (__m512i, __m512i)
    if let rule {
      kept = (
        sparse24ChooseTiles(scratch, rule: rule, payloads: payloads, extremes: &extremes),
        sparse24ChooseTiles(scratch + 16, rule: rule, payloads: payloads, extremes: &extremes)
      )
      for (h, k) in [kept.0, kept.1].enumerated() {
        let words = unsafeBitCast(_mm512_cvtepi32_epi16(_mm512_permutexvar_epi32(tileOrder, k)), to: SIMD16<UInt16>.self)
        UnsafeMutableRawPointer(masks + h * t.tileColumns).storeBytes(of: words, as: SIMD16<UInt16>.self)
      }
    } else {
      @inline(__always)
      func load(_ p: UnsafeMutablePointer<UInt16>) -> __m512i {
        _mm512_cvtepu16_epi32(unsafeBitCast(UnsafeRawPointer(p).loadUnaligned(as: SIMD16<UInt16>.self), to: __m256i.self))
      }
      kept = (
        _mm512_permutexvar_epi32(tileOrder, load(masks)), _mm512_permutexvar_epi32(tileOrder, load(masks + t.tileColumns))
      )
    }
    let codes0 = sparse24EmitStrip(
      scratch, kept: kept.0, strip: 0, scratch: scratch, columnCodes: columnCodes, t: t, row: row, column: column)
    let codes1 = sparse24EmitStrip(
      scratch + 16, kept: kept.1, strip: 1, scratch: scratch, columnCodes: columnCodes, t: t, row: row, column: column)
    _mm512_storeu_si512(
      t.codes + (row / 8) * t.tileColumns + tileColumn,
      _mm512_permutexvar_epi32(tileOrder, _mm512_or_si512(codes0, _mm512_slli_epi32(codes1, 16))))
    @inline(__always)
    func store(_ p: UnsafeMutablePointer<Float>, _ v: __m512) {
      if t.streaming { _mm512_stream_ps(p, v) } else { _mm512_storeu_ps(p, v) }
    }
    // A's form: group g's line is [slot 0 of rows 0…7, slot 1 of rows 0…7] = row g of the
    // transposed [8·slot + 4·strip + row] sources.
    sparse24Transpose16(scratch + 32)
    let forward = t.values + ((row / 8) * t.tileColumns + tileColumn) * 16
    for p in 0..<16 { store(forward + 16 * (4 * (p & 3) + (p >> 2)), scratch[32 + p]) }
    // Aᵀ's form: for every 8 columns (tiles 2b, 2b + 1) and strip, [slot 0 of the 8 columns,
    // slot 1 of them]; sources [8·strip + 4·slot + column], transposed: rows 2b and 2b + 1
    // interleaved by 4.
    if let values = t.transposedValues {
      sparse24Transpose16(scratch + 48)
      let strip0 = lanes { $0 < 4 ? $0 : $0 < 8 ? $0 + 12 : $0 < 12 ? $0 - 4 : $0 + 8 }
      let strip1 = lanes { $0 < 4 ? $0 + 8 : $0 < 8 ? $0 + 20 : $0 < 12 ? $0 + 4 : $0 + 16 }
      for b in 0..<8 {
        let at = values + ((column / 8 + b) * t.tileRows + tileRow) * 16
        let p = 4 * ((2 * b) & 3) + ((2 * b) >> 2)  // tiles 2b, 2b + 1 are in lanes p, p + 4
        let (u, w) = (scratch[48 + p], scratch[48 + p + 4])
        store(at, _mm512_permutex2var_ps(u, strip0, w))
        store(at + 16, _mm512_permutex2var_ps(u, strip1, w))
      }
    }
  }

  /// The kept elements of a strip's 16 tiles (lane t: tile t; `e[c + 4·row]` its elements) by
  /// `rule`, all 16 at once in registers; the kept masks in the low 16 bits of each lane.
  ///
  /// Each element becomes a 32-bit sort key: its ranking key (``sparse24RankKey(_:magnitude:)``)
  /// with `15 − index` in the 4 bits the ranking drops (ties: lower index first). Sorted largest
  /// first (Batcher's odd–even merge network, 63 comparators of `vpmaxud`/`vpminud`), the keys go
  /// through the greedy, which looks up what it needs by the index in the key's low 4 bits
  /// (`payloads`: the element's own mask bit and, at bit 16, its row and column as one 8-bit set),
  /// with, per tile, `state` = kept elements (bits 0…15) and the rows/columns that keep one
  /// already (16…23), and `closed` = those that keep two (16…23). `extremes` tracks the largest
  /// and smallest exact keys (NaN watch).
  @inline(never)
  private func sparse24ChooseTiles(
    _ e: UnsafeMutablePointer<__m512>, rule: Sparse24Rule, payloads: __m512i, extremes: inout (__m512i, __m512i)
  ) -> __m512i {
    rule.ranksMagnitude
      ? sparse24ChooseTiles(e, magnitude: true, payloads: payloads, extremes: &extremes)
      : sparse24ChooseTiles(e, magnitude: false, payloads: payloads, extremes: &extremes)
  }

  @inline(__always)
  private func sparse24ChooseTiles(
    _ e: UnsafeMutablePointer<__m512>, magnitude: Bool, payloads: __m512i, extremes: inout (__m512i, __m512i)
  ) -> __m512i {
    let magnitudeBits = splat(0x7FFF_FFFF)
    let signBit = splat(Int32(bitPattern: 0x8000_0000))
    let rankBits = splat(Int32(bitPattern: sparse24RankMask))
    @inline(__always)
    func key(_ i: Int) -> __m512i {
      let k: __m512i
      if magnitude {
        k = _mm512_and_si512(bits(e[i]), magnitudeBits)
      } else {
        let y = bits(_mm512_add_ps(e[i], _mm512_setzero_ps()))
        k = _mm512_xor_si512(y, _mm512_or_si512(_mm512_srai_epi32(y, 31), signBit))
      }
      extremes.0 = _mm512_max_epu32(extremes.0, k)
      extremes.1 = _mm512_min_epu32(extremes.1, k)
      return _mm512_or_si512(_mm512_and_si512(k, rankBits), splat(Int32(15 - i)))
    }
    @inline(__always)
    func order(_ a: inout __m512i, _ b: inout __m512i) {
      let high = _mm512_max_epu32(a, b)
      b = _mm512_min_epu32(a, b)
      a = high
    }
    var v0 = key(0), v1 = key(1), v2 = key(2), v3 = key(3), v4 = key(4), v5 = key(5), v6 = key(6), v7 = key(7)
    var v8 = key(8), v9 = key(9), v10 = key(10), v11 = key(11), v12 = key(12), v13 = key(13), v14 = key(14)
    var v15 = key(15)
    // Batcher's odd–even merge sort for 16, largest first: 63 comparators.
    order(&v0, &v1); order(&v2, &v3); order(&v4, &v5); order(&v6, &v7)
    order(&v8, &v9); order(&v10, &v11); order(&v12, &v13); order(&v14, &v15)
    order(&v0, &v2); order(&v1, &v3); order(&v4, &v6); order(&v5, &v7)
    order(&v8, &v10); order(&v9, &v11); order(&v12, &v14); order(&v13, &v15)
    order(&v1, &v2); order(&v5, &v6); order(&v9, &v10); order(&v13, &v14)
    order(&v0, &v4); order(&v1, &v5); order(&v2, &v6); order(&v3, &v7)
    order(&v8, &v12); order(&v9, &v13); order(&v10, &v14); order(&v11, &v15)
    order(&v2, &v4); order(&v3, &v5); order(&v10, &v12); order(&v11, &v13)
    order(&v1, &v2); order(&v3, &v4); order(&v5, &v6); order(&v9, &v10)
    order(&v11, &v12); order(&v13, &v14); order(&v0, &v8); order(&v1, &v9)
    order(&v2, &v10); order(&v3, &v11); order(&v4, &v12); order(&v5, &v13)
    order(&v6, &v14); order(&v7, &v15); order(&v4, &v8); order(&v5, &v9)
    order(&v6, &v10); order(&v7, &v11); order(&v2, &v4); order(&v3, &v5)
    order(&v6, &v8); order(&v7, &v9); order(&v10, &v12); order(&v11, &v13)
    order(&v1, &v2); order(&v3, &v4); order(&v5, &v6); order(&v7, &v8)
    order(&v9, &v10); order(&v11, &v12); order(&v13, &v14)
    var state = _mm512_setzero_si512()
    var closed = _mm512_setzero_si512()
    @inline(__always)
    func step(_ v: __m512i) {
      // Lane 15 − index of `payloads` (the key's low 4 bits) is the element's payload.
      let p = _mm512_permutexvar_epi32(v, payloads)
      let open = _mm512_testn_epi32_mask(closed, p)
      closed = _mm512_mask_or_epi32(closed, open, closed, _mm512_and_si512(state, p))
      state = _mm512_mask_or_epi32(state, open, state, p)
    }
    step(v0); step(v1); step(v2); step(v3); step(v4); step(v5); step(v6); step(v7)
    step(v8); step(v9); step(v10); step(v11); step(v12); step(v13); step(v14); step(v15)
    return _mm512_and_si512(state, splat(0xFFFF))
  }

  /// Strip `strip` (4 rows) of a block, its tiles' elements at `e` and kept masks `kept`: zeroes
  /// the unkept elements in place; writes the two slots of A's groups to
  /// `scratch[32 + 8·slot + 4·strip + row]` and of Aᵀ's to `scratch[48 + 8·strip + 4·slot +
  /// column]`, Aᵀ's code words to the target; returns A's codes of the strip's 4 rows (16 bits).
  @inline(__always)
  private func sparse24EmitStrip(
    _ e: UnsafeMutablePointer<__m512>, kept: __m512i, strip: Int, scratch: UnsafeMutablePointer<__m512>,
    columnCodes: UnsafeMutablePointer<UInt32>, t: Sparse24Targets, row: Int, column: Int
  ) -> __m512i {
    let magnitudeBits = splat(0x7FFF_FFFF)
    var chosen = _mm512_setzero_si512()
    for i in 0..<16 {
      let bit = splat(Int32(1) << Int32(i))
      let k = _mm512_test_epi32_mask(kept, bit)
      let x = e[i]
      chosen = _mm512_mask_or_epi32(chosen, _mm512_mask_test_epi32_mask(k, bits(x), magnitudeBits), chosen, bit)
      e[i] = _mm512_maskz_mov_ps(k, x)
    }
    // Positions codes of the 4 groups in a tile's 16-bit chosen set, one nibble lookup per group.
    let table = lanes { l in
      let b = 4 * (l & 3)  // bytes 4(l%4)…+3 of each 128-bit lane: entries b…b+3
      return (0..<4).reduce(Int32(0)) { $0 | Int32(sparse24PositionCode(UInt32(b + $1))) << (8 * $1) }
    }
    let nibbles = splat(0x0F0F)
    @inline(__always)
    func codes(_ c: __m512i) -> __m512i {
      let low = _mm512_shuffle_epi8(table, _mm512_and_si512(c, nibbles))
      let high = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi32(c, 4), nibbles))
      return _mm512_and_si512(_mm512_or_si512(low, _mm512_slli_epi32(high, 4)), splat(0xFFFF))
    }
    // Group g of `c` (bits 4g…4g+3, at most 2 set): its two values of `x0…x3` by the positions
    // rule — p0 = 0 when 0 is chosen, ≥ 2 when neither 0 nor 1 is; p1 = 1 only for {0, 1}, 3
    // when 3 is chosen or neither 0 nor 1.
    @inline(__always)
    func pick(_ c: __m512i, _ pairs: __m512i, _ g: Int, _ x0: __m512, _ x1: __m512, _ x2: __m512, _ x3: __m512)
      -> (__m512, __m512)
    {
      let s = Int32(4 * g)
      let fromOne = _mm512_testn_epi32_mask(c, splat(1 << s))
      let fromTwo = _mm512_testn_epi32_mask(c, splat(3 << s))
      let secondFromTwo = _mm512_testn_epi32_mask(pairs, splat(1 << s))
      let three = _mm512_test_epi32_mask(c, splat(8 << s)) | fromTwo
      let first = _mm512_mask_blend_ps(fromTwo, _mm512_mask_blend_ps(fromOne, x0, x1), x2)
      let second = _mm512_mask_blend_ps(three, _mm512_mask_blend_ps(secondFromTwo, x1, x2), x3)
      return (first, second)
    }
    let pairs = _mm512_and_si512(chosen, _mm512_srli_epi32(chosen, 1))
    for r in 0..<4 {
      let (v0, v1) = pick(chosen, pairs, r, e[4 * r], e[4 * r + 1], e[4 * r + 2], e[4 * r + 3])
      scratch[32 + 4 * strip + r] = v0
      scratch[40 + 4 * strip + r] = v1
    }
    if t.transposedCodes != nil {
      // The 4×4 bit transpose of each tile's chosen set: bit c + 4r ↔ r + 4c.
      var m = chosen
      var d = _mm512_and_si512(_mm512_xor_si512(m, _mm512_srli_epi32(m, 3)), splat(0x0A0A))
      m = _mm512_xor_si512(_mm512_xor_si512(m, d), _mm512_slli_epi32(d, 3))
      d = _mm512_and_si512(_mm512_xor_si512(m, _mm512_srli_epi32(m, 6)), splat(0x00CC))
      m = _mm512_xor_si512(_mm512_xor_si512(m, d), _mm512_slli_epi32(d, 6))
      let pairsT = _mm512_and_si512(m, _mm512_srli_epi32(m, 1))
      for c in 0..<4 {
        let (v0, v1) = pick(m, pairsT, c, e[c], e[4 + c], e[8 + c], e[12 + c])
        scratch[48 + 8 * strip + c] = v0
        scratch[52 + 8 * strip + c] = v1
      }
      // Tiles 2b and 2b + 1 are columns 8b…8b+7: one 32-bit word of 8 codes.
      let tileOrder = lanes { 4 * ($0 & 3) + ($0 >> 2) }
      let words = unsafeBitCast(_mm512_cvtepi32_epi16(_mm512_permutexvar_epi32(tileOrder, codes(m))), to: SIMD8<UInt32>.self)
      // Into the staging lines (16 strips per column block), not Aᵀ's code words themselves.
      let at = columnCodes + (column / 8) * 16 + (row / 4 + strip) % 16
      for b in 0..<8 { at[16 * b] = words[b] }
    }
    return codes(chosen)
  }

  /// Transposes 16 vectors of 16 floats in place (`p[i][j]` ↔ `p[j][i]`): four rounds of
  /// swapping the off-diagonal halves of 2×2 blocks of size 8, 4, 2, 1.
  @inline(__always)
  private func sparse24Transpose16(_ p: UnsafeMutablePointer<__m512>) {
    @inline(__always)
    func swap(_ a: inout __m512, _ b: inout __m512, _ low: __m512i, _ high: __m512i) {
      let x = _mm512_permutex2var_ps(a, low, b)
      b = _mm512_permutex2var_ps(a, high, b)
      a = x
    }
    // Size s: a keeps its lanes without bit s and takes b's lane − s in those with it; b takes
    // a's lane + s in those without, keeps its own in those with.
    let lo8 = lanes { $0 & 8 == 0 ? $0 : 16 + $0 - 8 }, hi8 = lanes { $0 & 8 == 0 ? $0 + 8 : 16 + $0 }
    let lo4 = lanes { $0 & 4 == 0 ? $0 : 16 + $0 - 4 }, hi4 = lanes { $0 & 4 == 0 ? $0 + 4 : 16 + $0 }
    let lo2 = lanes { $0 & 2 == 0 ? $0 : 16 + $0 - 2 }, hi2 = lanes { $0 & 2 == 0 ? $0 + 2 : 16 + $0 }
    let lo1 = lanes { $0 & 1 == 0 ? $0 : 16 + $0 - 1 }, hi1 = lanes { $0 & 1 == 0 ? $0 + 1 : 16 + $0 }
    var v0 = p[0], v1 = p[1], v2 = p[2], v3 = p[3], v4 = p[4], v5 = p[5], v6 = p[6], v7 = p[7]
    var v8 = p[8], v9 = p[9], v10 = p[10], v11 = p[11], v12 = p[12], v13 = p[13], v14 = p[14], v15 = p[15]
    swap(&v0, &v8, lo8, hi8); swap(&v1, &v9, lo8, hi8); swap(&v2, &v10, lo8, hi8); swap(&v3, &v11, lo8, hi8)
    swap(&v4, &v12, lo8, hi8); swap(&v5, &v13, lo8, hi8); swap(&v6, &v14, lo8, hi8); swap(&v7, &v15, lo8, hi8)
    swap(&v0, &v4, lo4, hi4); swap(&v1, &v5, lo4, hi4); swap(&v2, &v6, lo4, hi4); swap(&v3, &v7, lo4, hi4)
    swap(&v8, &v12, lo4, hi4); swap(&v9, &v13, lo4, hi4); swap(&v10, &v14, lo4, hi4); swap(&v11, &v15, lo4, hi4)
    swap(&v0, &v2, lo2, hi2); swap(&v1, &v3, lo2, hi2); swap(&v4, &v6, lo2, hi2); swap(&v5, &v7, lo2, hi2)
    swap(&v8, &v10, lo2, hi2); swap(&v9, &v11, lo2, hi2); swap(&v12, &v14, lo2, hi2); swap(&v13, &v15, lo2, hi2)
    swap(&v0, &v1, lo1, hi1); swap(&v2, &v3, lo1, hi1); swap(&v4, &v5, lo1, hi1); swap(&v6, &v7, lo1, hi1)
    swap(&v8, &v9, lo1, hi1); swap(&v10, &v11, lo1, hi1); swap(&v12, &v13, lo1, hi1); swap(&v14, &v15, lo1, hi1)
    p[0] = v0; p[1] = v1; p[2] = v2; p[3] = v3; p[4] = v4; p[5] = v5; p[6] = v6; p[7] = v7
    p[8] = v8; p[9] = v9; p[10] = v10; p[11] = v11; p[12] = v12; p[13] = v13; p[14] = v14; p[15] = v15
  }
#endif
