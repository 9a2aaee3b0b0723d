import SparsityCore
import SparsityTestSupport
import Testing

private func reference(_ values: [Double], _ reduction: Reduction) -> Double {
  switch reduction {
  case .sum: return values.reduce(0, +)
  case .mean: return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
  case .max: return values.isEmpty || values.contains(where: \.isNaN) ? .nan : values.max()!
  case .min: return values.isEmpty || values.contains(where: \.isNaN) ? .nan : values.min()!
  case .l1Norm: return values.map(Swift.abs).reduce(0, +)
  case .l2Norm: return values.map { $0 * $0 }.reduce(0, +).squareRoot()
  }
}

private let reductions: [Reduction] = [.sum, .mean, .max, .min, .l1Norm, .l2Norm]

@Suite("Reductions")
struct ReductionTests {
  @Test(arguments: [
    (Reduction.sum, -2.0), (.mean, -0.5), (.max, 3), (.min, -4), (.l1Norm, 10), (.l2Norm, 30.0.squareRoot()),
  ])
  func reduceAllHandComputed(_ reduction: Reduction, _ expected: Double) {
    for dtype in [DType.float32, .float64, .int32, .int8, .float16, .bfloat16] {
      let t = Tensor(doubles: [1, -2, 3, -4], shape: [2, 2], dtype: dtype)
      #expect(t.reduced(reduction) == expected, "\(dtype)")
    }
  }

  @Test(arguments: [
    (Reduction.sum, 0.0), (.l1Norm, 0), (.l2Norm, 0),
  ])
  func reduceEmptyToZero(_ reduction: Reduction, _ expected: Double) {
    #expect(Tensor(zeros: [0, 3]).reduced(reduction) == expected)
  }

  @Test(arguments: [Reduction.mean, .max, .min])
  func reduceEmptyToNaN(_ reduction: Reduction) {
    #expect(Tensor(zeros: [0]).reduced(reduction).isNaN)
  }

  @Test(arguments: reductions)
  func nanPropagates(_ reduction: Reduction) {
    let t = Tensor([1, .nan, -3] as [Float])
    #expect(t.reduced(reduction).isNaN, "\(reduction)")
    #expect(t.reduced(reduction, axis: 0).scalars(as: Float.self)[0].isNaN)
  }

  @Test(arguments: [DType.float32, .float64, .int32, .bfloat16], [[2, 3, 4], [1, 5, 1], [3, 7], [6], [2, 0, 3]])
  func reduceAlongEachAxisMatchesNaive(_ dtype: DType, _ shape: [Int]) {
    let t = randomTensor(shape, dtype: dtype, seed: 31, density: 0.8)
    let values = t.doubleValues
    for axis in 0..<shape.count {
      var reducedShape = shape
      reducedShape.remove(at: axis)
      var kept = shape
      kept[axis] = 1
      for reduction in reductions {
        var expected = [Double](repeating: 0, count: Tensor.elementCount(reducedShape))
        for o in 0..<expected.count {
          var index = multiIndex(o, in: reducedShape)
          index.insert(0, at: axis)
          let line = (0..<shape[axis]).map { k -> Double in
            index[axis] = k
            return values[flatIndex(index, in: shape)]
          }
          expected[o] = reference(line, reduction)
        }
        let expectedTensor = Tensor(doubles: expected, shape: reducedShape, dtype: dtype)
        let r = t.reduced(reduction, axis: axis)
        #expect(r.dtype == dtype)
        expectClose(r, expectedTensor, relativeTolerance: 1e-12, absoluteTolerance: 0, "\(reduction) axis \(axis)")
        let k = t.reduced(reduction, axis: axis, keepingAxis: true)
        #expect(k.shape == kept)
        expectClose(k, expectedTensor.reshaped(kept), relativeTolerance: 1e-12, absoluteTolerance: 0, "\(reduction) axis \(axis) keeping")
      }
    }
  }

  @Test func integerSumsSaturate() {
    let t = Tensor([100, 100, 1, 2, -100, -100] as [Int8], shape: [3, 2])
    #expect(t.reduced(.sum, axis: 1).scalars(as: Int8.self) == [127, 3, -128])
    #expect(t.reduced(.sum, axis: 0).scalars(as: Int8.self) == [1, 2])
    #expect(t.reduced(.mean, axis: 1).scalars(as: Int8.self) == [100, 1, -100], "1.5 truncates to 1")
    #expect(t.reduced(.sum) == 3, "the whole-tensor reduction is a Double and does not saturate")
  }

  @Test func handComputedAxisExample() {
    let t = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    #expect(t.reduced(.sum, axis: 0).scalars(as: Float.self) == [5, 7, 9])
    #expect(t.reduced(.sum, axis: 1).scalars(as: Float.self) == [6, 15])
    #expect(t.reduced(.max, axis: 1, keepingAxis: true).shape == [2, 1])
    #expect(t.reduced(.max, axis: 1, keepingAxis: true).scalars(as: Float.self) == [3, 6])
    #expect(t.reduced(.min, axis: 0).scalars(as: Float.self) == [1, 2, 3])
    #expect(t.reduced(.l2Norm, axis: 1).scalars(as: Float.self) == [Float(14.0.squareRoot()), Float(77.0.squareRoot())])
  }
}
