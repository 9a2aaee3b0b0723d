import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityTestSupport
import Testing

@testable import SparsityPruning

/// The test target's fixture folder.
enum Fixtures {
  static let directory = fixturesDirectory(in: .module)

  static func file(_ name: String) throws -> SafetensorsFile {
    try SafetensorsFile(contentsOf: directory + "/" + name)
  }
}

/// A float32 matrix from nested rows.
func matrix(_ rows: [[Double]]) -> Tensor {
  Tensor(doubles: rows.flatMap { $0 }, shape: [rows.count, rows.first?.count ?? 0], dtype: .float32)
}

/// A bool mask from nested 0/1 rows.
func maskRows(_ rows: [[Int]]) -> [Bool] { rows.flatMap { $0.map { $0 != 0 } } }

/// The mask as nested 0/1 rows, for readable failure messages.
func rowsOf(_ mask: Mask) -> [[Int]] {
  let (rows, columns) = Mask.matrixView(mask.shape)
  let flags = mask.tensor.scalars(as: Bool.self)
  return (0..<rows).map { r in (0..<columns).map { flags[r * columns + $0] ? 1 : 0 } }
}

/// Checks that `mask` equals `expected` (0/1 rows), reporting the first differing position.
func expectMask(
  _ mask: Mask, equals expected: [[Int]], _ comment: String = "", sourceLocation: SourceLocation = #_sourceLocation
) {
  let actual = rowsOf(mask)
  if actual != expected {
    let flat = zip(actual.flatMap { $0 }, expected.flatMap { $0 })
    let first = flat.enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? -1
    Issue.record(
      "mask differs\(comment.isEmpty ? "" : " (\(comment))") first at flat index \(first): got \(actual), expected \(expected)",
      sourceLocation: sourceLocation)
  }
}

/// A seeded random matrix whose elements are all distinct (tie-free for magnitude ranking).
func randomMatrix(_ rows: Int, _ columns: Int, seed: UInt64, scale: Double = 1) -> Tensor {
  var rng = SeededGenerator(seed: seed)
  return Tensor.randomNormal([rows, columns], standardDeviation: scale, using: &rng)
}

/// Number of `false` flags in each row-major cell of a grid.
func prunedCount(_ mask: Mask) -> Int { mask.tensor.count - mask.keptCount }
