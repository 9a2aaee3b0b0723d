import ArgumentParser
import Foundation
import Sparsity

/// The `sparsity` command-line tool: one subcommand per step of the pipeline.
public struct SparsityCommand: ParsableCommand {
  public static let configuration = CommandConfiguration(
    commandName: "sparsity",
    abstract: "Make neural networks sparse and fast: inspect, compress and picture sparse weights.",
    version: "0.1.0",
    subcommands: [Demo.self, Train.self, Classify.self, Embed.self, Calibrate.self, PruneEncoder.self, Distill.self, Eval.self, Inspect.self, Compress.self, Decompress.self, Quantize.self, Bench.self, Prune.self, Generate.self, Perplexity.self, PruneModel.self, Export.self])

  public init() {}

  /// Parses the process arguments and runs the command. Failures print one line,
  /// `error: …`, on standard error and exit with a non-zero status; `--help` and `--version`
  /// print as usual.
  public static func runAndExit() -> Never {
    MemoryTuning.retainFreedMemory()
    do {
      var command = try parseAsRoot()
      try command.run()
      Foundation.exit(0)
    } catch {
      let code = exitCode(for: error)
      if code == .success { exit(withError: error) }
      let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
      FileHandle.standardError.write(Data("error: \(message)\n".utf8))
      Foundation.exit(code.rawValue)
    }
  }
}

/// An error the CLI reports as one line.
struct CLIError: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// Writes to standard output without buffering surprises when mixed with stderr.
func say(_ text: String = "") { print(text) }

/// Human-readable byte counts: 512 B, 12.5 KiB, 3.2 MiB.
func formatBytes(_ n: Int) -> String {
  let units = ["B", "KiB", "MiB", "GiB"]
  var value = Double(n)
  var unit = 0
  while value >= 1024 && unit < units.count - 1 {
    value /= 1024
    unit += 1
  }
  return unit == 0 ? "\(n) B" : String(format: "%.1f %@", value, units[unit])
}

func formatPercent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }

/// Left-aligned text columns.
func table(_ header: [String], _ rows: [[String]]) -> String {
  let all = [header] + rows
  let widths = header.indices.map { i in all.map { $0[i].count }.max() ?? 0 }
  return all.map { row in
    row.enumerated().map { i, cell in i == row.count - 1 ? cell : cell.padding(toLength: widths[i], withPad: " ", startingAt: 0) }
      .joined(separator: "  ")
  }.joined(separator: "\n")
}

/// The pruning method named by `--method`, or an error listing the valid names.
func parseMethod(_ text: String) throws -> PruningMethod {
  guard let method = PruningMethod(rawValue: text.lowercased()) else {
    throw CLIError("--method must be one of \(PruningMethod.allCases.map { "\($0)" }.joined(separator: ", ")); got '\(text)'")
  }
  return method
}

/// The pattern named by `--pattern`, or an error quoting it.
func parsePattern(_ text: String) throws -> SparsityPattern {
  do { return try SparsityPattern(parsing: text) } catch { throw CLIError("--pattern '\(text)': \(error)") }
}

/// Text safe inside HTML elements and single-quoted attributes.
func htmlEscape(_ s: String) -> String {
  s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "'", with: "&#39;")
}

/// Compiles a user regular expression, with an error that names the option.
func compileRegex(_ pattern: String?, option: String) throws -> Regex<AnyRegexOutput>? {
  guard let pattern else { return nil }
  do {
    return try Regex(pattern)
  } catch {
    throw CLIError("\(option) '\(pattern)' is not a valid regular expression: \(error)")
  }
}
