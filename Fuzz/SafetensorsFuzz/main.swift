// libFuzzer target for the safetensors reader; build and run with scripts/fuzz-safetensors.sh.
//
// Every input must either be rejected with a SafetensorsError or parse into a file whose
// tensors re-serialize and re-parse to the same names, dtypes, shapes, bytes and metadata.
// Such a file is then read through the sparse-tensor convention (TensorArchive: CSR, BSR,
// CUTLASS and N:M entries): rejected with one of its typed errors, or decoded into tensors that
// write and read back equal, and through the compressed-tensors reader (every `P.weight` and
// `P.compressed` as a W8A8 2:4 checkpoint's weight): a stored tensor or one of the typed errors.
// Anything else (a crash, a trap, another error, a round-trip mismatch) is a bug.
import SparsityCore
import SparsityFormats
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
  checkSparseConvention(file)
  checkCompressedTensors(file)
  return 0
}

/// Decodes every Linear-like weight of the file as compressed-tensors would store it.
func checkCompressedTensors(_ file: SafetensorsFile) {
  guard let archive = try? TensorArchive.Reader(file: file) else { return }
  let reader = CompressedTensors.Reader(
    archive: archive,
    configuration: CompressedTensors.Configuration(quantized: true, activations: .dynamic, sparsityFormat: "sparse-24-bitmask", ignore: []),
    path: "fuzz")
  let weights = Set(archive.names.compactMap { name -> String? in
    if name.hasSuffix(".weight") { return name }
    if name.hasSuffix(".compressed") { return String(name.dropLast(11)) + ".weight" }
    return nil
  })
  for name in weights.sorted() {
    do {
      let stored = try reader.stored(name)
      let elements = stored.shape.reduce(into: 1) { $0 = $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
      if elements <= 1 << 20 { _ = stored.dense() }
    } catch is CompressedTensorsError {
    } catch is TensorArchiveError {
    } catch is SparseFormatError {
    } catch is SafetensorsError {
    } catch {
      fatalError("unexpected error type from CompressedTensors.Reader: \(error)")
    }
  }
}

/// Decodes every tensor of a valid file through the sparse convention; what decodes must
/// re-encode and decode to the same stored tensors.
func checkSparseConvention(_ file: SafetensorsFile) {
  let archive: TensorArchive
  do {
    archive = try TensorArchive(file: file)
  } catch let error as TensorArchiveError {
    guard !"\(error)".contains("\n") else { fatalError("multi-line description: \(error)") }
    return
  } catch is SparseFormatError {
    return
  } catch is SafetensorsError {
    return
  } catch {
    fatalError("unexpected error type from TensorArchive: \(error)")
  }
  do {
    let (plain, metadata) = try archive.encoded()
    let again = try TensorArchive(file: try SafetensorsFile(bytes: try SafetensorsFile.serialize(plain, metadata: metadata)))
    for (name, stored) in archive.tensors {
      guard let other = again[name], other == stored else { fatalError("sparse tensor \(name) changed in the round trip") }
      let elements = stored.shape.reduce(into: 1) { $0 = $0.multipliedReportingOverflow(by: $1).overflow ? Int.max : $0 * $1 }
      if elements <= 1 << 20 { _ = stored.dense() }
    }
  } catch is TensorArchiveError {
    // A decoded name can collide with another tensor's component on writing: refused, typed.
  } catch {
    fatalError("a decoded archive failed to round-trip: \(error)")
  }
}
