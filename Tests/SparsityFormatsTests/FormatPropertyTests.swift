import PropertyBased
import SparsityCore
import SparsityFormats
import SparsityTestSupport
import Testing

/// Random shapes, sparsities and dtypes round-trip exactly through every format.
@Suite("Format properties")
struct FormatPropertyTests {
  static let dtypes = formatDTypes + extraDTypes
  /// F8_E8M0 has no zero, so it cannot hold an N:M sparse matrix.
  static let nmDTypes = dtypes.filter { $0 != .float8E8M0 }

  @Test func csrAndCOORoundTrip() async {
    await propertyCheck(
      count: 200, input: Gen.int(in: 0...40), Gen.int(in: 0...40), Gen.int(in: 0...100),
      Gen.int(in: 0..<Self.dtypes.count), Gen.int(in: 0...1_000_000)
    ) { rows, columns, percent, d, seed in
      let dtype = Self.dtypes[d]
      let dense = randomSparse(Shape(rows, columns), dtype: dtype, density: Double(percent) / 100, seed: UInt64(seed))
      let nnz = dense.nonzeroCount
      let w = width(dtype)
      do {
        let csr = try CSRMatrix(dense: dense)
        expectBitwiseEqual(csr.dense(), dense, "csr \(rows)x\(columns) \(dtype)")
        try csr.checkInvariants()
        #expect(csr.storedValueCount == nnz)
        #expect(csr.byteCount == nnz * w + 4 * (rows + 1 + nnz))
        let coo = try COOMatrix(dense: dense)
        expectBitwiseEqual(coo.dense(), dense, "coo \(rows)x\(columns) \(dtype)")
        try coo.checkInvariants()
        #expect(coo.byteCount == nnz * w + 8 * nnz)
        // Both index the same nonzeros in the same order.
        #expect(coo.columnIndices == csr.columnIndices)
        #expect(coo.values == csr.values)
      } catch {
        Issue.record("\(rows)x\(columns) \(dtype): \(error)")
      }
    }
  }

  @Test func bsrRoundTrips() async {
    let extents = [1, 2, 3, 4, 8]
    await propertyCheck(
      count: 200, input: Gen.int(in: 0..<extents.count), Gen.int(in: 0..<extents.count), Gen.int(in: 0...6),
      Gen.int(in: 0...6), Gen.int(in: 0...100), Gen.int(in: 0..<Self.dtypes.count), Gen.int(in: 0...1_000_000)
    ) { bri, bci, gridRows, gridColumns, percent, d, seed in
      let (br, bc) = (extents[bri], extents[bci])
      let (rows, columns) = (gridRows * br, gridColumns * bc)
      let dtype = Self.dtypes[d]
      let density = Double(percent) / 100
      // Half the cases block-structured, half unstructured.
      let keep =
        seed % 2 == 0
        ? randomBlockKeep(rows: rows, columns: columns, br: br, bc: bc, density: density, seed: UInt64(seed))
        : randomKeep(rows: rows, columns: columns, density: density / 4, seed: UInt64(seed))
      let dense = matrix(keeping: keep, rows: rows, columns: columns, dtype: dtype, seed: UInt64(seed))
      do {
        let bsr = try BSRMatrix(dense: dense, blockRows: br, blockColumns: bc)
        expectBitwiseEqual(bsr.dense(), dense, "\(rows)x\(columns) blocks \(br)x\(bc) \(dtype)")
        try bsr.checkInvariants()
        let reference = referenceBSR(dense, block: Block(br, bc))
        #expect(bsr.columnIndices == reference.columns)
        #expect(bsr.rowOffsets == reference.offsets)
        let blocks = reference.columns.count
        #expect(bsr.byteCount == blocks * br * bc * width(dtype) + 4 * (gridRows + 1 + blocks))
        #expect(try BSRMatrix(shape: bsr.shape, rowOffsets: bsr.rowOffsets, columnIndices: bsr.columnIndices, values: bsr.values, name: "w") == bsr)
      } catch {
        Issue.record("\(rows)x\(columns) blocks \(br)x\(bc) \(dtype): \(error)")
      }
    }
  }

  @Test func semiStructuredRoundTrips() async {
    await propertyCheck(
      count: 200, input: Gen.int(in: 0..<nmPatterns.count), Gen.int(in: 0...20), Gen.int(in: 0...50),
      Gen.int(in: 0...100), Gen.int(in: 0..<Self.dtypes.count), Gen.int(in: 0...1_000_000)
    ) { pi, rows, columns, percent, d, seed in
      let p = nmPatterns[pi]
      let dtype = Self.nmDTypes[d % Self.nmDTypes.count]
      let keep = randomNOfMKeep(rows: rows, columns: columns, n: p.n, m: p.m, density: Double(percent) / 100, seed: UInt64(seed))
      let dense = matrix(keeping: keep, rows: rows, columns: columns, dtype: dtype, seed: UInt64(seed))
      do {
        let s = try SemiStructuredMatrix(dense: dense, n: p.n, m: p.m)
        expectBitwiseEqual(s.dense(), dense, "\(p) \(rows)x\(columns) \(dtype)")
        try s.checkInvariants()
        let stored = rows * ((columns + p.m - 1) / p.m) * p.n
        #expect(s.storedValueCount == stored)
        #expect(s.byteCount == stored * width(dtype) + (stored * p.bits + 7) / 8)
        let reference = referenceLogical(dense, n: p.n, m: p.m)
        #expect(s.indices == reference.positions)
        #expect(bytes(of: s.values) == reference.values)
        #expect(try SemiStructuredMatrix(shape: s.shape, n: p.n, m: p.m, values: s.values, indices: s.indices, name: "w") == s)
      } catch {
        Issue.record("\(p) \(rows)x\(columns) \(dtype): \(error)")
      }
    }
  }

  /// Any matrix either compresses to N:M exactly, or is refused with the first group (in
  /// row-major order) that holds more than N nonzeros.
  @Test func semiStructuredAcceptsExactlyTheConformingMatrices() async {
    await propertyCheck(
      count: 200, input: Gen.int(in: 0..<nmPatterns.count), Gen.int(in: 1...8), Gen.int(in: 1...40),
      Gen.int(in: 0...100), Gen.int(in: 0...1_000_000)
    ) { pi, rows, columns, percent, seed in
      let p = nmPatterns[pi]
      let dense = randomSparse(Shape(rows, columns), dtype: .float32, density: Double(percent) / 100, seed: UInt64(seed))
      let nonzero = dense.nonzeroMask.scalars(as: Bool.self)
      var first: (row: Int, columns: Range<Int>, count: Int)?
      search: for r in 0..<rows {
        for c0 in stride(from: 0, to: columns, by: p.m) {
          let cc = c0..<min(c0 + p.m, columns)
          let count = cc.filter { nonzero[r * columns + $0] }.count
          if count > p.n {
            first = (r, cc, count)
            break search
          }
        }
      }
      do {
        let s = try SemiStructuredMatrix(dense: dense, n: p.n, m: p.m, name: "x")
        #expect(first == nil, "accepted a matrix that breaks \(p) at \(String(describing: first))")
        expectBitwiseEqual(s.dense(), dense)
      } catch {
        if let first {
          #expect(
            error as? SparseFormatError
              == .patternViolation(
                tensor: "x", pattern: "\(p.n):\(p.m)", rows: first.row..<(first.row + 1), columns: first.columns,
                nonzeros: first.count, allowed: p.n))
        } else {
          Issue.record("refused a conforming matrix: \(error)")
        }
      }
    }
  }
}
