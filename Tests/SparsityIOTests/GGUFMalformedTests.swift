import Foundation
import SparsityTestSupport
import Testing

@testable import SparsityIO

/// The files of `Fixtures/gguf/malformed/`, made by scripts/make_malformed_gguf_corpus.py. Each
/// file's name starts with the error case the reader must throw: `<case>--<what>.gguf`.
private let malformedFiles: [String] = {
  let directory = Fixtures.path("gguf/malformed")
  return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
    .filter { $0.hasSuffix(".gguf") }.sorted()
}()

@Suite struct GGUFMalformedTests {
  @Test func corpusCoversEveryValidationRule() {
    #expect(malformedFiles.count >= 80)
    let covered = Set(malformedFiles.compactMap { $0.components(separatedBy: "--").first })
    let readerCases: Set = [
      "truncated", "invalidMagic", "unsupportedVersion", "byteSwapped", "countTooLarge",
      "invalidStringLength", "invalidUTF8", "invalidKey", "duplicateKey", "unknownValueType",
      "nestedArray", "invalidArrayLength", "invalidBool", "invalidAlignment", "invalidTensorName",
      "duplicateTensorName", "invalidDimensionCount", "invalidDimension", "sizeOverflow",
      "unknownTensorType", "rowNotBlockAligned", "misalignedOffset", "invalidOffset", "truncatedData",
      "trailingBytes",
    ]
    #expect(readerCases.subtracting(covered).isEmpty, "no file for \(readerCases.subtracting(covered))")
    #expect(covered.subtracting(readerCases).isEmpty, "unknown case in \(covered.subtracting(readerCases))")
  }

  @Test(arguments: malformedFiles)
  func rejectsMalformedFile(name: String) throws {
    let expectedCase = try #require(name.components(separatedBy: "--").first)
    let path = Fixtures.path("gguf/malformed/" + name)
    let fromFile = expectGGUFError { _ = try GGUFFile(contentsOf: path) }
    #expect(fromFile?.caseName == expectedCase, "\(name): \(fromFile.map(String.init(describing:)) ?? "-")")
    let fromBytes = expectGGUFError { _ = try GGUFFile(bytes: try fileBytes(path)) }
    #expect(fromBytes == fromFile)
    #expect(fromFile.map { !$0.description.contains("\n") } ?? false)
  }

  @Test(arguments: [
    ("truncated--empty.gguf", GGUFError.truncated(what: "the magic", offset: 0)),
    ("truncated--no-version.gguf", .truncated(what: "the version", offset: 4)),
    ("truncated--partial-counts.gguf", .truncated(what: "metadata_kv_count", offset: 16)),
    ("truncated--inside-uint32-value.gguf", .truncated(what: "the value of metadata 'a'", offset: 37)),
    ("invalidMagic--ggml.gguf", .invalidMagic(Array("ggml".utf8))),
    ("invalidMagic--short-and-wrong.gguf", .invalidMagic(Array("GX".utf8))),
    ("unsupportedVersion--one.gguf", .unsupportedVersion(1)),
    ("unsupportedVersion--zero.gguf", .unsupportedVersion(0)),
    ("byteSwapped--big-endian-three.gguf", .byteSwapped(version: 0x0300_0000)),
    ("countTooLarge--kv-count-u64-max.gguf", .countTooLarge(field: "metadata_kv_count", count: .max, remainingBytes: 72)),
    ("invalidStringLength--key-u64-max.gguf", .invalidStringLength(what: "metadata key 0", offset: 24, length: .max, remainingBytes: 32)),
    ("invalidUTF8--value.gguf", .invalidUTF8(what: "the value of metadata 'a'", offset: 37)),
    ("invalidUTF8--array-element.gguf", .invalidUTF8(what: "element 1 of metadata 'a'", offset: 59)),
    ("invalidKey--empty.gguf", .invalidKey(index: 0, detail: "the key is empty")),
    ("duplicateKey--same-key.gguf", .duplicateKey("general.architecture")),
    ("duplicateKey--unicode-normalization.gguf", .duplicateKey("e\u{301}")),
    ("unknownValueType--thirteen.gguf", .unknownValueType(key: "a", typeID: 13)),
    ("nestedArray--array-of-arrays.gguf", .nestedArray(key: "a")),
    ("invalidArrayLength--beyond-file.gguf", .invalidArrayLength(key: "a", count: 100, remainingBytes: 15)),
    ("invalidBool--two.gguf", .invalidBool(key: "a", value: 2, offset: 37)),
    ("invalidBool--array-element.gguf", .invalidBool(key: "a", value: 255, offset: 51)),
    ("invalidAlignment--not-power-of-two.gguf", .invalidAlignment("24 is not a nonzero power of two")),
    ("invalidAlignment--over-1-mib.gguf", .invalidAlignment("2097152 is more than the limit of 1 MiB")),
    ("invalidAlignment--uint64.gguf", .invalidAlignment("must be UINT32, found UINT64")),
    ("invalidTensorName--64-bytes.gguf", .invalidTensorName(index: 0, name: String(repeating: "w", count: 64), detail: "the name has 64 bytes, at most 63 are allowed")),
    ("duplicateTensorName--same-name.gguf", .duplicateTensorName("a")),
    ("invalidDimensionCount--five.gguf", .invalidDimensionCount(name: "x", count: 5)),
    ("invalidDimension--zero.gguf", .invalidDimension(name: "x", index: 1, value: 0)),
    ("invalidDimension--above-int64-max.gguf", .invalidDimension(name: "x", index: 0, value: 1 << 63)),
    ("sizeOverflow--byte-count.gguf", .sizeOverflow(name: "x")),
    ("unknownTensorType--42.gguf", .unknownTensorType(name: "x", typeID: 42)),
    ("rowNotBlockAligned--q4_0-16.gguf", .rowNotBlockAligned(name: "x", type: .q4_0, elements: 16)),
    ("misalignedOffset--second-unpadded.gguf", .misalignedOffset(name: "b", offset: 8, alignment: 32)),
    ("invalidOffset--gap-at-start.gguf", .invalidOffset(name: "x", offset: 32, expected: 0)),
    ("invalidOffset--overlap.gguf", .invalidOffset(name: "b", offset: 0, expected: 32)),
    ("truncatedData--one-byte-short.gguf", .truncatedData(name: "x", end: 136, fileSize: 135)),
    ("trailingBytes--after-padding.gguf", .trailingBytes(expected: 160, actual: 161)),
  ])
  func reportsTheOffendingFieldAndValues(name: String, expected: GGUFError) throws {
    #expect(throws: expected) { _ = try GGUFFile(contentsOf: Fixtures.path("gguf/malformed/" + name)) }
  }

  @Test func describesErrorsInOneLineNamingTheTensor() {
    let errors: [GGUFError] = [
      .invalidOffset(name: "blk.0.attn_q.weight", offset: 64, expected: 0),
      .truncatedData(name: "blk.0.attn_q.weight", end: 100, fileSize: 90),
      .unknownTensorType(name: "blk.0.attn_q.weight", typeID: 42),
      .rowNotBlockAligned(name: "blk.0.attn_q.weight", type: .q4_1, elements: 48),
    ]
    for error in errors {
      #expect(error.description.contains("'blk.0.attn_q.weight'"))
      #expect(!error.description.contains("\n"))
    }
    #expect(
      GGUFError.invalidOffset(name: "blk.0.attn_q.weight", offset: 64, expected: 0).description
        == "tensor 'blk.0.attn_q.weight' has offset 64, expected 0 (where the previous tensors end)")
    // Names from a file may hold control characters: they are escaped, and long ones cut.
    let hostile = GGUFError.duplicateKey("a\nb\u{0}" + String(repeating: "x", count: 1000))
    #expect(!hostile.description.contains("\n"))
    #expect(hostile.description.hasPrefix("duplicate metadata key 'a\\u{a}b\\u{0}xxx"))
    #expect(hostile.description.count < 300)
  }

  @Test func reportsUnreadablePaths() throws {
    try withTemporaryDirectory { directory in
      let missing = expectGGUFError { _ = try GGUFFile(contentsOf: directory + "/none.gguf") }
      #expect(missing?.caseName == "io")
      let notAFile = expectGGUFError { _ = try GGUFFile(contentsOf: directory) }
      #expect(notAFile == .io(path: directory, detail: "not a regular file"))
      // An empty file is a format error, the same as empty bytes.
      _ = FileManager.default.createFile(atPath: directory + "/empty.gguf", contents: Data())
      #expect(throws: GGUFError.truncated(what: "the magic", offset: 0)) {
        _ = try GGUFFile(contentsOf: directory + "/empty.gguf")
      }
    }
  }
}
