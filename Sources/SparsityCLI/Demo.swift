import ArgumentParser
import Foundation
import Sparsity

struct Demo: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Placeholder; replaced below.")
  func run() throws {}
}
