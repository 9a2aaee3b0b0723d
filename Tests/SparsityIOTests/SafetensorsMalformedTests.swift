import Foundation
import SparsityTestSupport
import Testing

@testable import SparsityIO

/// The files of `Fixtures/malformed/`, made by scripts/make_malformed_corpus.py. Each file's
/// name starts with the error case the reader must throw: `<case>--<what>.sft`.
private let malformedFiles: [String] = {
  let directory = Fixtures.path("malformed")
  return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
    .filter { $0.hasSuffix(".sft") }.sorted()
}()

@Suite struct SafetensorsMalformedTests {
  @Test func corpusCoversEveryValidationRule() {
    #expect(malformedFiles.count >= 20)
    let covered = Set(malformedFiles.compactMap { $0.components(separatedBy: "--").first })
    let readerCases: Set = [
      "fileTooSmall", "headerTooLarge", "headerOutOfBounds", "invalidHeaderStart", "invalidJSON",
      "duplicateName", "invalidEntry", "unknownDType", "validationOverflow", "partialByte",
      "sizeMismatch", "invalidOffsets", "truncatedData", "trailingBytes", "invalidMetadata",
    ]
    #expect(readerCases.subtracting(covered).isEmpty, "no file for \(readerCases.subtracting(covered))")
    #expect(covered.subtracting(readerCases).isEmpty, "unknown case in \(covered.subtracting(readerCases))")
  }

  @Test(arguments: malformedFiles)
  func rejectsMalformedFile(name: String) throws {
    let expectedCase = try #require(name.components(separatedBy: "--").first)
    let path = Fixtures.path("malformed/" + name)
    let fromFile = expectSafetensorsError { _ = try SafetensorsFile(contentsOf: path) }
    #expect(fromFile?.caseName == expectedCase, "\(name): \(fromFile.map(String.init(describing:)) ?? "-")")
    let fromBytes = expectSafetensorsError { _ = try SafetensorsFile(bytes: try fileBytes(path)) }
    #expect(fromBytes == fromFile)
  }

  @Test(arguments: [
    ("duplicateName--same-name.sft", SafetensorsError.duplicateName("x")),
    ("fileTooSmall--empty.sft", .fileTooSmall(size: 0)),
    ("fileTooSmall--truncated-length.sft", .fileTooSmall(size: 5)),
    ("headerTooLarge--u64-max.sft", .headerTooLarge(.max)),
    ("headerOutOfBounds--beyond-file.sft", .headerOutOfBounds(headerLength: 100, fileSize: 10)),
    ("unknownDType--f128.sft", .unknownDType(name: "x", dtype: "F128")),
    ("invalidEntry--float-shape.sft", .invalidEntry(name: "x", detail: "shape of 'x' must hold non-negative integers")),
    ("invalidEntry--extra-key.sft", .invalidEntry(name: "x", detail: "unexpected key 'strides'")),
    ("validationOverflow--element-count.sft", .validationOverflow(name: "x")),
    ("partialByte--odd-f4.sft", .partialByte(name: "x", dtype: .float4E2M1, elements: 3)),
    ("sizeMismatch--too-few-bytes.sft", .sizeMismatch(name: "x", expectedBytes: 12, actualBytes: 8)),
    ("invalidOffsets--gap.sft", .invalidOffsets(name: "b", detail: "begins at 12 but the previous tensor ends at 8 (leaves a gap)")),
    ("invalidOffsets--overlap.sft", .invalidOffsets(name: "b", detail: "begins at 4 but the previous tensor ends at 8 (overlaps)")),
    ("invalidOffsets--not-from-zero.sft", .invalidOffsets(name: "x", detail: "begins at 4 but the data section starts at 0 (leaves a gap)")),
    ("invalidOffsets--begin-after-end.sft", .invalidOffsets(name: "x", detail: "begin 8 is after end 0")),
    ("truncatedData--missing-bytes.sft", .truncatedData(expected: 8, actual: 5)),
    ("trailingBytes--extra-bytes.sft", .trailingBytes(expected: 8, actual: 9)),
    ("invalidMetadata--number-value.sft", .invalidMetadata("value of 'format' must be a string, found a number")),
  ])
  func reportsTheOffendingTensorAndValues(name: String, expected: SafetensorsError) throws {
    #expect(throws: expected) { _ = try SafetensorsFile(contentsOf: Fixtures.path("malformed/" + name)) }
  }

  @Test func describesErrorsInOneLineNamingTheTensor() {
    let errors: [SafetensorsError] = [
      .sizeMismatch(name: "enc.w", expectedBytes: 12, actualBytes: 8),
      .invalidOffsets(name: "enc.w", detail: "begin 8 is after end 0"),
      .unknownDType(name: "enc.w", dtype: "F128"),
      .invalidEntry(name: "enc.w", detail: "shape of 'enc.w' must hold non-negative integers"),
    ]
    for error in errors {
      #expect(error.description.contains("'enc.w'"))
      #expect(!error.description.contains("\n"))
    }
    #expect(
      SafetensorsError.sizeMismatch(name: "enc.w", expectedBytes: 12, actualBytes: 8).description
        == "tensor 'enc.w': shape and dtype need 12 bytes but data_offsets span 8")
  }

  @Test func reportsUnreadablePaths() throws {
    try withTemporaryDirectory { directory in
      let missing = expectSafetensorsError { _ = try SafetensorsFile(contentsOf: directory + "/none.sft") }
      #expect(missing?.caseName == "io")
      let notAFile = expectSafetensorsError { _ = try SafetensorsFile(contentsOf: directory) }
      #expect(notAFile == .io(path: directory, detail: "not a regular file"))
    }
  }

  /// Every prefix of a valid file is rejected with an error, never a crash.
  @Test func rejectsEveryTruncationOfAValidFile() throws {
    let reference = try Fixtures.bytes("reference.sft")
    for length in 0..<reference.count {
      #expect(throws: SafetensorsError.self) { _ = try SafetensorsFile(bytes: Array(reference.prefix(length))) }
    }
  }
}
