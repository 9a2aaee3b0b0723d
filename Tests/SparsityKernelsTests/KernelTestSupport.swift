import SparsityCore
import SparsityFormats
import Testing

@testable import SparsityKernels

/// Expects `y` to equal `Tensor.referenceLinear(x, w, bias)` within relative error 1e-5,
/// measured per element against the magnitude of the sum (`|x|·|W|ᵀ + |b|`), which is the
/// scale fp32 rounding errors are proportional to; reports the first mismatch.
func expectMatchesReference(
  _ y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?, _ what: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  #expect(y.shape == Array(x.shape.dropLast()) + [weight.shape[0]], "\(what): shape", sourceLocation: sourceLocation)
  if let m = referenceMismatch(y, x: x, weight: weight, bias: bias) {
    Issue.record(
      "\(what): element \(m.index) (row \(m.index / Swift.max(1, weight.shape[0])), column \(m.index % Swift.max(1, weight.shape[0]))) is \(m.value), reference \(m.reference); worst relative error \(m.worst)",
      sourceLocation: sourceLocation)
  }
}

/// The first element of `y` whose error relative to Σ|x|·|w| (+|b|) exceeds 1e-5, or `nil`.
func referenceMismatch(_ y: Tensor, x: Tensor, weight: Tensor, bias: Tensor?)
  -> (index: Int, value: Float, reference: Float, worst: Double)?
{
  let x2 = x.reshaped([x.count / Swift.max(1, x.shape.last!), x.shape.last!])
  let reference = Tensor.referenceLinear(x2, weight: weight, bias: bias)
  let scale = Tensor.referenceLinear(x2.abs(), weight: weight.abs(), bias: bias?.abs())
  guard y.count == reference.count else { return (-1, .nan, .nan, .infinity) }
  let (a, r, s) = (y.floatValues, reference.floatValues, scale.floatValues)
  var worst = 0.0
  var first: Int? = nil
  for i in 0..<a.count {
    let error = Double(Swift.abs(a[i] - r[i])) / Swift.max(Double(s[i]), 1e-30)
    if a[i] != r[i] && !(error <= 1e-5) && first == nil { first = i }
    if a[i] != r[i] { worst = Swift.max(worst, error) }
  }
  return first.map { ($0, a[$0], r[$0], worst) }
}

/// Activations `[m, k]` in [-1, 1).
func activations(_ m: Int, _ k: Int, seed: UInt64) -> Tensor {
  SyntheticWeights.dense(rows: m, columns: k, seed: seed)
}

/// A bias `[n]`.
func biasVector(_ n: Int, seed: UInt64) -> Tensor {
  SyntheticWeights.dense(rows: 1, columns: n, seed: seed).reshaped([n])
}

/// Runs every kernel that can run `weight` (its own and the dense fallback) on `x`, with and
/// without bias, and checks each against the reference for `dense`.
func expectAllKernelsMatch(
  _ weight: LinearWeight, dense: Tensor, m: Int, seed: UInt64, _ what: String,
  sourceLocation: SourceLocation = #_sourceLocation
) {
  let x = activations(m, dense.shape[1], seed: seed)
  let b = biasVector(dense.shape[0], seed: seed &+ 7)
  for kernel in weight.ownKernels.filter({ !$0.isDense }) + [LinearKernel.denseGEMM, .denseGEMV] {
    for bias in [nil, b] {
      let y = weight.apply(x: x, bias: bias, kernel: kernel)
      expectMatchesReference(
        y, x: x, weight: dense, bias: bias, "\(what) m=\(m) \(kernel) bias=\(bias != nil)",
        sourceLocation: sourceLocation)
    }
  }
}
