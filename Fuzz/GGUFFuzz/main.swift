// libFuzzer target for the GGUF reader; build and run with scripts/fuzz-gguf.sh.
//
// Every input must either be rejected with a GGUFError whose description is one line, or
// parse into a file whose invariants hold: tensors contiguous, aligned and inside the file,
// every metadata value readable through every typed accessor (a value or a GGUFError), and
// every dequantizable tensor decoding to its element count (F32 bit-identical to its bytes),
// the same through GGUFFile.dequantized and GGUFDequantization (and through GGUFFile.q8_0Blocks for
// Q8_0 matrices). Anything else (a crash, a
// trap, another error, a broken invariant) is a bug.
import SparsityCore
import SparsityIO

/// Tensors above this many elements are not decoded (keeps one input well under 10 ms).
let maximumDecodedElements = 1 << 16

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  let file: GGUFFile
  do {
    file = try GGUFFile(bytes: bytes)
  } catch {
    // Typed throws: `error` is a GGUFError.
    guard !error.description.contains("\n") else { fatalError("multi-line description: \(error)") }
    return 0
  }
  check(file, size: size)
  return 0
}

func check(_ file: GGUFFile, size: Int) {
  guard file.fileSize == size, file.version == 2 || file.version == 3 else { fatalError("bad header") }
  guard file.alignment > 0, file.alignment & (file.alignment - 1) == 0, file.dataOffset % file.alignment == 0
  else { fatalError("bad alignment \(file.alignment) or data offset \(file.dataOffset)") }

  // Metadata: keys in file order, each value readable through every accessor.
  guard file.metadataKeys.count == file.metadata.count, Set(file.metadataKeys).count == file.metadataKeys.count
  else { fatalError("metadata keys and values differ") }
  for key in file.metadataKeys {
    guard let value = file.metadata[key], !key.isEmpty else { fatalError("no value for key \(key)") }
    _ = value.description.count
    _ = try? file.string(key)
    _ = try? file.integer(key)
    _ = try? file.float(key)
    _ = try? file.bool(key)
    _ = try? file.strings(key)
    _ = try? file.integers(key)
    _ = try? file.floats(key)
    if case .array(let array) = value, array.elementType == .array { fatalError("nested array in \(key)") }
  }
  if case .some = try? file.integer("") { fatalError("an empty key was accepted") }

  // Tensors: contiguous, aligned, inside the file.
  var expected = 0
  for info in file.tensors {
    guard info.offset == expected, info.byteCount > 0, info.dimensions.allSatisfy({ $0 >= 1 }),
      (1...4).contains(info.dimensions.count), info.shape == info.dimensions.reversed(),
      info.dimensions[0] % info.type.blockElements == 0,
      info.type.rowBytes(elements: info.dimensions[0]).map({ $0 * (info.elementCount / info.dimensions[0]) })
        == info.byteCount,
      file.tensor(named: info.name) == info, !info.name.isEmpty, info.name.utf8.count < 64
    else { fatalError("tensor \(info) breaks an invariant (expected offset \(expected))") }
    expected = (info.offset + info.byteCount + file.alignment - 1) / file.alignment * file.alignment
    guard file.dataOffset + info.offset + info.byteCount <= size else { fatalError("tensor \(info.name) past the end") }
    let raw = file.bytes(of: info)
    guard raw.count == info.byteCount else { fatalError("bytes(of:) has the wrong size") }
    decode(file, info, raw)
  }
  guard file.tensors.isEmpty || size <= file.dataOffset + expected else { fatalError("trailing bytes accepted") }
}

func decode(_ file: GGUFFile, _ info: GGUFTensorInfo, _ raw: UnsafeRawBufferPointer) {
  guard info.elementCount <= maximumDecodedElements else { return }
  do {
    let tensor = try file.dequantized(info.name)
    guard info.type.isDequantizable else { fatalError("\(info.type) dequantized") }
    guard tensor.shape == info.shape, tensor.dtype == .float32, tensor.count == info.elementCount else {
      fatalError("tensor \(info.name) decoded to \(tensor.shape) \(tensor.dtype)")
    }
    let values = try GGUFDequantization.dequantize(raw, type: info.type, count: info.elementCount)
    let same = tensor.withUnsafeBufferPointer(as: Float.self) { decoded in
      decoded.elementsEqual(values) { $0.bitPattern == $1.bitPattern }
    }
    guard same else { fatalError("tensor \(info.name): the two decoders differ") }
    // A Q8_0 matrix handed over as int8 values and block scales gives back the same numbers.
    if let (q, scales) = file.q8_0Blocks(info) {
      guard info.type == .q8_0, info.shape.count == 2 else { fatalError("q8_0Blocks of a \(info.type) \(info.shape) tensor") }
      let (qv, sv) = (q.scalars(as: Int8.self), scales.floatValues)
      for i in values.indices where Float(qv[i]) * sv[i / 32] != values[i] { fatalError("q8_0Blocks of \(info.name) differ at \(i)") }
    }
    if info.type == .f32, !tensor.withUnsafeBytes({ $0.elementsEqual(raw) }) {
      fatalError("F32 tensor \(info.name) differs from its bytes")
    }
  } catch {
    guard error == .unsupportedType(name: info.name, type: info.type), !info.type.isDequantizable else {
      fatalError("unexpected error decoding \(info.name): \(error)")
    }
  }
}
