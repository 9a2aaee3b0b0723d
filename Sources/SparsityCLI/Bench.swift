import ArgumentParser
import Foundation
import Sparsity

/// `sparsity bench`: the talk's microbenchmark tables on this machine, every sparse kernel
/// against our dense kernels measured in the same run (and against dense peers from a file).
struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Time the sparse kernels against dense on the talk's layer shapes (y = x·Wᵀ, fp32).",
    discussion: """
      Three tables: BSR (blocks 8/16/32/64 × sparsity 0.5–0.99 on the ViT-L MLP shapes \
      4096x1024 and 1024x4096, M = 1, 16, 128, 1024, 4096), 2:4 (BERT-base, ViT-L and \
      LLaMA-7B MLP shapes, M = 1, 16, 128, 512, 2048) and CSR (sparsity 0.5–0.99 on the ViT-L \
      shapes, M = 1, 128, 1024). Each case: a warm-up, then the median of several runs, both \
      threads; the speedup divides our dense time (GEMM, or GEMV for tiny M) for the same shape \
      and M, measured in this run, by the sparse kernel's time. With --peers FILE (written by \
      scripts/bench_peers.py) every speedup is also given against the best dense time among \
      ours, OpenBLAS and PyTorch. Progress goes to stderr.
      """)

  @Option(help: "Formats to run: dense,2:4,bsr,csr (dense runs as the baseline of the others anyway).")
  var formats: String = "2:4,bsr,csr"

  @Option(help: "Weight shapes OUTxIN, comma-separated (default: each table's own).")
  var shapes: String?

  @Option(name: .customLong("m"), help: "Token counts M, comma-separated (default: each table's own).")
  var tokens: String?

  @Option(help: "Sparsities for BSR and CSR, comma-separated (default 0.5,0.8,0.9,0.95,0.99; CSR adds 0.6,0.7).")
  var sparsities: String?

  @Option(help: "BSR block sizes, comma-separated (default 8,16,32,64).")
  var blocks: String?

  @Option(help: "Timed runs per case (the median is reported).")
  var runs: Int = 5

  @Option(help: "A JSON file of peer timings from scripts/bench_peers.py.")
  var peers: String?

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  @Flag(help: "Print a Markdown report (machine, method, tables, targets) instead of the table.")
  var markdown = false

  @Option(help: "Also write an HTML report with plots to this file.")
  var html: String?

  @Option(help: "Also write the JSON records to this file.")
  var jsonOutput: String?

  func validate() throws {
    if json && markdown { throw ValidationError("choose one of --json and --markdown") }
    if runs < 1 { throw ValidationError("--runs must be at least 1") }
  }

  func run() throws {
    do {
      try CPUFeatures.requireKernelSupport()
    } catch {
      throw CLIError("\(error)")
    }
    let machine = MachineDescription.current()
    let plan = try BenchPlan(
      formats: formats, shapes: shapes, tokens: tokens, sparsities: sparsities, blocks: blocks)
    let peerRecords = try peers.map(PeerRecord.load) ?? []
    var runner = BenchRunner(runs: runs, peers: peerRecords)
    let records = runner.run(plan)
    let report = BenchReport(records: records, peers: peerRecords, machine: machine, runs: runs)
    if let html {
      try write(report.html(), to: html)
      FileHandle.standardError.write(Data("wrote \(html)\n".utf8))
    }
    if let jsonOutput { try write(report.json(), to: jsonOutput) }
    if json {
      say(report.json())
    } else if markdown {
      say(report.markdown())
    } else {
      say(report.text())
    }
  }

  private func write(_ text: String, to path: String) throws {
    do {
      try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw CLIError("cannot write \(path): \((error as NSError).localizedDescription)")
    }
  }
}

/// Which cases to run.
struct BenchPlan {
  struct Shape: Hashable, CustomStringConvertible {
    var out: Int
    var inp: Int
    var name: String
    var description: String { "\(out)x\(inp)" }
  }

  struct Case {
    /// The weight form timed (its ``WeightForm/family`` names the table).
    var form: WeightForm
    var shape: Shape
    var tokens: [Int]
    var sparsity: Double
    var block: Int?
  }

  var cases: [Case] = []

  static let vitL = [Shape(out: 4096, inp: 1024, name: "ViT-L fc1"), Shape(out: 1024, inp: 4096, name: "ViT-L fc2")]
  static let semiShapes = [
    Shape(out: 3072, inp: 768, name: "BERT-base fc1"), Shape(out: 768, inp: 3072, name: "BERT-base fc2"),
  ] + vitL + [
    Shape(out: 11008, inp: 4096, name: "LLaMA-7B up"), Shape(out: 4096, inp: 11008, name: "LLaMA-7B down"),
  ]

  init(formats: String, shapes: String?, tokens: String?, sparsities: String?, blocks: String?) throws {
    let wanted = Set(formats.lowercased().split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
    for f in wanted where !["dense", "2:4", "bsr", "csr"].contains(f) {
      throw CLIError("--formats: unknown format '\(f)' (use dense, 2:4, bsr, csr)")
    }
    func ints(_ text: String?, _ option: String) throws -> [Int]? {
      guard let text else { return nil }
      return try text.split(separator: ",").map {
        guard let v = Int($0.trimmingCharacters(in: .whitespaces)), v >= 1 else {
          throw CLIError("\(option): '\($0)' is not a positive integer")
        }
        return v
      }
    }
    let shapeList: [Shape]? = try shapes.map { text in
      try text.lowercased().split(separator: ",").map { item in
        let parts = item.split(separator: "x")
        guard parts.count == 2, let o = Int(parts[0]), let i = Int(parts[1]), o >= 1, i >= 1 else {
          throw CLIError("--shapes: '\(item)' is not OUTxIN (e.g. 4096x1024)")
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
          throw CLIError("--sparsities: '\($0)' is not a number in [0, 1)")
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
            throw CLIError("--blocks: \(b) does not divide the shape \(s) (BSR needs multiples of the block)")
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
  }

  var caseCount: Int { cases.map(\.tokens.count).reduce(0, +) }
}

/// One measured case.
struct BenchRecord: Codable {
  var table: String
  var kernel: String
  var format: String
  var m: Int
  var n: Int
  var k: Int
  var shapeName: String
  var sparsity: Double
  var block: Int?
  var medianMs: Double
  var minMs: Double
  /// Dense-equivalent GFLOP/s: 2·M·N·K / time.
  var effectiveGflops: Double
  /// Work actually done: 2·M·(stored values) / time.
  var usefulGflops: Double
  /// Our dense time for the same shape and M (this run), and the speedup over it.
  var denseMs: Double
  var denseKernel: String
  var speedup: Double
  /// The best dense time among ours and the peers, which one, and the speedup over it.
  var bestDenseMs: Double
  var bestDense: String
  var speedupVsBestDense: Double
  /// Bytes of the packed weight and of the dense fp32 weight.
  var bytes: Int
  var denseBytes: Int
  /// What the dispatcher would run: the sparse kernel when ≥ 1.1× faster than our dense.
  var dispatch: String

  enum CodingKeys: String, CodingKey {
    case table, kernel, format, m, n, k, sparsity, block, bytes, speedup, dispatch
    case shapeName = "shape_name", medianMs = "median_ms", minMs = "min_ms"
    case effectiveGflops = "effective_gflops", usefulGflops = "useful_gflops", denseMs = "dense_ms"
    case denseKernel = "dense_kernel", bestDenseMs = "best_dense_ms", bestDense = "best_dense"
    case speedupVsBestDense = "speedup_vs_best_dense", denseBytes = "dense_bytes"
  }
}

/// A timing from scripts/bench_peers.py.
struct PeerRecord: Codable {
  var library: String
  var kernel: String
  var format: String
  var m: Int
  var n: Int
  var k: Int
  var sparsity: Double?
  var block: Int?
  var medianMs: Double
  var threads: Int?
  var detail: String?

  enum CodingKeys: String, CodingKey {
    case library, kernel, format, m, n, k, sparsity, block, threads, detail
    case medianMs = "median_ms"
  }

  static func load(_ path: String) throws -> [PeerRecord] {
    guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("cannot read --peers \(path)") }
    struct File: Decodable { var records: [PeerRecord] }
    do {
      return try JSONDecoder().decode(File.self, from: data).records
    } catch {
      throw CLIError("--peers \(path) is not a bench_peers.py file: \(error)")
    }
  }
}

/// Builds weights, times kernels, keeps the dense baselines.
struct BenchRunner {
  var runs: Int
  var peers: [PeerRecord]
  private var denseWeights: [BenchPlan.Shape: LinearWeight] = [:]
  private var done = 0
  private var total = 0
  private let started = Date()

  init(runs: Int, peers: [PeerRecord]) {
    self.runs = runs
    self.peers = peers
  }

  mutating func run(_ plan: BenchPlan) -> [BenchRecord] {
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
        if c.form.isSparse {
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
        if !c.form.isSparse { best = dense }
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
    guard c.form.isSparse else { return denseWeight(c.shape) }
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
      table: c.form.family, kernel: kernel.name, format: c.form.description, m: m, n: n, k: k, shapeName: c.shape.name,
      sparsity: c.sparsity, block: c.block, medianMs: ms, minMs: times.min() ?? ms,
      effectiveGflops: flops / ms / 1e6, usefulGflops: flops * stored / ms / 1e6, denseMs: dense.ms,
      denseKernel: dense.kernel, speedup: speedup, bestDenseMs: bestDense.ms, bestDense: bestDense.name,
      speedupVsBestDense: bestDense.ms / ms, bytes: weight.byteCount, denseBytes: n * k * 4,
      dispatch: !c.form.isSparse || speedup >= 1.1 ? kernel.name : dense.kernel)
  }
}
