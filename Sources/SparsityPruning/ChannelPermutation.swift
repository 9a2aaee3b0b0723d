import SparsityCore
import SparsityFormats

/// A reordering of a weight's input channels (columns), chosen so that N:M pruning along the
/// rows keeps more of the weight (Pool & Yu, "Channel Permutations for N:M Sparsity", 2021).
///
/// Permuting the columns of `W` (`[out, in]`) by `order` and the layer's input features the
/// same way leaves the layer's function unchanged: `x[:, order] · W[:, order]ᵀ = x · Wᵀ`. The
/// input features are permuted either at run time (gather `x[:, order]`) or, for free, offline,
/// by permuting the *producer*: the previous layer's output rows and bias
/// (``permutingRows(of:)``, ``permutingVector(_:)``), when only elementwise operations sit in
/// between (e.g. an MLP's `fc1 → GELU → fc2`).
///
/// ```swift
/// let search = try PermutationSearch.run(scores: fc2.abs())
/// let permutedFC2 = search.permutation.permutingColumns(of: fc2)   // then prune 2:4
/// let permutedFC1 = search.permutation.permutingRows(of: fc1)
/// let permutedBias1 = search.permutation.permutingVector(bias1)
/// ```
///
/// In files the permutation is stored as an `I32` tensor named `NAME:permutation` (see
/// ``tensor``): entry `k` is the original column now at position `k`.
public struct ChannelPermutation: Sendable, Hashable {
  /// `order[k]` is the original column placed at position `k`.
  public let order: [Int]

  /// The name suffix of a stored permutation: `NAME:permutation`.
  public static let nameSuffix = ":permutation"

  /// Wraps `order`.
  ///
  /// - Throws: ``PruningError/invalidOption(name:rule:)`` unless `order` is a permutation of
  ///   `0..<order.count`.
  public init(order: [Int]) throws(PruningError) {
    var seen = [Bool](repeating: false, count: order.count)
    for (k, v) in order.enumerated() {
      guard v >= 0, v < order.count, !seen[v] else {
        throw .invalidOption(name: "permutation", rule: "entry \(k) (\(v)) repeats or is outside 0..<\(order.count)")
      }
      seen[v] = true
    }
    self.order = order
  }

  init(unchecked order: [Int]) { self.order = order }

  /// The identity on `count` channels.
  public static func identity(_ count: Int) -> ChannelPermutation { ChannelPermutation(unchecked: Array(0..<count)) }

  /// Reads a stored `I32` (or `I64`) permutation tensor.
  public init(tensor: Tensor) throws(PruningError) {
    guard tensor.rank == 1, tensor.dtype == .int32 || tensor.dtype == .int64 else {
      throw .invalidOption(name: "permutation", rule: "a permutation is a rank-1 I32 tensor, got \(tensor.dtype) \(tensor.shape)")
    }
    try self.init(order: tensor.doubleValues.map { Int($0) })
  }

  /// The permutation as a rank-1 `I32` tensor.
  public var tensor: Tensor { Tensor(order.map { Int32($0) }) }

  /// Whether this is the identity.
  public var isIdentity: Bool { order.enumerated().allSatisfy { $0.offset == $0.element } }

  /// The permutation that undoes this one.
  public var inverse: ChannelPermutation {
    var inverse = [Int](repeating: 0, count: order.count)
    for (k, v) in order.enumerated() { inverse[v] = k }
    return ChannelPermutation(unchecked: inverse)
  }

  /// `W[:, order]`: a weight's (or a `[tokens, in]` input's) columns in permuted order.
  ///
  /// - Precondition: the last extent equals the permutation's size.
  public func permutingColumns(of tensor: Tensor) -> Tensor {
    let columns = Mask.matrixView(tensor.shape).columns
    precondition(columns == order.count, "tensor \(tensor.shape) does not have \(order.count) columns")
    return gather(tensor) { index in (index / columns) * columns + order[index % columns] }
  }

  /// Undoes ``permutingColumns(of:)``.
  public func restoringColumns(of tensor: Tensor) -> Tensor { inverse.permutingColumns(of: tensor) }

  /// `P[order, :]`: the producer layer's output rows in permuted order.
  ///
  /// - Precondition: the first extent equals the permutation's size.
  public func permutingRows(of tensor: Tensor) -> Tensor {
    precondition(tensor.shape.first == order.count, "tensor \(tensor.shape) does not have \(order.count) rows")
    let width = tensor.count / Swift.max(order.count, 1)
    return gather(tensor) { index in order[index / width] * width + index % width }
  }

  /// `b[order]`: a bias (or any per-channel vector) in permuted order.
  public func permutingVector(_ vector: Tensor) -> Tensor { permutingRows(of: vector) }

  private func gather(_ tensor: Tensor, source: (Int) -> Int) -> Tensor {
    let width = tensor.elementByteWidth
    var out = Tensor(zeros: tensor.shape, dtype: tensor.dtype)
    tensor.withUnsafeBytes { src in
      out.withUnsafeMutableBytes { dst in
        for i in 0..<tensor.count {
          (dst.baseAddress! + i * width).copyMemory(from: src.baseAddress! + source(i) * width, byteCount: width)
        }
      }
    }
    return out
  }
}

/// Searches input-channel permutations that raise the importance N:M pruning keeps.
///
/// The objective is `Σ_rows Σ_groups (sum of the N largest scores of the group)`, the score
/// that N:M magnitude pruning keeps (with `|W|` as scores) or Wanda keeps (with Wanda scores).
/// The search is the stripe-pair optimization of NVIDIA's ASP (`optimize_stripe_groups` with a
/// window of two stripes), greedy with bounded escapes:
/// 1. For every pair of stripes (M consecutive positions each), try every way of splitting
///    their 2·M columns into two stripes (35 ways for M = 4) and record the best gain.
/// 2. Apply the best non-overlapping improvements, re-evaluate the pairs of touched stripes,
///    and repeat until no pair improves.
/// 3. Escapes: swap two random columns of two random stripes and re-converge; keep the result
///    only if the total improved. Random choices come from a seeded generator.
///
/// Columns of a final partial group (when `in` is not a multiple of M) stay in place.
/// Gains are computed in `Float` within a pair and reported exactly (`Double`) at the end.
public enum PermutationSearch {
  /// The outcome of a search.
  public struct Result: Sendable {
    /// The permutation found (the identity when nothing improved).
    public var permutation: ChannelPermutation
    /// Importance kept by N:M pruning in the original order.
    public var keptBefore: Double
    /// Importance kept by N:M pruning after permuting.
    public var keptAfter: Double
    /// Importance kept by per-row unstructured pruning at the same sparsity: no permutation can
    /// beat it.
    public var upperBound: Double

    /// `keptAfter / keptBefore − 1`.
    public var relativeGain: Double { keptBefore == 0 ? 0 : keptAfter / keptBefore - 1 }
    /// ASP's efficacy: the fraction of the gap to ``upperBound`` closed, 0 … 1.
    public var efficacy: Double {
      upperBound - keptBefore <= 0 ? 0 : (keptAfter - keptBefore) / (upperBound - keptBefore)
    }
  }

  /// Searches a permutation for `scores` (`[out, in]`, non-negative importance, e.g. `|W|`).
  ///
  /// - Parameters:
  ///   - n: kept per group (default 2).
  ///   - m: group size (default 4); 2·M columns are split exhaustively, so M ≤ 8.
  ///   - escapeAttempts: random perturbations tried after convergence (default 16).
  ///   - seed: seeds the perturbations.
  /// - Throws: ``PruningError`` for invalid `n`/`m` or non-finite or negative scores.
  /// - Complexity: about `(in/M)² · out · C(2M−1, M−1)` per full pass over stripe pairs,
  ///   parallel over pairs.
  public static func run(
    scores: Tensor, n: Int = 2, m: Int = 4, escapeAttempts: Int = 16, seed: UInt64 = 0, name: String = "weight"
  ) throws(PruningError) -> Result {
    guard 1 <= n, n < m, m <= 8 else {
      throw .invalidOption(name: "permutation N:M", rule: "needs 1 ≤ N < M ≤ 8, got \(n):\(m)")
    }
    guard escapeAttempts >= 0 else { throw .invalidOption(name: "escapeAttempts", rule: "must be ≥ 0") }
    let (rows, columns) = Mask.matrixView(scores.shape)
    let values = try Magnitude.finiteValues(scores, name: name)
    if let negative = values.firstIndex(where: { $0 < 0 }) {
      throw .invalidOption(name: "scores", rule: "importance scores must be ≥ 0; element \(negative) is \(values[negative])")
    }
    var state = SearchState(values: values, rows: rows, columns: columns, n: n, m: m)
    state.converge()
    var rng = SeededGenerator(seed: seed)
    if state.stripes >= 2 {
      for _ in 0..<escapeAttempts { state.escape(using: &rng) }
    }
    let permutation = ChannelPermutation(unchecked: state.order)
    let before = keptImportance(values, rows: rows, columns: columns, order: Array(0..<columns), n: n, m: m)
    let after = keptImportance(values, rows: rows, columns: columns, order: state.order, n: n, m: m)
    // Per-row unstructured bound at the same count per row.
    let perRow = (columns / m) * n + Swift.min(n, columns % m)
    var bound = 0.0
    for r in 0..<rows {
      let row = values[(r * columns)..<((r + 1) * columns)].sorted(by: >)
      bound += row.prefix(perRow).reduce(0, +)
    }
    if after < before {  // cannot happen unless Float rounding misled the search; never report a loss
      return Result(permutation: .identity(columns), keptBefore: before, keptAfter: before, upperBound: bound)
    }
    return Result(permutation: permutation, keptBefore: before, keptAfter: after, upperBound: bound)
  }

  /// `Σ_rows Σ_groups` of the N largest scores per group, columns taken in `order`.
  public static func keptImportance(_ values: [Double], rows: Int, columns: Int, order: [Int], n: Int, m: Int) -> Double {
    var total = 0.0
    var group = [Double](repeating: 0, count: m)
    for r in 0..<rows {
      for g in stride(from: 0, to: columns, by: m) {
        let size = Swift.min(m, columns - g)
        for k in 0..<size { group[k] = values[r * columns + order[g + k]] }
        let sorted = group[0..<size].sorted(by: >)
        total += sorted.prefix(n).reduce(0, +)
      }
    }
    return total
  }
}

/// The working state of a search: column-major scores, the order, per-pair best moves.
struct SearchState {
  let rows: Int
  let paddedRows: Int
  let columns: Int
  let n: Int
  let m: Int
  let stripes: Int
  /// Scores column-major, each column padded to `paddedRows` (a multiple of 8) with zeros.
  let columnData: [Float]
  /// The column subsets (as positions 0..<2m within a pair, containing position 0) that define
  /// the splits of a pair of stripes.
  let splits: [[Int]]
  /// The positions of each split's second stripe.
  let complements: [[Int]]
  /// Per split, the positions of stripe one then of stripe two, flat.
  let splitTable: [Int32]
  var order: [Int]
  /// Best gain and split per pair (a < b), at `a * stripes + b`.
  var bestGain: [Float]
  var bestSplit: [Int32]

  init(values: [Double], rows: Int, columns: Int, n: Int, m: Int) {
    self.rows = rows
    self.columns = columns
    self.n = n
    self.m = m
    self.paddedRows = (rows + 7) / 8 * 8
    self.stripes = columns / m
    var data = [Float](repeating: 0, count: paddedRows * columns)
    for r in 0..<rows { for c in 0..<columns { data[c * paddedRows + r] = Float(values[r * columns + c]) } }
    columnData = data
    var splits: [[Int]] = []
    func choose(_ start: Int, _ chosen: [Int]) {
      if chosen.count == m {
        splits.append(chosen)
        return
      }
      if start >= 2 * m { return }
      for p in start..<(2 * m) { choose(p + 1, chosen + [p]) }
    }
    choose(1, [0])
    self.splits = splits
    self.complements = splits.map { split in (0..<(2 * m)).filter { !split.contains($0) } }
    self.splitTable = zip(splits, complements).flatMap { ($0 + $1).map { Int32($0) } }
    order = Array(0..<columns)
    bestGain = [Float](repeating: 0, count: stripes * stripes)
    bestSplit = [Int32](repeating: 0, count: stripes * stripes)
    evaluate(pairsTouching: nil)
  }

  /// The identity split is `splits[0]` = positions 0..<m (stripe a unchanged).
  mutating func evaluate(pairsTouching touched: Set<Int>?) {
    var pairs: [(Int, Int)] = []
    for a in 0..<stripes {
      for b in (a + 1)..<Swift.max(a + 1, stripes) where touched == nil || touched!.contains(a) || touched!.contains(b) {
        pairs.append((a, b))
      }
    }
    if pairs.isEmpty { return }
    var gains = [Float](repeating: 0, count: pairs.count)
    var choices = [Int32](repeating: 0, count: pairs.count)
    let snapshot = self
    pairs.withUnsafeBufferPointer { pairs in
      gains.withUnsafeMutableBufferPointer { gains in
        choices.withUnsafeMutableBufferPointer { choices in
          let gainOut = UncheckedPointer(gains.baseAddress!)
          let choiceOut = UncheckedPointer(choices.baseAddress!)
          Parallel.forEachRange(pairs.count, minimumChunk: 4) { range in
            var sums = [SIMD8<Float>](repeating: .zero, count: snapshot.splits.count)
            for p in range {
              let (gain, split) = snapshot.bestMove(pairs[p].0, pairs[p].1, sums: &sums)
              gainOut.pointer[p] = gain
              choiceOut.pointer[p] = Int32(split)
            }
          }
        }
      }
    }
    for (p, pair) in pairs.enumerated() {
      bestGain[pair.0 * stripes + pair.1] = gains[p]
      bestSplit[pair.0 * stripes + pair.1] = choices[p]
    }
  }

  /// The best split of stripes `a` and `b` and its gain over the current one.
  func bestMove(_ a: Int, _ b: Int, sums: inout [SIMD8<Float>]) -> (Float, Int) {
    let width = 2 * m
    var columnsOfPair = [Int](repeating: 0, count: width)
    for k in 0..<m {
      columnsOfPair[k] = order[a * m + k]
      columnsOfPair[m + k] = order[b * m + k]
    }
    if m == 4 && n == 2 {
      let result = columnData.withUnsafeBufferPointer { data in
        splitTable.withUnsafeBufferPointer { table in
          withUnsafeTemporaryAllocation(of: UnsafePointer<Float>.self, capacity: 8) { pointers in
            for k in 0..<8 { pointers[k] = data.baseAddress! + columnsOfPair[k] * paddedRows }
            return SearchState.bestSplitTwoOfFour(
              UnsafePointer(pointers.baseAddress!), paddedRows, table.baseAddress!, splits.count)
          }
        }
      }
      return result.gain <= Swift.max(result.identity, 1e-30) * 1e-6 ? (0, 0) : (result.gain, result.split)
    }
    for i in sums.indices { sums[i] = .zero }
    columnData.withUnsafeBufferPointer { data in
      let base = UnsafeRawPointer(data.baseAddress!)
      var vectors = [SIMD8<Float>](repeating: .zero, count: width)
      var first = [SIMD8<Float>](repeating: .zero, count: m)
      var second = [SIMD8<Float>](repeating: .zero, count: m)
      for r0 in stride(from: 0, to: paddedRows, by: 8) {
        for k in 0..<width {
          vectors[k] = base.loadUnaligned(fromByteOffset: (columnsOfPair[k] * paddedRows + r0) * 4, as: SIMD8<Float>.self)
        }
        for s in 0..<splits.count {
          for k in 0..<m {
            first[k] = vectors[splits[s][k]]
            second[k] = vectors[complements[s][k]]
          }
          sums[s] += SearchState.topSum(&first, n: n) + SearchState.topSum(&second, n: n)
        }
      }
    }
    let identity = sums[0].sum()
    var best: Float = 0
    var bestIndex = 0
    for s in 1..<sums.count {
      let gain = sums[s].sum() - identity
      if gain > best {
        best = gain
        bestIndex = s
      }
    }
    // Ignore gains within Float rounding of the pair's total.
    if best <= Swift.max(identity, 1e-30) * 1e-6 { return (0, 0) }
    return (best, bestIndex)
  }

  /// The fast path for 2:4: the best of the 35 splits of eight columns (each `rows` floats,
  /// rows a multiple of 8) into two stripes, with the identity split's total and the gain.
  /// `table` lists, per split, the four positions of stripe one then the four of stripe two.
  @inline(never)
  static func bestSplitTwoOfFour(
    _ columns: UnsafePointer<UnsafePointer<Float>>, _ rows: Int, _ table: UnsafePointer<Int32>, _ splitCount: Int
  ) -> (gain: Float, split: Int, identity: Float) {
    withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 8) { v in
      withUnsafeTemporaryAllocation(of: SIMD8<Float>.self, capacity: 2 * splitCount) { acc in
        for q in 0..<(2 * splitCount) { acc[q] = .zero }
        var r0 = 0
        while r0 < rows {
          for k in 0..<8 { v[k] = UnsafeRawPointer(columns[k] + r0).loadUnaligned(as: SIMD8<Float>.self) }
          for q in 0..<(2 * splitCount) {
            let t = table + 4 * q
            acc[q] += topTwoOfFour(v[Int(t[0])], v[Int(t[1])], v[Int(t[2])], v[Int(t[3])])
          }
          r0 += 8
        }
        let identity = (acc[0] + acc[1]).sum()
        var best: Float = 0
        var bestSplit = 0
        for split in 1..<splitCount {
          let gain = (acc[2 * split] + acc[2 * split + 1]).sum() - identity
          if gain > best {
            best = gain
            bestSplit = split
          }
        }
        return (best, bestSplit, identity)
      }
    }
  }

  /// Lane-wise sum of the two largest of four.
  @inline(__always)
  static func topTwoOfFour(_ a: SIMD8<Float>, _ b: SIMD8<Float>, _ c: SIMD8<Float>, _ d: SIMD8<Float>) -> SIMD8<Float> {
    let l1 = larger(a, b), s1 = smaller(a, b)
    let l2 = larger(c, d), s2 = smaller(c, d)
    return larger(l1, l2) + larger(smaller(l1, l2), larger(s1, s2))
  }

  /// Lane-wise maximum as a compare and blend (the standard library's `pointwiseMax` is not
  /// inlined for `SIMD8<Float>` and runs lane by lane).
  @inline(__always)
  static func larger(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: a .< b) }

  /// Lane-wise minimum (see ``larger(_:_:)``).
  @inline(__always)
  static func smaller(_ a: SIMD8<Float>, _ b: SIMD8<Float>) -> SIMD8<Float> { a.replacing(with: b, where: b .< a) }

  /// Lane-wise sum of the `n` largest of `v` (sorted in place, descending, by a bubble network).
  @inline(__always)
  static func topSum(_ v: inout [SIMD8<Float>], n: Int) -> SIMD8<Float> {
    let count = v.count
    if count == 4 && n == 2 { return topTwoOfFour(v[0], v[1], v[2], v[3]) }
    for i in 0..<n {
      for j in stride(from: count - 1, to: i, by: -1) {
        let hi = larger(v[j - 1], v[j])
        v[j] = smaller(v[j - 1], v[j])
        v[j - 1] = hi
      }
    }
    var total = SIMD8<Float>.zero
    for i in 0..<n { total += v[i] }
    return total
  }

  /// Applies the best non-overlapping moves, re-evaluating touched pairs, until none improves.
  mutating func converge() {
    while true {
      var candidates: [(gain: Float, a: Int, b: Int)] = []
      for a in 0..<stripes {
        for b in (a + 1)..<Swift.max(a + 1, stripes) where bestGain[a * stripes + b] > 0 {
          candidates.append((bestGain[a * stripes + b], a, b))
        }
      }
      if candidates.isEmpty { return }
      candidates.sort { $0.gain != $1.gain ? $0.gain > $1.gain : ($0.a, $0.b) < ($1.a, $1.b) }
      var touched = Set<Int>()
      for c in candidates where !touched.contains(c.a) && !touched.contains(c.b) {
        apply(split: Int(bestSplit[c.a * stripes + c.b]), a: c.a, b: c.b)
        touched.insert(c.a)
        touched.insert(c.b)
      }
      evaluate(pairsTouching: touched)
    }
  }

  mutating func apply(split: Int, a: Int, b: Int) {
    var pair = [Int](repeating: 0, count: 2 * m)
    for k in 0..<m {
      pair[k] = order[a * m + k]
      pair[m + k] = order[b * m + k]
    }
    let first = splits[split].map { pair[$0] }
    let second = complements[split].map { pair[$0] }
    for k in 0..<m {
      order[a * m + k] = first[k]
      order[b * m + k] = second[k]
    }
  }

  /// Total kept importance in `Double`, for accepting or rejecting escapes.
  func total() -> Double {
    var sum = 0.0
    var group = [SIMD8<Float>](repeating: .zero, count: m)
    columnData.withUnsafeBufferPointer { data in
      let base = UnsafeRawPointer(data.baseAddress!)
      for s in 0..<stripes {
        for r0 in stride(from: 0, to: paddedRows, by: 8) {
          for k in 0..<m {
            group[k] = base.loadUnaligned(fromByteOffset: (order[s * m + k] * paddedRows + r0) * 4, as: SIMD8<Float>.self)
          }
          let t = SearchState.topSum(&group, n: n)
          for lane in 0..<8 { sum += Double(t[lane]) }
        }
      }
    }
    return sum
  }

  /// One bounded regression: swap a random column pair between two random stripes,
  /// re-converge, and keep the result only if the total improved.
  mutating func escape(using rng: inout SeededGenerator) {
    let saved = self
    let before = total()
    let a = Int(rng.next() % UInt64(stripes))
    var b = Int(rng.next() % UInt64(stripes - 1))
    if b >= a { b += 1 }
    let i = a * m + Int(rng.next() % UInt64(m))
    let j = b * m + Int(rng.next() % UInt64(m))
    order.swapAt(i, j)
    evaluate(pairsTouching: [a, b])
    converge()
    if total() <= before * (1 + 1e-9) { self = saved }
  }
}
