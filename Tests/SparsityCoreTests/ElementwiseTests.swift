import SparsityCore
import SparsityTestSupport
import Testing

/// The index into a tensor of shape `shape` that broadcasts to output index `index`.
private func broadcastSource(_ index: [Int], _ shape: [Int]) -> Int {
  let offset = index.count - shape.count
  let own = (0..<shape.count).map { shape[$0] == 1 ? 0 : index[$0 + offset] }
  return flatIndex(own, in: shape)
}

private func referenceBroadcastShape(_ a: [Int], _ b: [Int]) -> [Int] {
  let rank = max(a.count, b.count)
  let pa = [Int](repeating: 1, count: rank - a.count) + a
  let pb = [Int](repeating: 1, count: rank - b.count) + b
  return zip(pa, pb).map { $0 == 1 ? $1 : $0 }
}

private func apply(_ op: BinaryOperation, _ x: Double, _ y: Double) -> Double {
  switch op {
  case .add: return x + y
  case .subtract: return x - y
  case .multiply: return x * y
  case .divide: return x / y
  case .maximum: return x.isNaN || y.isNaN ? .nan : (x > y ? x : y)
  case .minimum: return x.isNaN || y.isNaN ? .nan : (x < y ? x : y)
  }
}

private let operations: [BinaryOperation] = [.add, .subtract, .multiply, .divide, .maximum, .minimum]
private let comparisons: [(Comparison, @Sendable (Double, Double) -> Bool)] = [
  (.equal, { $0 == $1 }), (.notEqual, { $0 != $1 }), (.less, { $0 < $1 }),
  (.lessOrEqual, { $0 <= $1 }), (.greater, { $0 > $1 }), (.greaterOrEqual, { $0 >= $1 }),
]

private let shapePairs: [([Int], [Int])] = [
  ([2, 3], [2, 3]), ([3, 1, 5], [4, 1]), ([], [2, 3]), ([2, 3], [3]), ([1], [4]),
  ([4, 1], [1, 5]), ([2, 1, 3], [2, 4, 1]), ([0, 3], [3]), ([5], []), ([17, 33], [17, 33]),
]

@Suite("Elementwise")
struct ElementwiseTests {
  @Test(arguments: [
    ([2, 3], [3], [2, 3] as [Int]?), ([3, 1, 5], [4, 1], [3, 4, 5]), ([], [7], [7]), ([1], [0], [0]),
    ([2, 3], [2], nil), ([4, 1], [3, 2], nil), ([2, 1], [1, 2], [2, 2]), ([], [], []),
  ] as [([Int], [Int], [Int]?)])
  func broadcastShapes(_ a: [Int], _ b: [Int], _ expected: [Int]?) {
    #expect(Tensor.broadcastShape(a, b) == expected)
    #expect(Tensor.broadcastShape(b, a) == expected)
  }

  @Test(arguments: [DType.float32, .float64, .float16, .bfloat16, .int32, .int8, .uint8], shapePairs)
  func binaryOperationsMatchNaiveBroadcasting(_ dtype: DType, _ shapes: ([Int], [Int])) {
    let (sa, sb) = shapes
    let a = randomTensor(sa, dtype: dtype, seed: 1, density: 0.9)
    let b = randomTensor(sb, dtype: dtype, seed: 2, density: 0.9)
    let outShape = referenceBroadcastShape(sa, sb)
    let (x, y) = (a.doubleValues, b.doubleValues)
    for op in operations {
      let result = a.elementwise(op, b)
      var expected = [Double](repeating: 0, count: Tensor.elementCount(outShape))
      for o in 0..<expected.count {
        let index = multiIndex(o, in: outShape)
        expected[o] = apply(op, x[broadcastSource(index, sa)], y[broadcastSource(index, sb)])
      }
      expectBitwiseEqual(result, Tensor(doubles: expected, shape: outShape, dtype: dtype), "\(op)")
    }
    expectBitwiseEqual(a + b, a.elementwise(.add, b))
    expectBitwiseEqual(a - b, a.elementwise(.subtract, b))
    expectBitwiseEqual(a * b, a.elementwise(.multiply, b))
    expectBitwiseEqual(a / b, a.elementwise(.divide, b))
  }

  @Test func float32OperationsFollowIEEE() {
    let a = Tensor([1, -2, .nan, 0, 3, .infinity] as [Float])
    let b = Tensor([2, .nan, 1, 0, -0.0, 1] as [Float])
    func values(_ t: Tensor) -> [String] { t.scalars(as: Float.self).map { $0.isNaN ? "nan" : "\($0)" } }
    #expect(values(a.elementwise(.maximum, b)) == ["2.0", "nan", "nan", "0.0", "3.0", "inf"])
    #expect(values(a.elementwise(.minimum, b)) == ["1.0", "nan", "nan", "0.0", "-0.0", "1.0"])
    #expect(values(a / b) == ["0.5", "nan", "nan", "nan", "-inf", "inf"])
    // Broadcasting (not the same-shape fast path) gives the same answers.
    let row = Tensor([2, .nan, 1, 0, -0.0, 1] as [Float], shape: [1, 6])
    #expect(values(a.elementwise(.maximum, row)) == ["2.0", "nan", "nan", "0.0", "3.0", "inf"])
  }

  @Test func integerResultsSaturate() {
    let a = Tensor([100, -100, 7, 0] as [Int8])
    let b = Tensor([100, 100, 2, 0] as [Int8])
    #expect((a + b).scalars(as: Int8.self) == [127, 0, 9, 0])
    #expect((a * b).scalars(as: Int8.self) == [127, -128, 14, 0])
    #expect((a / b).scalars(as: Int8.self) == [1, -1, 3, 0], "7/2 truncates; 0/0 is NaN, which becomes 0")
    #expect((a - b).scalars(as: Int8.self) == [0, -128, 5, 0])
    let u = Tensor([3, 250] as [UInt8])
    #expect((u - Tensor([5, 5] as [UInt8])).scalars(as: UInt8.self) == [0, 245])
    #expect((u + Tensor([5, 10] as [UInt8])).scalars(as: UInt8.self) == [8, 255])
  }

  @Test(arguments: [DType.float32, .float16, .int32])
  func scalarOperationsAndMap(_ dtype: DType) {
    let t = Tensor(doubles: [1, -2, 3.5, 0], shape: [2, 2], dtype: dtype)
    let v = t.doubleValues
    #expect((t + 2).doubleValues == Tensor(doubles: v.map { $0 + 2 }, shape: [2, 2], dtype: dtype).doubleValues)
    #expect((t - 1).doubleValues == Tensor(doubles: v.map { $0 - 1 }, shape: [2, 2], dtype: dtype).doubleValues)
    #expect((t * 3).doubleValues == Tensor(doubles: v.map { $0 * 3 }, shape: [2, 2], dtype: dtype).doubleValues)
    #expect((t / 2).doubleValues == Tensor(doubles: v.map { $0 / 2 }, shape: [2, 2], dtype: dtype).doubleValues)
    #expect((-t).doubleValues == v.map { -$0 })
    #expect(t.abs().doubleValues == v.map(Swift.abs))
    #expect(t.map { $0 * $0 }.doubleValues == v.map { $0 * $0 })
    #expect(t.map { $0 }.shape == [2, 2])
    #expect(t.map { $0 }.dtype == dtype)
  }

  @Test func negationAndAbsOfFloats() {
    let t = Tensor([1, -2, 0, -0.0] as [Float])
    #expect((-t).scalars(as: Float.self).map(\.bitPattern) == [Float(-1), 2, -0.0, 0].map(\.bitPattern))
    #expect(t.abs().scalars(as: Float.self).map(\.bitPattern) == [Float(1), 2, 0, 0].map(\.bitPattern))
  }

  @Test(arguments: [DType.float32, .int16, .bfloat16], shapePairs)
  func comparisonsMatchNaiveBroadcasting(_ dtype: DType, _ shapes: ([Int], [Int])) {
    let (sa, sb) = shapes
    // Small integers so that equal values are common.
    let a = Tensor(doubles: randomDoubles(Tensor.elementCount(sa), seed: 3, in: -2...2).map { $0.rounded() }, shape: sa, dtype: dtype)
    let b = Tensor(doubles: randomDoubles(Tensor.elementCount(sb), seed: 4, in: -2...2).map { $0.rounded() }, shape: sb, dtype: dtype)
    let outShape = referenceBroadcastShape(sa, sb)
    let (x, y) = (a.doubleValues, b.doubleValues)
    for (comparison, reference) in comparisons {
      let result = a.compared(comparison, b)
      #expect(result.dtype == .bool)
      #expect(result.shape == outShape)
      let expected = (0..<Tensor.elementCount(outShape)).map { o -> Bool in
        let index = multiIndex(o, in: outShape)
        return reference(x[broadcastSource(index, sa)], y[broadcastSource(index, sb)])
      }
      #expect(result.scalars(as: Bool.self) == expected, "\(comparison)")
      #expect(a.compared(comparison, 1.0).scalars(as: Bool.self) == x.map { reference($0, 1) })
    }
  }

  @Test func comparisonsWithNaN() {
    let a = Tensor([Float.nan, 1])
    let b = Tensor([Float.nan, 1])
    #expect(a.compared(.equal, b).scalars(as: Bool.self) == [false, true])
    #expect(a.compared(.notEqual, b).scalars(as: Bool.self) == [true, false])
    #expect(a.compared(.less, .nan).scalars(as: Bool.self) == [false, false])
    #expect(a.compared(.greaterOrEqual, 1).scalars(as: Bool.self) == [false, true])
    #expect(Tensor([-0.0] as [Float]).compared(.equal, 0).scalars(as: Bool.self) == [true])
  }

  @Test(arguments: [DType.float32, .float16, .int8, .float64, .bool, .float8E5M2], [
    ([3, 4], [4]), ([3, 4], [3, 1]), ([3, 4], [1]), ([3, 4], []), ([3, 4], [3, 4]),
    ([2, 3, 5], [3, 1]), ([2, 3, 5], [2, 1, 5]), ([0, 4], [4]),
  ] as [([Int], [Int])])
  func maskedByBroadcastMask(_ dtype: DType, _ shapes: ([Int], [Int])) {
    let (shape, maskShape) = shapes
    let t = randomBitsTensor(shape, dtype: dtype, seed: 21)
    var rng = SeededGenerator(seed: 22)
    let keep = Tensor.randomBernoulli(maskShape, probability: 0.5, using: &rng)
    let result = t.masked(by: keep)
    let width = dtype.byteWidth!
    let src = bytes(of: t)
    let k = keep.scalars(as: Bool.self)
    var expected = src
    for o in 0..<t.count where !k[broadcastSource(multiIndex(o, in: shape), maskShape)] {
      for j in 0..<width { expected[o * width + j] = 0 }
    }
    expectBitwiseEqual(result, tensor(bytes: expected, shape: shape, dtype: dtype), "mask \(maskShape)")
    // The source is unchanged.
    #expect(bytes(of: t) == src)
  }

  @Test func maskedKeepsBitsAndZeroesDropped() {
    let t = Tensor([Float.nan, -0.0, 3, -4])
    let m = t.masked(by: Tensor([true, true, false, false]))
    #expect(m.scalars(as: Float.self).map(\.bitPattern) == [Float.nan.bitPattern, (-0.0 as Float).bitPattern, 0, 0])
    #expect(t.masked(by: Tensor(scalar: true)) == t)
    #expect(t.masked(by: Tensor(scalar: false)) == Tensor(zeros: [4]))
  }
}
