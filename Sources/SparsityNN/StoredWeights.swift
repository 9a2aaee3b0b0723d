import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels

/// Why a model folder could not be loaded.
public enum ModelLoadingError: Error, Equatable, CustomStringConvertible {
  case unreadable(path: String, detail: String)
  case unsupported(path: String, detail: String)
  case weights(path: String, StateDictError)

  public var description: String {
    switch self {
    case let .unreadable(path, detail): "\(path): \(detail)"
    case let .unsupported(path, detail): "\(path): unsupported model: \(detail)"
    case let .weights(path, error): "\(path): \(error)"
    }
  }
}

/// How a loaded model holds its `Linear` weights.
public enum LoadedWeights: Sendable {
  /// Trainable dense ``Linear`` layers (pruning, distillation, fine-tuning).
  case trainable
  /// Inference layers: ``PackedLinear``s packed straight from the file — a stored sparse weight
  /// (CSR, BSR, 2:4) and a dense weight holding zeros take the form their zeros suit
  /// (``StoredTensor/suitableForm(minimumSparsity:)``), other weights stay dense; once packed,
  /// the source pages of the file are dropped — and frozen embedding tables read in place from
  /// the mapped file. Only the packed weights (and the table rows looked up) stay resident.
  case packed
}

/// Where a model's stored tensors come from, by name: a safetensors file (``TensorArchive/Reader``),
/// or a file of another format presented under the model's own tensor names (a GGUF file's
/// tensors, dequantized, under Hugging Face names).
package protocol TensorSource {
  /// Whether a tensor of this name is there.
  func contains(_ name: String) -> Bool
  /// The tensor `name` as stored (dense, or a sparse form's arrays).
  func stored(_ name: String) throws -> StoredTensor
}

extension TensorArchive.Reader: TensorSource {}
extension CompressedTensors.Reader: TensorSource {}

/// The tensors of a model's files by name, decoded one at a time, for building a model's layers
/// from them: names may carry a prefix the model does not use (`bert.`), a missing or mis-shaped
/// tensor is an error naming it and the file. Sources are searched in order, so a file of pruned
/// weights given before the model's own files overrides the tensors it holds.
package final class StoredWeights {
  private let readers: [(path: String, reader: any TensorSource)]
  private let prefixes: [String]

  /// Opens `paths` (shards of one model; a name is looked up in each in turn).
  package convenience init(paths: [String], prefixes: [String] = []) throws(ModelLoadingError) {
    var readers: [(String, any TensorSource)] = []
    for path in paths {
      do { readers.append((path, try TensorArchive.Reader(contentsOf: path))) } catch {
        throw .unreadable(path: path, detail: "\(error)")
      }
    }
    self.init(sources: readers, prefixes: prefixes)
  }

  /// Opens the weights of a model folder (``files(inModelFolder:)``), after the files `first`
  /// (pruned weights, which take precedence). A folder whose config.json has a compressed-tensors
  /// `quantization_config` (llm-compressor's checkpoints) is read through it: int8 and sparse
  /// Linear weights arrive in their stored forms.
  package convenience init(modelFolder directory: String, first: [String] = [], prefixes: [String] = []) throws(ModelLoadingError) {
    let configPath = (directory as NSString).appendingPathComponent("config.json")
    var compressed: CompressedTensors.Configuration?
    if let data = FileManager.default.contents(atPath: configPath),
      let config = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any]
    {
      do { compressed = try CompressedTensors.Configuration(config: config, path: configPath) } catch {
        throw .unsupported(path: configPath, detail: "\(error.field): \(error.rule)")
      }
    }
    var readers: [(String, any TensorSource)] = []
    for (index, path) in (first + (try Self.files(inModelFolder: directory))).enumerated() {
      do {
        let reader = try TensorArchive.Reader(contentsOf: path)
        if let compressed, index >= first.count {
          readers.append((path, CompressedTensors.Reader(archive: reader, configuration: compressed, path: path)))
        } else {
          readers.append((path, reader))
        }
      } catch {
        throw .unreadable(path: path, detail: "\(error)")
      }
    }
    self.init(sources: readers, prefixes: prefixes)
  }

  /// Reads from `sources` (each with the path its errors name), in order.
  package init(sources: [(path: String, source: any TensorSource)], prefixes: [String] = []) {
    self.readers = sources.map { ($0.path, $0.source) }
    self.prefixes = prefixes
  }

  /// Whether any source holds `name` (or a prefixed name).
  package func contains(_ name: String) -> Bool {
    readers.contains { r in ([name] + prefixes.map { $0 + name }).contains { r.reader.contains($0) } }
  }

  /// The files of a model folder: `model.safetensors`, or the shards of `model.safetensors.index.json`.
  package static func files(inModelFolder directory: String) throws(ModelLoadingError) -> [String] {
    let single = (directory as NSString).appendingPathComponent("model.safetensors")
    let index = (directory as NSString).appendingPathComponent("model.safetensors.index.json")
    if FileManager.default.fileExists(atPath: single) { return [single] }
    guard FileManager.default.fileExists(atPath: index) else {
      throw .unreadable(path: directory, detail: "neither model.safetensors nor model.safetensors.index.json is there")
    }
    let shards: [String]
    do {
      let data = try Data(contentsOf: URL(fileURLWithPath: index))
      struct Index: Decodable { var weight_map: [String: String] }
      shards = Set(try JSONDecoder().decode(Index.self, from: data).weight_map.values).sorted()
    } catch {
      throw .unreadable(path: index, detail: "not a safetensors index (needs a weight_map object)")
    }
    for shard in shards where shard.contains("/") {
      throw .unreadable(path: index, detail: "shard '\(shard)' is not a file name in the folder")
    }
    return shards.map { (directory as NSString).appendingPathComponent($0) }
  }

  /// The stored tensor `name` (or a prefixed name) and the file it is in.
  package func stored(_ name: String, shape: [Int]) throws(ModelLoadingError) -> (StoredTensor, path: String) {
    for (path, reader) in readers {
      for candidate in [name] + prefixes.map({ $0 + name }) where reader.contains(candidate) {
        let stored: StoredTensor
        do { stored = try reader.stored(candidate) } catch { throw .unreadable(path: path, detail: "\(error)") }
        guard stored.shape == shape else {
          throw .weights(path: path, .shapeMismatch(tensor: name, expected: shape, found: stored.shape))
        }
        let quantized: Bool
        if case .quantized = stored { quantized = true } else { quantized = false }
        guard quantized || (stored.dtype.isFloatingPoint && stored.dtype.isNumeric) else {
          throw .weights(path: path, .unsupportedType(tensor: name, dtype: stored.dtype))
        }
        return (stored, path)
      }
    }
    throw .weights(path: readers.map(\.path).joined(separator: ", "), .missingTensor(name))
  }

  /// The dense `float32` values of tensor `name` (its pages dropped after the copy).
  package func values(_ name: String, shape: [Int]) throws(ModelLoadingError) -> Tensor {
    let (stored, _) = try stored(name, shape: shape)
    defer { stored.evictPages() }
    return stored.dense().converted(to: .float32)
  }

  /// The layers `prefixes` that read the same input (`in` features; `outs` outputs each), held
  /// as `holding` says. Packed, they share one stacked weight in their common form (they run
  /// as one product, ``StackedLinear``), packed once from the stored arrays — no layer's own
  /// weight is packed first; layers whose forms differ are packed one by one.
  package func stackedLinears(
    _ prefixes: [String], in k: Int, outs: [Int], bias hasBias: Bool = true, holding: LoadedWeights
  ) throws(ModelLoadingError) -> [LinearLayer] {
    func oneByOne() throws(ModelLoadingError) -> [LinearLayer] {
      var layers: [LinearLayer] = []
      for (prefix, n) in zip(prefixes, outs) { layers.append(try linear(prefix, in: k, out: n, bias: hasBias, holding: holding)) }
      return layers
    }
    guard holding == .packed else { return try oneByOne() }
    var parts: [(stored: StoredTensor, bias: [Float]?, rows: Int, form: WeightForm)] = []
    for (prefix, n) in zip(prefixes, outs) {
      let bias = hasBias ? try values(prefix + ".bias", shape: [n]).floatValues : nil
      let (stored, _) = try stored(prefix + ".weight", shape: [n, k])
      stored.populatePages()
      parts.append((stored, bias, n, stored.packedForm))
    }
    defer { for part in parts { part.stored.evictPages() } }
    let form = parts[0].form
    let name = prefixes.map { $0 + ".weight" }.joined(separator: " + ")
    guard parts.allSatisfy({ $0.form == form }) else { return try oneByOne() }
    let stacked: LinearWeight
    do {
      stacked = try LinearWeight(try StoredTensor.stackingRows(parts.map(\.stored), for: form, name: name), as: form, name: name)
    } catch {
      throw .unsupported(path: readers.map(\.path).joined(separator: ", "), detail: "\(error)")
    }
    var row = 0
    return parts.map { part in
      defer { row += part.rows }
      return PackedLinear(stacked, rows: row..<row + part.rows, bias: part.bias)
    }
  }

  /// The layer `prefix` (`prefix.weight [out, in]`, and `prefix.bias [out]` when the layer has
  /// one) held as `holding` says.
  package func linear(_ prefix: String, in k: Int, out n: Int, bias hasBias: Bool = true, holding: LoadedWeights)
    throws(ModelLoadingError) -> LinearLayer
  {
    let bias = hasBias ? try values(prefix + ".bias", shape: [n]) : nil
    let (stored, path) = try stored(prefix + ".weight", shape: [n, k])
    stored.populatePages()  // read whole: one call, not a fault per page
    defer { stored.evictPages() }
    switch holding {
    case .trainable:
      return Linear(weight: stored.dense().converted(to: .float32), bias: bias)
    case .packed:
      do {
        return try PackedLinear(stored, as: stored.packedForm, bias: bias?.floatValues, name: prefix + ".weight")
      } catch {
        throw .unsupported(path: path, detail: "\(error)")
      }
    }
  }
}
