import Foundation
import SparsityTestSupport
import SparsityText
import Testing

@Suite("Tokenizer errors")
struct TokenizerErrorTests {
  static let required = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]

  @Test func missingFile() {
    #expect(throws: TokenizerError.vocabularyFileNotFound(path: "/nonexistent/vocab.txt")) {
      try WordPieceTokenizer(vocabularyFile: "/nonexistent/vocab.txt")
    }
    #expect(
      TokenizerError.vocabularyFileNotFound(path: "v.txt").description
        == "vocabulary file not found: v.txt")
  }

  @Test func directoryIsUnreadable() throws {
    try withTemporaryDirectory { directory in
      #expect(
        throws: TokenizerError.vocabularyFileUnreadable(
          path: directory, detail: "it is a directory")
      ) {
        try WordPieceTokenizer(vocabularyFile: directory)
      }
    }
  }

  @Test func invalidUTF8NamesTheLine() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/vocab.txt"
      var bytes = Array("[PAD]\n[UNK]\n".utf8)
      bytes += [0x61, 0xFF, 0x0A]
      try Data(bytes).write(to: URL(fileURLWithPath: path))
      let error = #expect(throws: TokenizerError.self) {
        try WordPieceTokenizer(vocabularyFile: path)
      }
      #expect(error == .vocabularyFileUnreadable(path: path, detail: "line 3 is not valid UTF-8"))
      #expect(error?.description.contains("line 3") == true)
    }
  }

  @Test func fileWithCRLFAndNoFinalNewline() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/vocab.txt"
      try "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello".write(
        toFile: path, atomically: true, encoding: .utf8)
      let tokenizer = try WordPieceTokenizer(vocabularyFile: path)
      #expect(tokenizer.vocabularySize == 5)
      #expect(tokenizer.encode("Hello").ids == [2, 4, 3])
    }
  }

  @Test func emptyVocabulary() throws {
    #expect(throws: TokenizerError.emptyVocabulary) { try WordPieceTokenizer(vocabulary: []) }
    try withTemporaryDirectory { directory in
      let path = directory + "/vocab.txt"
      try Data().write(to: URL(fileURLWithPath: path))
      #expect(throws: TokenizerError.emptyVocabulary) {
        try WordPieceTokenizer(vocabularyFile: path)
      }
    }
  }

  @Test func emptyToken() {
    #expect(throws: TokenizerError.emptyToken(line: 3)) {
      try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "", "[CLS]", "[SEP]"])
    }
  }

  @Test func duplicateToken() {
    let error = #expect(throws: TokenizerError.self) {
      try WordPieceTokenizer(vocabulary: Self.required + ["a", "b", "a"])
    }
    #expect(error == .duplicateToken("a", line: 7, firstLine: 5))
    #expect(error?.description == "vocabulary line 7: token 'a' already appears on line 5")
  }

  @Test func canonicallyEquivalentTokensAreDistinct() throws {
    // Precomposed and decomposed é are different tokens, as in Python and Rust.
    let tokenizer = try WordPieceTokenizer(vocabulary: Self.required + ["\u{E9}", "e\u{301}"])
    #expect(tokenizer.id(of: "\u{E9}") == 4)
    #expect(tokenizer.id(of: "e\u{301}") == 5)
  }

  @Test(arguments: required)
  func missingSpecialToken(_ token: String) {
    let vocabulary = Self.required.filter { $0 != token } + ["hello"]
    #expect(throws: TokenizerError.missingSpecialToken(token)) {
      try WordPieceTokenizer(vocabulary: vocabulary)
    }
    #expect(
      TokenizerError.missingSpecialToken(token).description
        == "the vocabulary lacks the special token \(token)")
  }
}
