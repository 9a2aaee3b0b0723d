import SparsityCore
import SparsityFormats

/// A named, ordered collection of stored tensors plus string metadata: the contents of one
/// safetensors file, with sparse tensors decoded.
///
/// ## File convention
/// Sparse tensors are written as plain tensors that PyTorch and the `safetensors` package can
/// load, named after the logical tensor `NAME`:
///
/// | format | tensors | `__metadata__["sparsity:NAME"]` |
/// |---|---|---|
/// | 2:4 (f16, bf16, i8) | `NAME.packed` (values, `[rows, cols/2]`), `NAME.meta` (I16, or I32 for I8 values; CUTLASS layout) | `{"format":"semi_structured_cutlass","shape":[rows,cols]}` |
/// | int8, per-row scales (any layout above, or `dense`) | the layout's tensors (`NAME.values` for `dense`: I8 `[rows, cols]`) + `NAME.scale` (F32 `[rows]`) | the layout's entry + `"quantization":{"scheme":"int8_symmetric_per_row","activations":"none"\|"dynamic"}` (`"format":"dense"` for dense values) |
/// | int8, per-group scales (GGUF Q8_0: groups of 32 columns) | as per-row, `NAME.scale` F32 `[rows, cols/G]` | as per-row with `"scheme":"int8_symmetric_per_group"` |
/// | N:M (f32 2:4, any other N:M) | `NAME.values` (`[rows, ⌈cols/M⌉·N]`, the kept values of each group in column order), `NAME.positions` (U8 `[rows, ⌈⌈cols/M⌉·N·b/8⌉]`: each value's position in its group, b = ⌈log2 M⌉ bits, LSB first, rows byte-aligned) | `{"format":"n_of_m","shape":[rows,cols],"n_of_m":[N,M]}` |
/// | CSR | `NAME.crow_indices`, `NAME.col_indices` (I32), `NAME.values` | `{"format":"csr","shape":[rows,cols]}` |
/// | BSR | `NAME.crow_indices`, `NAME.col_indices` (I32), `NAME.values` (`[blocks, R, C]`) | `{"format":"bsr","shape":[rows,cols],"blocksize":[R,C]}` |
///
/// In PyTorch: `torch.sparse_csr_tensor(crow, col, values, shape)`,
/// `torch.sparse_bsr_tensor(crow, col, values, shape)`, and for 2:4
/// `SparseSemiStructuredTensorCUTLASS(shape, packed, meta, None, None, None)` or
/// `torch.sparse._semi_structured_conversions.sparse_semi_structured_to_dense_cutlass(packed, meta)`.
/// Index tensors are read as I32 or I64. Every other tensor is dense; other metadata keys are
/// kept as they are.
///
/// ```swift
/// var archive = try TensorArchive(contentsOf: "model.safetensors")
/// archive.tensors[0].value = .csr(try CSRMatrix(dense: archive.tensors[0].value.dense()))
/// try archive.write(to: "model-csr.safetensors")
/// ```
public struct TensorArchive: Sendable {
  /// The tensors in file order (dense tensors and sparse tensors by their logical name).
  public var tensors: [(name: String, value: StoredTensor)]
  /// Metadata other than the sparse-format entries.
  public var metadata: [String: String]

  /// The metadata key prefix that marks a sparse tensor.
  public static let formatKeyPrefix = "sparsity:"

  public init(tensors: [(name: String, value: StoredTensor)] = [], metadata: [String: String] = [:]) {
    self.tensors = tensors
    self.metadata = metadata
  }

  /// Reads and validates a safetensors file, decoding sparse tensors.
  ///
  /// - Throws: ``SafetensorsError`` for a malformed file, ``TensorArchiveError`` for a broken
  ///   sparse-tensor convention, ``SparseFormatError`` for inconsistent sparse data.
  public init(contentsOf path: String) throws {
    try self.init(file: try SafetensorsFile(contentsOf: path))
  }

  /// Decodes the tensors of an opened file.
  public init(file: SafetensorsFile) throws {
    let reader = try Reader(file: file)
    tensors = try reader.names.map { ($0, try reader.stored($0)) }
    metadata = reader.metadata
  }

  /// An opened file's tensors by logical name, each decoded when asked for: a model loader
  /// packs one weight at a time and never holds the decoded arrays of the others. The
  /// sparse-tensor convention (component claims, name collisions) is checked on opening.
  public struct Reader: Sendable {
    /// The file read.
    public let file: SafetensorsFile
    /// Logical tensor names in file order.
    public let names: [String]
    /// Metadata other than the sparse-format entries.
    public let metadata: [String: String]
    private let descriptions: [String: String]

    /// Opens `file`, checking the sparse-tensor convention without decoding any tensor.
    public init(file: SafetensorsFile) throws {
      var owners: [String: String] = [:]  // component tensor name → logical name
      var descriptions: [String: String] = [:]
      var metadata: [String: String] = [:]
      for (key, value) in file.metadata {
        guard key.hasPrefix(TensorArchive.formatKeyPrefix) else {
          metadata[key] = value
          continue
        }
        let name = String(key.dropFirst(TensorArchive.formatKeyPrefix.count))
        descriptions[name] = value
        for component in try TensorArchive.components(name: name, description: value) {
          if let other = owners[component] {
            throw TensorArchiveError.sharedComponent(tensor: component, owners: [other, name].sorted())
          }
          owners[component] = name
        }
      }
      var names: [String] = []
      var emitted = Set<String>()
      for entry in file.entries {
        if let logical = owners[entry.name] {
          if emitted.insert(logical).inserted { names.append(logical) }
        } else {
          if descriptions[entry.name] != nil { throw TensorArchiveError.nameCollision(entry.name) }
          names.append(entry.name)
        }
      }
      for name in descriptions.keys.sorted() where !emitted.contains(name) {
        // Every component is missing: report the first one.
        let first = try TensorArchive.components(name: name, description: descriptions[name]!)[0]
        throw TensorArchiveError.missingComponent(tensor: name, component: first)
      }
      self.file = file
      self.names = names
      self.metadata = metadata
      self.descriptions = descriptions
    }

    /// Opens and checks the file at `path`.
    public init(contentsOf path: String) throws {
      try self.init(file: try SafetensorsFile(contentsOf: path))
    }

    /// Whether a tensor of this logical name is in the file.
    public func contains(_ name: String) -> Bool { descriptions[name] != nil || file.entry(named: name) != nil }

    /// The tensor `name` decoded: a dense tensor over the file's mapped bytes, or a sparse one
    /// whose value arrays borrow them (index arrays are read into 32-bit arrays).
    ///
    /// - Throws: ``TensorArchiveError`` or ``SparseFormatError`` for inconsistent sparse data,
    ///   ``SafetensorsError`` for an unknown name.
    public func stored(_ name: String) throws -> StoredTensor {
      if let description = descriptions[name] { return try TensorArchive.decode(name: name, description: description, file: file) }
      return .dense(try file.tensor(named: name))
    }
  }

  /// The stored tensor named `name`, or `nil`.
  public subscript(name: String) -> StoredTensor? {
    tensors.first { $0.name == name }?.value
  }

  /// Writes the archive atomically as a safetensors file (see the file convention above).
  ///
  /// - Throws: ``TensorArchiveError/nameCollision(_:)`` when a component name equals another
  ///   tensor's name, ``SafetensorsError`` for invalid names or I/O failures. On error no
  ///   file is left at `path` (an existing one is untouched).
  public func write(to path: String) throws {
    let (plain, formatMetadata) = try encoded()
    try SafetensorsFile.write(plain, metadata: metadata.merging(formatMetadata) { _, new in new }, to: path)
  }

  /// The plain tensors and metadata entries that represent this archive in a file.
  public func encoded() throws -> (tensors: [(name: String, tensor: Tensor)], metadata: [String: String]) {
    var plain: [(name: String, tensor: Tensor)] = []
    var formatMetadata: [String: String] = [:]
    for (name, value) in tensors {
      if case let .dense(t) = value {
        plain.append((name, t))
        continue
      }
      let (parts, fields) = TensorArchive.components(of: value)
      plain += parts.map { ("\(name).\($0.suffix)", $0.tensor) }
      formatMetadata[TensorArchive.formatKeyPrefix + name] = "{" + fields.joined(separator: ",") + "}"
    }
    var seen = Set<String>()
    for (name, _) in plain where !seen.insert(name).inserted {
      throw TensorArchiveError.nameCollision(name)
    }
    return (plain, formatMetadata)
  }

  /// The component tensors (by suffix) and the JSON fields of the `sparsity:NAME` entry of a
  /// stored tensor (a dense one as the `dense` format: only quantized values take it).
  static func components(of value: StoredTensor) -> (parts: [(suffix: String, tensor: Tensor)], fields: [String]) {
    let shape = #""shape":[\#(value.shape.map(String.init).joined(separator: ","))]"#
    switch value {
    case let .dense(t):
      return ([("values", t)], [#""format":"dense""#, shape])
    case let .csr(m):
      return (
        [("crow_indices", Tensor(m.rowOffsets)), ("col_indices", Tensor(m.columnIndices)), ("values", m.values)],
        [#""format":"csr""#, shape]
      )
    case let .bsr(m):
      return (
        [("crow_indices", Tensor(m.rowOffsets)), ("col_indices", Tensor(m.columnIndices)), ("values", m.values)],
        [#""format":"bsr""#, shape, #""blocksize":[\#(m.blockRows),\#(m.blockColumns)]"#]
      )
    case let .cutlass(m):
      return ([("packed", m.packed), ("meta", m.meta)], [#""format":"semi_structured_cutlass""#, shape])
    case let .nOfM(m):
      return ([("values", m.values), ("positions", m.packedPositions)], [#""format":"n_of_m""#, shape, #""n_of_m":[\#(m.n),\#(m.m)]"#])
    case let .quantized(q):
      let (parts, fields) = components(of: q.values)
      let scheme = q.groupSize == nil ? quantizationScheme : groupQuantizationScheme
      let quantization = #""quantization":{"scheme":"\#(scheme)","activations":"\#(q.activations.rawValue)"}"#
      return (parts + [("scale", q.scales)], fields + [quantization])
    }
  }

  /// The `scheme` of a quantized tensor's `quantization` entry: int8 values, one float32 scale
  /// per row, no zero point (``Int8Quantization``).
  static let quantizationScheme = "int8_symmetric_per_row"
  /// The `scheme` of int8 values with a scale per row and group of columns (`[rows, groups]`).
  static let groupQuantizationScheme = "int8_symmetric_per_group"

  // MARK: Decoding

  /// The component tensor names of sparse tensor `name` with the `sparsity:NAME` entry `description`.
  static func components(name: String, description: String) throws -> [String] {
    let info = try FormatDescription(name: name, text: description)
    var suffixes: [String]
    switch info.format {
    case "csr", "bsr": suffixes = ["crow_indices", "col_indices", "values"]
    case "semi_structured_cutlass": suffixes = ["packed", "meta"]
    case "n_of_m": suffixes = ["values", "positions"]
    case "dense" where info.activations != nil: suffixes = ["values"]
    default: throw unknownFormat(name, info.format)
    }
    if info.activations != nil { suffixes.append("scale") }
    return suffixes.map { "\(name).\($0)" }
  }

  private static func decode(name: String, description: String, file: SafetensorsFile) throws -> StoredTensor {
    let info = try FormatDescription(name: name, text: description)
    guard let activations = info.activations else { return try decodeLayout(name: name, info: info, file: file) }
    let values = try decodeLayout(name: name, info: info, file: file)
    let scaleName = "\(name).scale"
    guard file.entry(named: scaleName) != nil else { throw TensorArchiveError.missingComponent(tensor: name, component: scaleName) }
    let scales = try file.tensor(named: scaleName)
    guard (scales.rank == 2) == info.groupedScales else {
      throw TensorArchiveError.invalidFormatDescription(
        tensor: name,
        detail: "scheme \(info.groupedScales ? groupQuantizationScheme : quantizationScheme) does not match \(scaleName) of shape \(scales.shape)")
    }
    return .quantized(try QuantizedMatrix(values: values, scales: scales, activations: activations, name: name))
  }

  /// The values of a `sparsity:NAME` entry in their layout (a quantized tensor's int8 values).
  private static func decodeLayout(name: String, info: FormatDescription, file: SafetensorsFile) throws -> StoredTensor {
    func component(_ suffix: String) throws -> Tensor {
      let componentName = "\(name).\(suffix)"
      guard file.entry(named: componentName) != nil else {
        throw TensorArchiveError.missingComponent(tensor: name, component: componentName)
      }
      return try file.tensor(named: componentName)
    }
    func indices(_ suffix: String) throws -> [Int32] {
      let t = try component(suffix)
      // Read into an array: the mapped pages are not needed again.
      defer { t.evictPages() }
      guard t.rank == 1 else {
        throw TensorArchiveError.invalidComponent(
          tensor: name, component: "\(name).\(suffix)", detail: "must be a vector, has shape \(t.shape)")
      }
      switch t.dtype {
      case .int32: return t.scalars(as: Int32.self)
      case .int64:
        return try t.scalars(as: Int64.self).map { v in
          guard let narrow = Int32(exactly: v) else {
            throw TensorArchiveError.invalidComponent(
              tensor: name, component: "\(name).\(suffix)", detail: "index \(v) does not fit in 32 bits")
          }
          return narrow
        }
      default:
        throw TensorArchiveError.invalidComponent(
          tensor: name, component: "\(name).\(suffix)", detail: "must be I32 or I64, is \(t.dtype)")
      }
    }
    switch info.format {
    case "csr":
      let m = try CSRMatrix(
        shape: info.shape, rowOffsets: try indices("crow_indices"), columnIndices: try indices("col_indices"),
        values: try component("values"), name: name)
      return .csr(m)
    case "bsr":
      let values = try component("values")
      if let block = info.blocksize, values.rank == 3, Array(values.shape[1...]) != block {
        throw TensorArchiveError.invalidComponent(
          tensor: name, component: "\(name).values",
          detail: "blocks are \(values.shape[1])x\(values.shape[2]) but blocksize says \(block[0])x\(block[1])")
      }
      let m = try BSRMatrix(
        shape: info.shape, rowOffsets: try indices("crow_indices"), columnIndices: try indices("col_indices"),
        values: values, name: name)
      return .bsr(m)
    case "semi_structured_cutlass":
      let m = try CUTLASSSemiStructured(packed: try component("packed"), meta: try component("meta"), name: name)
      guard [m.rows, m.columns] == info.shape else {
        throw TensorArchiveError.invalidFormatDescription(
          tensor: name, detail: "shape \(info.shape) does not match packed/meta of a \(m.rows)×\(m.columns) matrix")
      }
      return .cutlass(m)
    case "dense" where info.activations != nil:
      let values = try component("values")
      guard values.shape == info.shape else {
        throw TensorArchiveError.invalidComponent(
          tensor: name, component: "\(name).values", detail: "has shape \(values.shape) but the entry says \(info.shape)")
      }
      return .dense(values)
    case "n_of_m":
      guard let pattern = info.nOfM else {
        throw TensorArchiveError.invalidFormatDescription(tensor: name, detail: "format n_of_m needs \"n_of_m\":[N,M]")
      }
      let m = try SemiStructuredMatrix(
        shape: info.shape, n: pattern[0], m: pattern[1], values: try component("values"), packedPositions: try component("positions"),
        name: name)
      return .nOfM(m)
    default: throw unknownFormat(name, info.format)
    }
  }

  private static func unknownFormat(_ name: String, _ format: String) -> TensorArchiveError {
    .invalidFormatDescription(tensor: name, detail: "unknown format '\(format)' (expected csr, bsr, semi_structured_cutlass or n_of_m)")
  }
}

/// The parsed value of a `sparsity:NAME` metadata entry.
private struct FormatDescription {
  var format: String
  var shape: [Int]
  var blocksize: [Int]?
  var nOfM: [Int]?
  /// Set when the tensor is quantized (the `quantization` entry).
  var activations: ActivationQuantization?
  /// Whether a quantized tensor has a scale per group of columns (else per row).
  var groupedScales = false

  init(name: String, text: String) throws {
    func fail(_ detail: String) -> TensorArchiveError {
      .invalidFormatDescription(tensor: name, detail: detail)
    }
    let value: JSONValue
    do {
      value = try Array(text.utf8).withUnsafeBytes { try JSONParser.parse($0) }
    } catch {
      throw fail("not valid JSON (\(error))")
    }
    guard case let .object(fields) = value else { throw fail("must be a JSON object") }
    func integers(_ v: JSONValue, _ key: String) throws -> [Int] {
      guard case let .array(items) = v, items.count == 2 else { throw fail("\(key) must be [a, b]") }
      return try items.map { item in
        guard case let .number(text) = item, let n = Int(text), n >= 0 else {
          throw fail("\(key) must hold non-negative integers")
        }
        return n
      }
    }
    var format: String?
    var shape: [Int]?
    for (key, v) in fields {
      switch key {
      case "format":
        guard case let .string(s) = v else { throw fail("format must be a string") }
        format = s
      case "shape": shape = try integers(v, "shape")
      case "blocksize": blocksize = try integers(v, "blocksize")
      case "n_of_m": nOfM = try integers(v, "n_of_m")
      case "quantization":
        guard case let .object(q) = v else { throw fail("quantization must be a JSON object") }
        var scheme: String?
        for (qk, qv) in q {
          guard case let .string(text) = qv else { throw fail("quantization.\(qk) must be a string") }
          switch qk {
          case "scheme": scheme = text
          case "activations":
            guard let a = ActivationQuantization(rawValue: text) else {
              throw fail("quantization.activations must be none or dynamic, got '\(text)'")
            }
            activations = a
          default: throw fail("unknown key 'quantization.\(qk)'")
          }
        }
        guard scheme == TensorArchive.quantizationScheme || scheme == TensorArchive.groupQuantizationScheme else {
          throw fail(
            "quantization.scheme must be \(TensorArchive.quantizationScheme) or \(TensorArchive.groupQuantizationScheme), got \(scheme.map { "'\($0)'" } ?? "none")")
        }
        groupedScales = scheme == TensorArchive.groupQuantizationScheme
        guard activations != nil else { throw fail("quantization needs activations (none or dynamic)") }
      default: throw fail("unknown key '\(key)'")
      }
    }
    guard let format else { throw fail("missing key 'format'") }
    guard let shape else { throw fail("missing key 'shape'") }
    self.format = format
    self.shape = shape
  }
}

/// A file that breaks the sparse-tensor naming convention of ``TensorArchive``.
public enum TensorArchiveError: Error, Equatable, Sendable, CustomStringConvertible {
  /// A `sparsity:NAME` entry names a component tensor the file lacks.
  case missingComponent(tensor: String, component: String)
  /// A component tensor has the wrong dtype or rank.
  case invalidComponent(tensor: String, component: String, detail: String)
  /// The `sparsity:NAME` metadata value is malformed.
  case invalidFormatDescription(tensor: String, detail: String)
  /// Two logical tensors claim the same component.
  case sharedComponent(tensor: String, owners: [String])
  /// A name is used twice (a dense tensor and a sparse tensor's component, or its logical name).
  case nameCollision(String)

  public var description: String {
    switch self {
    case let .missingComponent(tensor, component):
      "sparse tensor '\(tensor)' is missing its component tensor '\(component)'"
    case let .invalidComponent(tensor, component, detail):
      "sparse tensor '\(tensor)': component '\(component)' \(detail)"
    case let .invalidFormatDescription(tensor, detail):
      "sparse tensor '\(tensor)': metadata entry '\(TensorArchive.formatKeyPrefix)\(tensor)' is invalid: \(detail)"
    case let .sharedComponent(tensor, owners):
      "tensor '\(tensor)' is claimed as a component by both '\(owners[0])' and '\(owners[1])'"
    case let .nameCollision(name):
      "tensor name '\(name)' is used twice"
    }
  }
}
