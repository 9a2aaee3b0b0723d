import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityNN

/// Writes a Hugging Face model folder with our pruned or quantized weights in a format other
/// tools load: compressed-tensors (what llm-compressor writes and vLLM loads: int8
/// `int-quantized`/`naive-quantized` with per-row scales, `sparse-24-bitmask`, `sparse-bitmask`)
/// or plain dense safetensors. Any architecture: BERT encoders and Llama decoders alike, since
/// only the tensors and config.json change.
public enum ModelExport {
  /// The output formats.
  public enum Format: String, CaseIterable, Sendable {
    /// Every tensor dense float32 (`transformers` loads it as the model).
    case hf
    /// llm-compressor's compressed-tensors layout of the Linear weights that are compressed.
    case compressedTensors = "compressed-tensors"
  }

  /// What was written.
  public struct Report: Sendable {
    /// Linear weights written compressed (sparse and/or int8).
    public var compressedWeights: Int
    /// The quantization_config written (nil for `hf`).
    public var configuration: CompressedTensors.Configuration?
    /// Bytes of model.safetensors.
    public var bytes: Int
  }

  /// Writes `output` (a new folder): `modelFolder`'s files but its weights, its tensors with those
  /// of `weights` (our safetensors file; each must be a tensor of the model, with its shape) in
  /// their place, and for compressed-tensors config.json with the `quantization_config` that
  /// describes them. Written into a temporary folder beside `output` and moved into place:
  /// nothing is left on error.
  ///
  /// - Throws: when the folder or file cannot be read, a tensor of `weights` is not in the model
  ///   or differs in shape, the compressed weights do not share one activation mode (W8A8 and
  ///   weight-only mixed), or nothing is compressed (compressed-tensors).
  public static func write(modelFolder: String, weights: String?, format: Format, to output: String) throws -> Report {
    let manager = FileManager.default
    if manager.fileExists(atPath: output) { throw FilePruningError("\(output) exists; give a new folder name") }
    let configPath = (modelFolder as NSString).appendingPathComponent("config.json")
    guard let configData = manager.contents(atPath: configPath),
      var config = (try? JSONSerialization.jsonObject(with: configData)) as? [String: Any]
    else { throw FilePruningError("\(configPath): not a readable JSON object (a Hugging Face model folder has config.json)") }
    if config["quantization_config"] != nil {
      throw FilePruningError("\(configPath) already has a quantization_config: export from the dense model folder")
    }
    // The model's tensors in file order, then ours in their place.
    var tensors: [(name: String, value: StoredTensor)] = []
    var index: [String: Int] = [:]
    for path in try StoredWeights.files(inModelFolder: modelFolder) {
      let reader = try TensorArchive.Reader(contentsOf: path)
      for name in reader.names {
        index[name] = tensors.count
        tensors.append((name, try reader.stored(name)))
      }
    }
    if let weights {
      let reader = try TensorArchive.Reader(contentsOf: weights)
      for name in reader.names {
        guard let i = index[name] else { throw FilePruningError("\(weights): tensor '\(name)' is not a tensor of the model in \(modelFolder)") }
        let stored = try reader.stored(name)
        guard stored.shape == tensors[i].value.shape else {
          throw FilePruningError("\(weights): tensor '\(name)' has shape \(stored.shape), the model's has \(tensors[i].value.shape)")
        }
        // A pruned matrix stored dense with its zeros takes the form its zeros suit.
        let form = stored.shape.count == 2 ? stored.packedForm : stored.form
        tensors[i].value = format == .compressedTensors && form != stored.form ? try stored.stored(as: form, name: name) : stored
      }
    }
    var compressed: [(name: String, value: StoredTensor)] = []
    var configuration: CompressedTensors.Configuration?
    if format == .compressedTensors {
      compressed = tensors.filter { $0.value.shape.count == 2 && $0.value.form != .dense }
      guard !compressed.isEmpty else {
        throw FilePruningError("nothing to compress: no sparse or int8 matrix among the tensors (prune or quantize first)")
      }
      // compressed-tensors compresses Linear layers; an embedding table compressed is a mistake.
      if let table = compressed.first(where: { $0.name.lowercased().contains("embed") }) {
        throw FilePruningError(
          "'\(table.name)' looks like an embedding table, and compressed-tensors compresses Linear layers only: leave it dense (quantize --include/--exclude)")
      }
      configuration = try Self.configuration(of: compressed, all: tensors)
    }
    try writeFolderAtomically(output) { staging in
      // Every file and folder of the model folder (tokenizer, sentence-transformers modules) but
      // its weights and config.json, as it is.
      for file in try manager.contentsOfDirectory(atPath: modelFolder).sorted() {
        let source = (modelFolder as NSString).appendingPathComponent(file)
        if file == "config.json" || file.hasSuffix(".safetensors") || file == "model.safetensors.index.json" || file.hasSuffix(".bin") {
          continue
        }
        try manager.copyItem(atPath: source, toPath: (staging as NSString).appendingPathComponent(file))
      }
      if let configuration { config["quantization_config"] = configuration.json }
      try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        .write(to: URL(fileURLWithPath: (staging as NSString).appendingPathComponent("config.json")))
      let compressedNames = Set(compressed.map(\.name))
      try SafetensorsFile.write(
        try Self.fileTensors(tensors) { name, _ in compressedNames.contains(name) },
        metadata: ["format": "pt", "source": "sparsity export --format \(format.rawValue)"],
        to: (staging as NSString).appendingPathComponent("model.safetensors"))
    }
    let bytes = (try? manager.attributesOfItem(atPath: output + "/model.safetensors")[.size] as? Int) ?? 0
    return Report(compressedWeights: compressed.count, configuration: configuration, bytes: bytes)
  }

  /// The plain tensors of a Hugging Face model.safetensors: those `compress` accepts as
  /// compressed-tensors encodes them (``CompressedTensors/encode(weight:_:)``), the others dense,
  /// floating point as float32.
  static func fileTensors(
    _ tensors: [(name: String, value: StoredTensor)], compress: (String, StoredTensor) -> Bool
  ) throws -> [(name: String, tensor: Tensor)] {
    var plain: [(name: String, tensor: Tensor)] = []
    for (name, value) in tensors {
      if compress(name, value) {
        plain += try CompressedTensors.encode(weight: name, value)
      } else {
        let dense = value.dense()
        plain.append((name, dense.dtype.isFloatingPoint && dense.dtype != .float32 ? dense.converted(to: .float32) : dense))
      }
    }
    return plain
  }

  /// The quantization_config of `compressed` (the model's other matrices listed in `ignore`
  /// when the weights are quantized): int8 if any is, one sparsity format for the sparse ones
  /// (`sparse-24-bitmask` when every one is 2:4 with whole groups, else `sparse-bitmask`).
  static func configuration(
    of compressed: [(name: String, value: StoredTensor)], all: [(name: String, value: StoredTensor)]
  ) throws -> CompressedTensors.Configuration {
    var activations: Set<ActivationQuantization> = []
    var sparse: [StoredTensor] = []
    for (_, value) in compressed {
      var values = value
      if case let .quantized(q) = value {
        activations.insert(q.activations)
        values = q.values
      }
      if values.form.layout != .dense { sparse.append(values) }
    }
    guard activations.count <= 1 else {
      throw FilePruningError("the int8 weights mix dynamic and weight-only activations; compressed-tensors has one scheme per model")
    }
    let quantized = !activations.isEmpty
    let twoFour = sparse.allSatisfy { $0.form.layout == .nOfM(n: 2, m: 4) && $0.shape[1] % 4 == 0 }
    // Quantized configs target every Linear: the matrices left in float are ignored by module name.
    let compressedNames = Set(compressed.map(\.name))
    let ignore =
      quantized
      ? all.filter { $0.value.shape.count == 2 && $0.name.hasSuffix(".weight") && !compressedNames.contains($0.name) }
        .map { String($0.name.dropLast(7)) } : []
    return CompressedTensors.Configuration(
      quantized: quantized, activations: activations.first ?? .none,
      sparsityFormat: sparse.isEmpty ? nil : twoFour ? "sparse-24-bitmask" : "sparse-bitmask", ignore: ignore)
  }
}

/// Writes the folder `path` (which must not exist) through `body`, given a staging folder beside
/// it that is moved into place when `body` returns and removed when it throws: nothing is left
/// half-written.
func writeFolderAtomically(_ path: String, _ body: (_ staging: String) throws -> Void) throws {
  let manager = FileManager.default
  if manager.fileExists(atPath: path) { throw FilePruningError("\(path) exists; give a new folder name") }
  let staging = path + ".partial-\(ProcessInfo.processInfo.processIdentifier)"
  try manager.createDirectory(atPath: staging, withIntermediateDirectories: true)
  do {
    try body(staging)
    try manager.moveItem(atPath: staging, toPath: path)
  } catch {
    try? manager.removeItem(atPath: staging)
    throw error
  }
}
