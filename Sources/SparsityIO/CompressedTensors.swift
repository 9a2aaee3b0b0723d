import Foundation
import SparsityCore
import SparsityFormats

/// The compressed-tensors checkpoint format — what llm-compressor writes and vLLM loads — for
/// the Linear weights of a model folder: `config.json`'s `quantization_config` (quant_method
/// `compressed-tensors`) says how the tensors of `model.safetensors` encode each weight `P.weight`:
///
/// | encoding | tensors |
/// |---|---|
/// | dense (float) | `P.weight` |
/// | int8, one scale per output row (`int-quantized`: W8A8 with dynamic per-token activations; `naive-quantized`: weight-only) | `P.weight` (I8 `[N, K]`), `P.weight_scale` (`[N, 1]`) |
/// | 2:4 (`sparse-24-bitmask`) | `P.shape` (I64 `[2, 1]`), `P.compressed` (`[N, K/2]`, the kept values row by row), `P.bitmask` (U8 `[N, ⌈K/8⌉]`, bit c of a row set where column c is kept, least significant bit first) |
/// | unstructured (`sparse-bitmask`) | `P.shape` (I64 `[2]`), `P.compressed` (the nonzeros row by row), `P.bitmask`, `P.row_offsets` (I64 `[N]`, each row's first value) |
///
/// A quantized sparse weight has both: the sparse tensors hold the int8 values and
/// `P.weight_scale` the scales (quantization is applied first, then sparsity compression, as
/// compressed-tensors does). Read and written per compressed-tensors 0.12 (the last release with
/// the sparse compressors; `scripts/check_compressed_tensors.py` checks both directions); 0.20
/// reads the int8 formats.
public enum CompressedTensors {
  /// What a model's `quantization_config` says, in the parts this package uses.
  public struct Configuration: Sendable, Equatable {
    /// The Linear weights are int8 with one scale per output row.
    public var quantized: Bool
    /// With `quantized`: dynamic per-token int8 activations (W8A8) or none (weight-only).
    public var activations: ActivationQuantization
    /// The sparsity compression, if any: `sparse-24-bitmask` or `sparse-bitmask`.
    public var sparsityFormat: String?
    /// Linear modules left as they are (by name).
    public var ignore: [String]

    public init(quantized: Bool, activations: ActivationQuantization, sparsityFormat: String?, ignore: [String]) {
      self.quantized = quantized
      self.activations = activations
      self.sparsityFormat = sparsityFormat
      self.ignore = ignore
    }

    /// Parses `config.json`'s `quantization_config` (given as the parsed JSON object); `nil` when
    /// the folder is not compressed-tensors.
    ///
    /// - Throws: ``CompressedTensorsError`` naming the field for a scheme this package cannot run
    ///   (group or block scales, asymmetric weights, other bit widths, float formats).
    public init?(config: [String: Any], path: String) throws(CompressedTensorsError) {
      guard let q = config["quantization_config"] as? [String: Any], q["quant_method"] as? String == "compressed-tensors" else {
        return nil
      }
      func fail(_ field: String, _ rule: String) -> CompressedTensorsError { CompressedTensorsError(path: path, field: "quantization_config.\(field)", rule: rule) }
      var quantized = false
      var activations = ActivationQuantization.none
      if let groups = q["config_groups"] as? [String: Any], !groups.isEmpty {
        guard groups.count == 1, let (name, value) = groups.first, let group = value as? [String: Any] else {
          throw fail("config_groups", "one group is supported, found \(groups.count)")
        }
        guard let weights = group["weights"] as? [String: Any] else { throw fail("config_groups.\(name).weights", "missing") }
        func check(_ args: [String: Any], _ field: String, strategies: [String]) throws(CompressedTensorsError) {
          guard args["num_bits"] as? Int == 8, args["type"] as? String == "int" else {
            throw fail("config_groups.\(name).\(field)", "only 8-bit int is supported (num_bits \(args["num_bits"] ?? "none"), type \(args["type"] ?? "none"))")
          }
          guard args["symmetric"] as? Bool ?? true else { throw fail("config_groups.\(name).\(field).symmetric", "only symmetric quantization is supported") }
          let strategy = args["strategy"] as? String ?? "none"
          guard strategies.contains(strategy) else {
            throw fail("config_groups.\(name).\(field).strategy", "'\(strategy)' is not supported (\(strategies.joined(separator: ", ")))")
          }
        }
        try check(weights, "weights", strategies: ["channel", "tensor"])
        guard !(weights["dynamic"] as? Bool ?? false) else { throw fail("config_groups.\(name).weights.dynamic", "weights must be static") }
        quantized = true
        if let input = group["input_activations"] as? [String: Any] {
          try check(input, "input_activations", strategies: ["token"])
          guard input["dynamic"] as? Bool == true else {
            throw fail("config_groups.\(name).input_activations.dynamic", "only dynamic activations are supported")
          }
          activations = .dynamic
        }
      }
      var sparsityFormat: String?
      if let sparsity = q["sparsity_config"] as? [String: Any], let format = sparsity["format"] as? String, format != "dense" {
        guard ["sparse-24-bitmask", "sparse-bitmask"].contains(format) else {
          throw fail("sparsity_config.format", "'\(format)' is not supported (sparse-24-bitmask, sparse-bitmask)")
        }
        sparsityFormat = format
      }
      self.init(quantized: quantized, activations: activations, sparsityFormat: sparsityFormat, ignore: q["ignore"] as? [String] ?? [])
    }

    /// The `quantization_config` object for `config.json`.
    public var json: [String: Any] {
      var q: [String: Any] = [
        "quant_method": "compressed-tensors", "quantization_status": "compressed", "ignore": ignore, "kv_cache_scheme": NSNull(),
        "global_compression_ratio": NSNull(),
      ]
      let int8: (String, Bool) -> [String: Any] = { strategy, dynamic in
        [
          "num_bits": 8, "type": "int", "symmetric": true, "strategy": strategy, "dynamic": dynamic, "group_size": NSNull(),
          "block_structure": NSNull(), "actorder": NSNull(), "observer": dynamic ? NSNull() : "minmax", "observer_kwargs": [String: Any](),
        ]
      }
      if quantized {
        let format = activations == .dynamic ? "int-quantized" : "naive-quantized"
        q["format"] = format
        q["config_groups"] = [
          "group_0": [
            "targets": ["Linear"], "weights": int8("channel", false),
            "input_activations": activations == .dynamic ? int8("token", true) : NSNull(), "output_activations": NSNull(),
            "format": format,
          ] as [String: Any]
        ]
      } else {
        q["format"] = "dense"
        q["config_groups"] = [String: Any]()
      }
      if let sparsityFormat {
        q["sparsity_config"] = [
          "format": sparsityFormat, "targets": ["Linear"], "ignore": ignore, "global_sparsity": NSNull(),
          "sparsity_structure": sparsityFormat == "sparse-24-bitmask" ? "2:4" : "unstructured",
        ] as [String: Any]
      }
      return q
    }
  }

  /// The tensors (compressed-tensors names) that encode the Linear weight `name` (`P.weight`)
  /// stored as `stored`: 2:4 layouts as `sparse-24-bitmask`, other sparse layouts as
  /// `sparse-bitmask`, dense as it is; int8 values with `P.weight_scale`.
  public static func encode(weight name: String, _ stored: StoredTensor) throws -> [(name: String, tensor: Tensor)] {
    let prefix = name.hasSuffix(".weight") ? String(name.dropLast(7)) : name
    var values = stored
    var out: [(name: String, tensor: Tensor)] = []
    if case let .quantized(q) = stored {
      if let group = q.groupSize {
        throw CompressedTensorsError(
          path: name, field: "weight_scale",
          rule: "int8 with a scale per \(group) columns (GGUF Q8_0) is not written as compressed-tensors (this writer's int-quantized config is per channel); quantize per row first")
      }
      values = q.values
      out.append((prefix + ".weight_scale", q.scales.reshaped([q.shape[0], 1])))
    }
    let (rows, columns) = (values.shape[0], values.shape[1])
    let shapeTensor = Tensor([Int64(rows), Int64(columns)] as [Int64], shape: [2])
    switch values.form.layout {
    case .dense:
      out.append((name, values.dense()))
    case .nOfM(2, 4) where columns % 4 == 0:
      let logical: SemiStructuredMatrix
      switch values {
      case let .nOfM(m): logical = m
      default: logical = try SemiStructuredMatrix(csr: try values.csr(name: name), n: 2, m: 4, name: name)
      }
      var mask = [Bool](repeating: false, count: rows * columns)
      for r in 0..<rows {
        for (i, p) in logical.indices[(r * columns / 2)..<((r + 1) * columns / 2)].enumerated() {
          mask[r * columns + 4 * (i / 2) + Int(p)] = true
        }
      }
      out += [
        (prefix + ".shape", shapeTensor.reshaped([2, 1])), (prefix + ".compressed", logical.values),
        (prefix + ".bitmask", packBits(mask, rows: rows, columns: columns)),
      ]
    default:
      let csr = try values.csr(name: name)
      var mask = [Bool](repeating: false, count: rows * columns)
      for r in 0..<rows {
        for i in Int(csr.rowOffsets[r])..<Int(csr.rowOffsets[r + 1]) { mask[r * columns + Int(csr.columnIndices[i])] = true }
      }
      out += [
        (prefix + ".shape", shapeTensor), (prefix + ".compressed", csr.values),
        (prefix + ".bitmask", packBits(mask, rows: rows, columns: columns)),
        (prefix + ".row_offsets", Tensor(csr.rowOffsets.dropLast().map(Int64.init), shape: [rows])),
      ]
    }
    return out
  }

  /// NumPy's `packbits(mask, axis=-1, bitorder="little")`: `[rows, ⌈columns/8⌉]` U8.
  static func packBits(_ mask: [Bool], rows: Int, columns: Int) -> Tensor {
    let perRow = (columns + 7) / 8
    var bytes = [UInt8](repeating: 0, count: rows * perRow)
    for r in 0..<rows {
      for c in 0..<columns where mask[r * columns + c] { bytes[r * perRow + c / 8] |= 1 << UInt8(c % 8) }
    }
    return Tensor(bytes, shape: [rows, perRow])
  }

  /// A model file's tensors read through the configuration: `stored("P.weight")` decodes the
  /// compressed-tensors encoding of that weight (any of the table above) into a ``StoredTensor``
  /// (CSR, logical 2:4, dense; quantized with its scales); other tensors pass through.
  public struct Reader: Sendable {
    public let archive: TensorArchive.Reader
    public let configuration: Configuration
    /// The file's path, for errors.
    public let path: String

    public init(archive: TensorArchive.Reader, configuration: Configuration, path: String) {
      self.archive = archive
      self.configuration = configuration
      self.path = path
    }

    public func contains(_ name: String) -> Bool {
      guard name.hasSuffix(".weight") else { return archive.contains(name) }
      let prefix = String(name.dropLast(7))
      return archive.contains(name) || archive.contains(prefix + ".compressed")
    }

    /// - Throws: ``CompressedTensorsError`` naming the tensor and the broken rule, or the file's errors.
    public func stored(_ name: String) throws -> StoredTensor {
      guard name.hasSuffix(".weight") else { return try archive.stored(name) }
      let prefix = String(name.dropLast(7))
      func fail(_ rule: String) -> CompressedTensorsError { CompressedTensorsError(path: path, field: name, rule: rule) }
      func tensor(_ n: String) throws -> Tensor {
        guard archive.contains(n) else { throw fail("\(n) is missing") }
        return try archive.stored(n).dense()
      }
      func shape(_ n: String) throws -> [Int] {
        let t = try tensor(n)
        guard t.count == 2, [.int64, .int32].contains(t.dtype) else { throw fail("\(n) must hold the 2 dimensions as integers") }
        let dims = t.dtype == .int64 ? t.scalars(as: Int64.self).map(Int.init) : t.scalars(as: Int32.self).map(Int.init)
        guard dims.allSatisfy({ $0 >= 0 && $0 <= Int(Int32.max) }) else { throw fail("\(n) holds an invalid shape \(dims)") }
        return dims
      }
      var values: StoredTensor
      if archive.contains(prefix + ".compressed") && !archive.contains(prefix + ".row_offsets") {
        // sparse-24-bitmask
        let dims = try shape(prefix + ".shape")
        let (rows, columns) = (dims[0], dims[1])
        let kept = try tensor(prefix + ".compressed")
        let bits = try unpackBits(try tensor(prefix + ".bitmask"), rows: rows, columns: columns, what: prefix + ".bitmask", fail: fail)
        guard columns % 4 == 0, kept.shape == [rows, columns / 2] else {
          throw fail("\(prefix).compressed must be [\(rows), \(columns / 2)] for a \(rows)×\(columns) 2:4 weight, is \(kept.shape)")
        }
        var positions = [UInt8](repeating: 0, count: rows * columns / 2)
        for r in 0..<rows {
          for g in 0..<columns / 4 {
            let set = (0..<4).filter { bits[r * columns + 4 * g + $0] }
            guard set.count == 2 else { throw fail("row \(r), columns \(4 * g)..<\(4 * g + 4): the bitmask keeps \(set.count) values, 2:4 needs 2") }
            positions[(r * columns / 4 + g) * 2] = UInt8(set[0])
            positions[(r * columns / 4 + g) * 2 + 1] = UInt8(set[1])
          }
        }
        do {
          values = .nOfM(try SemiStructuredMatrix(shape: [rows, columns], n: 2, m: 4, values: kept, indices: positions, name: name))
        } catch { throw fail("\(error)") }
      } else if archive.contains(prefix + ".compressed") {
        // sparse-bitmask
        let dims = try shape(prefix + ".shape")
        let (rows, columns) = (dims[0], dims[1])
        let nonzeros = try tensor(prefix + ".compressed")
        let bits = try unpackBits(try tensor(prefix + ".bitmask"), rows: rows, columns: columns, what: prefix + ".bitmask", fail: fail)
        var offsets: [Int32] = [0]
        var indices: [Int32] = []
        for r in 0..<rows {
          for c in 0..<columns where bits[r * columns + c] { indices.append(Int32(c)) }
          offsets.append(Int32(indices.count))
        }
        guard nonzeros.rank == 1, nonzeros.count == indices.count else {
          throw fail("\(prefix).compressed must hold the bitmask's \(indices.count) values, has shape \(nonzeros.shape)")
        }
        let starts = try tensor(prefix + ".row_offsets")
        let given = starts.dtype == .int64 ? starts.scalars(as: Int64.self).map(Int.init) : starts.dtype == .int32 ? starts.scalars(as: Int32.self).map(Int.init) : []
        guard given == offsets.dropLast().map(Int.init) else { throw fail("\(prefix).row_offsets do not match the bitmask's rows") }
        do {
          values = .csr(try CSRMatrix(shape: [rows, columns], rowOffsets: offsets, columnIndices: indices, values: nonzeros, name: name))
        } catch { throw fail("\(error)") }
      } else {
        values = try archive.stored(name)
      }
      guard archive.contains(prefix + ".weight_scale") else {
        guard values.dtype.isFloatingPoint else { throw fail("int8 values need \(prefix).weight_scale") }
        return values
      }
      guard configuration.quantized, values.dtype == .int8 else {
        throw fail("\(prefix).weight_scale goes with int8 values and a quantization config_group; found \(values.dtype) values")
      }
      if archive.contains(prefix + ".weight_zero_point"), try tensor(prefix + ".weight_zero_point").floatValues.contains(where: { $0 != 0 }) {
        throw fail("\(prefix).weight_zero_point: only symmetric (zero-point 0) weights are supported")
      }
      let rows = values.shape[0]
      var scales = try tensor(prefix + ".weight_scale")
      scales = scales.dtype == .float32 ? scales : scales.converted(to: .float32)
      if scales.count == 1 { scales = Tensor([Float](repeating: scales.floatValues[0], count: rows), shape: [rows]) }  // per tensor
      guard scales.count == rows else { throw fail("\(prefix).weight_scale must hold one scale per row (\(rows)), has \(scales.shape)") }
      do {
        return .quantized(
          try QuantizedMatrix(values: values, scales: scales.reshaped([rows]), activations: configuration.activations, name: name))
      } catch { throw fail("\(error)") }
    }

    private func unpackBits(
      _ packed: Tensor, rows: Int, columns: Int, what: String, fail: (String) -> CompressedTensorsError
    ) throws(CompressedTensorsError) -> [Bool] {
      let perRow = (columns + 7) / 8
      guard packed.dtype == .uint8 || packed.dtype == .int8, packed.shape == [rows, perRow] else {
        throw fail("\(what) must be U8 [\(rows), \(perRow)], is \(packed.dtype) \(packed.shape)")
      }
      var bits = [Bool](repeating: false, count: rows * columns)
      packed.withUnsafeBytes { bytes in
        for r in 0..<rows {
          for c in 0..<columns { bits[r * columns + c] = bytes[r * perRow + c / 8] >> UInt8(c % 8) & 1 == 1 }
        }
      }
      return bits
    }
  }
}

/// A compressed-tensors checkpoint this package cannot read: the file or config, the field or
/// tensor, and the rule.
public struct CompressedTensorsError: Error, Equatable, CustomStringConvertible, Sendable {
  public var path: String
  public var field: String
  public var rule: String
  public var description: String { "\(path): compressed-tensors \(field): \(rule)" }
}
