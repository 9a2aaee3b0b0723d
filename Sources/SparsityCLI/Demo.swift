import ArgumentParser
import Foundation
import Sparsity

/// The main job on built-in data. Until the NN and training module lands (issue 5), it walks
/// the pipeline end to end: a seeded synthetic model is pruned to the talk's three patterns by
/// magnitude, compressed to the matching formats, written, read back, checked bit for bit,
/// and pictured.
struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run the pipeline on built-in data: prune a synthetic model to 2:4, block and unstructured sparsity, compress, verify, picture.",
    discussion: """
      Writes into --output-dir: dense.safetensors (the pruned model with zeros), \
      sparse.safetensors (each weight in its sparse format) and one SVG mask picture per weight.
      """)

  @Option(help: "Directory for the files the demo writes (created if missing).")
  var outputDir = "sparsity-demo"

  @Option(help: "Seed of the synthetic model.")
  var seed: UInt64 = 42

  @Flag(help: "Print the summary as JSON.")
  var json = false

  /// One weight of the demo model: how it is pruned and stored.
  struct Layer {
    var name: String
    var shape: [Int]
    var dtype: DType
    var pattern: SparsityPattern
    var sparsity: Double
    var format: TargetFormat
  }

  static let layers = [
    Layer(name: "mlp.0.weight", shape: [512, 256], dtype: .float16, pattern: .twoFour, sparsity: 0.5, format: .semiStructured),
    Layer(name: "mlp.2.weight", shape: [256, 512], dtype: .float32, pattern: .block(rows: 16, columns: 16), sparsity: 0.9, format: .bsr(rows: 16, columns: 16)),
    Layer(name: "head.weight", shape: [64, 256], dtype: .float32, pattern: .unstructured, sparsity: 0.9, format: .csr),
  ]

  struct Record: Codable {
    var tensor: String
    var pattern: String
    var format: String
    var sparsity: Double
    var conforms: Bool
    var denseBytes: Int
    var sparseBytes: Int
    var roundTripExact: Bool
    var outputsEqual: Bool
    var picture: String
  }

  func run() throws {
    try FileManager.default.createDirectory(atPath: outputDir, withIntermediateDirectories: true)
    var rng = SeededGenerator(seed: seed)
    var dense = TensorArchive(metadata: ["source": "sparsity demo, seed \(seed)"])
    var sparse = TensorArchive(metadata: dense.metadata)
    var records: [Record] = []
    let x = Tensor.randomNormal([8, 512], using: &rng)
    for layer in Demo.layers {
      let weight = Tensor.randomNormal(layer.shape, standardDeviation: 0.05, using: &rng)
      // N:M levels mean "fraction of groups made N:M": every group here.
      let level = if case .nOfM = layer.pattern { 1.0 } else { layer.sparsity }
      let mask = try Magnitude.mask(for: weight, pattern: layer.pattern, sparsityLevel: level, name: layer.name)
      let pruned = weight.masked(by: mask.tensor).converted(to: layer.dtype)
      let stored = try layer.format.compress(pruned, name: layer.name)
      dense.tensors.append((layer.name, .dense(pruned)))
      sparse.tensors.append((layer.name, stored))
      let picture = "\(layer.name).svg"
      try Data(MaskPicture.svg(Mask(nonzerosOf: pruned), title: "\(layer.name): \(layer.pattern)").utf8)
        .write(to: URL(fileURLWithPath: outputDir).appendingPathComponent(picture), options: .atomic)
      let input = x.sliced(0..<layer.shape[1], axis: 1)
      records.append(
        Record(
          tensor: layer.name, pattern: layer.pattern.description, format: stored.formatName,
          sparsity: pruned.sparsity, conforms: pruned.conforms(to: layer.pattern),
          denseBytes: pruned.byteCount, sparseBytes: stored.byteCount, roundTripExact: false,
          outputsEqual: Tensor.referenceLinear(input, weight: pruned.converted(to: .float32))
            == Tensor.referenceLinear(input, weight: stored.dense().converted(to: .float32)),
          picture: picture))
    }
    let densePath = outputDir + "/dense.safetensors"
    let sparsePath = outputDir + "/sparse.safetensors"
    try dense.write(to: densePath)
    try sparse.write(to: sparsePath)
    // Read both files back: the sparse file must decompress to the dense one bit for bit.
    let denseBack = try TensorArchive(contentsOf: densePath)
    let sparseBack = try TensorArchive(contentsOf: sparsePath)
    for i in records.indices {
      let name = records[i].tensor
      records[i].roundTripExact = denseBack[name]?.dense() == sparseBack[name]?.dense()
    }
    if json {
      let encoder = JSONEncoder()
      encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
      encoder.keyEncodingStrategy = .convertToSnakeCase
      say(String(decoding: try encoder.encode(records), as: UTF8.self))
    } else {
      say("Pruned a synthetic 3-layer model by magnitude and stored each weight sparsely (seed \(seed)):\n")
      say(
        table(
          ["TENSOR", "PATTERN", "SPARSITY", "CONFORMS", "FORMAT", "DENSE", "SPARSE", "RATIO", "ROUND TRIP", "x·Wᵀ EQUAL"],
          records.map {
            [
              $0.tensor, $0.pattern, formatPercent($0.sparsity), $0.conforms ? "yes" : "NO", $0.format,
              formatBytes($0.denseBytes), formatBytes($0.sparseBytes),
              formatPercent(Double($0.sparseBytes) / Double($0.denseBytes)), $0.roundTripExact ? "exact" : "DIFFERS",
              $0.outputsEqual ? "yes" : "NO",
            ]
          }))
      say("\nWrote \(densePath), \(sparsePath) and mask pictures \(records.map(\.picture).joined(separator: ", ")) in \(outputDir)/.")
      say("Look inside with: sparsity inspect \(sparsePath)")
    }
    if records.contains(where: { !$0.conforms || !$0.roundTripExact || !$0.outputsEqual }) {
      throw CLIError("the demo's checks failed (see the table)")
    }
  }
}
