import Foundation
import Sparsity

/// The demo's results as a terminal table and an HTML page.
struct DemoReport {
  /// A mask picture for the page.
  struct Picture {
    var model: String
    var pattern: String
    var layer: String
    var svg: String
  }

  /// The layer whose masks the page shows, per model.
  static let pictured: [DigitsModel: String] = [.mlp: "layers.1.weight", .vit: "blocks.0.mlp.fc1.weight"]

  var records: [ExperimentRecord]
  var pictures: [Picture]
  var seconds: Double
  var threads: Int

  /// Rows grouped over seeds, in first-appearance order.
  struct Row {
    var model: String
    var pattern: String
    var stage: ExperimentRecord.Stage
    var format: String
    var accuracy: [Double]
    var milliseconds: [Double]
    var speedup: [Double]
    var sparsity: [Double]
  }

  var rows: [Row] {
    var order: [String] = []
    var byKey: [String: Row] = [:]
    for r in records {
      let key = "\(r.model)|\(r.pattern)|\(r.stage.rawValue)"
      if byKey[key] == nil {
        order.append(key)
        byKey[key] = Row(model: r.model, pattern: r.pattern, stage: r.stage, format: r.format, accuracy: [], milliseconds: [], speedup: [], sparsity: [])
      }
      byKey[key]!.accuracy.append(r.accuracy)
      byKey[key]!.milliseconds.append(r.inferenceMilliseconds)
      byKey[key]!.speedup.append(r.speedup)
      byKey[key]!.sparsity.append(r.sparsity)
    }
    return order.map { byKey[$0]! }
  }

  static func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(max(v.count, 1)) }

  static func deviation(_ v: [Double]) -> Double {
    guard v.count > 1 else { return 0 }
    let m = mean(v)
    return (v.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(v.count - 1)).squareRoot()
  }

  /// `97.8%` or `97.8 ± 0.4%` over seeds.
  static func percent(_ v: [Double]) -> String {
    v.count > 1
      ? String(format: "%.1f ± %.1f%%", mean(v) * 100, deviation(v) * 100) : String(format: "%.1f%%", mean(v) * 100)
  }

  func text() -> String {
    let seeds = Set(records.map(\.seed)).count
    let header = ["model", "pattern", "stage", "accuracy", "Δ vs dense", "sparsity", "format", "inference", "speedup"]
    var lines: [[String]] = []
    var denseAccuracy: [String: Double] = [:]
    for row in rows {
      if row.stage == .dense { denseAccuracy[row.model] = Self.mean(row.accuracy) }
      let delta = (Self.mean(row.accuracy) - (denseAccuracy[row.model] ?? Self.mean(row.accuracy))) * 100
      lines.append([
        row.model, row.pattern, row.stage.rawValue, Self.percent(row.accuracy),
        row.stage == .dense ? "" : String(format: "%+.1f pt", delta), String(format: "%.0f%%", Self.mean(row.sparsity) * 100),
        row.format, String(format: "%.2f ms", Self.mean(row.milliseconds)), String(format: "%.2f×", Self.mean(row.speedup)),
      ])
    }
    return table(header, lines) + "\n\nTest accuracy on \(seeds) seed\(seeds == 1 ? "" : "s") (digits, 360 test images); inference = median time of one "
      + "forward pass over the test set on \(threads) threads, sparse weights on the kernels the autotuner picked; sparsity = zeros in the pruned layers."
  }

  func html() -> String {
    var body: [String] = []
    body.append("<h1>swift-sparsity demo: prune once, retrain, run sparse</h1>")
    body.append(
      "<p>Digits (scikit-learn, 8×8), \(Set(records.map(\.seed)).count) seed(s), \(threads) threads, \(String(format: "%.0f", seconds)) s in all. "
        + "Each pruned model is retrained with fixed masks, then its pruned layers are compressed (2:4 → CUTLASS-layout 2:4, blocks → BSR) "
        + "and timed on the test set against the dense model.</p>")
    for model in Array(Set(rows.map(\.model))).sorted() {
      let rs = rows.filter { $0.model == model }
      body.append("<h2>\(htmlEscape(model))</h2><div class=grid>")
      body.append(accuracyChart(model: model, rows: rs))
      body.append(speedChart(model: model, rows: rs))
      body.append("</div><div class=grid>")
      for p in pictures where p.model == model { body.append("<div class=picture>\(p.svg)</div>") }
      body.append("</div>")
    }
    let tableRows = rows.map { r in
      "<tr><td>\(htmlEscape(r.model))</td><td>\(htmlEscape(r.pattern))</td><td>\(r.stage.rawValue)</td><td>\(Self.percent(r.accuracy))</td>"
        + "<td>\(String(format: "%.0f%%", Self.mean(r.sparsity) * 100))</td><td>\(htmlEscape(r.format))</td>"
        + "<td>\(String(format: "%.2f", Self.mean(r.milliseconds)))</td><td>\(String(format: "%.2f×", Self.mean(r.speedup)))</td></tr>"
    }
    body.append(
      "<h2>All results</h2><table><tr><th>model</th><th>pattern</th><th>stage</th><th>accuracy</th><th>sparsity</th><th>format</th><th>inference ms</th><th>speedup</th></tr>"
        + tableRows.joined(separator: "\n") + "</table>")
    return """
      <!doctype html>
      <html lang="en"><head><meta charset="utf-8"><title>swift-sparsity demo</title>
      <style>
      body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
      .grid { display: flex; flex-wrap: wrap; gap: 12px; align-items: flex-start; }
      .picture svg { max-width: 420px; height: auto; }
      table { border-collapse: collapse; font-size: 12px; } td, th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
      svg text { font: 11px system-ui, sans-serif; }
      </style></head><body>
      \(body.joined(separator: "\n"))
      </body></html>
      """
  }

  /// Grouped bars per pattern: one-shot and retrained accuracy, with the dense accuracy as a line.
  private func accuracyChart(model: String, rows: [Row]) -> String {
    let dense = rows.first { $0.stage == .dense }.map { Self.mean($0.accuracy) } ?? 0
    let patterns = rows.filter { $0.stage != .dense }.map(\.pattern).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    let values = patterns.map { p in
      [ExperimentRecord.Stage.oneshot, .retrained].map { s in rows.first { $0.pattern == p && $0.stage == s }.map { Self.mean($0.accuracy) } ?? 0 }
    }
    let low = max(0, ((values.flatMap { $0 } + [dense]).min() ?? 0) - 0.05)
    return barChart(
      title: "\(model): test accuracy", groups: patterns, series: ["one-shot", "retrained"], values: values, range: low...1,
      reference: (dense, "dense \(String(format: "%.1f%%", dense * 100))"), format: { String(format: "%.1f", $0 * 100) })
  }

  /// Bars of speedup over dense per pattern (retrained model), with 1× marked.
  private func speedChart(model: String, rows: [Row]) -> String {
    let rs = rows.filter { $0.stage == .retrained }
    let values = rs.map { [Self.mean($0.speedup)] }
    let top = max(2, (values.flatMap { $0 }.max() ?? 1) * 1.15)
    return barChart(
      title: "\(model): inference speedup over dense (test set)", groups: rs.map(\.pattern), series: ["sparse kernels"], values: values,
      range: 0...top, reference: (1, "dense 1×"), format: { String(format: "%.2f×", $0) })
  }

  private func barChart(
    title: String, groups: [String], series: [String], values: [[Double]], range: ClosedRange<Double>,
    reference: (Double, String), format: (Double) -> String
  ) -> String {
    let (w, h, left, right, top, bottom) = (460.0, 260.0, 40.0, 110.0, 28.0, 36.0)
    let colors = ["#9ecae1", "#3182bd", "#31a354"]
    func py(_ v: Double) -> Double { top + (h - top - bottom) * (1 - (min(max(v, range.lowerBound), range.upperBound) - range.lowerBound) / (range.upperBound - range.lowerBound)) }
    let groupWidth = (w - left - right) / Double(max(groups.count, 1))
    let barWidth = groupWidth * 0.8 / Double(max(series.count, 1))
    var s = ["<svg xmlns='http://www.w3.org/2000/svg' width='\(Int(w))' height='\(Int(h))' role='img' aria-label='\(htmlEscape(title))'>"]
    s.append("<rect width='100%' height='100%' fill='white' stroke='#ddd'/>")
    s.append("<text x='\(left)' y='16' font-weight='bold'>\(htmlEscape(title))</text>")
    for (g, group) in groups.enumerated() {
      for (i, v) in values[g].enumerated() {
        let x = left + Double(g) * groupWidth + groupWidth * 0.1 + Double(i) * barWidth
        s.append("<rect x='\(x)' y='\(py(v))' width='\(barWidth - 2)' height='\(py(range.lowerBound) - py(v))' fill='\(colors[i % colors.count])'/>")
        s.append("<text x='\(x + barWidth / 2)' y='\(py(v) - 3)' text-anchor='middle'>\(format(v))</text>")
      }
      s.append("<text x='\(left + (Double(g) + 0.5) * groupWidth)' y='\(h - bottom + 16)' text-anchor='middle'>\(htmlEscape(group))</text>")
    }
    let ry = py(reference.0)
    s.append("<line x1='\(left)' x2='\(w - right)' y1='\(ry)' y2='\(ry)' stroke='#d62728' stroke-dasharray='5 3'/>")
    s.append("<text x='\(w - right + 4)' y='\(ry + 4)' fill='#d62728'>\(htmlEscape(reference.1))</text>")
    for (i, name) in series.enumerated() {
      let y = top + 30 + 16 * Double(i)
      s.append("<rect x='\(w - right + 4)' y='\(y - 9)' width='10' height='10' fill='\(colors[i % colors.count])'/>")
      s.append("<text x='\(w - right + 18)' y='\(y)'>\(htmlEscape(name))</text>")
    }
    s.append("<text x='\(left - 4)' y='\(py(range.lowerBound))' text-anchor='end'>\(format(range.lowerBound))</text>")
    s.append("<text x='\(left - 4)' y='\(py(range.upperBound) + 8)' text-anchor='end'>\(format(range.upperBound))</text>")
    s.append("</svg>")
    return s.joined()
  }
}
