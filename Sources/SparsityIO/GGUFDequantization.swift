import SparsityCore

/// Decoding ggml blocks to float32, bit-exact with gguf-py's `gguf.quants.dequantize` (0.19).
///
/// gguf-py computes in numpy float32, one rounding per operation and no fused multiply-add;
/// so does this code (Swift does not contract `a * b + c`, and SparsityIO is built without a
/// target CPU that has FMA). Per block of 32 elements (`ggml-common.h`, `ggml-quants.c`):
///
/// | type | bytes | element j |
/// |---|---|---|
/// | Q4_0 | `d: f16, qs[16]` | `d * (q - 8)` |
/// | Q4_1 | `d: f16, m: f16, qs[16]` | `(d * q) + m` |
/// | Q5_0 | `d: f16, qh: u32, qs[16]` | `d * ((q \| h << 4) - 16)` |
/// | Q5_1 | `d: f16, m: f16, qh: u32, qs[16]` | `(d * (q \| h << 4)) + m` |
/// | Q8_0 | `d: f16, qs: i8[32]` | `qs[j] * d` |
///
/// where `q` is the low nibble of `qs[j]` for j < 16 and the high nibble of `qs[j − 16]`
/// otherwise (not interleaved), and `h` is bit j of the little-endian `qh`. F16 is IEEE
/// binary16 (subnormals, infinities and NaN payloads kept, as numpy's `astype(float32)`), BF16
/// the upper half of an f32, F32 a copy of the bits.
///
/// ```swift
/// let values = try GGUFDequantization.dequantize(file.bytes(of: info), type: info.type, count: info.elementCount)
/// ```
public enum GGUFDequantization {
  /// Tensors of at least this many elements are decoded on ``Parallel`` workers.
  static let parallelThreshold = 1 << 18

  /// Decodes `count` elements of `type` from `bytes`.
  ///
  /// - Precondition: `count` is a whole number of blocks and `bytes` holds exactly their bytes.
  /// - Throws: ``GGUFError/unsupportedType(name:type:)`` (with `name`) for a type that
  ///   ``GGMLType/isDequantizable`` says cannot be decoded.
  public static func dequantize(
    _ bytes: UnsafeRawBufferPointer, type: GGMLType, count: Int, name: String = ""
  ) throws(GGUFError) -> [Float] {
    guard type.isDequantizable else { throw .unsupportedType(name: name, type: type) }
    return try [Float](unsafeUninitializedCapacity: count) { (buffer, initialized) throws(GGUFError) in
      try dequantize(bytes, type: type, count: count, into: buffer, name: name)
      initialized = count
    }
  }

  /// Decodes `count` elements of `type` from `bytes` into `output` (which holds at least
  /// `count` floats).
  ///
  /// - Precondition: as ``dequantize(_:type:count:name:)``, and `output.count >= count`.
  public static func dequantize(
    _ bytes: UnsafeRawBufferPointer, type: GGMLType, count: Int,
    into output: UnsafeMutableBufferPointer<Float>, name: String = ""
  ) throws(GGUFError) {
    guard type.isDequantizable else { throw .unsupportedType(name: name, type: type) }
    precondition(count >= 0 && output.count >= count, "output holds \(output.count) floats, \(count) needed")
    precondition(
      type.rowBytes(elements: count) == bytes.count,
      "\(bytes.count) bytes are not \(count) elements of \(type)")
    guard count > 0, let source = bytes.baseAddress, let target = output.baseAddress else { return }
    let blocks = count / type.blockElements
    let decode: (UnsafeRawPointer, UnsafeMutablePointer<Float>, Int) -> Void
    switch type {
    case .f32: decode = decodeF32
    case .f16: decode = decodeF16
    case .bf16: decode = decodeBF16
    case .q8_0: decode = decodeQ8_0
    case .q4_0: decode = decodeQ4_0
    case .q4_1: decode = decodeQ4_1
    case .q5_0: decode = decodeQ5_0
    case .q5_1: decode = decodeQ5_1
    default: throw .unsupportedType(name: name, type: type)
    }
    let (blockBytes, blockElements) = (type.blockBytes, type.blockElements)
    if count < parallelThreshold {
      decode(source, target, blocks)
      return
    }
    let chunks = min(Parallel.workerCount * 4, blocks)
    Parallel.forEach(chunks: chunks) { chunk in
      let lo = blocks * chunk / chunks
      let hi = blocks * (chunk + 1) / chunks
      decode(source + lo * blockBytes, target + lo * blockElements, hi - lo)
    }
  }

  // MARK: Scalars

  /// IEEE binary16 to binary32, exact: subnormals become normal floats, infinities stay
  /// infinite, NaN keeps its sign and payload (shifted, quiet bit as stored).
  @inline(__always)
  public static func float(fromHalf bits: UInt16) -> Float {
    let sign = UInt32(bits & 0x8000) << 16
    let exponent = UInt32(bits >> 10) & 0x1F
    let mantissa = UInt32(bits & 0x3FF)
    if exponent == 0x1F { return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13) }
    if exponent != 0 { return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13) }
    // Zero or subnormal: mantissa × 2^-24, exact in binary32.
    let magnitude = Float(mantissa) * 0x1p-24
    return Float(bitPattern: sign | magnitude.bitPattern)
  }

  @inline(__always)
  private static func half(_ p: UnsafeRawPointer, _ offset: Int) -> Float {
    float(fromHalf: UInt16(littleEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self)))
  }

  // MARK: Decoders (n blocks each)

  private static func decodeF32(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n {
      y[i] = Float(bitPattern: UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
    }
  }

  private static func decodeF16(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n { y[i] = half(p, 2 * i) }
  }

  private static func decodeBF16(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for i in 0..<n {
      let bits = UInt16(littleEndian: p.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
      y[i] = Float(bitPattern: UInt32(bits) << 16)
    }
  }

  private static func decodeQ8_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for b in 0..<n {
      let block = p + 34 * b
      let out = y + 32 * b
      let d = half(block, 0)
      let qs = (block + 2).assumingMemoryBound(to: UInt8.self)
      for j in 0..<32 { out[j] = Float(Int8(bitPattern: qs[j])) * d }
    }
  }

  private static func decodeQ4_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for b in 0..<n {
      let block = p + 18 * b
      let out = y + 32 * b
      let d = half(block, 0)
      let qs = (block + 2).assumingMemoryBound(to: UInt8.self)
      for j in 0..<16 {
        let byte = qs[j]
        out[j] = d * Float(Int32(byte & 0x0F) - 8)
        out[j + 16] = d * Float(Int32(byte >> 4) - 8)
      }
    }
  }

  private static func decodeQ4_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for b in 0..<n {
      let block = p + 20 * b
      let out = y + 32 * b
      let d = half(block, 0)
      let m = half(block, 2)
      let qs = (block + 4).assumingMemoryBound(to: UInt8.self)
      for j in 0..<16 {
        let byte = qs[j]
        // Two roundings, as numpy's `(d * qs) + m`.
        let low = d * Float(byte & 0x0F)
        let high = d * Float(byte >> 4)
        out[j] = low + m
        out[j + 16] = high + m
      }
    }
  }

  private static func decodeQ5_0(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for b in 0..<n {
      let block = p + 22 * b
      let out = y + 32 * b
      let d = half(block, 0)
      let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 2, as: UInt32.self))
      let qs = (block + 6).assumingMemoryBound(to: UInt8.self)
      for j in 0..<16 {
        let byte = UInt32(qs[j])
        let low = (byte & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
        let high = (byte >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
        out[j] = d * Float(Int32(low) - 16)
        out[j + 16] = d * Float(Int32(high) - 16)
      }
    }
  }

  private static func decodeQ5_1(_ p: UnsafeRawPointer, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
    for b in 0..<n {
      let block = p + 24 * b
      let out = y + 32 * b
      let d = half(block, 0)
      let m = half(block, 2)
      let qh = UInt32(littleEndian: block.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
      let qs = (block + 8).assumingMemoryBound(to: UInt8.self)
      for j in 0..<16 {
        let byte = UInt32(qs[j])
        let low = (byte & 0x0F) | ((qh >> UInt32(j)) & 1) << 4
        let high = (byte >> 4) | ((qh >> UInt32(j + 16)) & 1) << 4
        let a = d * Float(low)
        let c = d * Float(high)
        out[j] = a + m
        out[j + 16] = c + m
      }
    }
  }
}
