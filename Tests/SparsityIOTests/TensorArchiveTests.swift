import Foundation
import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing

@testable import SparsityIO

/// The sparse-tensor file convention: every stored form round-trips through a file, the N:M
/// layout's bytes are the documented ones, and broken N:M entries are errors naming the rule.
@Suite("TensorArchive: the sparse-tensor file convention")
struct TensorArchiveTests {
  /// A `[rows, columns]` matrix with at most `n` nonzeros in every `m` consecutive (ragged last group).
  static func nOfM(_ rows: Int, _ columns: Int, n: Int, m: Int, seed: UInt64, dtype: DType = .float32) -> Tensor {
    var g = SeededGenerator(seed: seed)
    var values = randomNormalFloats(rows * columns, seed: seed)
    for r in 0..<rows {
      for start in stride(from: 0, to: columns, by: m) {
        let width = min(m, columns - start)
        var order = Array(0..<width)
        order.shuffle(using: &g)
        for j in order.dropFirst(Int(g.next() % UInt64(n + 1))) { values[r * columns + start + j] = 0 }
      }
    }
    let t = Tensor(values, shape: [rows, columns])
    return dtype == .float32 ? t : t.converted(to: dtype)
  }

  static func roundTrip(_ tensors: [(name: String, value: StoredTensor)]) throws -> TensorArchive {
    try withTemporaryDirectory { directory in
      let path = directory + "/a.safetensors"
      try TensorArchive(tensors: tensors, metadata: ["note": "x"]).write(to: path)
      return try TensorArchive(contentsOf: path)
    }
  }

  @Test("every stored form reads back as written", arguments: [(2, 4, 64, 128), (2, 4, 7, 30), (4, 8, 5, 21), (1, 4, 3, 9), (3, 16, 4, 40)])
  func nOfMRoundTrips(n: Int, m: Int, rows: Int, columns: Int) throws {
    for dtype in [DType.float32, .float16, .bfloat16] {
      let dense = Self.nOfM(rows, columns, n: n, m: m, seed: UInt64(rows * columns), dtype: dtype)
      let stored = try StoredTensor.dense(dense).stored(as: WeightForm(.nOfM(n: n, m: m)), name: "w")
      if n == 2 && m == 4 && dtype != .float32 && rows % 32 == 0 && columns % 64 == 0 {
        guard case .cutlass = stored else { Issue.record("\(dtype) 2:4 of \(rows)×\(columns) should be CUTLASS"); continue }
      } else {
        guard case let .nOfM(matrix) = stored else { Issue.record("\(dtype) \(n):\(m) should be logical N:M"); continue }
        #expect(matrix.byteCount < dense.byteCount || columns < m)
      }
      let back = try Self.roundTrip([("w", stored), ("b", .dense(Tensor([1, 2, 3] as [Float], shape: [3])))])
      #expect(Set(back.tensors.map(\.name)) == ["w", "b"] && back.metadata == ["note": "x"])
      #expect(back["w"] == stored)
      expectBitwiseEqual(try #require(back["w"]).dense(), dense)
    }
  }

  @Test(
    "files written by an independent writer (numpy, scripts/make_sparse_convention_fixtures.py) decode to their dense matrix",
    arguments: ["f32-2of4", "f32-2of4-ragged", "f16-4of8", "f32-3of16", "f32-csr", "f32-bsr"])
  func independentWriter(_ name: String) throws {
    let archive = try TensorArchive(contentsOf: Fixtures.path("sparse/\(name).sft"))
    let stored = try #require(archive["w"])
    #expect(stored.form.isSparse)
    expectBitwiseEqual(stored.dense(), try #require(archive["w.dense"]).dense())
    // Our writer gives the same bytes back.
    let (plain, metadata) = try TensorArchive(tensors: [("w", stored)]).encoded()
    let file = try SafetensorsFile(contentsOf: Fixtures.path("sparse/\(name).sft"))
    for (component, tensor) in plain { expectBitwiseEqual(tensor, try file.tensor(named: component)) }
    #expect(metadata["sparsity:w"] == file.metadata["sparsity:w"])
  }

  @Test("the positions of 2:4 are 2 bits each, least significant first, rows byte-aligned")
  func positionBytes() throws {
    // Row 0: groups keep (0, 2) and (1, 3) → positions 0, 2, 1, 3 → 0b11_01_10_00.
    // Row 1: one group (1, 2) and a ragged group of two columns keeping (0, 1), padded to a byte.
    let a = Tensor([1, 0, 2, 0, 0, 3, 0, 4] as [Float], shape: [1, 8])
    let m = try SemiStructuredMatrix(dense: a, n: 2, m: 4, name: "a")
    #expect(m.packedPositions.scalars(as: UInt8.self) == [0b11_01_10_00])
    let b = Tensor([0, 5, 6, 0, 7, 8, 0, 0, 0, 0, 0, 0] as [Float], shape: [2, 6])
    let mb = try SemiStructuredMatrix(dense: b, n: 2, m: 4, name: "b")
    #expect(mb.packedPositions.shape == [2, 1])
    // Row 0: (1, 2), (0, 1) → 1, 2, 0, 1 → 0b01_00_10_01; row 1 all zero: fillers (2, 3), (2, 3).
    #expect(mb.packedPositions.scalars(as: UInt8.self) == [0b01_00_10_01, 0b11_10_11_10])
    // 4:8 uses 3 bits: positions cross byte boundaries.
    let c = Tensor([0, 1, 0, 1, 1, 0, 0, 1] as [Float], shape: [1, 8])
    let mc = try SemiStructuredMatrix(dense: c, n: 4, m: 8, name: "c")
    // 1, 3, 4, 7 → bits 001 011 100 111 → 0b1_011_001 0b0000_1111_0 … : 12 bits, 2 bytes.
    let bits = [1, 3, 4, 7].enumerated().reduce(0) { $0 | ($1.element << (3 * $1.offset)) }
    #expect(mc.packedPositions.scalars(as: UInt8.self) == [UInt8(bits & 0xFF), UInt8(bits >> 8)])
  }

  struct Broken: Sendable, CustomTestStringConvertible {
    var note: String
    var metadata: String
    var positions: [UInt8]
    var positionShape: [Int]
    var message: String
    var testDescription: String { note }
  }

  static let broken: [Broken] = [
    Broken(
      note: "missing n_of_m", metadata: #"{"format":"n_of_m","shape":[1,8]}"#, positions: [0b11_01_10_00], positionShape: [1, 1],
      message: #"format n_of_m needs "n_of_m":[N,M]"#),
    Broken(
      note: "positions of the wrong shape", metadata: #"{"format":"n_of_m","shape":[1,8],"n_of_m":[2,4]}"#, positions: [0, 0],
      positionShape: [1, 2], message: "positions must be U8 [1, 1]"),
    Broken(
      note: "positions not increasing", metadata: #"{"format":"n_of_m","shape":[1,8],"n_of_m":[2,4]}"#, positions: [0b11_01_00_10],
      positionShape: [1, 1], message: "row 0, group 0: positions must be increasing and below 4"),
    Broken(
      note: "an extra position byte", metadata: #"{"format":"n_of_m","shape":[1,6],"n_of_m":[2,4]}"#, positions: [0b01_00_10_01, 0b1],
      positionShape: [1, 2], message: "positions must be U8 [1, 1]"),
    Broken(
      note: "a nonzero past the last column", metadata: #"{"format":"n_of_m","shape":[1,6],"n_of_m":[2,4]}"#,
      positions: [0b11_10_10_01], positionShape: [1, 1], message: "row 0, group 1: a nonzero value sits past the last column"),
    Broken(
      note: "an impossible N:M", metadata: #"{"format":"n_of_m","shape":[1,8],"n_of_m":[5,4]}"#, positions: [0], positionShape: [1, 1],
      message: "N:M needs 1 ≤ N ≤ M ≤ 16, got 5:4"),
  ]

  @Test("a broken N:M entry is one error naming the tensor and the rule", arguments: broken)
  func brokenNOfM(_ c: Broken) throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/bad.safetensors"
      try SafetensorsFile.write(
        [("w.values", Tensor([1, 2, 3, 4] as [Float], shape: [1, 4])), ("w.positions", Tensor(c.positions, shape: c.positionShape))],
        metadata: ["sparsity:w": c.metadata], to: path)
      do {
        _ = try TensorArchive(contentsOf: path)
        Issue.record("\(c.note): accepted")
      } catch {
        let text = "\(error)"
        #expect(text.contains("'w'") && text.contains(c.message) && !text.contains("\n"), "\(text)")
      }
    }
  }

  @Test("unused bits after the last position must be zero")
  func unusedBits() throws {
    let values = Tensor([5, 6, 7, 8] as [Float], shape: [1, 4])
    // 6 columns: 4 positions × 2 bits = 8 bits, no spare; 5 columns with 1:4: 2 positions, 4 spare bits.
    #expect(throws: SparseFormatError.self) {
      try SemiStructuredMatrix(
        shape: [1, 5], n: 1, m: 4, values: Tensor([5, 6] as [Float], shape: [1, 2]), packedPositions: Tensor([0b0001_00_00] as [UInt8], shape: [1, 1]),
        name: "w")
    }
    let ok = try SemiStructuredMatrix(
      shape: [1, 6], n: 2, m: 4, values: values, packedPositions: Tensor([0b01_00_10_01] as [UInt8], shape: [1, 1]), name: "w")
    #expect(ok.dense().scalars(as: Float.self) == [0, 5, 6, 0, 7, 8])
  }
}
