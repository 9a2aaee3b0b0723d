import ArgumentParser
import Dispatch
import Foundation
import Sparsity

/// Inference with a saved digits model (the weights `train -o` or `prune` wrote).
struct Classify: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Classify the built-in digits test images with a saved MLP or ViT and report the accuracy.",
    discussion: """
      --weights is a safetensors file of the model's parameters (from `sparsity train -o`, possibly pruned and \
      compressed by `sparsity prune`). Every Linear whose zeros suit a sparse form (2:4, BSR, CSR) runs packed \
      in it, the others packed dense: only packed weights stay resident.
      """)

  @Option(help: "Model: mlp or vit.")
  var model = "mlp"

  @Option(help: "The model's weights (safetensors).")
  var weights: String

  @Flag(help: "Print the resident weight bytes and the load time on standard error.")
  var verbose = false

  @OptionGroup var jsonOption: JSONOption
  var json: Bool { jsonOption.json }

  func run() throws {
    guard let kind = DigitsModel(rawValue: model) else { throw CLIError("--model must be one of mlp, vit; got '\(model)'") }
    let start = DispatchTime.now()
    let classifier = try DigitsModel.load(kind, weights: weights)
    if verbose {
      let seconds = Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e9
      FileHandle.standardError.write(Data("\(describeResidentWeights(classifier)); loaded in \(String(format: "%.4f", seconds)) s\n".utf8))
    }
    let test = LabeledData(try Digits.builtIn().split().test)
    let correct = accuracy(of: classifier, on: test)
    let forms = classifier.packedLayers().map { "\($0.name): \($0.layer.weight.form)" }
    if json {
      let data = try JSONSerialization.data(
        withJSONObject: ["model": model, "accuracy": correct, "images": test.count, "layers": forms], options: [.sortedKeys])
      say(String(decoding: data, as: UTF8.self))
    } else {
      say("\(model): \(formatPercent(correct)) of \(test.count) test images; layers \(forms.joined(separator: ", "))")
    }
  }
}
