#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import SparsityCore

// MARK: - File bytes

/// The bytes of a whole file, memory-mapped or copied into an aligned allocation, kept alive
/// for as long as any tensor borrows them. Shared by ``SafetensorsFile`` and ``GGUFFile``.
final class FileBytes: @unchecked Sendable {
  /// Why a file could not be mapped; each reader wraps the detail in its own `io` error.
  struct MappingError: Error {
    /// What failed, e.g. `"cannot open: No such file or directory"`.
    var detail: String
  }

  /// The file's bytes (never written).
  let buffer: UnsafeRawBufferPointer
  private let release: Release

  private enum Release {
    case unmap(UnsafeMutableRawPointer, Int)
    case deallocate(UnsafeMutableRawPointer)
  }

  /// Copies `bytes` into a 64-byte-aligned allocation.
  init(copying bytes: [UInt8]) {
    let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
    bytes.withUnsafeBytes { source in
      if let base = source.baseAddress, source.count > 0 {
        pointer.copyMemory(from: base, byteCount: source.count)
      }
    }
    buffer = UnsafeRawBufferPointer(start: pointer, count: bytes.count)
    release = .deallocate(pointer)
  }

  /// Maps the regular file at `path` read-only. An empty file (which `mmap` refuses) gives an
  /// empty buffer, so that the format's own "too small" rule reports it.
  init(mapping path: String) throws(MappingError) {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw MappingError(detail: "cannot open: \(errnoText())") }
    defer { close(descriptor) }
    var status = stat()
    guard fstat(descriptor, &status) == 0 else {
      throw MappingError(detail: "cannot stat: \(errnoText())")
    }
    guard status.st_mode & S_IFMT == S_IFREG else {
      throw MappingError(detail: "not a regular file")
    }
    let size = Int(status.st_size)
    guard size > 0 else {
      let pointer = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
      buffer = UnsafeRawBufferPointer(start: pointer, count: 0)
      release = .deallocate(pointer)
      return
    }
    guard let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, descriptor, 0),
      address != MAP_FAILED
    else {
      throw MappingError(detail: "cannot map \(size) bytes: \(errnoText())")
    }
    buffer = UnsafeRawBufferPointer(start: address, count: size)
    release = .unmap(address, size)
  }

  deinit {
    switch release {
    case .unmap(let address, let size): munmap(address, size)
    case .deallocate(let pointer): pointer.deallocate()
    }
  }
}

extension FileBytes: PageEvicting {
  /// Drops the whole pages inside `bytes` (`madvise(MADV_DONTNEED)` on the private read-only
  /// mapping: a later read faults them in again from the file). Copied files keep their bytes.
  func evictPages(_ bytes: UnsafeRawBufferPointer) {
    guard case .unmap = release, let start = bytes.baseAddress, bytes.count > 0 else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let lo = (Int(bitPattern: start) + page - 1) / page * page
    let hi = (Int(bitPattern: start) + bytes.count) / page * page
    guard hi > lo, let address = UnsafeMutableRawPointer(bitPattern: lo) else { return }
    _ = madvise(address, hi - lo, Int32(MADV_DONTNEED))
  }

  /// Populates the page tables for `bytes` (`MADV_POPULATE_READ`, Linux 5.14+; ignored where
  /// unsupported).
  func populatePages(_ bytes: UnsafeRawBufferPointer) {
    guard case .unmap = release, let start = bytes.baseAddress, bytes.count > 0 else { return }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let lo = Int(bitPattern: start) / page * page
    let hi = (Int(bitPattern: start) + bytes.count + page - 1) / page * page
    guard let address = UnsafeMutableRawPointer(bitPattern: lo) else { return }
    _ = madvise(address, hi - lo, 22)  // MADV_POPULATE_READ
  }
}

/// The current `errno` as text.
func errnoText() -> String {
  String(cString: strerror(errno))
}
