import Foundation

// Files for the test targets: fresh temporary directories, whole-file reads, fixture folders.

/// A fresh empty directory `<temporary directory>/<prefix>-<UUID>`, which the caller removes.
public func makeTemporaryDirectory(_ prefix: String = "sparsity-tests") throws -> URL {
  let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(prefix)-\(UUID().uuidString)")
  try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
  return url
}

/// Runs `body` with the path of a fresh empty directory, which is removed when `body` returns.
@discardableResult
public func withTemporaryDirectory<R>(_ body: (String) throws -> R) throws -> R {
  let path = try makeTemporaryDirectory().path
  defer { try? FileManager.default.removeItem(atPath: path) }
  return try body(path)
}

/// The bytes of the file at `path`.
public func fileBytes(_ path: String) throws -> [UInt8] {
  Array(try Data(contentsOf: URL(fileURLWithPath: path)))
}

/// The `Fixtures` folder of a test target: its copy in `bundle` (pass `.module`), else the one beside `filePath`.
public func fixturesDirectory(in bundle: Bundle, besides filePath: String = #filePath) -> String {
  if let url = bundle.url(forResource: "Fixtures", withExtension: nil) { return url.path }
  return URL(fileURLWithPath: filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
}
