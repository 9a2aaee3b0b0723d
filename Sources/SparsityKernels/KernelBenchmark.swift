import Foundation
import SparsityCore
import SparsityFormats

// `sparsity bench` as library API: the plan of cases, the interleaved timing of every sparse
// kernel against our dense kernels, and the records the reports are made from.

/// A benchmark option that does not parse, or a peer file that cannot be read.
public struct KernelBenchmarkError: Error, CustomStringConvertible, Sendable {
  public var description: String
  public init(_ description: String) { self.description = description }
}

/// Which cases to run.
public struct BenchPlan: Sendable {
  /// A weight shape `out × in` with a display name.
  public struct Shape: Hashable, Sendable, CustomStringConvertible {
    public var out: Int
    public var inp: Int
    public var name: String
    public var description: String { "\(out)x\(inp)" }
    public init(out: Int, inp: Int, name: String) {
      self.out = out
      self.inp = inp
      self.name = name
    }
  }

  /// One weight to time at several token counts.
  public struct Case: Sendable {
    /// The weight form timed (its ``WeightForm/family`` names the table).
    public var form: WeightForm
    public var shape: Shape
    public var tokens: [Int]
    public var sparsity: Double
    public var block: Int?
  }

  /// The cases, in run order.
  public var cases: [Case] = []

  public static let vitL = [Shape(out: 4096, inp: 1024, name: "ViT-L fc1"), Shape(out: 1024, inp: 4096, name: "ViT-L fc2")]
  public static let semiShapes = [
    Shape(out: 3072, inp: 768, name: "BERT-base fc1"), Shape(out: 768, inp: 3072, name: "BERT-base fc2"),
  ] + vitL + [
    Shape(out: 11008, inp: 4096, name: "LLaMA-7B up"), Shape(out: 4096, inp: 11008, name: "LLaMA-7B down"),
  ]

  /// The plan for `sparsity bench`'s options, in their spellings: formats `dense,2:4,bsr,csr`,
  /// shapes `OUTxIN,…`, token counts, sparsities and block sizes as comma-separated lists
  /// (`nil`: each table's own defaults).
  ///
  /// - Throws: ``KernelBenchmarkError`` naming the option and the item that does not parse.
  public init(formats: String, shapes: String?, tokens: String?, sparsities: String?, blocks: String?) throws {
    var wanted = Set<String>()
    // Encoded forms (`w8a8+dense`, `int8+2:4`, …) each run as a table of their own.
    var encoded: [WeightForm] = []
    for f in formats.lowercased().split(separator: ",").map({ String($0).trimmingCharacters(in: .whitespaces) }) {
      if ["dense", "2:4", "bsr", "csr"].contains(f) {
        wanted.insert(f)
      } else if f.contains("+"), let form = try? WeightForm(parsing: f), KernelTable.supports(form) {
        encoded.append(form)
      } else {
        throw KernelBenchmarkError(
          "--formats: unknown format '\(f)' (use dense, 2:4, bsr, csr, or an encoded form the kernels run: \(KernelTable.forms.filter { $0.encoding != .float32 }.map(\.description).joined(separator: ", ")))")
      }
    }
    func ints(_ text: String?, _ option: String) throws -> [Int]? {
      guard let text else { return nil }
      return try text.split(separator: ",").map {
        guard let v = Int($0.trimmingCharacters(in: .whitespaces)), v >= 1 else {
          throw KernelBenchmarkError("\(option): '\($0)' is not a positive integer")
        }
        return v
      }
    }
    let shapeList: [Shape]? = try shapes.map { text in
      try text.lowercased().split(separator: ",").map { item in
        let parts = item.split(separator: "x")
        guard parts.count == 2, let o = Int(parts[0]), let i = Int(parts[1]), o >= 1, i >= 1 else {
          throw KernelBenchmarkError("--shapes: '\(item)' is not OUTxIN (e.g. 4096x1024)")
        }
        let known = (Self.semiShapes).first { $0.out == o && $0.inp == i }
        return Shape(out: o, inp: i, name: known?.name ?? "\(o)x\(i)")
      }
    }
    let m = try ints(tokens, "--m")
    let blockList = try ints(blocks, "--blocks") ?? [8, 16, 32, 64]
    let sparsityList: [Double]? = try sparsities.map { text in
      try text.split(separator: ",").map {
        guard let v = Double($0.trimmingCharacters(in: .whitespaces)), v >= 0, v < 1 else {
          throw KernelBenchmarkError("--sparsities: '\($0)' is not a number in [0, 1)")
        }
        return v
      }
    }
    if wanted.contains("dense") {
      for s in shapeList ?? Self.semiShapes {
        cases.append(Case(form: .dense, shape: s, tokens: m ?? [1, 16, 128, 512, 2048], sparsity: 0, block: nil))
      }
    }
    if wanted.contains("bsr") {
      for s in shapeList ?? Self.vitL {
        for b in blockList {
          guard s.out % b == 0 && s.inp % b == 0 else {
            throw KernelBenchmarkError("--blocks: \(b) does not divide the shape \(s) (BSR needs multiples of the block)")
          }
          for sp in sparsityList ?? [0.5, 0.8, 0.9, 0.95, 0.99] {
            cases.append(Case(form: .bsr(b, b), shape: s, tokens: m ?? [1, 16, 128, 1024, 4096], sparsity: sp, block: b))
          }
        }
      }
    }
    if wanted.contains("2:4") {
      for s in shapeList ?? Self.semiShapes {
        cases.append(Case(form: .twoFour, shape: s, tokens: m ?? [1, 16, 128, 512, 2048], sparsity: 0.5, block: nil))
      }
    }
    if wanted.contains("csr") {
      for s in shapeList ?? Self.vitL {
        for sp in sparsityList ?? [0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99] {
          cases.append(Case(form: .csr, shape: s, tokens: m ?? [1, 128, 1024], sparsity: sp, block: nil))
        }
      }
    }
    for form in encoded {
      for s in shapeList ?? Self.semiShapes {
        switch form.layout {
        case let .block(r, c):
          guard s.out % r == 0 && s.inp % c == 0 else {
            throw KernelBenchmarkError("--formats \(form): the block does not divide the shape \(s) (BSR needs multiples of the block)")
          }
          for sp in sparsityList ?? [0.5, 0.8] {
            cases.append(Case(form: form, shape: s, tokens: m ?? [1, 16, 128, 512, 2048], sparsity: sp, block: r))
          }
        default:
          let sparsity = form.layout == .dense ? 0 : 0.5
          cases.append(Case(form: form, shape: s, tokens: m ?? [1, 16, 128, 512, 2048], sparsity: sparsity, block: nil))
        }
      }
    }
  }

  /// Measurements the plan makes (cases × token counts).
  public var caseCount: Int { cases.map(\.tokens.count).reduce(0, +) }
}

/// One measured case.
public struct BenchRecord: Codable, Sendable {
  public var table: String
  public var kernel: String
  public var format: String
  public var m: Int
  public var n: Int
  public var k: Int
  public var shapeName: String
  public var sparsity: Double
  public var block: Int?
  public var medianMs: Double
  public var minMs: Double
  /// Dense-equivalent GFLOP/s: 2·M·N·K / time.
  public var effectiveGflops: Double
  /// Work actually done: 2·M·(stored values) / time.
  public var usefulGflops: Double
  /// Our dense time for the same shape and M (this run), and the speedup over it.
  public var denseMs: Double
  public var denseKernel: String
  public var speedup: Double
  /// The best dense time among ours and the peers, which one, and the speedup over it.
  public var bestDenseMs: Double
  public var bestDense: String
  public var speedupVsBestDense: Double
  /// Bytes of the packed weight and of the dense fp32 weight.
  public var bytes: Int
  public var denseBytes: Int
  /// What the dispatcher runs with the dense fallback on (`SPARSITY_DENSE_FALLBACK=1`): the sparse
  /// kernel when ≥ 1.1× faster than our dense (without it, always the sparse kernel).
  public var dispatch: String

  enum CodingKeys: String, CodingKey {
    case table, kernel, format, m, n, k, sparsity, block, bytes, speedup, dispatch
    case shapeName = "shape_name", medianMs = "median_ms", minMs = "min_ms"
    case effectiveGflops = "effective_gflops", usefulGflops = "useful_gflops", denseMs = "dense_ms"
    case denseKernel = "dense_kernel", bestDenseMs = "best_dense_ms", bestDense = "best_dense"
    case speedupVsBestDense = "speedup_vs_best_dense", denseBytes = "dense_bytes"
  }
}

/// A timing from scripts/bench_peers.py.
public struct PeerRecord: Codable, Sendable {
  public var library: String
  public var kernel: String
  public var format: String
  public var m: Int
  public var n: Int
  public var k: Int
  public var sparsity: Double?
  public var block: Int?
  public var medianMs: Double
  public var threads: Int?
  public var detail: String?

  enum CodingKeys: String, CodingKey {
    case library, kernel, format, m, n, k, sparsity, block, threads, detail
    case medianMs = "median_ms"
  }

  /// The records of a `bench_peers.py` JSON file.
  public static func load(_ path: String) throws -> [PeerRecord] {
    guard let data = FileManager.default.contents(atPath: path) else { throw KernelBenchmarkError("cannot read --peers \(path)") }
    struct File: Decodable { var records: [PeerRecord] }
    do {
      return try JSONDecoder().decode(File.self, from: data).records
    } catch {
      throw KernelBenchmarkError("--peers \(path) is not a bench_peers.py file: \(error)")
    }
  }
}

/// Builds weights, times kernels (interleaved with our dense kernels, ``InterleavedTiming``),
/// keeps the dense baselines: `sparsity bench` as a library call.
public struct BenchRunner {
  var runs: Int
  var peers: [PeerRecord]
  private var denseWeights: [BenchPlan.Shape: LinearWeight] = [:]
  private var done = 0
  private var total = 0
  private let started = Date()

  public init(runs: Int, peers: [PeerRecord]) {
    self.runs = runs
    self.peers = peers
  }

  /// Times every case of `plan`; progress lines go to standard error.
  public mutating func run(_ plan: BenchPlan) -> [BenchRecord] {
    total = plan.caseCount
    var records: [BenchRecord] = []
    for c in plan.cases {
      let weight = makeWeight(c)
      let denseWeight = denseWeight(c.shape)
      for m in c.tokens {
        let x = SyntheticWeights.dense(rows: m, columns: c.shape.inp, seed: UInt64(m))
        // Dense and sparse kernels timed in alternating rounds, so that a busy machine (other
        // processes, frequency changes) slows both alike and the ratio stays meaningful.
        var contenders: [(LinearWeight, LinearKernel)] = denseWeight.candidateKernels(tokens: m).map { (denseWeight, $0) }
        if c.form != .dense {
          contenders += weight.candidateKernels(tokens: m).filter { !$0.isDense }.map { (weight, $0) }
        }
        let times = measureInterleaved(
          contenders.map { w, k in (ObjectIdentifier(w), { _ = w.apply(x: x, bias: nil, kernel: k) }) })
        var dense = (ms: Double.infinity, kernel: LinearKernel.denseGEMM, times: [Double]())
        var best = (ms: Double.infinity, kernel: LinearKernel.denseGEMM, times: [Double]())
        for (i, (w, kernel)) in contenders.enumerated() {
          let t = median(times[i])
          if w === denseWeight {
            if t < dense.ms { dense = (t, kernel, times[i]) }
          } else if t < best.ms {
            best = (t, kernel, times[i])
          }
        }
        if c.form == .dense { best = dense }
        records.append(
          record(c, m: m, weight: weight, kernel: best.kernel, times: best.times, dense: (dense.ms, dense.kernel.name)))
        done += 1
        progress(records.last!)
      }
    }
    return records
  }

  /// Per body, timings in ms: two warm-ups each, then at least `runs` interleaved rounds (up
  /// to 50 while the rounds took under 0.3 s); a body whose weight differs from the one timed
  /// just before runs once untimed first, so every timing sees its own weight in cache (as the
  /// peers' back-to-back runs do) rather than the other contender's.
  private func measureInterleaved(_ bodies: [(weight: ObjectIdentifier, run: () -> Void)]) -> [[Double]] {
    var groups: [ObjectIdentifier: Int] = [:]
    for body in bodies where groups[body.weight] == nil { groups[body.weight] = groups.count }
    let timing = InterleavedTiming.measure(
      bodies.map(\.run), warmups: 2, rounds: runs, minimumSeconds: 0.3, maximumRounds: 50,
      groups: bodies.map { groups[$0.weight]! })
    return timing.seconds.map { $0.map { $0 * 1e3 } }
  }

  private func progress(_ r: BenchRecord) {
    let elapsed = Date().timeIntervalSince(started)
    let line = String(
      format: "[%d/%d %.0fs] %@ %@ %dx%d m=%d s=%.2f: %.3f ms, %.2fx dense\n", done, total, elapsed, r.table,
      r.kernel, r.n, r.k, r.m, r.sparsity, r.medianMs, r.speedup)
    FileHandle.standardError.write(Data(line.utf8))
  }

  private mutating func makeWeight(_ c: BenchPlan.Case) -> LinearWeight {
    guard c.form != .dense else { return denseWeight(c.shape) }
    let (n, k) = (c.shape.out, c.shape.inp)
    let seed = UInt64(n &* 31 &+ k) &+ UInt64(c.sparsity * 1000) &+ UInt64(c.block ?? 0)
    do {
      return try LinearWeight(.dense(SyntheticWeights.matrix(c.form, rows: n, columns: k, sparsity: c.sparsity, seed: seed)), as: c.form)
    } catch {
      fatalError("cannot build the \(c.form) weight \(c.shape): \(error)")
    }
  }

  private mutating func denseWeight(_ s: BenchPlan.Shape) -> LinearWeight {
    if let w = denseWeights[s] { return w }
    // Only one dense weight at a time: the LLaMA ones are 180 MB each.
    denseWeights.removeAll()
    let w = try! LinearWeight(dense: SyntheticWeights.dense(rows: s.out, columns: s.inp, seed: 99))
    denseWeights[s] = w
    return w
  }

  private func median(_ t: [Double]) -> Double {
    let s = t.sorted()
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }

  private func record(
    _ c: BenchPlan.Case, m: Int, weight: LinearWeight, kernel: LinearKernel, times: [Double],
    dense: (ms: Double, kernel: String)
  ) -> BenchRecord {
    let (n, k) = (c.shape.out, c.shape.inp)
    let ms = median(times)
    let flops = 2 * Double(m) * Double(n) * Double(k)
    var bestDense = (ms: dense.ms, name: "ours:\(dense.kernel)")
    for p in peers where p.format == "dense" && p.m == m && p.n == n && p.k == k && p.medianMs < bestDense.ms {
      bestDense = (p.medianMs, "\(p.library):\(p.kernel)")
    }
    let speedup = dense.ms / ms
    let stored = c.form.isSparse ? weight.density : 1.0
    return BenchRecord(
      table: c.form.encoding == .float32 ? c.form.family : "\(c.form.encoding.rawValue)+\(c.form.family)", kernel: kernel.name, format: c.form.description, m: m, n: n, k: k, shapeName: c.shape.name,
      sparsity: c.sparsity, block: c.block, medianMs: ms, minMs: times.min() ?? ms,
      effectiveGflops: flops / ms / 1e6, usefulGflops: flops * stored / ms / 1e6, denseMs: dense.ms,
      denseKernel: dense.kernel, speedup: speedup, bestDenseMs: bestDense.ms, bestDense: bestDense.name,
      speedupVsBestDense: bestDense.ms / ms, bytes: weight.byteCount, denseBytes: n * k * 4,
      dispatch: c.form == .dense || c.form.encoding != .float32 || speedup >= 1.1 ? kernel.name : dense.kernel)
  }
}
