import SparsityCore
import SparsityTestSupport
import Testing

/// Sample values of each numeric dtype, as an exact `Double` (every sample is representable in
/// its dtype), covering zero, signs, extremes, fractions, ties and the non-finite floats.
private func samples(of dtype: DType) -> [Double] {
  switch dtype {
  case .bool: return [0, 1, 1, 0]
  case .uint8: return [0, 1, 2, 127, 128, 200, 255]
  case .int8: return [0, 1, -1, 5, -7, 127, -128, 100]
  case .uint16: return [0, 1, 255, 256, 32767, 32768, 65504, 65520, 65535]
  case .int16: return [0, 1, -1, 127, 128, -128, -129, 255, 256, 32767, -32768, 2049]
  case .uint32: return [0, 1, 255, 256, 65535, 65536, 16_777_217, 2_147_483_648, 4_294_967_295]
  case .int32:
    return [0, 1, -1, -129, 128, 300, -300, 65504, 65520, 16_777_217, -16_777_217, 2_147_483_647, -2_147_483_648]
  case .uint64: return [0, 1, 255, 4_294_967_296, 9_007_199_254_740_992]
  case .int64: return [0, -1, 1, -9_007_199_254_740_992, 9_007_199_254_740_992, -4_294_967_296, 3]
  case .float16:
    return [
      0, -0.0, 1, -1, 0.5, -1.5, 2.5, 127.5, -128.5, 255.75, 256, 65504, -65504, 0x1p-24, -0x1p-14,
      .infinity, -.infinity, .nan, 1.0009765625, 3.140625,
    ]
  case .bfloat16:
    return [
      0, -0.0, 1, -1, 0.5, -1.5, 2.5, 127.5, -129, 256, 1.0078125, 0x1p-133, -0x1p100, 0x1.FEp127,
      .infinity, -.infinity, 3.140625, 65536, 1e10,
    ].map { Double(Float(bitPattern: UInt32(referenceBFloat16Bits($0)) << 16)) } + [.nan]
  case .float32:
    return [
      0, -0.0, 1, -1, 0.25, -0.75, 1.5, -2.5, 2.5, 127.9, -128.9, 255.9, 256.5, -129.5, 1e10, -1e10,
      3e38, 65504, 65519.99, 65520, 1.00048828125, 1.00146484375, 0x1p-25, 3 * 0x1p-25, 0x1p-149,
      1.00390625, 1.01171875, 2_147_483_520, 4_294_967_040, .infinity, -.infinity, .nan,
    ].map { Double(Float($0)) }
  case .float64:
    return [
      0, -0.0, 1, -1, 0.1, -0.9, 1.5, 2.5, -2.5, 127.99, -128.99, 255.5, 256, 1e20, -1e20, 1e300,
      -1e300, Double.leastNonzeroMagnitude, 1.0 + 0x1p-11 + 0x1p-40, 1.0 + 0x1p-8 + 0x1p-40, 2_147_483_647.9,
      -2_147_483_648.9, 2_147_483_648, 9.3e18, -9.3e18, 1.9e19, .infinity, -.infinity, .nan,
    ]
  default: preconditionFailure("not numeric")
  }
}

/// Reference conversion of an exact `Double` to `dtype`, as the `Double` value of the result
/// (`nil` for NaN results), written from the documented rules: floats round to nearest even
/// (Swift's own conversions; bfloat16 through the exact reference), integers truncate toward
/// zero and saturate, NaN → 0, bool is `!= 0`.
private func referenceConvert(_ x: Double, to dtype: DType) -> Double? {
  func integer(min: Double, maxPlusOne: Double) -> Double {
    if x.isNaN { return 0 }
    let t = x.rounded(.towardZero)
    if t < min { return min }
    if t >= maxPlusOne { return maxPlusOne - 1 }  // exact for the bounds below 2^53
    return t
  }
  switch dtype {
  case .bool: return x != 0 ? 1 : 0
  case .uint8: return integer(min: 0, maxPlusOne: 256)
  case .int8: return integer(min: -128, maxPlusOne: 128)
  case .uint16: return integer(min: 0, maxPlusOne: 65536)
  case .int16: return integer(min: -32768, maxPlusOne: 32768)
  case .uint32: return integer(min: 0, maxPlusOne: 4_294_967_296)
  case .int32: return integer(min: -2_147_483_648, maxPlusOne: 2_147_483_648)
  case .uint64, .int64: return nil  // handled on the integer values (see below)
  case .float16: return x.isNaN ? nil : Double(Float16(x))
  case .bfloat16:
    return x.isNaN ? nil : Double(Float(bitPattern: UInt32(referenceBFloat16Bits(x)) << 16))
  case .float32: return x.isNaN ? nil : Double(Float(x))
  case .float64: return x.isNaN ? nil : x
  default: preconditionFailure()
  }
}

@Suite("Conversions")
struct ConversionTests {
  static let pairs: [(DType, DType)] = numericDTypes.flatMap { s in numericDTypes.map { (s, $0) } }

  @Test(arguments: pairs)
  func convertsEveryNumericPair(_ source: DType, _ target: DType) throws {
    let values = samples(of: source)
    let input = Tensor(doubles: values, shape: [values.count], dtype: source)
    // The samples are exact in their dtype (NaN stays NaN).
    expectClose(input.doubleValues, values, relativeTolerance: 0, absoluteTolerance: 0, "samples of \(source)")
    let output = input.converted(to: target)
    #expect(output.dtype == target)
    #expect(output.shape == input.shape)
    let got = output.doubleValues
    for (i, x) in values.enumerated() {
      switch target {
      case .int64:
        let expected: Int64 =
          x.isNaN ? 0 : x <= -0x1p63 ? .min : x >= 0x1p63 ? .max : Int64(x.rounded(.towardZero))
        #expect(output.scalars(as: Int64.self)[i] == expected, "\(source) \(x) → I64")
      case .uint64:
        let expected: UInt64 =
          x.isNaN || x <= 0 ? 0 : x >= 0x1p64 ? .max : UInt64(x.rounded(.towardZero))
        #expect(output.scalars(as: UInt64.self)[i] == expected, "\(source) \(x) → U64")
      default:
        if let expected = referenceConvert(x, to: target) {
          #expect(
            got[i] == expected && (!target.isFloatingPoint || got[i].sign == expected.sign),
            "\(source) \(x) → \(target): got \(got[i]), expected \(expected)")
        } else {
          #expect(got[i].isNaN, "\(source) \(x) → \(target): got \(got[i]), expected NaN")
        }
      }
    }
    // Converting to the same dtype is the identity, bitwise.
    if source == target { expectBitwiseEqual(output, input) }
  }

  @Test(arguments: [
    // float → integer: truncation toward zero, saturation, NaN → 0
    (DType.float32, [2.9, -2.9, 0.5, -0.5, 127.5, 128, -128.9, -129, 1e9, -1e9, .nan, .infinity, -.infinity],
     DType.int8, [2, -2, 0, 0, 127, 127, -128, -128, 127, -128, 0, 127, -128]),
    (.float32, [255.9, 256, -0.9, -1, .nan, .infinity], .uint8, [255, 255, 0, 0, 0, 255]),
    (.float64, [2_147_483_647.9, 2_147_483_648, -2_147_483_648.9, -3e9, .nan], .int32,
     [2_147_483_647, 2_147_483_647, -2_147_483_648, -2_147_483_648, 0]),
    (.float16, [65504, -65504, 1.5, -1.5, .infinity], .int16, [32767, -32768, 1, -1, 32767]),
    (.bfloat16, [1.5, -2.5, 1e30, .nan], .int32, [1, -2, 2_147_483_647, 0]),
    // bool
    (.float32, [0, -0.0, 0.1, -3, .nan, .infinity], .bool, [0, 0, 1, 1, 1, 1]),
    (.int8, [0, 1, -128], .bool, [0, 1, 1]),
    (.bool, [0, 1], .float32, [0, 1]),
    (.bool, [1, 0], .int8, [1, 0]),
    // int → float, rounding to nearest even where the float is too narrow
    (.int32, [16_777_217, 16_777_219, -16_777_217, 2_147_483_647], .float32,
     [16_777_216, 16_777_220, -16_777_216, 2_147_483_648]),
    (.int32, [2049, 2051, 65519, 65520, 100_000], .float16, [2048, 2052, 65504, .infinity, .infinity]),
    (.int32, [257, 259, 16_777_217], .bfloat16, [256, 260, 16_777_216]),
    (.uint8, [255], .float16, [255]),
    (.int16, [-32768], .float32, [-32768]),
  ] as [(DType, [Double], DType, [Double])])
  func documentedRules(_ source: DType, _ input: [Double], _ target: DType, _ expected: [Double]) {
    let t = Tensor(doubles: input, shape: [input.count], dtype: source).converted(to: target)
    expectClose(t.doubleValues, expected, relativeTolerance: 0, absoluteTolerance: 0, "\(source) → \(target)")
  }

  /// float32 → float16 has its own fast path; check it rounds to nearest even, ties included,
  /// and agrees with the float64 → float16 path.
  @Test(arguments: [
    (1.0 + 0x1p-11, UInt16(0x3C00)),  // tie between 1 and 1 + 2^-10: even is 1
    (1.0 + 3 * 0x1p-11, 0x3C02),  // tie: even is 1 + 2^-9
    (1.0 + 0x1p-11 + 0x1p-20, 0x3C01),  // just above the tie
    (-(1.0 + 3 * 0x1p-11), 0xBC02),
    (65504, 0x7BFF),  // largest finite
    (65519.99, 0x7BFF),  // below the tie with infinity
    (65520, 0x7C00),  // the tie rounds to infinity (0x7BFF is odd)
    (1e10, 0x7C00),
    (-1e10, 0xFC00),
    (0x1p-24, 0x0001),  // smallest subnormal
    (0x1p-25, 0x0000),  // tie between 0 and 2^-24: even is 0
    (3 * 0x1p-25, 0x0002),  // tie between 2^-24 and 2^-23: even is 2^-23
    (0x1p-26, 0x0000),
    (-0x1p-26, 0x8000),
    (-0.0, 0x8000),
    (Double.infinity, 0x7C00),
    (-Double.infinity, 0xFC00),
  ] as [(Double, UInt16)])
  func float32ToFloat16RoundsToNearestEven(_ x: Double, _ expectedBits: UInt16) {
    let f = Float(x)
    let fromFloat = Tensor([f]).converted(to: .float16).scalars(as: Float16.self)[0]
    #expect(fromFloat.bitPattern == expectedBits, "f32 \(x)")
    let fromDouble = Tensor([Double(f)]).converted(to: .float16).scalars(as: Float16.self)[0]
    #expect(fromDouble.bitPattern == expectedBits, "f64 \(x)")
  }

  @Test func float64ToFloat16RoundsOnce() {
    // Through Float, 1 + 2^-11 + 2^-40 would first round to the tie 1 + 2^-11 and then to 1.
    let t = Tensor([1.0 + 0x1p-11 + 0x1p-40, -(1.0 + 0x1p-11 + 0x1p-40)]).converted(to: .float16)
    #expect(t.scalars(as: Float16.self).map(\.bitPattern) == [0x3C01, 0xBC01])
  }

  @Test func float32ToBFloat16FastPathMatchesReference() {
    var rng = SeededGenerator(seed: 99)
    let floats = (0..<4096).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
    let converted = Tensor(floats).converted(to: .bfloat16).scalars(as: BFloat16.self)
    let viaDouble = Tensor(floats.map(Double.init)).converted(to: .bfloat16).scalars(as: BFloat16.self)
    for (i, f) in floats.enumerated() {
      if f.isNaN {
        #expect(converted[i].floatValue.isNaN && viaDouble[i].floatValue.isNaN)
      } else if converted[i].bitPattern != referenceBFloat16Bits(Double(f))
        || viaDouble[i].bitPattern != converted[i].bitPattern
      {
        Issue.record("element \(i): \(f) → 0x\(String(converted[i].bitPattern, radix: 16))")
        return
      }
    }
  }

  @Test func float32ToFloat16FastPathMatchesSwift() {
    var rng = SeededGenerator(seed: 98)
    let floats = (0..<4096).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: rng.next())) }
    let converted = Tensor(floats).converted(to: .float16).scalars(as: Float16.self)
    for (i, f) in floats.enumerated() where !f.isNaN {
      if converted[i].bitPattern != Float16(Double(f)).bitPattern {
        Issue.record("element \(i): \(f) → \(converted[i])")
        return
      }
    }
  }

  @Test func conversionKeepsShapeAndDoesNotAliasSource() {
    var source = Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
    let converted = source.converted(to: .float64)
    source.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 100 }
    #expect(converted.shape == [2, 3])
    #expect(converted.scalars(as: Double.self) == [1, 2, 3, 4, 5, 6])
    #expect(Tensor(zeros: [0, 3]).converted(to: .int8).shape == [0, 3])
  }

  @Test(arguments: numericDTypes)
  func floatValuesAndDoubleValues(_ dtype: DType) {
    let t = randomTensor([3, 4], dtype: dtype, seed: 5)
    let d = t.doubleValues
    #expect(t.floatValues == d.map { Float($0) })
    #expect(t.converted(to: .float64).scalars(as: Double.self) == d)
  }
}
