import Foundation
import SparsityTestSupport
import SparsityText
import Testing

@Suite("BPE tokenizer errors")
struct BPETokenizerErrorTests {
  func make(
    _ tokens: [String], merges: [String] = [], types: [Int]? = nil, bos: Int? = nil,
    unknown: Int? = nil
  ) throws(BPETokenizerError) -> BPETokenizer {
    try BPETokenizer(
      tokens: tokens, merges: merges, tokenTypes: types, preTokenizer: .gpt2, bos: bos, eos: nil,
      unknown: unknown, padding: nil, addBOS: false)
  }

  @Test func badMergeLines() {
    let tokens = byteVocabulary(["ab"])
    for merge in ["ab", "a  b", " b", "a ", "a b c", ""] {
      #expect(throws: BPETokenizerError.badMerge(line: 2, merge: merge), "'\(merge)'") {
        try make(tokens, merges: ["a b", merge])
      }
    }
    #expect(
      BPETokenizerError.badMerge(line: 2, merge: "ab").description
        == "merge 2 'ab' is not two tokens separated by one space")
  }

  @Test func mergesOfUnknownTokens() {
    let tokens = byteVocabulary(["ab"])
    #expect(throws: BPETokenizerError.mergeOfUnknownToken(line: 1, merge: "xy b", token: "xy")) {
      try make(tokens, merges: ["xy b"])
    }
    #expect(throws: BPETokenizerError.mergeOfUnknownToken(line: 1, merge: "a ab", token: "aab")) {
      try make(tokens, merges: ["a ab"])
    }
    #expect(throws: BPETokenizerError.mergeOfUnknownToken(line: 2, merge: "a xy", token: "xy")) {
      try make(tokens, merges: ["a b", "a xy"])
    }
    #expect(
      BPETokenizerError.mergeOfUnknownToken(line: 1, merge: "a ab", token: "aab").description
        == "merge 1 'a ab': 'aab' is not in the vocabulary")
  }

  @Test func vocabularyProblems() {
    #expect(throws: BPETokenizerError.emptyVocabulary) { try make([]) }
    #expect(throws: BPETokenizerError.duplicateToken("ab", id: 257, firstID: 256)) {
      try make(byteVocabulary(["ab", "ab"]))
    }
    // Canonically equivalent but different tokens are different tokens.
    #expect(throws: Never.self) { try make(["e\u{301}", "\u{E9}"]) }
    #expect(throws: BPETokenizerError.emptyToken(id: 256)) { try make(byteVocabulary([""])) }
    #expect(throws: BPETokenizerError.tokenTypeCountMismatch(tokens: 256, tokenTypes: 3)) {
      try make(byteVocabulary(), types: [1, 1, 1])
    }
    #expect(
      throws: BPETokenizerError.specialTokenOutOfRange(role: "bos", id: 256, vocabularySize: 256)
    ) {
      try make(byteVocabulary(), bos: 256)
    }
    #expect(
      throws: BPETokenizerError.specialTokenOutOfRange(role: "unknown", id: -1, vocabularySize: 256)
    ) {
      try make(byteVocabulary(), unknown: -1)
    }
    #expect(
      BPETokenizerError.duplicateToken("ab", id: 257, firstID: 256).description
        == "token 257 'ab' is also token 256")
    #expect(
      BPETokenizerError.tokenTypeCountMismatch(tokens: 256, tokenTypes: 3).description
        == "3 token types for 256 tokens")
  }

  @Test func preTokenizerNames() throws {
    #expect(try PreTokenizer(ggufName: "smollm") == .smollm)
    #expect(try PreTokenizer(ggufName: "gpt-2") == .gpt2)
    #expect(try PreTokenizer(ggufName: "gpt2") == .gpt2)
    #expect(try PreTokenizer(ggufName: "llama-bpe") == .llama3)
    #expect(try PreTokenizer(ggufName: "qwen2") == .qwen2)
    for pre in PreTokenizer.allCases {
      for name in pre.ggufNames { #expect(try PreTokenizer(ggufName: name) == pre) }
    }
    for name in ["falcon", "default", "", "SmolLM", "deepseek-llm"] {
      #expect(throws: BPETokenizerError.unknownPreTokenizer(name)) {
        try PreTokenizer(ggufName: name)
      }
    }
    let description = BPETokenizerError.unknownPreTokenizer("falcon").description
    #expect(description.hasPrefix("unknown pre-tokenizer 'falcon' (supported: gpt-2"))
    #expect(description.contains("smollm") && !description.contains("\n"))
  }

  @Test func unreadableTokenizerFiles() throws {
    #expect(throws: BPETokenizerError.fileNotFound(path: "/nonexistent/tokenizer.json")) {
      try BPETokenizer(tokenizerJSON: "/nonexistent/tokenizer.json")
    }
    try withTemporaryDirectory { directory in
      #expect(
        throws: BPETokenizerError.fileUnreadable(path: directory, detail: "it is a directory")
      ) {
        try BPETokenizer(tokenizerJSON: directory)
      }
      let path = directory + "/tokenizer.json"
      try "{\"model\": ".write(toFile: path, atomically: true, encoding: .utf8)
      let error = #expect(throws: BPETokenizerError.self) { try BPETokenizer(tokenizerJSON: path) }
      guard case .invalidJSON(let errorPath, _)? = error else {
        Issue.record("expected invalidJSON, got \(String(describing: error))")
        return
      }
      #expect(errorPath == path)
      try "[1]".write(toFile: path, atomically: true, encoding: .utf8)
      #expect(
        throws: BPETokenizerError.invalidJSON(path: path, detail: "the top level is not an object")
      ) {
        try BPETokenizer(tokenizerJSON: path)
      }
    }
  }

  /// Each unsupported part of a tokenizer.json is refused, naming it.
  @Test func unsupportedTokenizerJSONParts() throws {
    let tokens = byteVocabulary(["ab"])
    let cases: [(String, BPETokenizerError)] = [
      (
        minimalTokenizerJSON(tokens: tokens, merges: [], modelType: "WordPiece"),
        .unsupported(component: "model", detail: "type WordPiece (only BPE is supported)")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: [])
          .replacingOccurrences(of: "\"dropout\": null", with: "\"dropout\": 0.1"),
        .unsupported(component: "model", detail: "dropout 0.1")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: [], normalizer: "{\"type\": \"Lowercase\"}"),
        .unsupported(component: "normalizer", detail: "Lowercase")
      ),
      (
        minimalTokenizerJSON(
          tokens: tokens, merges: [],
          preTokenizer: "{\"type\": \"Metaspace\", \"replacement\": \"▁\"}"),
        .unsupported(component: "pre_tokenizer", detail: "Metaspace")
      ),
      (
        minimalTokenizerJSON(
          tokens: tokens, merges: [],
          preTokenizer: "{\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"use_regex\": true}"
        ),
        .unsupported(component: "pre_tokenizer", detail: "ByteLevel with add_prefix_space")
      ),
      (
        minimalTokenizerJSON(
          tokens: tokens, merges: [],
          preTokenizer: """
            {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\\\s+"}, \
            "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, \
            "use_regex": false}]}
            """),
        .unsupported(component: "pre_tokenizer", detail: "Split of the regex \\s+ (Isolated)")
      ),
      (
        minimalTokenizerJSON(
          tokens: tokens, merges: [],
          preTokenizer: """
            {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": false}, \
            {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}]}
            """),
        .unsupported(component: "pre_tokenizer", detail: "Digits without individual_digits")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: [], decoder: "{\"type\": \"WordPiece\"}"),
        .unsupported(component: "decoder", detail: "WordPiece")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: [], decoder: "null"),
        .unsupported(component: "decoder", detail: "none (tokens would be joined with spaces)")
      ),
      (
        minimalTokenizerJSON(
          tokens: tokens, merges: [], postProcessor: "{\"type\": \"RobertaProcessing\"}"),
        .unsupported(component: "post_processor", detail: "RobertaProcessing")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: ["[\"a\", 1]"]),
        .badMerge(line: 1, merge: "[\"a\", 1]")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: ["\"a b\"", "\"ab\""]),
        .badMerge(line: 2, merge: "ab")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: ["\"a xy\""]),
        .mergeOfUnknownToken(line: 1, merge: "a xy", token: "xy")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: [], unknown: "<unk>"),
        .unknownSpecialToken(role: "unknown", token: "<unk>")
      ),
      (
        minimalTokenizerJSON(tokens: tokens, merges: [], added: [(300, "<x>", true)]),
        .missingTokenID(257)
      ),
    ]
    try withTemporaryDirectory { directory in
      let path = directory + "/tokenizer.json"
      for (index, (json, expected)) in cases.enumerated() {
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: BPETokenizerError.self, "case \(index)") {
          try BPETokenizer(tokenizerJSON: path)
        }
        #expect(error == expected, "case \(index)")
        #expect(error?.description.contains("\n") == false, "case \(index)")
      }
      // An added token with lstrip, and the byte fallback, are refused too.
      let lstrip = minimalTokenizerJSON(tokens: tokens, merges: [], added: [(256, "ab", true)])
        .replacingOccurrences(of: "\"lstrip\": false", with: "\"lstrip\": true")
      try lstrip.write(toFile: path, atomically: true, encoding: .utf8)
      #expect(
        throws: BPETokenizerError.unsupported(component: "added_tokens", detail: "'ab' sets lstrip")
      ) {
        try BPETokenizer(tokenizerJSON: path)
      }
      let fallback = minimalTokenizerJSON(tokens: tokens, merges: [])
        .replacingOccurrences(of: "\"byte_fallback\": false", with: "\"byte_fallback\": true")
      try fallback.write(toFile: path, atomically: true, encoding: .utf8)
      #expect(throws: BPETokenizerError.unsupported(component: "model", detail: "byte_fallback")) {
        try BPETokenizer(tokenizerJSON: path)
      }
    }
  }
}
