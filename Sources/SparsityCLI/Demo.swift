import ArgumentParser
import Foundation
import Sparsity

/// The main job on built-in data: the talk's "prune once, retrain" recipe on the digits dataset.
struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train an MLP and a small ViT on the built-in digits, prune to 2:4 and 80%/90% blocks, retrain with masks, time sparse vs dense.",
    discussion: """
      Prints a table (one row per model, pattern and stage: dense, one-shot, retrained) and writes into \
      --output-dir: report.html (accuracy and speed charts, mask pictures), results.json (the records) and, \
      per model and pattern, the retrained weights (NAME.safetensors, zeros included; try `sparsity inspect`).
      """)

  @Option(help: "Directory for the report, the records and the weights (created if missing).")
  var outputDir = "sparsity-demo"

  @Option(help: "Comma-separated seeds; with several, the table shows mean ± standard deviation.")
  var seeds = "0"

  @Option(help: "Comma-separated models: mlp, vit.")
  var models = "mlp,vit"

  @Option(help: "Scales every epoch count (e.g. 0.1 for a smoke run).")
  var epochScale = 1.0

  @Flag(help: "Retrain with SR-STE (masks recomputed each step) instead of fixed masks.")
  var srste = false

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  func run() throws {
    let seeds = try parseList(self.seeds, option: "--seeds") { UInt64($0) }
    let models = try parseList(self.models, option: "--models") { DigitsModel(rawValue: $0) }
    guard epochScale > 0, epochScale.isFinite else { throw CLIError("--epoch-scale must be a positive number, got \(epochScale)") }
    let split = try Digits.builtIn().split()
    let train = LabeledData(split.train), test = LabeledData(split.test)
    try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
    let progress = ProgressLine()
    progress.note(
      "digits: \(train.count) training / \(split.validation.count) validation / \(test.count) test images; "
        + "\(Parallel.workerCount) threads")

    var records: [ExperimentRecord] = []
    var pictures: [DemoReport.Picture] = []
    let start = DispatchTime.now()
    for seed in seeds {
      for kind in models {
        let dense = scaled(kind.denseTraining(seed: seed)), retrain = scaled(kind.retraining(seed: seed))
        let result = try runPruneRetrain(
          kind, plans: SparsityPlan.demo, seed: seed, train: train, test: test, dense: dense, retrain: retrain,
          srsteDecay: srste ? 2e-4 : nil
        ) { event in
          switch event {
          case .stage(let text): progress.stage("[seed \(seed)] \(text)")
          case let .batch(epoch, epochs, batch, batches, loss):
            progress.update(fraction: (Double(epoch) + Double(batch + 1) / Double(batches)) / Double(epochs),
              detail: "epoch \(epoch + 1)/\(epochs)  loss \(String(format: "%.4f", loss))")
          case .record(let r):
            progress.note(
              "\(r.model) \(r.pattern) \(r.stage.rawValue): accuracy \(formatPercent(r.accuracy)), "
                + "\(String(format: "%.2f", r.inferenceMilliseconds)) ms")
          case let .retrained(plan, model) where seed == seeds[0]:
            let file = "\(kind.rawValue)-\(fileLabel(plan.label)).safetensors"
            do {
              try SafetensorsFile.write(
                model.stateDict(), metadata: ["source": "sparsity demo: \(kind.rawValue) \(plan.label), seed \(seed)"],
                to: (outputDir as NSString).appendingPathComponent(file))
            } catch {
              progress.note("warning: could not write \(file): \(error)")
            }
          case .retrained: break
          }
        }
        records += result.records
        if seed == seeds[0] {
          for plan in SparsityPlan.demo {
            guard let masks = result.masks[plan.label], let layer = DemoReport.pictured[kind], let mask = masks[layer] else { continue }
            pictures.append(.init(model: kind.rawValue, pattern: plan.label, layer: layer, svg: MaskPicture.svg(mask, title: "\(kind.rawValue) \(layer), \(plan.label)")))
          }
        }
      }
    }
    progress.finish()
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
    let report = DemoReport(records: records, pictures: pictures, seconds: seconds, threads: Parallel.workerCount)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(records)
    try data.write(to: URL(fileURLWithPath: (outputDir as NSString).appendingPathComponent("results.json")), options: .atomic)
    try Data(report.html().utf8).write(
      to: URL(fileURLWithPath: (outputDir as NSString).appendingPathComponent("report.html")), options: .atomic)
    if json {
      say(String(decoding: data, as: UTF8.self))
    } else {
      say(report.text())
      say("\nwrote \(outputDir)/report.html, \(outputDir)/results.json and the retrained weights (\(String(format: "%.0f", seconds)) s)")
    }
  }

  func scaled(_ c: TrainingConfiguration) -> TrainingConfiguration {
    var c = c
    c.epochs = max(1, Int((Double(c.epochs) * epochScale).rounded()))
    return c
  }

  func fileLabel(_ label: String) -> String {
    label.replacingOccurrences(of: ":", with: "of").replacingOccurrences(of: "%", with: "").replacingOccurrences(of: " ", with: "-")
  }
}

/// Parses a comma-separated option, naming the option and the bad item on error.
func parseList<T>(_ text: String, option: String, _ parse: (String) -> T?) throws -> [T] {
  let items = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
  guard !items.isEmpty else { throw CLIError("\(option) needs at least one value") }
  return try items.map { item in
    guard let value = parse(item) else { throw CLIError("\(option): '\(item)' is not a valid value") }
    return value
  }
}

/// One line on standard error that redraws itself on a terminal (a bar with a detail) and
/// prints plain lines otherwise.
final class ProgressLine {
  private let isTerminal = isatty(FileHandle.standardError.fileDescriptor) != 0
  private var label = ""
  private var drawn = false
  private var lastDraw = DispatchTime.now()

  func stage(_ text: String) {
    clear()
    label = text
    if !isTerminal { write(text + "\n") }
  }

  func update(fraction: Double, detail: String) {
    guard isTerminal else { return }
    let now = DispatchTime.now()
    guard fraction >= 1 || now.uptimeNanoseconds - lastDraw.uptimeNanoseconds > 100_000_000 else { return }
    lastDraw = now
    let width = 24, filled = Int((min(max(fraction, 0), 1) * Double(width)).rounded())
    let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
    write("\r\u{1B}[2K\(label) \(bar) \(detail)")
    drawn = true
  }

  func note(_ text: String) {
    clear()
    write(text + "\n")
  }

  func finish() { clear() }

  private func clear() {
    if drawn { write("\r\u{1B}[2K") }
    drawn = false
  }

  private func write(_ text: String) { FileHandle.standardError.write(Data(text.utf8)) }
}
