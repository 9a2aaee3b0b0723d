import PropertyBased
import SparsityCore
import Testing

/// The value of the non-negative bfloat16 bit pattern `bits` (0 ... 0x7F80), from its fields;
/// 0x7F80 (infinity) yields 2^128, the value IEEE rounding treats it as for overflow.
private func bfloat16Value(_ bits: UInt16) -> Double {
  let exponent = Int(bits >> 7)
  let fraction = Double(bits & 0x7F)
  return exponent == 0
    ? fraction * 0x1p-133 : (128 + fraction) * Double(sign: .plus, exponent: exponent - 134, significand: 1)
}

/// Reference round-to-nearest-even of a finite or infinite `x` to bfloat16 bits, by exact
/// comparison of `2|x|` with the sum of the two neighbouring bfloat16 values (exact in Double),
/// independent of the bit tricks in `BFloat16`.
func referenceBFloat16Bits(_ x: Double) -> UInt16 {
  precondition(!x.isNaN)
  let sign: UInt16 = x.sign == .minus ? 0x8000 : 0
  let a = x.magnitude
  if a >= 0x1p128 { return sign | 0x7F80 }
  // Largest lo in 0...0x7F7F with value(lo) <= a.
  var lo: UInt16 = 0
  var hi: UInt16 = 0x7F80
  while hi - lo > 1 {
    let mid = lo + (hi - lo) / 2
    if bfloat16Value(mid) <= a { lo = mid } else { hi = mid }
  }
  if bfloat16Value(lo) == a { return sign | lo }
  let twice = 2 * a
  let midpointTwice = bfloat16Value(lo) + bfloat16Value(lo + 1)
  let chosen: UInt16
  if twice < midpointTwice {
    chosen = lo
  } else if twice > midpointTwice {
    chosen = lo + 1
  } else {
    chosen = lo & 1 == 0 ? lo : lo + 1
  }
  return sign | chosen
}

@Suite("BFloat16")
struct BFloat16Tests {
  /// (input bits of a Float, expected bfloat16 bits)
  @Test(arguments: [
    (Float(1.0).bitPattern, UInt16(0x3F80)),
    (Float(1.00390625).bitPattern, 0x3F80),  // tie between 1 and 1.0078125: even is 1.0
    (Float(1.01171875).bitPattern, 0x3F82),  // tie between 1.0078125 and 1.015625: even is 1.015625
    (Float(1.00390625).bitPattern + 1, 0x3F81),  // just above the tie
    (Float(1.00390625).bitPattern - 1, 0x3F80),  // just below the tie
    (Float(-1.00390625).bitPattern, 0xBF80),
    (Float(-1.01171875).bitPattern, 0xBF82),
    (0x0000_0000, 0x0000),  // +0
    (0x8000_0000, 0x8000),  // -0
    (0x7F80_0000, 0x7F80),  // +inf
    (0xFF80_0000, 0xFF80),  // -inf
    (0x7F7F_FFFF, 0x7F80),  // largest finite float rounds up to infinity
    (0xFF7F_FFFF, 0xFF80),
    (0x7F7F_0000, 0x7F7F),  // largest finite bfloat16 is exact
    (0x7F7F_7FFF, 0x7F7F),  // just below the tie with infinity
    (0x7F7F_8000, 0x7F80),  // tie with infinity: 0x7F7F is odd, so it rounds to inf
    (0x0000_0001, 0x0000),  // smallest subnormal float rounds to zero
    (0x8000_0001, 0x8000),  // ... keeping the sign
    (0x0000_8000, 0x0000),  // subnormal tie, even is 0
    (0x0001_8000, 0x0002),  // subnormal tie, even is 2
    (0x0000_8001, 0x0001),  // subnormal just above the tie
    (0x0001_0000, 0x0001),  // smallest bfloat16 subnormal is exact
    (0x007F_FFFF, 0x0080),  // largest subnormal float rounds up to the smallest normal
    (0x3F80_FFFF, 0x3F81),
    (0x4049_0FDB, 0x4049),  // pi
  ] as [(UInt32, UInt16)])
  func roundsFloatToNearestEven(_ input: UInt32, _ expected: UInt16) {
    let b = BFloat16(Float(bitPattern: input))
    #expect(b.bitPattern == expected, "input 0x\(String(input, radix: 16))")
    #expect(b.bitPattern == referenceBFloat16Bits(Double(Float(bitPattern: input))))
  }

  @Test(arguments: [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFF80_0001, 0x7FFF_FFFF, 0x7F80_8000]
    as [UInt32])
  func nanStaysNaN(_ bits: UInt32) {
    let f = Float(bitPattern: bits)
    #expect(f.isNaN)
    let b = BFloat16(f)
    #expect(b.floatValue.isNaN, "0x\(String(bits, radix: 16)) became 0x\(String(b.bitPattern, radix: 16))")
    #expect(!b.floatValue.isSignalingNaN)
    #expect(b.bitPattern & 0x8000 == UInt16(bits >> 16) & 0x8000, "sign kept")
    let d = BFloat16(Double(f))
    #expect(d.floatValue.isNaN)
    #expect(BFloat16(Double.nan).floatValue.isNaN)
    #expect(BFloat16(-Double.nan).floatValue.isNaN)
  }

  @Test func infinitiesAndOverflowFromDouble() {
    #expect(BFloat16(Double.infinity).bitPattern == 0x7F80)
    #expect(BFloat16(-Double.infinity).bitPattern == 0xFF80)
    #expect(BFloat16(1e300).bitPattern == 0x7F80)
    #expect(BFloat16(-1e300).bitPattern == 0xFF80)
    #expect(BFloat16(Double(Float.greatestFiniteMagnitude)).bitPattern == 0x7F80)
    #expect(BFloat16(0x1.FEp127).bitPattern == 0x7F7F)  // largest finite bfloat16
    #expect(BFloat16(0x1.FEFFFFFFFFp127).bitPattern == 0x7F7F)  // below the tie with inf
    #expect(BFloat16(0x1.FFp127).bitPattern == 0x7F80)  // the tie itself
    #expect(BFloat16(1e-300).bitPattern == 0x0000)
    #expect(BFloat16(-1e-300).bitPattern == 0x8000)
    #expect(BFloat16(-0.0).bitPattern == 0x8000)
    #expect(BFloat16(0.0).bitPattern == 0x0000)
  }

  /// Doubles whose nearest float is a bfloat16 tie: rounding through Float would round twice
  /// and pick the even neighbour; rounding once picks the nearer one.
  @Test(arguments: [
    (1.0 + 0x1p-8 + 0x1p-40, UInt16(0x3F81)),
    (1.0 + 0x1p-8 - 0x1p-40, 0x3F80),
    (1.0 + 0x1p-8, 0x3F80),
    (1.0 + 3 * 0x1p-8 - 0x1p-45, 0x3F81),
    (1.0 + 3 * 0x1p-8, 0x3F82),
    (-(1.0 + 0x1p-8 + 0x1p-40), 0xBF81),
    (0x1p-134 + 0x1p-160, 0x0001),  // just above the subnormal tie between 0 and 2^-133
    (0x1p-134, 0x0000),
    (0x1p-134 - 0x1p-170, 0x0000),
    (0x1p-150, 0x0000),  // below float's subnormals
    (0x1.FFp127 - 0x1p90, 0x7F7F),
  ] as [(Double, UInt16)])
  func doubleRoundsOnce(_ x: Double, _ expected: UInt16) {
    #expect(BFloat16(x).bitPattern == expected)
    #expect(referenceBFloat16Bits(x) == expected)
  }

  @Test func floatValueIsExactAndRoundTrips() {
    var failures: [UInt16] = []
    for bits in 0...0xFFFF {
      let b = BFloat16(bitPattern: UInt16(bits))
      let f = b.floatValue
      guard f.bitPattern == UInt32(bits) << 16, Float(b).bitPattern == f.bitPattern else {
        failures.append(UInt16(bits))
        continue
      }
      // Every non-NaN bfloat16 converts back to itself, from Float and from Double.
      if !f.isNaN, BFloat16(f).bitPattern != UInt16(bits) || BFloat16(Double(f)).bitPattern != UInt16(bits) {
        failures.append(UInt16(bits))
      }
    }
    #expect(failures.isEmpty, "first failing bit patterns: \(failures.prefix(4).map { String($0, radix: 16) })")
    #expect(BFloat16(bitPattern: 0x3F80).description == "1.0")
    #expect(BFloat16(bitPattern: 0xC040).description == "-3.0")
  }

  /// A random double over the exponent range that matters for bfloat16 (subnormals to
  /// overflow), with a random number of significant bits so exact ties are frequent.
  private static func randomDouble(_ rng: inout SeededGenerator) -> Double {
    let exponent = Int(rng.next() % 280) - 150
    let kept = Int(rng.next() % 53)
    let fraction = kept == 0 ? 0 : ((rng.next() >> 12) >> UInt64(52 - kept)) << UInt64(52 - kept)
    let magnitude = Double(sign: .plus, exponent: exponent, significand: Double(bitPattern: 0x3FF0_0000_0000_0000 | fraction))
    return rng.next() & 1 == 0 ? magnitude : -magnitude
  }

  @Test func doubleInitMatchesExactReferenceOnRandomDoubles() {
    var rng = SeededGenerator(seed: 0xBF16)
    var exactTies = 0
    for _ in 0..<20_000 {
      let x = Self.randomDouble(&rng)
      let expected = referenceBFloat16Bits(x)
      let got = BFloat16(x).bitPattern
      if got != expected {
        Issue.record("BFloat16(\(x)) = 0x\(String(got, radix: 16)), expected 0x\(String(expected, radix: 16))")
        return
      }
      // An exact tie: the neighbours on either side round differently.
      if x.magnitude < 0x1p127, referenceBFloat16Bits(x.nextUp) != referenceBFloat16Bits(x.nextDown) {
        exactTies += 1
      }
    }
    #expect(exactTies > 100, "the generator should hit many exact ties, got \(exactTies)")
  }

  @Test func floatInitMatchesExactReferenceOnRandomFloats() {
    var rng = SeededGenerator(seed: 7)
    for _ in 0..<20_000 {
      let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
      if f.isNaN { continue }
      let expected = referenceBFloat16Bits(Double(f))
      if BFloat16(f).bitPattern != expected {
        Issue.record("BFloat16(\(f)) = 0x\(String(BFloat16(f).bitPattern, radix: 16)), expected 0x\(String(expected, radix: 16))")
        return
      }
    }
  }

  @Test func doubleInitPropertyOverAllBitPatterns() async {
    await propertyCheck(count: 300, input: Gen.uint64()) { bits in
      let x = Double(bitPattern: bits)
      guard !x.isNaN else { return }
      #expect(BFloat16(x).bitPattern == referenceBFloat16Bits(x), "x = \(x)")
    }
  }
}
