// libFuzzer target for the safetensors reader; build and run with scripts/fuzz-safetensors.sh.
//
// Every input must either be rejected with a SafetensorsError or parse into a file whose
// tensors re-serialize and re-parse to the same names, dtypes, shapes, bytes and metadata.
// Anything else (a crash, a trap, another error, a round-trip mismatch) is a bug.
import SparsityCore
import SparsityIO

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  let file: SafetensorsFile
  do {
    file = try SafetensorsFile(bytes: bytes)
  } catch is SafetensorsError {
    return 0
  } catch {
    fatalError("unexpected error type: \(error)")
  }
  do {
    let tensors = try file.tensors()
    // The reader checked that the data section ends exactly at the last tensor's end.
    let dataStart = size - (file.entries.last?.dataRange.upperBound ?? 0)
    for (entry, (name, tensor)) in zip(file.entries, tensors) {
      guard entry.name == name, tensor.shape == entry.shape, tensor.dtype == entry.dtype,
        tensor.byteCount == entry.dataRange.count
      else { fatalError("tensor \(name) does not match its entry \(entry)") }
      let original = bytes[(dataStart + entry.dataRange.lowerBound)..<(dataStart + entry.dataRange.upperBound)]
      guard tensor.withUnsafeBytes({ $0.elementsEqual(original) }) else {
        fatalError("tensor \(name) bytes differ from the file")
      }
    }
    let reserialized = try SafetensorsFile.serialize(tensors, metadata: file.metadata)
    let reparsed = try SafetensorsFile(bytes: reserialized)
    guard reparsed.metadata == file.metadata else { fatalError("metadata changed in the round trip") }
    guard reparsed.entries.count == file.entries.count else { fatalError("tensor count changed") }
    for (name, tensor) in tensors {
      guard let again = try? reparsed.tensor(named: name), again.isBitwiseEqual(to: tensor) else {
        fatalError("tensor \(name) changed in the round trip")
      }
    }
    // The writer's output is canonical: writing it again gives the same bytes.
    guard try SafetensorsFile.serialize(try reparsed.tensors(), metadata: reparsed.metadata) == reserialized
    else { fatalError("re-serialization is not stable") }
  } catch {
    fatalError("a valid file failed to round-trip: \(error)")
  }
  return 0
}
