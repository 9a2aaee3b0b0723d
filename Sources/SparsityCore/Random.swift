/// A seeded, portable pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// The same seed gives the same sequence on every machine and every run, so every random
/// choice in the package (test data, initialisation, shuffling) is reproducible.
///
/// ```swift
/// var rng = SeededGenerator(seed: 42)
/// let w = Tensor.randomNormal([4, 8], using: &rng)
/// ```
public struct SeededGenerator: RandomNumberGenerator, Sendable {
  private var s: (UInt64, UInt64, UInt64, UInt64)

  public init(seed: UInt64) {
    var x = seed
    func splitMix() -> UInt64 {
      x &+= 0x9E37_79B9_7F4A_7C15
      var z = x
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    s = (splitMix(), splitMix(), splitMix(), splitMix())
  }

  public mutating func next() -> UInt64 {
    let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
    let t = s.1 << 17
    s.2 ^= s.0
    s.3 ^= s.1
    s.1 ^= s.2
    s.0 ^= s.3
    s.2 ^= t
    s.3 = s.3 << 45 | s.3 >> 19
    return result
  }

  /// A uniform `Double` in [0, 1) with 53 random bits.
  public mutating func nextUnitDouble() -> Double {
    Double(next() >> 11) * 0x1.0p-53
  }

  /// A standard normal sample (Box–Muller).
  public mutating func nextNormal() -> Double {
    var u = nextUnitDouble()
    while u == 0 { u = nextUnitDouble() }
    let v = nextUnitDouble()
    return (-2 * _log(u)).squareRoot() * _cos(2 * Double.pi * v)
  }
}

#if canImport(Glibc)
  import Glibc
  @inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
  @inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
#elseif canImport(Darwin)
  import Darwin
  @inline(__always) private func _log(_ x: Double) -> Double { Darwin.log(x) }
  @inline(__always) private func _cos(_ x: Double) -> Double { Darwin.cos(x) }
#endif

extension Tensor {
  /// Samples from a normal distribution.
  public static func randomNormal(
    _ shape: [Int], mean: Double = 0, standardDeviation: Double = 1, dtype: DType = .float32,
    using generator: inout SeededGenerator
  ) -> Tensor {
    let n = Tensor.elementCount(shape)
    var values = [Double](repeating: 0, count: n)
    for i in 0..<n { values[i] = mean + standardDeviation * generator.nextNormal() }
    return Tensor(doubles: values, shape: shape, dtype: dtype)
  }

  /// Samples uniformly from `range` (integers: truncated toward zero).
  public static func randomUniform(
    _ shape: [Int], in range: ClosedRange<Double> = 0...1, dtype: DType = .float32,
    using generator: inout SeededGenerator
  ) -> Tensor {
    let n = Tensor.elementCount(shape)
    var values = [Double](repeating: 0, count: n)
    let width = range.upperBound - range.lowerBound
    for i in 0..<n { values[i] = range.lowerBound + width * generator.nextUnitDouble() }
    return Tensor(doubles: values, shape: shape, dtype: dtype)
  }

  /// A `bool` tensor whose elements are `true` with probability `probability`.
  public static func randomBernoulli(
    _ shape: [Int], probability: Double, using generator: inout SeededGenerator
  ) -> Tensor {
    let n = Tensor.elementCount(shape)
    return Tensor((0..<n).map { _ in generator.nextUnitDouble() < probability }, shape: shape)
  }
}
