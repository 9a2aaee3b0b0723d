/// The bfloat16 format: the upper 16 bits of an IEEE-754 binary32 (1 sign, 8 exponent, 7
/// fraction bits).
///
/// Conversion from `Float` and `Double` rounds to nearest, ties to even, like PyTorch's
/// `tensor.to(torch.bfloat16)`; NaN stays NaN (quiet), infinities stay infinite.
///
/// ```swift
/// let b = BFloat16(1.00390625)   // halfway between 1 and 1.0078125: rounds to even, 1.0
/// Float(b)                       // 1.0
/// ```
@frozen
public struct BFloat16: Sendable, Hashable, CustomStringConvertible {
  /// The raw 16 bits.
  public var bitPattern: UInt16

  @inlinable
  public init(bitPattern: UInt16) { self.bitPattern = bitPattern }

  /// Rounds `value` to the nearest bfloat16, ties to even.
  @inlinable
  public init(_ value: Float) {
    let bits = value.bitPattern
    if value.isNaN {
      // Keep the sign and the top payload bits, force the quiet bit so the result stays NaN.
      self.bitPattern = UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
      return
    }
    let lsb = (bits >> 16) & 1
    let rounded = bits &+ 0x7FFF &+ lsb
    self.bitPattern = UInt16(truncatingIfNeeded: rounded >> 16)
  }

  /// Rounds `value` to the nearest bfloat16, ties to even, without double rounding.
  @inlinable
  public init(_ value: Double) {
    if value.isNaN || value.isInfinite {
      self.init(Float(value))
      return
    }
    // Round to binary32 with round-to-odd (truncate, then set the sticky bit when inexact): a
    // 24-bit round-to-odd intermediate makes the final 8-bit rounding exact.
    var f = Float(value)
    if Double(f).magnitude > value.magnitude {
      f = value < 0 ? f.nextUp : f.nextDown
    }
    if Double(f) != value {
      f = Float(bitPattern: f.bitPattern | 1)
    }
    self.init(f)
  }

  /// The exact binary32 value.
  @inlinable
  public var floatValue: Float { Float(bitPattern: UInt32(bitPattern) << 16) }

  public var description: String { floatValue.description }
}

extension Float {
  /// The exact value of a bfloat16.
  @inlinable
  public init(_ value: BFloat16) { self = value.floatValue }
}
