import SparsityCore

/// Where the zeros of a weight matrix may be.
///
/// Patterns are defined on a matrix `[rows, columns]`; for a PyTorch `nn.Linear` weight
/// `[out, in]` the columns are the input features. Tensors of other ranks are viewed as
/// `[count / last, last]` (the last axis is the input dimension).
///
/// | pattern | text | a matrix conforms when |
/// |---|---|---|
/// | ``unstructured`` | `unstructured` | always |
/// | ``nOfM(n:m:)`` | `2:4` | every `m` consecutive elements of a row hold at most `n` nonzeros |
/// | ``block(rows:columns:)`` | `block:4x4` | every `rows × columns` block is all zero or all nonzero |
/// | ``rows`` | `rows` | every row is all zero or all nonzero |
/// | ``columns`` | `columns` | every column is all zero or all nonzero |
/// | ``nOfMInBlocks(n:rows:columns:)`` | `8:4x4` | every `rows × columns` block holds at most `n` nonzeros |
///
/// N:M means **N kept out of M** everywhere in this package (2:4 keeps two of four). Ragged
/// edges are allowed: a last group or edge block that is cut short by the matrix edge is read as
/// if padded with zeros, so it too may hold at most `n` nonzeros (``block(rows:columns:)``:
/// the partial block must be all zero or all nonzero).
public enum SparsityPattern: Hashable, Sendable {
  /// Zeros anywhere.
  case unstructured
  /// At most `n` nonzeros in every `m` consecutive elements along a row (1 ≤ n ≤ m ≤ 16).
  case nOfM(n: Int, m: Int)
  /// Zeros come in whole `rows × columns` blocks.
  case block(rows: Int, columns: Int)
  /// Zeros come in whole rows (structured, output-channel pruning).
  case rows
  /// Zeros come in whole columns (input-channel pruning).
  case columns
  /// At most `n` nonzeros in every `rows × columns` block: N:M inside blocks, with M the block
  /// size. PyTorch's `WeightNormSparsifier` with `zeros_per_block = rows·columns − n` and
  /// `sparsity_level = 1` produces it; `(n, 1, m)` is the same constraint as `n:m`.
  case nOfMInBlocks(n: Int, rows: Int, columns: Int)

  /// 2:4, the pattern sparse tensor cores accelerate.
  public static let twoFour = SparsityPattern.nOfM(n: 2, m: 4)

  /// Checks the parameters (1 ≤ n ≤ m ≤ 16; block extents ≥ 1; n ≤ block size).
  public func validated() throws(PatternSyntaxError) -> SparsityPattern {
    switch self {
    case .unstructured, .rows, .columns: break
    case let .nOfM(n, m):
      guard 1 <= n, n <= m, m <= 16 else {
        throw PatternSyntaxError(text: description, rule: "N:M needs 1 ≤ N ≤ M ≤ 16")
      }
    case let .block(r, c):
      guard r >= 1, c >= 1 else {
        throw PatternSyntaxError(text: description, rule: "block extents must be at least 1")
      }
    case let .nOfMInBlocks(n, r, c):
      guard r >= 1, c >= 1, n >= 1, n <= r * c else {
        throw PatternSyntaxError(
          text: description, rule: "N in an R×C block needs R, C ≥ 1 and 1 ≤ N ≤ R·C")
      }
    }
    return self
  }
}

/// A pattern text that does not parse or breaks a parameter rule.
public struct PatternSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
  public var text: String
  public var rule: String
  public var description: String { "invalid sparsity pattern '\(text)': \(rule)" }
}

extension SparsityPattern: CustomStringConvertible, LosslessStringConvertible {
  /// The pattern's text form: `unstructured`, `2:4`, `block:4x4`, `rows`, `columns`, `8:4x4`.
  public var description: String {
    switch self {
    case .unstructured: "unstructured"
    case let .nOfM(n, m): "\(n):\(m)"
    case let .block(r, c): "block:\(r)x\(c)"
    case .rows: "rows"
    case .columns: "columns"
    case let .nOfMInBlocks(n, r, c): "\(n):\(r)x\(c)"
    }
  }

  /// Parses the text form (see ``description``); `nil` when it is not one.
  public init?(_ text: String) {
    guard let pattern = try? SparsityPattern(parsing: text) else { return nil }
    self = pattern
  }

  /// Parses and validates the text form, with an error that says what is wrong.
  public init(parsing text: String) throws(PatternSyntaxError) {
    let t = text.trimmingCharacters(in: " ").lowercased()
    func int(_ s: Substring) throws(PatternSyntaxError) -> Int {
      guard let v = Int(s) else {
        throw PatternSyntaxError(text: text, rule: "'\(s)' is not a whole number")
      }
      return v
    }
    func extents(_ s: Substring) throws(PatternSyntaxError) -> (Int, Int) {
      let parts = s.split(separator: "x", omittingEmptySubsequences: false)
      guard parts.count == 2 else {
        throw PatternSyntaxError(text: text, rule: "block shape must be RxC, e.g. 4x4")
      }
      return (try int(parts[0]), try int(parts[1]))
    }
    let pattern: SparsityPattern
    switch t {
    case "unstructured": pattern = .unstructured
    case "rows": pattern = .rows
    case "columns": pattern = .columns
    default:
      if t.hasPrefix("block:") {
        let (r, c) = try extents(t.dropFirst("block:".count))
        pattern = .block(rows: r, columns: c)
      } else if let colon = t.firstIndex(of: ":") {
        let n = try int(t[..<colon])
        let rest = t[t.index(after: colon)...]
        if rest.contains("x") {
          let (r, c) = try extents(rest)
          pattern = .nOfMInBlocks(n: n, rows: r, columns: c)
        } else {
          pattern = .nOfM(n: n, m: try int(rest))
        }
      } else {
        throw PatternSyntaxError(
          text: text,
          rule: "expected unstructured, N:M (e.g. 2:4), block:RxC, rows, columns or N:RxC")
      }
    }
    self = try pattern.validated()
  }
}

extension String {
  fileprivate func trimmingCharacters(in set: Character) -> String {
    var s = Substring(self)
    while s.first == set { s = s.dropFirst() }
    while s.last == set { s = s.dropLast() }
    return String(s)
  }
}
