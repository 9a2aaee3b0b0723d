import SparsityCore
import SparsityTestSupport
import Testing

@Suite("Reference matmul and closeness")
struct MatmulTests {
  @Test(arguments: [DType.float32, .float64, .int32, .float16, .bfloat16])
  func matmulHandComputed(_ dtype: DType) {
    let a = Tensor(doubles: [1, 2, 3, 4], shape: [2, 2], dtype: dtype)
    let b = Tensor(doubles: [5, 6, 7, 8], shape: [2, 2], dtype: dtype)
    let c = Tensor.referenceMatmul(a, b)
    #expect(c.dtype == dtype)
    #expect(c.shape == [2, 2])
    #expect(c.doubleValues == [19, 22, 43, 50])

    // [2, 3] · [3, 1]
    let x = Tensor(doubles: [1, 0, -1, 2, 3, 4], shape: [2, 3], dtype: dtype)
    let y = Tensor(doubles: [2, 5, 1], shape: [3, 1], dtype: dtype)
    #expect(Tensor.referenceMatmul(x, y).doubleValues == [1, 23])
    #expect(Tensor.referenceMatmul(x, y).shape == [2, 1])
  }

  @Test func matmulEdgeShapes() {
    // k = 0: the product is all zeros.
    let z = Tensor.referenceMatmul(Tensor(zeros: [3, 0]), Tensor(zeros: [0, 2]))
    #expect(z == Tensor(zeros: [3, 2]))
    #expect(Tensor.referenceMatmul(Tensor(zeros: [0, 4]), Tensor(zeros: [4, 5])).shape == [0, 5])
    // Accumulation happens in Double: 2^24 + 1 + 1 is exact before rounding to Float.
    let a = Tensor([16_777_216, 1, 1] as [Float], shape: [1, 3])
    let b = Tensor([1, 1, 1] as [Float], shape: [3, 1])
    #expect(Tensor.referenceMatmul(a, b).scalars(as: Float.self) == [16_777_218])
    // Integer results saturate.
    let i = Tensor([100, 100] as [Int8], shape: [1, 2])
    #expect(Tensor.referenceMatmul(i, Tensor([2, 2] as [Int8], shape: [2, 1])).scalars(as: Int8.self) == [127])
  }

  @Test func matmulMatchesNaiveTripleLoopOnRandomData() {
    var rng = SeededGenerator(seed: 5)
    let a = Tensor.randomNormal([7, 13], using: &rng)
    let b = Tensor.randomNormal([13, 5], using: &rng)
    let (x, y) = (a.doubleValues, b.doubleValues)
    var expected = [Double](repeating: 0, count: 35)
    for i in 0..<7 { for j in 0..<5 { for p in 0..<13 { expected[i * 5 + j] += x[i * 13 + p] * y[p * 5 + j] } } }
    expectClose(Tensor.referenceMatmul(a, b), Tensor(doubles: expected, shape: [7, 5], dtype: .float32), relativeTolerance: 1e-6)
  }

  @Test func linearHandComputed() {
    // x: [2 tokens, 3 in], W: [2 out, 3 in], b: [2]
    let x = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    let w = Tensor([1, 0, -1, 0.5, 0.5, 0.5] as [Float], shape: [2, 3])
    let b = Tensor([10, -1] as [Float])
    let y = Tensor.referenceLinear(x, weight: w, bias: b)
    #expect(y.shape == [2, 2])
    #expect(y.scalars(as: Float.self) == [8, 2, 8, 6.5])
    let noBias = Tensor.referenceLinear(x, weight: w)
    #expect(noBias.scalars(as: Float.self) == [-2, 3, -2, 7.5])
    // y = x · Wᵀ
    #expect(noBias == Tensor.referenceMatmul(x, w.transposed()))
  }

  @Test func linearKeepsTheInputDType() {
    let x = Tensor([1, 2] as [Int32], shape: [1, 2])
    let w = Tensor([3, 4, 5, 6] as [Int32], shape: [2, 2])
    let y = Tensor.referenceLinear(x, weight: w, bias: Tensor([1, 1] as [Int32]))
    #expect(y.dtype == .int32)
    #expect(y.scalars(as: Int32.self) == [12, 18])
  }

  struct CloseCase: Sendable, CustomTestStringConvertible {
    var actual: [Float]
    var expected: [Float]
    var rtol: Double
    var atol: Double
    var mismatch: Int?
    var testDescription: String { "\(actual) vs \(expected)" }
  }

  @Test(arguments: [
    CloseCase(actual: [1, 2, 3], expected: [1, 2, 3], rtol: 0, atol: 0, mismatch: nil),
    CloseCase(actual: [1, 2.001, 3], expected: [1, 2, 3], rtol: 1e-3, atol: 0, mismatch: nil),
    CloseCase(actual: [1, 2.01, 3], expected: [1, 2, 3], rtol: 1e-3, atol: 0, mismatch: 1),
    CloseCase(actual: [1, 2.01, 3.5], expected: [1, 2, 3], rtol: 0, atol: 0.02, mismatch: 2),
    CloseCase(actual: [0, 1e-9], expected: [0, 0], rtol: 1e-5, atol: 1e-8, mismatch: nil),
    CloseCase(actual: [0, 1e-7], expected: [0, 0], rtol: 1e-5, atol: 1e-8, mismatch: 1),
    CloseCase(actual: [.nan], expected: [.nan], rtol: 1, atol: 1, mismatch: 0),
    CloseCase(actual: [1], expected: [.nan], rtol: 1, atol: 1, mismatch: 0),
    CloseCase(actual: [.infinity, -.infinity], expected: [.infinity, -.infinity], rtol: 0, atol: 0, mismatch: nil),
    CloseCase(actual: [.infinity], expected: [-.infinity], rtol: 1, atol: 1, mismatch: 0),
    CloseCase(actual: [1e30], expected: [.infinity], rtol: 1, atol: 1, mismatch: 0),
    CloseCase(actual: [-0.0], expected: [0], rtol: 0, atol: 0, mismatch: nil),
  ])
  func isCloseAndFirstMismatch(_ c: CloseCase) {
    let a = Tensor(c.actual)
    let e = Tensor(c.expected)
    let m = a.firstMismatch(with: e, relativeTolerance: c.rtol, absoluteTolerance: c.atol)
    #expect(m?.index == c.mismatch)
    if let m, let i = c.mismatch {
      #expect(m.value.bitPattern == Double(c.actual[i]).bitPattern || (m.value.isNaN && c.actual[i].isNaN))
      #expect(m.expected.bitPattern == Double(c.expected[i]).bitPattern || (m.expected.isNaN && c.expected[i].isNaN))
    }
    #expect(a.isClose(to: e, relativeTolerance: c.rtol, absoluteTolerance: c.atol) == (c.mismatch == nil))
  }

  @Test func closenessIsRelativeToTheExpectedValue() {
    // |a - b| <= atol + rtol·|b|, with b the argument: asymmetric like NumPy.
    let a = Tensor([2] as [Float])
    let b = Tensor([1] as [Float])
    #expect(a.isClose(to: b, relativeTolerance: 1, absoluteTolerance: 0))
    #expect(!b.isClose(to: a, relativeTolerance: 0.4, absoluteTolerance: 0))
    #expect(b.isClose(to: a, relativeTolerance: 0.5, absoluteTolerance: 0))
  }

  @Test func shapeMismatchReportsIndexMinusOne() {
    let a = Tensor([1, 2] as [Float])
    let b = Tensor([1, 2] as [Float], shape: [1, 2])
    #expect(a.firstMismatch(with: b)?.index == -1)
    #expect(!a.isClose(to: b))
    // Dtypes may differ: values are compared as numbers.
    #expect(a.isClose(to: Tensor([1, 2] as [Double])))
    #expect(a.isClose(to: Tensor([1, 2] as [Int8])))
  }
}
