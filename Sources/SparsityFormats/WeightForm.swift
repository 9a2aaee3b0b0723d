import SparsityCore

/// The form of a weight matrix: a **layout** (where the stored values are: dense, N:M, blocks,
/// compressed rows) × an **element encoding** (how each stored value is held).
///
/// One type names a form everywhere — files, kernels, layers, the command line, benchmarks —
/// and one spelling prints and parses it: `dense`, `2:4`, `bsr:32x32`, `csr`, with the encoding
/// in front when it is not `float32` (`w8a8+2:4`: int8 weights and dynamic int8 activations, 2:4).
///
/// ```swift
/// let form = try WeightForm(parsing: "bsr:32x32")
/// form.layout        // .block(rows: 32, columns: 32)
/// form.description   // "bsr:32x32"
/// ```
///
/// The kernels that run each form are registered in SparsityKernels' `KernelTable`; adding an
/// encoding means its storage, its kernels and its rows in that table.
public struct WeightForm: Hashable, Sendable, CustomStringConvertible {
  /// Where the stored values of a `[rows, columns]` matrix are.
  public enum Layout: Hashable, Sendable {
    /// Every value.
    case dense
    /// `n` values kept in every `m` consecutive along a row (2:4 above all), with their positions.
    case nOfM(n: Int, m: Int)
    /// Nonzero `rows × columns` blocks (BSR).
    case block(rows: Int, columns: Int)
    /// Nonzero values with their column indices, row by row (CSR).
    case csr
  }

  /// How one stored value is held, and what the kernels do with the activations.
  public enum Encoding: String, Hashable, Sendable, CaseIterable {
    /// IEEE single precision.
    case float32 = "f32"
    /// bfloat16 values; the kernels round activations to bf16 too and sum the exact products
    /// in fp32 (`vdpbf16ps`), as a bf16 model in PyTorch does (its outputs stay fp32).
    case bfloat16 = "bf16"
    /// Symmetric int8 with one float32 scale per output row; float32 activations (weight-only,
    /// torchao's `Int8WeightOnlyConfig`). See ``Int8Quantization``.
    case int8 = "int8"
    /// The same int8 weights with activations quantized per token at run time and int8 × int8
    /// products summed in int32 (W8A8, torchao's `Int8DynamicActivationInt8WeightConfig`).
    case int8Dynamic = "w8a8"
  }

  public var layout: Layout
  public var encoding: Encoding

  public init(_ layout: Layout, encoding: Encoding = .float32) {
    self.layout = layout
    self.encoding = encoding
  }

  /// Dense `float32`.
  public static let dense = WeightForm(.dense)
  /// 2:4 semi-structured `float32`.
  public static let twoFour = WeightForm(.nOfM(n: 2, m: 4))
  /// Compressed sparse rows, `float32`.
  public static let csr = WeightForm(.csr)
  /// Blocked sparse rows with `rows × columns` blocks, `float32`.
  public static func bsr(_ rows: Int, _ columns: Int) -> WeightForm { WeightForm(.block(rows: rows, columns: columns)) }

  /// Whether the layout stores fewer values than the dense matrix has.
  public var isSparse: Bool { layout != .dense }

  /// The zero pattern a matrix must follow to take this layout (`unstructured` for CSR and dense).
  public var pattern: SparsityPattern {
    switch layout {
    case .dense, .csr: .unstructured
    case let .nOfM(n, m): .nOfM(n: n, m: m)
    case let .block(r, c): .block(rows: r, columns: c)
    }
  }

  /// The layout's name without its parameters: `dense`, `2:4` (N:M), `bsr`, `csr`.
  public var family: String {
    switch layout {
    case .dense: "dense"
    case let .nOfM(n, m): "\(n):\(m)"
    case .block: "bsr"
    case .csr: "csr"
    }
  }

  /// The file form that suits a matrix pruned to `pattern`: its N:M (2:4 in
  /// PyTorch's CUTLASS layout where that holds the dtype, else values + packed positions), BSR
  /// with the pattern's blocks, else CSR.
  public static func fileForm(forPruned pattern: SparsityPattern) -> WeightForm {
    switch pattern {
    case let .nOfM(n, m): WeightForm(.nOfM(n: n, m: m))
    case let .block(r, c): .bsr(r, c)
    default: .csr
    }
  }

  /// The command-line spelling: `dense`, `2:4`, `bsr:32x32`, `csr`, prefixed by `ENCODING+`
  /// for encodings other than `float32`.
  public var description: String {
    let layoutText: String
    switch layout {
    case .dense: layoutText = "dense"
    case let .nOfM(n, m): layoutText = "\(n):\(m)"
    case let .block(r, c): layoutText = "bsr:\(r)x\(c)"
    case .csr: layoutText = "csr"
    }
    return encoding == .float32 ? layoutText : "\(encoding.rawValue)+\(layoutText)"
  }

  /// The spellings ``init(parsing:)`` accepts, for messages.
  public static let spellings = "dense, 2:4 (any N:M), csr or bsr:RxC"

  /// Parses the command-line spelling (case-insensitive).
  ///
  /// - Throws: ``WeightFormSyntaxError`` quoting the text and saying what is accepted.
  public init(parsing text: String) throws(WeightFormSyntaxError) {
    let lower = text.lowercased()
    var encoding = Encoding.float32
    var rest = Substring(lower)
    if let plus = lower.firstIndex(of: "+") {
      let name = String(lower[..<plus])
      guard let e = Encoding(rawValue: name) ?? (name == "float32" ? .float32 : nil) else {
        throw WeightFormSyntaxError(
          text: text, rule: "unknown encoding '\(name)' (known: \(Encoding.allCases.map(\.rawValue).joined(separator: ", ")))")
      }
      encoding = e
      rest = lower[lower.index(after: plus)...]
    }
    func fail(_ rule: String) -> WeightFormSyntaxError { WeightFormSyntaxError(text: text, rule: rule) }
    switch rest {
    case "dense": self.init(.dense, encoding: encoding)
    case "csr": self.init(.csr, encoding: encoding)
    case _ where rest.hasPrefix("bsr:"):
      let parts = rest.dropFirst(4).split(separator: "x", omittingEmptySubsequences: false)
      guard parts.count == 2, let r = Int(parts[0]), let c = Int(parts[1]), r >= 1, c >= 1 else {
        throw fail("a block form is bsr:RxC with positive R and C (e.g. bsr:32x32)")
      }
      self.init(.block(rows: r, columns: c), encoding: encoding)
    case _ where rest.contains(":"):
      let parts = rest.split(separator: ":", omittingEmptySubsequences: false)
      guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), 1 <= n, n < m, m <= 16 else {
        throw fail("an N:M form needs 1 ≤ N < M ≤ 16 (e.g. 2:4)")
      }
      self.init(.nOfM(n: n, m: m), encoding: encoding)
    default:
      throw fail("expected \(Self.spellings)")
    }
  }
}

/// A weight-form spelling that does not parse.
public struct WeightFormSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
  /// The text given.
  public var text: String
  /// What is wrong with it.
  public var rule: String

  public var description: String { "'\(text)' is not a weight form: \(rule)" }
}
