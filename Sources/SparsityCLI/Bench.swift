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

  @Option(help: "Formats to run: dense,2:4,bsr,csr, and encoded forms such as w8a8+dense, w8a8+2:4, w8a8+bsr:32x32, int8+2:4, bf16+2:4 (fp32 dense runs as the baseline of the others anyway).")
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

  @Option(help: "A JSON file of peer timings from scripts/bench_peers.py (with --training: from scripts/bench_training_torch.py --json).")
  var peers: String?

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  @Flag(help: "Print a Markdown report (machine, method, tables, targets) instead of the table.")
  var markdown = false

  @Option(help: "Also write an HTML report with plots to this file.")
  var html: String?

  @Option(help: "Also write the JSON records to this file.")
  var jsonOutput: String?

  @Flag(help: "Time one training step (forward, backward, SGD) of a transformer MLP block instead: ViT-B 768↔3072 and ViT-L 1024↔4096 at 4,096 and 16,384 tokens (--m), dense against 2:4 weights and 2:4 activations.")
  var training = false

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
    if training { return try runTraining() }
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

  /// `--training`: the MLP-block training step table.
  private func runTraining() throws {
    var cases = TrainingStepBenchmark.defaultCases
    if let tokens {
      let counts = try tokens.split(separator: ",").map { item -> Int in
        guard let m = Int(item.trimmingCharacters(in: .whitespaces)), m > 0 else { throw CLIError("--m: '\(item)' is not a positive token count") }
        return m
      }
      cases = Array(Set(cases.map { TrainingStepBenchmark.Case(dimension: $0.dimension, hidden: $0.hidden, tokens: 0) }))
        .sorted { $0.dimension < $1.dimension }
        .flatMap { c in counts.map { TrainingStepBenchmark.Case(dimension: c.dimension, hidden: c.hidden, tokens: $0) } }
    }
    let peerRecords = try peers.map(TrainingPeerRecord.load) ?? []
    let machine = MachineDescription.current()
    let records = TrainingStepBenchmark.run(cases: cases, rounds: runs) { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
    FileHandle.standardError.write(Data("sparsify both ways: \(TrainingStepBenchmark.sparsifierShapes.count) matrices\n".utf8))
    let sparsifier = try TrainingStepBenchmark.sparsifierThroughput()
    let report = TrainingReport(records: records, sparsifier: sparsifier, peers: peerRecords, machine: machine, runs: runs)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    struct File: Encodable {
      var steps: [TrainingStepBenchmark.Record]
      var sparsifier: [TrainingStepBenchmark.SparsifierRecord]
    }
    let jsonText = String(decoding: try encoder.encode(File(steps: records, sparsifier: sparsifier)), as: UTF8.self)
    if let jsonOutput { try write(jsonText, to: jsonOutput) }
    if let html { try write(report.html(), to: html) }
    say(json ? jsonText : report.text())
  }

  private func write(_ text: String, to path: String) throws {
    do {
      try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    } catch {
      throw CLIError("cannot write \(path): \((error as NSError).localizedDescription)")
    }
  }
}

