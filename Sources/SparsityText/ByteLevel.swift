/// GPT-2's byte-level alphabet (`bytes_to_unicode` in GPT-2's `encoder.py`, Hugging Face's
/// `ByteLevel`): every byte value gets one printable Unicode scalar, so that a byte-level BPE
/// vocabulary is a list of ordinary strings.
///
/// Bytes 33–126, 161–172 and 174–255 map to the scalar of the same value; the other 68 bytes
/// (0–32, 127–160, 173) map to U+0100, U+0101, … in byte order. A space becomes `Ġ` (U+0120),
/// a newline `Ċ` (U+010A).
///
/// ```swift
/// ByteLevel.encode(Array(" été".utf8))  // "ĠÃ©tÃ©"
/// ByteLevel.decode("ĠÃ©tÃ©")            // [0x20, 0xC3, 0xA9, 0x74, 0xC3, 0xA9]
/// ```
public enum ByteLevel {
  /// The scalar of each byte value.
  public static let scalars: [Unicode.Scalar] = {
    var table = [Unicode.Scalar](repeating: "\0", count: 256)
    var next: UInt32 = 256
    for byte in 0..<256 {
      if (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte) {
        table[byte] = Unicode.Scalar(UInt32(byte))!
      } else {
        table[byte] = Unicode.Scalar(next)!
        next += 1
      }
    }
    return table
  }()

  /// The byte of each scalar value below 324 (the alphabet's largest is U+0143), -1 for scalars
  /// outside the alphabet.
  static let bytesOfScalars: [Int16] = {
    var table = [Int16](repeating: -1, count: 324)
    for (byte, scalar) in scalars.enumerated() { table[Int(scalar.value)] = Int16(byte) }
    return table
  }()

  /// The UTF-8 encoding of each byte's scalar (1 or 2 bytes).
  static let utf8OfBytes: [[UInt8]] = scalars.map { Array(String($0).utf8) }

  /// The byte that `scalar` stands for, or `nil` if it is not in the alphabet.
  @inline(__always)
  public static func byte(for scalar: Unicode.Scalar) -> UInt8? {
    let value = Int(scalar.value)
    guard value < bytesOfScalars.count, bytesOfScalars[value] >= 0 else { return nil }
    return UInt8(bytesOfScalars[value])
  }

  /// The byte-level string of `bytes`: one scalar per byte.
  public static func encode(_ bytes: some Sequence<UInt8>) -> String {
    var text = String.UnicodeScalarView()
    for byte in bytes { text.append(scalars[Int(byte)]) }
    return String(text)
  }

  /// The bytes that the byte-level string `token` stands for, or `nil` if a scalar of it is not
  /// in the alphabet (Hugging Face's decoder then uses the token's own UTF-8 bytes).
  public static func decode(_ token: String) -> [UInt8]? {
    var bytes: [UInt8] = []
    bytes.reserveCapacity(token.utf8.count)
    for scalar in token.unicodeScalars {
      guard let byte = byte(for: scalar) else { return nil }
      bytes.append(byte)
    }
    return bytes
  }
}
