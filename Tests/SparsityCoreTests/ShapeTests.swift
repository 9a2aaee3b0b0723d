import PropertyBased
import SparsityCore
import SparsityTestSupport
import Testing

/// One dtype per element width (1, 2, 4, 8 bytes), plus bool and a storage-only type.
private let widthDTypes: [DType] = [
  .uint8, .bool, .float8E4M3, .bfloat16, .float16, .float32, .int32, .float64, .complex64,
]

private let shapes: [[Int]] = [
  [1, 1], [1, 7], [7, 1], [3, 5], [33, 65], [64, 32], [0, 3], [40, 1],
  [2, 3, 4], [1, 5, 3], [3, 1, 7], [0, 2, 3],
  [2, 3, 4, 5], [1, 2, 1, 3], [3, 2, 5, 1],
]

private func permutations(_ n: Int) -> [[Int]] {
  if n == 0 { return [[]] }
  return permutations(n - 1).flatMap { p in (0...p.count).map { i in var q = p; q.insert(n - 1, at: i); return q } }
}

/// Reference permutation by index arithmetic on raw element bytes.
private func referencePermuted(_ t: Tensor, _ axes: [Int]) -> Tensor {
  let width = t.dtype.byteWidth!
  let newShape = axes.map { t.shape[$0] }
  let src = bytes(of: t)
  var out = [UInt8](repeating: 0, count: src.count)
  for o in 0..<t.count {
    let index = multiIndex(o, in: newShape)
    var source = [Int](repeating: 0, count: t.rank)
    for (i, axis) in axes.enumerated() { source[axis] = index[i] }
    let s = flatIndex(source, in: t.shape)
    out[o * width..<(o + 1) * width] = src[s * width..<(s + 1) * width]
  }
  return tensor(bytes: out, shape: newShape, dtype: t.dtype)
}

/// Reference slice by index arithmetic.
private func referenceSliced(_ t: Tensor, _ range: Range<Int>, axis: Int) -> Tensor {
  let width = t.dtype.byteWidth!
  var newShape = t.shape
  newShape[axis] = range.count
  let src = bytes(of: t)
  var out = [UInt8]()
  for o in 0..<Tensor.elementCount(newShape) {
    var index = multiIndex(o, in: newShape)
    index[axis] += range.lowerBound
    let s = flatIndex(index, in: t.shape)
    out += src[s * width..<(s + 1) * width]
  }
  return tensor(bytes: out, shape: newShape, dtype: t.dtype)
}

/// Reference concatenation: element at index i along `axis` comes from the piece that holds it.
private func referenceConcatenated(_ pieces: [Tensor], axis: Int) -> Tensor {
  let width = pieces[0].dtype.byteWidth!
  var newShape = pieces[0].shape
  newShape[axis] = pieces.map { $0.shape[axis] }.reduce(0, +)
  let sources = pieces.map { bytes(of: $0) }
  var out = [UInt8]()
  for o in 0..<Tensor.elementCount(newShape) {
    var index = multiIndex(o, in: newShape)
    var piece = 0
    while index[axis] >= pieces[piece].shape[axis] {
      index[axis] -= pieces[piece].shape[axis]
      piece += 1
    }
    let s = flatIndex(index, in: pieces[piece].shape)
    out += sources[piece][s * width..<(s + 1) * width]
  }
  return tensor(bytes: out, shape: newShape, dtype: pieces[0].dtype)
}

@Suite("Shape operations")
struct ShapeTests {
  @Test(arguments: [
    ([2, 6], [3, -1], [3, 4]), ([2, 6], [-1], [12]), ([2, 3, 4], [4, -1, 3], [4, 2, 3]),
    ([0, 5], [-1, 5], [0, 5]), ([12], [2, 2, 3], [2, 2, 3]), ([], [1, -1], [1, 1]), ([1], [], []),
    ([3, 4], [-1, 1, 2], [6, 1, 2]), ([5, 1], [5], [5]),
  ])
  func reshapeInfersMinusOne(_ shape: [Int], _ request: [Int], _ expected: [Int]) {
    let t = randomBitsTensor(shape, dtype: .float32, seed: 1)
    let r = t.reshaped(request)
    #expect(r.shape == expected)
    #expect(bytes(of: r) == bytes(of: t), "reshape keeps the row-major elements")
    var inPlace = t
    inPlace.reshape(to: request)
    #expect(inPlace.shape == expected)
    #expect(t.shape == shape)
  }

  @Test(arguments: widthDTypes, shapes)
  func permutedMatchesIndexFormula(_ dtype: DType, _ shape: [Int]) {
    let t = randomBitsTensor(shape, dtype: dtype, seed: UInt64(shape.reduce(7, *) + dtype.bitWidth))
    for axes in permutations(shape.count) {
      let p = t.permuted(axes)
      #expect(p.shape == axes.map { shape[$0] })
      expectBitwiseEqual(p, referencePermuted(t, axes), "axes \(axes)")
      // The inverse permutation restores the tensor.
      var inverse = [Int](repeating: 0, count: axes.count)
      for (i, a) in axes.enumerated() { inverse[a] = i }
      expectBitwiseEqual(p.permuted(inverse), t, "inverse of \(axes)")
    }
    if shape.count == 2 {
      expectBitwiseEqual(t.transposed(), referencePermuted(t, [1, 0]), "transposed")
      expectBitwiseEqual(t.transposed().transposed(), t)
    }
  }

  @Test(arguments: widthDTypes, shapes)
  func slicedAlongEachAxis(_ dtype: DType, _ shape: [Int]) {
    let t = randomBitsTensor(shape, dtype: dtype, seed: 11)
    for axis in 0..<shape.count {
      let n = shape[axis]
      var ranges: [Range<Int>] = [0..<n, 0..<0, n..<n]
      if n >= 1 { ranges += [0..<1, (n - 1)..<n] }
      if n >= 3 { ranges += [1..<(n - 1)] }
      for range in ranges {
        let s = t.sliced(range, axis: axis)
        expectBitwiseEqual(s, referenceSliced(t, range, axis: axis), "axis \(axis), \(range)")
      }
    }
  }

  @Test func slicedExample() {
    let x = Tensor((0..<12).map(Float.init), shape: [3, 4])
    #expect(x.sliced(1..<3, axis: 1).scalars(as: Float.self) == [1, 2, 5, 6, 9, 10])
    #expect(x.sliced(2..<3).scalars(as: Float.self) == [8, 9, 10, 11])
    #expect(x.sliced(1..<3, axis: 1).shape == [3, 2])
  }

  @Test(arguments: widthDTypes, shapes)
  func concatenatedAlongEachAxis(_ dtype: DType, _ shape: [Int]) {
    for axis in 0..<shape.count {
      // Three pieces with different extents along `axis` (one of them empty).
      let extents = [shape[axis], 0, 2]
      let pieces = extents.enumerated().map { i, e -> Tensor in
        var s = shape
        s[axis] = e
        return randomBitsTensor(s, dtype: dtype, seed: UInt64(100 + i))
      }
      let c = Tensor.concatenated(pieces, axis: axis)
      expectBitwiseEqual(c, referenceConcatenated(pieces, axis: axis), "axis \(axis)")
      // Splitting with slices and joining again is the identity.
      let t = pieces[0]
      let cut = shape[axis] / 2
      let joined = Tensor.concatenated([t.sliced(0..<cut, axis: axis), t.sliced(cut..<shape[axis], axis: axis)], axis: axis)
      expectBitwiseEqual(joined, t, "split at \(cut) along \(axis)")
    }
    let single = randomBitsTensor(shape, dtype: dtype, seed: 3)
    expectBitwiseEqual(Tensor.concatenated([single]), single)
  }

  @Test func concatenatedExample() {
    let a = Tensor([1, 2, 3, 4] as [Int32], shape: [2, 2])
    let b = Tensor([5, 6] as [Int32], shape: [2, 1])
    #expect(Tensor.concatenated([a, b], axis: 1).scalars(as: Int32.self) == [1, 2, 5, 3, 4, 6])
    #expect(Tensor.concatenated([a, a], axis: 0).scalars(as: Int32.self) == [1, 2, 3, 4, 1, 2, 3, 4])
  }

  @Test func permutedProperty() async {
    await propertyCheck(
      count: 100, input: Gen.int(in: 1...4), Gen.int(in: 0...5), Gen.int(in: 0..<widthDTypes.count),
      Gen.int(in: 0...1000)
    ) { rank, maxExtent, dtypeIndex, seed in
      var rng = SeededGenerator(seed: UInt64(seed))
      let shape = (0..<rank).map { _ in Int(rng.next() % UInt64(maxExtent + 1)) }
      let axes = (0..<rank).shuffled(using: &rng)
      let t = randomBitsTensor(shape, dtype: widthDTypes[dtypeIndex], seed: UInt64(seed))
      expectBitwiseEqual(t.permuted(axes), referencePermuted(t, axes), "shape \(shape), axes \(axes)")
    }
  }
}
