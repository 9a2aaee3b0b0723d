import Foundation
import Sparsity

/// The machine a benchmark ran on, in words.
struct MachineDescription: Codable {
  var cpu: String
  var cpuDetail: String
  var features: String
  var cores: Int
  var threads: Int
  var memoryGiB: Double
  var os: String
  var kernelBuild: String
  var date: String
  /// `/proc/loadavg` when the run started (other processes on the machine skew timings).
  var loadAverage: String

  static func current() -> MachineDescription {
    let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
    func field(_ name: String) -> String? {
      info.split(separator: "\n").first { $0.hasPrefix(name) }
        .flatMap { $0.split(separator: ":", maxSplits: 1).last }
        .map { $0.trimmingCharacters(in: .whitespaces) }
    }
    var detail: [String] = []
    if let f = field("cpu family"), let m = field("model\t") ?? field("model ") { detail.append("family \(f) model \(m)") }
    if let mhz = field("cpu MHz") { detail.append("\(Int(Double(mhz) ?? 0)) MHz nominal") }
    if info.contains("hypervisor") { detail.append("virtual machine") }
    var caches: [String] = []
    for i in 0..<5 {
      let base = "/sys/devices/system/cpu/cpu0/cache/index\(i)/"
      guard let level = try? String(contentsOfFile: base + "level", encoding: .utf8),
        let type = try? String(contentsOfFile: base + "type", encoding: .utf8),
        let size = try? String(contentsOfFile: base + "size", encoding: .utf8)
      else { continue }
      let t = type.trimmingCharacters(in: .whitespacesAndNewlines)
      if t == "Instruction" { continue }
      caches.append("L\(level.trimmingCharacters(in: .whitespacesAndNewlines)) \(size.trimmingCharacters(in: .whitespacesAndNewlines))")
    }
    if !caches.isEmpty { detail.append(caches.joined(separator: ", ") + " (per core / shared)") }
    let interesting = ["avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512vnni", "avx512bf16"]
    let features = interesting.filter { CPUFeatures.host.features.contains($0) }
    let formatter = ISO8601DateFormatter()
    return MachineDescription(
      cpu: CPUFeatures.host.brand, cpuDetail: detail.joined(separator: "; "),
      features: features.joined(separator: " "), cores: ProcessInfo.processInfo.activeProcessorCount,
      threads: Parallel.workerCount, memoryGiB: Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824,
      os: ProcessInfo.processInfo.operatingSystemVersionString,
      kernelBuild: "kernels built for \(CPUFeatures.kernelISA.uppercased())", date: formatter.string(from: Date()),
      loadAverage: ((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? "").split(separator: " ").prefix(3)
        .joined(separator: " "))
  }
}

/// Renders bench records as text, JSON, Markdown and HTML.
struct BenchReport {
  var records: [BenchRecord]
  var peers: [PeerRecord]
  var machine: MachineDescription
  var runs: Int

  private var hasPeers: Bool { !peers.isEmpty }

  func text() -> String {
    let rows = records.map { r -> [String] in
      [
        r.table, "\(r.n)x\(r.k)", "\(r.m)", r.format, r.table == "dense" ? "–" : String(format: "%.2f", r.sparsity),
        r.kernel, String(format: "%.3f", r.medianMs), String(format: "%.1f", r.effectiveGflops),
        String(format: "%.2fx", r.speedup),
        hasPeers ? String(format: "%.2fx (%@)", r.speedupVsBestDense, r.bestDense) : "–",
        formatBytes(r.bytes),
      ]
    }
    return table(
      ["TABLE", "OUTxIN", "M", "FORMAT", "SPARSITY", "KERNEL", "MS", "EFF GF/S", "VS DENSE", "VS BEST DENSE", "BYTES"],
      rows)
  }

  func json() -> String {
    struct File: Encodable {
      var machine: MachineDescription
      var runs: Int
      var records: [BenchRecord]
      var peers: [PeerRecord]
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = (try? encoder.encode(File(machine: machine, runs: runs, records: records, peers: peers))) ?? Data()
    return String(decoding: data, as: UTF8.self)
  }

  // MARK: Markdown

  private func x(_ v: Double) -> String { v >= 10 ? String(format: "%.1f×", v) : String(format: "%.2f×", v) }

  /// "ours (vs best dense)" speedup cell.
  private func cell(_ r: BenchRecord?) -> String {
    guard let r else { return "–" }
    return hasPeers ? "\(x(r.speedup)) (\(x(r.speedupVsBestDense)))" : x(r.speedup)
  }

  private func mdTable(_ header: [String], _ rows: [[String]]) -> String {
    var lines = ["| " + header.joined(separator: " | ") + " |", "|" + header.map { _ in "---" }.joined(separator: "|") + "|"]
    lines += rows.map { "| " + $0.joined(separator: " | ") + " |" }
    return lines.joined(separator: "\n")
  }

  private func sorted<T: Hashable & Comparable>(_ values: [T]) -> [T] { Array(Set(values)).sorted() }

  func markdown() -> String {
    var out: [String] = []
    out.append("# Benchmarks: sparse vs dense `y = x·Wᵀ` on the CPU (fp32)")
    out.append("")
    out.append("Generated by `scripts/bench_report.sh`, which runs `scripts/bench_peers.py` and then `sparsity bench --peers … --markdown` (release build). Raw records: `docs/bench/results.json`; plots: `docs/bench/benchmarks.html`.")
    out.append("")
    out.append("## Machine")
    out.append("")
    out.append("- CPU: \(machine.cpu) (\(machine.cpuDetail)); features: \(machine.features)")
    out.append("- \(machine.cores) cores, \(machine.threads) kernel threads, \(String(format: "%.0f", machine.memoryGiB)) GiB memory; \(machine.os)")
    out.append("- \(machine.kernelBuild); measured \(machine.date); load average at the start \(machine.loadAverage) (1/5/15 min; the machine is shared)")
    if let p = peers.first(where: { $0.library == "torch" }) { out.append("- PyTorch: \(p.detail ?? "torch"), \(p.threads ?? 0) threads") }
    if let p = peers.first(where: { $0.library == "openblas" }) { out.append("- OpenBLAS: \(p.detail ?? "openblas"), \(p.threads ?? 0) threads") }
    out.append("")
    out.append("## Method")
    out.append("")
    out.append("""
      Every case times `LinearWeight.apply(x:bias:kernel:)` (output allocation included) after two warm-ups: \
      the median of \(runs) runs (more, up to 50, while a case takes under 0.3 s in all), our dense kernels and \
      the sparse ones in alternating rounds, so that other load on the machine slows both alike (each timed run \
      follows an untimed run of the same weight, so every kernel finds its own weight in cache, like the peers' \
      back-to-back runs). Weights are seeded \
      random fp32 values with an exact number of kept blocks/elements at uniformly random positions; \
      activations are random `[M, in]`. **Speedup** divides our best dense kernel's median (GEMM; GEMV for \
      M ≤ 4) for the same shape and M, measured in the same run, by the best sparse kernel's median\
      \(hasPeers ? "; the number in parentheses divides the best dense time among ours, OpenBLAS sgemm/sgemv and PyTorch `matmul` (2 threads, measured minutes apart by `scripts/bench_peers.py`)" : ""). \
      Effective GFLOP/s counts the dense work 2·M·N·K. A sparse weight runs its own kernels (it holds no \
      dense copy); with the dense fallback on (`SPARSITY_DENSE_FALLBACK=1`) the dispatcher runs a sparse \
      kernel only when it is ≥ 1.1× faster than dense, so a user gets max(speedup, ≈1) for the memory of both.
      """)
    out.append("")
    out += denseSection()
    out += bsrSection()
    out += semiSection()
    out += csrSection()
    out += quantizedSection()
    out += peerSparseSection()
    out += memorySection()
    out += targetSection()
    return out.joined(separator: "\n")
  }

  private func denseSection() -> [String] {
    let dense = denseRows()
    guard !dense.isEmpty else { return [] }
    var out = ["## Dense baseline: ours against the peers", ""]
    var rows: [[String]] = []
    for (shape, m, ours, kernel) in dense {
      let ps = peers.filter { $0.format == "dense" && $0.m == m && $0.n == shape.0 && $0.k == shape.1 }
      let blas = ps.filter { $0.library == "openblas" }.min { $0.medianMs < $1.medianMs }
      let torch = ps.filter { $0.library == "torch" }.min { $0.medianMs < $1.medianMs }
      let bestPeer = [blas, torch].compactMap { $0 }.min { $0.medianMs < $1.medianMs }
      let gf = 2 * Double(m) * Double(shape.0) * Double(shape.1) / ours / 1e6
      rows.append([
        "\(shape.0)x\(shape.1)", "\(m)", kernel, String(format: "%.3f", ours), String(format: "%.1f", gf),
        blas.map { String(format: "%.3f (%@)", $0.medianMs, $0.kernel) } ?? "–",
        torch.map { String(format: "%.3f", $0.medianMs) } ?? "–",
        bestPeer.map { x($0.medianMs / ours) } ?? "–",
      ])
    }
    out.append(mdTable(["OUTxIN", "M", "our kernel", "ours ms", "ours GF/s", "OpenBLAS ms", "PyTorch ms", "best peer ÷ ours"], rows))
    out.append("")
    out.append("For M = 1 the GF/s column is memory traffic bound: bytes/s = 4·N·K / time.")
    out.append("")
    return out
  }

  /// (shape, m, ours ms, kernel) for every dense baseline measured.
  private func denseRows() -> [((Int, Int), Int, Double, String)] {
    var seen = Set<String>()
    var rows: [((Int, Int), Int, Double, String)] = []
    for r in records where seen.insert("\(r.n)x\(r.k)|\(r.m)").inserted {
      rows.append(((r.n, r.k), r.m, r.denseMs, r.denseKernel))
    }
    return rows
  }

  private func bsrSection() -> [String] {
    let bsr = records.filter { $0.table == "bsr" }
    guard !bsr.isEmpty else { return [] }
    var out = [
      "## Block sparsity (BSR), the talk's ViT-L table", "",
      "Speedup over dense\(hasPeers ? " (over the best dense peer)" : ""); rows: sparsity, columns: block size. The talk measured 1.4–2.2× for blocks 32/64 at 90% on an A100 (batch 256).", "",
    ]
    for shape in sorted(bsr.map { "\($0.n)x\($0.k)" }) {
      for m in sorted(bsr.filter { "\($0.n)x\($0.k)" == shape }.map(\.m)) {
        let rs = bsr.filter { "\($0.n)x\($0.k)" == shape && $0.m == m }
        let blocks = sorted(rs.compactMap(\.block))
        out.append("**\(rs[0].shapeName) \(shape), M = \(m)** (dense \(String(format: "%.3f", rs[0].denseMs)) ms)")
        out.append("")
        let rows = sorted(rs.map(\.sparsity)).map { s in
          [String(format: "%.2f", s)] + blocks.map { b in cell(rs.first { $0.sparsity == s && $0.block == b }) }
        }
        out.append(mdTable(["sparsity"] + blocks.map { "block \($0)" }, rows))
        out.append("")
      }
    }
    return out
  }

  private func semiSection() -> [String] {
    let semi = records.filter { $0.table == "2:4" }
    guard !semi.isEmpty else { return [] }
    let ms = sorted(semi.map(\.m))
    var out = ["## 2:4 semi-structured", "", "Speedup over dense\(hasPeers ? " (over the best dense peer)" : "") and the kernel that ran.", ""]
    var rows: [[String]] = []
    var seen = Set<String>()
    for r in semi where seen.insert("\(r.n)x\(r.k)").inserted {
      rows.append(["\(r.shapeName) \(r.n)x\(r.k)"] + ms.map { m in
        guard let c = semi.first(where: { $0.n == r.n && $0.k == r.k && $0.m == m }) else { return "–" }
        return "\(cell(c)) \(c.kernel)"
      })
    }
    out.append(mdTable(["shape"] + ms.map { "M = \($0)" }, rows))
    out.append("")
    return out
  }

  /// The quantized and bf16 tables: our time and ratio to our fp32 dense in the same run, for
  /// 2:4 the ratio to the dense table of the same encoding, and the best peer of the same kind.
  private func quantizedSection() -> [String] {
    let quantized = records.filter { $0.table.contains("+") }
    guard !quantized.isEmpty else { return [] }
    var out = [
      "## Quantized weights: W8A8 (int8 weights, dynamic per-token int8 activations), int8 weight-only, bf16", "",
      "Our ms and speedup over our fp32 dense (same run); for 2:4 and block-sparse forms, the ratio to the dense table of the same encoding; "
        + "the best peer on the same shape and M (`scripts/bench_peers.py`: W8A8 — PyTorch `quantize_dynamic` (fbgemm, per-tensor "
        + "uint8 activations) and torchao `Int8DynamicActivationInt8WeightConfig`; bf16 — PyTorch `F.linear` on bf16 tensors) "
        + "and ours over it.", "",
    ]
    var rows: [[String]] = []
    for r in quantized {
      let encoding = r.table.prefix { $0 != "+" }
      let denseOfEncoding = r.table.hasSuffix("+dense")
        ? nil : records.first { $0.table == "\(encoding)+dense" && $0.n == r.n && $0.k == r.k && $0.m == r.m }
      let family = r.table.hasPrefix("w8a8") ? "w8a8+dense" : r.table
      let best = peers.filter { $0.format == family && $0.m == r.m && $0.n == r.n && $0.k == r.k }.min { $0.medianMs < $1.medianMs }
      rows.append([
        r.table.hasSuffix("+bsr") ? "\(r.format) at \(Int((r.sparsity * 100).rounded()))%" : r.table, r.shapeName == "\(r.n)x\(r.k)" ? r.shapeName : "\(r.shapeName) \(r.n)x\(r.k)", "\(r.m)", r.kernel,
        String(format: "%.3f", r.medianMs), String(format: "%.2f×", r.speedup),
        denseOfEncoding.map { String(format: "%.2f×", $0.medianMs / r.medianMs) } ?? "",
        best.map { String(format: "%.3f (%@)", $0.medianMs, $0.library) } ?? "–", best.map { String(format: "%.2f×", $0.medianMs / r.medianMs) } ?? "–",
      ])
    }
    out.append(mdTable(["form", "shape", "M", "kernel", "ours ms", "vs our fp32", "sparse vs dense of the encoding", "best peer ms", "ours vs best peer"], rows))
    out.append("")
    return out
  }

  private func csrSection() -> [String] {
    let csr = records.filter { $0.table == "csr" }
    guard !csr.isEmpty else { return [] }
    var out = ["## Unstructured sparsity (CSR)", "", "Speedup over dense\(hasPeers ? " (over the best dense peer)" : ""); rows: sparsity, columns: shape and M.", ""]
    let cols = sorted(csr.map { "\($0.n)x\($0.k)|\($0.m)" }.map { $0 }).sorted { a, b in
      let pa = a.split(separator: "|"), pb = b.split(separator: "|")
      return pa[0] == pb[0] ? Int(pa[1])! < Int(pb[1])! : pa[0] > pb[0]
    }
    let rows = sorted(csr.map(\.sparsity)).map { s in
      [String(format: "%.2f", s)] + cols.map { c in cell(csr.first { "\($0.n)x\($0.k)|\($0.m)" == c && $0.sparsity == s }) }
    }
    out.append(mdTable(["sparsity"] + cols.map { $0.replacingOccurrences(of: "|", with: " M=") }, rows))
    out.append("")
    return out
  }

  private func peerSparseSection() -> [String] {
    let sparsePeers = peers.filter { $0.format != "dense" }
    guard !sparsePeers.isEmpty else { return [] }
    var out = ["## PyTorch's own sparse kernels on the same cases", "", "Speedup of PyTorch CSR/BSR `matmul` over the best dense time, next to ours (same shapes, sparsity and M).", ""]
    var rows: [[String]] = []
    for p in sparsePeers.sorted(by: { ($0.format, $0.n, $0.m, $0.sparsity ?? 0) < ($1.format, $1.n, $1.m, $1.sparsity ?? 0) }) {
      let ours = records.first {
        $0.m == p.m && $0.n == p.n && $0.k == p.k && abs($0.sparsity - (p.sparsity ?? -1)) < 1e-9
          && ($0.table == p.format || ($0.table == "bsr" && p.format == "bsr" && $0.block == p.block))
          && ($0.table != "bsr" || $0.block == p.block)
      }
      guard let ours else { continue }
      rows.append([
        "\(p.format)\(p.block.map { " \($0)" } ?? "")", "\(p.n)x\(p.k)", "\(p.m)", String(format: "%.2f", p.sparsity ?? 0),
        String(format: "%.3f", p.medianMs), x(ours.bestDenseMs / p.medianMs), x(ours.speedupVsBestDense),
      ])
    }
    guard !rows.isEmpty else { return [] }
    out.append(mdTable(["format", "OUTxIN", "M", "sparsity", "PyTorch ms", "PyTorch vs best dense", "ours vs best dense"], rows))
    out.append("")
    return out
  }

  private func memorySection() -> [String] {
    var out = ["## Memory", "", "Bytes of the packed weight the kernels read (values and indices), against dense fp32.", ""]
    var rows: [[String]] = []
    var seen = Set<String>()
    for r in records where r.table != "dense" && seen.insert("\(r.format)|\(r.n)x\(r.k)|\(r.sparsity)").inserted {
      rows.append([
        r.format, "\(r.n)x\(r.k)", String(format: "%.2f", r.sparsity), formatBytes(r.bytes),
        String(format: "%.1f%%", 100 * Double(r.bytes) / Double(r.denseBytes)),
      ])
    }
    out.append(mdTable(["format", "OUTxIN", "sparsity", "bytes", "of dense"], rows))
    out.append("")
    return out
  }

  /// Targets of issue 3, evaluated on these records (ratios against the best dense time).
  func targets() -> [(String, String, Bool?)] {
    var list: [(String, String, Bool?)] = []
    func range(_ rs: [BenchRecord], _ value: (BenchRecord) -> Double) -> (Double, Double)? {
      let v = rs.map(value)
      guard let lo = v.min(), let hi = v.max() else { return nil }
      return (lo, hi)
    }
    func span(_ r: (Double, Double)) -> String { "\(x(r.0))–\(x(r.1))" }
    // Dense vs the faster peer at M ≥ 128.
    let denseCases = denseRows().filter { $0.1 >= 128 }
    var ratios: [Double] = []
    for (shape, m, ours, _) in denseCases {
      if let best = peers.filter({ $0.format == "dense" && $0.m == m && $0.n == shape.0 && $0.k == shape.1 && $0.kernel != "sgemv" })
        .map(\.medianMs).min()
      {
        ratios.append(best / ours)
      }
    }
    if let lo = ratios.min(), let hi = ratios.max() {
      list.append(("dense GEMM ≥ 1.0× the faster of OpenBLAS/PyTorch (M ≥ 128)", "\(x(lo))–\(x(hi))", lo >= 1.0))
    }
    var gemv: [Double] = []
    for (shape, m, ours, _) in denseRows() where m == 1 {
      if let s = peers.first(where: { $0.kernel == "sgemv" && $0.n == shape.0 && $0.k == shape.1 }) { gemv.append(s.medianMs / ours) }
    }
    if let lo = gemv.min(), let hi = gemv.max() {
      list.append(("GEMV (M = 1) ≥ 0.9× sgemv bandwidth", "\(x(lo))–\(x(hi))", lo >= 0.9))
    }
    let semi = records.filter { $0.table == "2:4" }
    if let r = range(semi.filter { $0.m >= 128 }, \.speedupVsBestDense) {
      list.append(("2:4 ≥ 1.3× at M ≥ 128", span(r), r.0 >= 1.3))
    }
    if let r = range(semi.filter { $0.m == 1 }, \.speedupVsBestDense) {
      list.append(("2:4 ≥ 1.7× at M = 1", span(r), r.0 >= 1.7))
    }
    let bsr = records.filter { $0.table == "bsr" && $0.m >= 128 }
    for (blocks, s, goal) in [([32, 64], 0.8, 3.5), ([32, 64], 0.9, 7.0), ([16], 0.8, 3.0), ([16], 0.9, 6.0)] {
      if let r = range(bsr.filter { blocks.contains($0.block ?? 0) && abs($0.sparsity - s) < 1e-9 }, \.speedupVsBestDense) {
        list.append(("BSR \(blocks.map(String.init).joined(separator: "/")) ≥ \(x(goal)) at \(Int(s * 100))% (M ≥ 128)", span(r), r.0 >= goal))
      }
    }
    let csr = records.filter { $0.table == "csr" && $0.m >= 64 }
    if let r = range(csr.filter { abs($0.sparsity - 0.7) < 1e-9 }, \.speedupVsBestDense) {
      list.append(("CSR break-even at ≤ 70% (≥ 1× at 70%, M ≥ 64)", span(r), r.0 >= 1.0))
    }
    for (s, goal) in [(0.9, 3.0), (0.95, 6.0), (0.99, 25.0)] {
      if let r = range(csr.filter { abs($0.sparsity - s) < 1e-9 }, \.speedupVsBestDense) {
        list.append(("CSR ≥ \(x(goal)) at \(Int(s * 100))% (M ≥ 64)", span(r), r.0 >= goal))
      }
    }
    if let r = range(semi, { Double($0.bytes) / Double($0.denseBytes) }) {
      list.append(("2:4 fp32 ≤ 56% of dense bytes", String(format: "%.1f%%", r.1 * 100), r.1 <= 0.56))
    }
    return list
  }

  private func targetSection() -> [String] {
    let t = targets()
    guard !t.isEmpty else { return [] }
    var out = [
      "## Targets (issue 3)", "",
      "Ratios against the best dense time\(hasPeers ? " among ours, OpenBLAS and PyTorch" : " (ours only: no peer file given)"), minimum–maximum over the shapes and M in scope. A target is met when the minimum reaches it.", "",
    ]
    out.append(mdTable(["target", "measured", "met"], t.map { [$0.0, $0.1, $0.2.map { $0 ? "yes" : "**no**" } ?? "–"] }))
    out.append("")
    return out
  }

  // MARK: HTML

  func html() -> String {
    var body: [String] = []
    body.append("<h1>swift-sparsity: sparse vs dense y = x·Wᵀ (fp32, CPU)</h1>")
    body.append("<p>\(htmlEscape(machine.cpu)) — \(htmlEscape(machine.cpuDetail)); \(machine.cores) cores, \(machine.threads) threads; \(htmlEscape(machine.kernelBuild)); \(htmlEscape(machine.date)).</p>")
    body.append("<p>Speedup = our dense time ÷ sparse time (same run)\(hasPeers ? "; dashed lines: against the best dense time among ours, OpenBLAS and PyTorch" : ""). The grey line marks 1×.</p>")
    let bsr = records.filter { $0.table == "bsr" }
    if !bsr.isEmpty {
      body.append("<h2>Block sparsity: speedup vs sparsity per block size</h2><div class=grid>")
      for shape in sorted(bsr.map { "\($0.n)x\($0.k)" }) {
        for m in sorted(bsr.filter { "\($0.n)x\($0.k)" == shape }.map(\.m)) {
          let rs = bsr.filter { "\($0.n)x\($0.k)" == shape && $0.m == m }
          let xs = sorted(rs.map(\.sparsity))
          var series: [(String, [Double?], Bool)] = []
          for b in sorted(rs.compactMap(\.block)) {
            series.append(("block \(b)", xs.map { s in rs.first { $0.block == b && $0.sparsity == s }?.speedup }, false))
            if hasPeers {
              series.append(("\(b) vs best dense", xs.map { s in rs.first { $0.block == b && $0.sparsity == s }?.speedupVsBestDense }, true))
            }
          }
          body.append(speedupChart(title: "\(rs[0].shapeName) \(shape), M = \(m)", xLabels: xs.map { String(format: "%.2f", $0) }, xTitle: "sparsity", series: series))
        }
      }
      body.append("</div>")
    }
    let semi = records.filter { $0.table == "2:4" }
    if !semi.isEmpty {
      body.append("<h2>2:4: speedup vs M</h2><div class=grid>")
      let ms = sorted(semi.map(\.m))
      var series: [(String, [Double?], Bool)] = []
      var seen = Set<String>()
      for r in semi where seen.insert("\(r.n)x\(r.k)").inserted {
        series.append(("\(r.shapeName)", ms.map { m in semi.first { $0.n == r.n && $0.k == r.k && $0.m == m }?.speedup }, false))
      }
      body.append(speedupChart(title: "2:4 speedup over our dense", xLabels: ms.map(String.init), xTitle: "M (tokens)", series: series))
      if hasPeers {
        let vs = seen.sorted().compactMap { key -> (String, [Double?], Bool)? in
          guard let r = semi.first(where: { "\($0.n)x\($0.k)" == key }) else { return nil }
          return (r.shapeName, ms.map { m in semi.first { $0.n == r.n && $0.k == r.k && $0.m == m }?.speedupVsBestDense }, true)
        }
        body.append(speedupChart(title: "2:4 speedup over the best dense (ours, OpenBLAS, PyTorch)", xLabels: ms.map(String.init), xTitle: "M (tokens)", series: vs))
      }
      body.append("</div>")
    }
    let csr = records.filter { $0.table == "csr" }
    if !csr.isEmpty {
      body.append("<h2>Unstructured (CSR): speedup vs sparsity per M</h2><div class=grid>")
      for shape in sorted(csr.map { "\($0.n)x\($0.k)" }) {
        let rs = csr.filter { "\($0.n)x\($0.k)" == shape }
        let xs = sorted(rs.map(\.sparsity))
        var series: [(String, [Double?], Bool)] = []
        for m in sorted(rs.map(\.m)) {
          series.append(("M = \(m)", xs.map { s in rs.first { $0.m == m && $0.sparsity == s }?.speedup }, false))
          if hasPeers { series.append(("M=\(m) vs best dense", xs.map { s in rs.first { $0.m == m && $0.sparsity == s }?.speedupVsBestDense }, true)) }
        }
        body.append(speedupChart(title: "\(rs[0].shapeName) \(shape)", xLabels: xs.map { String(format: "%.2f", $0) }, xTitle: "sparsity", series: series))
      }
      body.append("</div>")
    }
    let targetRows = targets().map { "<tr><td>\(htmlEscape($0.0))</td><td>\(htmlEscape($0.1))</td><td>\($0.2.map { $0 ? "yes" : "<b>no</b>" } ?? "–")</td></tr>" }
    if !targetRows.isEmpty {
      body.append("<h2>Targets</h2><table><tr><th>target</th><th>measured</th><th>met</th></tr>\(targetRows.joined())</table>")
    }
    let rows = records.map { r in
      "<tr><td>\(r.table)</td><td>\(r.n)x\(r.k)</td><td>\(r.m)</td><td>\(r.format)</td><td>\(String(format: "%.2f", r.sparsity))</td><td>\(htmlEscape(r.kernel))</td><td>\(String(format: "%.3f", r.medianMs))</td><td>\(String(format: "%.1f", r.effectiveGflops))</td><td>\(String(format: "%.2f", r.speedup))</td><td>\(String(format: "%.2f", r.speedupVsBestDense))</td><td>\(htmlEscape(r.bestDense))</td><td>\(r.bytes)</td></tr>"
    }
    body.append("<h2>All cases</h2><table><tr><th>table</th><th>OUTxIN</th><th>M</th><th>format</th><th>sparsity</th><th>kernel</th><th>median ms</th><th>eff GF/s</th><th>vs dense</th><th>vs best dense</th><th>best dense</th><th>bytes</th></tr>\(rows.joined(separator: "\n"))</table>")
    return """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>swift-sparsity benchmarks</title>
      <style>
      body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
      .grid { display: flex; flex-wrap: wrap; gap: 12px; }
      table { border-collapse: collapse; font-size: 12px; } td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
      svg text { font: 11px system-ui, sans-serif; }
      </style></head><body>
      \(body.joined(separator: "\n"))
      </body></html>
      """
  }
}

/// An SVG line chart with categorical x and a log-scale y (speedups).
func speedupChart(title: String, xLabels: [String], xTitle: String, series: [(String, [Double?], Bool)]) -> String {
  let (w, h, left, right, top, bottom) = (520.0, 300.0, 48.0, 150.0, 28.0, 40.0)
  let values = series.flatMap { $0.1.compactMap { $0 } }.filter { $0 > 0 }
  let lo = Swift.min(0.5, (values.min() ?? 1) / 1.2)
  let hi = Swift.max(2.0, (values.max() ?? 1) * 1.2)
  let (ly0, ly1) = (log10(lo), log10(hi))
  func px(_ i: Int) -> Double { left + (w - left - right) * (xLabels.count <= 1 ? 0.5 : Double(i) / Double(xLabels.count - 1)) }
  func py(_ v: Double) -> Double { top + (h - top - bottom) * (1 - (log10(v) - ly0) / (ly1 - ly0)) }
  let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
  var s = ["<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(w))' height='\(Int(h))' role='img' aria-label='\(htmlEscape(title))'>"]
  s.append("<rect width='100%' height='100%' fill='white' stroke='#ddd'/>")
  s.append("<text x='\(left)' y='16' font-weight='bold'>\(htmlEscape(title))</text>")
  // y grid at 1-2-5 decades
  var tick = pow(10, floor(ly0))
  while tick <= hi {
    for f in [1.0, 2.0, 5.0] where tick * f >= lo && tick * f <= hi {
      let y = py(tick * f)
      s.append("<line x1='\(left)' x2='\(w - right)' y1='\(y)' y2='\(y)' stroke='\(f == 1 && tick == 1 ? "#888" : "#eee")'/>")
      s.append("<text x='\(left - 4)' y='\(y + 4)' text-anchor='end'>\(tick * f >= 1 ? String(format: "%g×", tick * f) : String(format: "%.1f×", tick * f))</text>")
    }
    tick *= 10
  }
  for (i, label) in xLabels.enumerated() {
    s.append("<text x='\(px(i))' y='\(h - bottom + 16)' text-anchor='middle'>\(htmlEscape(label))</text>")
  }
  s.append("<text x='\((left + w - right) / 2)' y='\(h - 6)' text-anchor='middle'>\(htmlEscape(xTitle))</text>")
  var colorIndex = -1
  for (i, (name, ys, dashed)) in series.enumerated() {
    if !dashed { colorIndex += 1 }
    let color = colors[Swift.max(0, colorIndex) % colors.count]
    let points = ys.enumerated().compactMap { j, v in v.map { "\(px(j)),\(py(Swift.max($0, lo)))" } }
    s.append("<polyline fill='none' stroke='\(color)' stroke-width='2'\(dashed ? " stroke-dasharray='4 3'" : "") points='\(points.joined(separator: " "))'/>")
    for p in points where !dashed {
      let xy = p.split(separator: ",")
      s.append("<circle cx='\(xy[0])' cy='\(xy[1])' r='2.5' fill='\(color)'/>")
    }
    let ly = top + 14 * Double(i)
    s.append("<line x1='\(w - right + 8)' x2='\(w - right + 24)' y1='\(ly)' y2='\(ly)' stroke='\(color)' stroke-width='2'\(dashed ? " stroke-dasharray='4 3'" : "")/>")
    s.append("<text x='\(w - right + 28)' y='\(ly + 4)'>\(htmlEscape(name))</text>")
  }
  s.append("</svg>")
  return s.joined()
}

/// `sparsity bench --training`'s report: the step-time table (with PyTorch's dense step when its
/// timings are given) and the HTML page with one speedup chart per block shape.
struct TrainingReport {
  var records: [TrainingStepBenchmark.Record]
  var sparsifier: [TrainingStepBenchmark.SparsifierRecord]
  /// `scripts/bench_training_torch.py --json` records: `dimension`, `hidden`, `tokens`, `seconds`.
  var peers: [TrainingPeerRecord]
  var machine: MachineDescription
  var runs: Int

  private func peer(_ r: TrainingStepBenchmark.Record) -> TrainingPeerRecord? {
    peers.first { $0.dimension == r.dimension && $0.hidden == r.hidden && $0.tokens == r.tokens }
  }

  func text() -> String {
    var lines = [
      "Training step of a squared-ReLU MLP block (forward, MSE loss, backward, SGD), median of \(runs) interleaved rounds; "
        + "\(machine.cpu), \(machine.threads) threads, \(machine.kernelBuild), load \(machine.loadAverage), \(machine.date)",
      "| MLP block | tokens | variant | ms per step | vs dense |\(peers.isEmpty ? "" : " PyTorch dense ms | vs PyTorch dense |")",
      "|---|---:|---|---:|---:|\(peers.isEmpty ? "" : "---:|---:|")",
    ]
    for r in records {
      var line = "| \(r.dimension)↔\(r.hidden) | \(r.tokens) | \(r.variant.rawValue) | \(String(format: "%.1f", r.seconds * 1000)) | \(String(format: "%.2f×", r.speedup)) |"
      if !peers.isEmpty {
        line += peer(r).map { " \(String(format: "%.1f", $0.seconds * 1000)) | \(String(format: "%.2f×", $0.seconds / r.seconds)) |" } ?? " – | – |"
      }
      lines.append(line)
    }
    if !sparsifier.isEmpty {
      lines += [
        "", "Sparsify both ways (transposable greedy by magnitude; bytes read and written), median of \(TrainingStepBenchmark.sparsifierRepetitions); "
          + "kernel: into buffers written before; copy: the matrix copied with non-temporal stores in the same rounds (this machine's memory bandwidth for that traffic):",
        "| matrix | ms | GB/s | kernel ms | kernel GB/s | copy GB/s | kernel ÷ copy |", "|---|---:|---:|---:|---:|---:|---:|",
      ]
      for r in sparsifier {
        lines.append(
          "| \(r.rows)×\(r.columns) | \(String(format: "%.2f", r.seconds * 1000)) | \(String(format: "%.1f", r.gigabytesPerSecond)) | "
            + "\(String(format: "%.2f", r.kernelSeconds * 1000)) | \(String(format: "%.1f", r.kernelGigabytesPerSecond)) | "
            + "\(String(format: "%.1f", r.copyGigabytesPerSecond)) | \(String(format: "%.0f%%", 100 * r.fractionOfCopy)) |")
      }
    }
    return lines.joined(separator: "\n")
  }

  func html() -> String {
    var body = [
      "<h1>swift-sparsity: one training step of a transformer MLP block, 2:4 vs dense (fp32, CPU)</h1>",
      "<p>\(htmlEscape(machine.cpu)) — \(htmlEscape(machine.cpuDetail)); \(machine.threads) threads; \(htmlEscape(machine.kernelBuild)); \(htmlEscape(machine.date)); median of \(runs) interleaved rounds.</p>",
      "<p>Speedup = our dense step's time ÷ the variant's (same run)\(peers.isEmpty ? "" : "; \"our dense vs PyTorch\": PyTorch's dense step ÷ ours (timed by scripts/bench_training_torch.py)"). The grey line marks 1×.</p>",
      "<div class=grid>",
    ]
    var seen = Set<String>()
    for shape in records.map({ "\($0.dimension)↔\($0.hidden)" }) where seen.insert(shape).inserted {
      let rs = records.filter { "\($0.dimension)↔\($0.hidden)" == shape }
      let tokens = Array(Set(rs.map(\.tokens))).sorted()
      /// `variant`'s `value` per token count, as a solid line.
      func line(_ name: String, _ variant: TrainingStepBenchmark.Variant, _ value: (TrainingStepBenchmark.Record) -> Double?)
        -> (String, [Double?], Bool)
      {
        (name, tokens.map { t in rs.first { $0.tokens == t && $0.variant == variant }.flatMap(value) }, false)
      }
      var series = [line("2:4 weights", .weights) { $0.speedup }, line("2:4 activations", .activations) { $0.speedup }]
      if !peers.isEmpty {
        series.append(line("our dense vs PyTorch", .dense) { r in peer(r).map { $0.seconds / r.seconds } })
      }
      body.append(speedupChart(title: "MLP block \(shape)", xLabels: tokens.map(String.init), xTitle: "tokens", series: series))
    }
    body.append("</div>")
    body.append("<h2>All cases</h2><pre>\(htmlEscape(text()))</pre>")
    return """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>swift-sparsity training-step benchmark</title>
      <style>
      body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
      .grid { display: flex; flex-wrap: wrap; gap: 12px; }
      svg text { font: 11px system-ui, sans-serif; }
      </style></head><body>
      \(body.joined(separator: "\n"))
      </body></html>
      """
  }
}

/// One step time of `scripts/bench_training_torch.py --json`.
struct TrainingPeerRecord: Codable {
  var dimension: Int
  var hidden: Int
  var tokens: Int
  var engine: String
  var seconds: Double

  static func load(_ path: String) throws -> [TrainingPeerRecord] {
    do {
      return try JSONDecoder().decode([TrainingPeerRecord].self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
      throw CLIError("--peers \(path): not a JSON file of scripts/bench_training_torch.py --json records (\(error.localizedDescription))")
    }
  }
}
