import SparsityCore
import Testing

@Suite("SeededGenerator")
struct RandomTests {
  /// Golden outputs from an independent Python implementation of xoshiro256** seeded by four
  /// SplitMix64 outputs (the first SplitMix64(0) output is the published 0xE220A8397B1DCDAF).
  @Test(arguments: [
    (0, [0x99EC_5F36_CB75_F2B4, 0xBF6E_1F78_4956_452A, 0x1A5F_849D_4933_E6E0, 0x6AA5_94F1_262D_2D2C]),
    (42, [0x1578_0B2E_0C2E_C716, 0x6104_D986_6D11_3A7E, 0xAE17_5332_39E4_99A1, 0xECB8_AD47_03B3_60A1]),
  ] as [(UInt64, [UInt64])])
  func goldenSequence(_ seed: UInt64, _ expected: [UInt64]) {
    var rng = SeededGenerator(seed: seed)
    #expect((0..<4).map { _ in rng.next() } == expected)
  }

  @Test(arguments: [0, 1, 42, UInt64.max])
  func sameSeedSameSequence(_ seed: UInt64) {
    var a = SeededGenerator(seed: seed)
    var b = SeededGenerator(seed: seed)
    let x = (0..<1000).map { _ in a.next() }
    let y = (0..<1000).map { _ in b.next() }
    #expect(x == y)
    // Copies continue identically (value semantics).
    var c = a
    #expect(a.next() == c.next())
    var d = SeededGenerator(seed: seed)
    var e = SeededGenerator(seed: seed)
    #expect(Tensor.randomNormal([5, 7], using: &d) == Tensor.randomNormal([5, 7], using: &e))
  }

  @Test func differentSeedsDiffer() {
    let seeds: [UInt64] = [0, 1, 2, 3, 42, 43, UInt64.max]
    let heads = seeds.map { seed -> [UInt64] in
      var rng = SeededGenerator(seed: seed)
      return (0..<8).map { _ in rng.next() }
    }
    #expect(Set(heads.map { $0.description }).count == seeds.count)
    // No two sequences share an output in their first 8.
    #expect(Set(heads.flatMap { $0 }).count == seeds.count * 8)
  }

  @Test func normalSamplesHaveUnitMomentsOver100kDraws() {
    var rng = SeededGenerator(seed: 2024)
    let n = 100_000
    var sum = 0.0
    var sumSquares = 0.0
    var beyondThree = 0
    for _ in 0..<n {
      let x = rng.nextNormal()
      sum += x
      sumSquares += x * x
      if Swift.abs(x) > 3 { beyondThree += 1 }
    }
    let mean = sum / Double(n)
    let std = (sumSquares / Double(n) - mean * mean).squareRoot()
    // Standard errors: 1/√n ≈ 0.0032 for the mean, 1/√(2n) ≈ 0.0022 for the std. The
    // tolerances are over 6 standard errors, and the seed is fixed, so this cannot flake.
    #expect(Swift.abs(mean) < 0.02, "mean \(mean)")
    #expect(Swift.abs(std - 1) < 0.02, "std \(std)")
    // P(|x| > 3) = 0.0027: about 270 of 100k.
    #expect((150...400).contains(beyondThree), "\(beyondThree) samples beyond 3σ")
  }

  @Test func uniformSamplesAreInTheUnitInterval() {
    var rng = SeededGenerator(seed: 9)
    var sum = 0.0
    var buckets = [Int](repeating: 0, count: 10)
    for _ in 0..<100_000 {
      let u = rng.nextUnitDouble()
      #expect(u >= 0 && u < 1)
      sum += u
      buckets[Int(u * 10)] += 1
    }
    #expect(Swift.abs(sum / 100_000 - 0.5) < 0.01)
    #expect(buckets.allSatisfy { (9_500...10_500).contains($0) }, "\(buckets)")
  }

  @Test func tensorSamplers() {
    var rng = SeededGenerator(seed: 3)
    let n = Tensor.randomNormal([200, 100], mean: 5, standardDeviation: 2, dtype: .float64, using: &rng)
    #expect(n.dtype == .float64)
    #expect(n.shape == [200, 100])
    #expect(Swift.abs(n.reduced(.mean) - 5) < 0.1)

    let u = Tensor.randomUniform([1000], in: -3...7, dtype: .float32, using: &rng)
    #expect(u.doubleValues.allSatisfy { $0 >= -3 && $0 <= 7 })
    #expect(u.reduced(.min) < -2.5 && u.reduced(.max) > 6.5)

    let i = Tensor.randomUniform([1000], in: -2.5...2.5, dtype: .int8, using: &rng)
    #expect(Set(i.scalars(as: Int8.self)) == [-2, -1, 0, 1, 2], "integers truncate toward zero")

    let b = Tensor.randomBernoulli([10_000], probability: 0.3, using: &rng)
    #expect(b.dtype == .bool)
    let fraction = Double(b.nonzeroCount) / 10_000
    #expect(Swift.abs(fraction - 0.3) < 0.03)
    #expect(Tensor.randomBernoulli([50], probability: 0, using: &rng).nonzeroCount == 0)
    #expect(Tensor.randomBernoulli([50], probability: 1, using: &rng).nonzeroCount == 50)
  }
}
