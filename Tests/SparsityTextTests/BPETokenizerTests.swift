import Foundation
import SparsityTestSupport
import SparsityText
import Testing

/// A byte-level vocabulary: the 256 byte tokens (in byte order, ids 0–255) plus `extra`.
func byteVocabulary(_ extra: [String] = []) -> [String] {
  ByteLevel.scalars.map { String($0) } + extra
}

/// A tokenizer over ``byteVocabulary(_:)`` plus `extra` with `merges`.
func smallTokenizer(
  _ extra: [String], merges: [String], types: [Int]? = nil, pre: PreTokenizer = .gpt2,
  bos: Int? = nil, eos: Int? = nil, addBOS: Bool = false, addEOS: Bool = false,
  ignoreMerges: Bool? = nil
) throws -> BPETokenizer {
  let tokens = byteVocabulary(extra)
  return try BPETokenizer(
    tokens: tokens, merges: merges,
    tokenTypes: types.map { [Int](repeating: 1, count: 256) + $0 }, preTokenizer: pre, bos: bos,
    eos: eos, unknown: nil, padding: nil, addBOS: addBOS, addEOS: addEOS,
    ignoreMerges: ignoreMerges)
}

@Suite("BPE tokenizer")
struct BPETokenizerTests {
  /// The ids of `text`'s bytes as byte tokens of ``byteVocabulary(_:)``.
  func byteIDs(_ text: String) -> [Int] { text.utf8.map(Int.init) }

  @Test func byteAlphabetRoundTripsAll256Bytes() throws {
    let scalars = ByteLevel.scalars
    #expect(scalars.count == 256)
    #expect(Set(scalars).count == 256)
    #expect(scalars[0x20] == "Ġ" && scalars[0x0A] == "Ċ" && scalars[0x00] == "\u{100}")
    #expect(scalars[0xAD] == "\u{143}" && scalars[0x7F] == "\u{121}" && scalars[0xA0] == "\u{142}")
    for byte in 0...255 {
      let printable =
        (33...126).contains(byte) || (161...172).contains(byte) || (174...255).contains(byte)
      #expect((scalars[byte].value == UInt32(byte)) == printable)
      #expect(ByteLevel.byte(for: scalars[byte]) == UInt8(byte))
    }
    let all = (0...255).map { UInt8($0) }
    #expect(ByteLevel.decode(ByteLevel.encode(all)) == all)
    #expect(ByteLevel.decode("hello Ā") == nil)  // the space is not in the alphabet
    #expect(ByteLevel.byte(for: "\u{144}") == nil && ByteLevel.byte(for: " ") == nil)

    let tokenizer = try smallTokenizer([], merges: [])
    for byte in 0...255 { #expect(tokenizer.bytes(of: byte) == [UInt8(byte)]) }
    #expect(tokenizer.decode(Array(0...255)) == String(decoding: all, as: UTF8.self))
    let text = "héllo wörld 日本 😀\u{0}\u{7F}"
    #expect(tokenizer.encode(text) == byteIDs(text))
    #expect(tokenizer.decode(tokenizer.encode(text)) == text)
  }

  @Test func mergesApplyInRankOrder() throws {
    // "b c" outranks "a b": abc → a + bc → abc.
    let rightFirst = try smallTokenizer(["bc", "ab", "abc"], merges: ["b c", "a b", "a bc"])
    #expect(rightFirst.encode("abc") == [rightFirst.id(of: "abc")!])
    let noFinal = try smallTokenizer(["bc", "ab"], merges: ["b c", "a b"])
    #expect(noFinal.encode("abc") == [Int(UInt8(ascii: "a")), noFinal.id(of: "bc")!])
    let leftFirst = try smallTokenizer(["ab", "bc"], merges: ["a b", "b c"])
    #expect(leftFirst.encode("abc") == [leftFirst.id(of: "ab")!, Int(UInt8(ascii: "c"))])
    // Equal pairs merge left to right; later merges combine the results.
    let pairs = try smallTokenizer(["aa", "aaaa"], merges: ["a a", "aa aa"])
    let aa = pairs.id(of: "aa")!
    let aaaa = pairs.id(of: "aaaa")!
    #expect(pairs.encode("aaa") == [aa, 97])
    #expect(pairs.encode("aaaa") == [aaaa])
    #expect(pairs.encode("aaaaaaa") == [aaaa, aa, 97])
    // Merges run inside pieces only: the space starts a new piece.
    #expect(pairs.encode("aa aa") == [aa, 32, aa])
    #expect(pairs.mergeCount == 2)
  }

  @Test func mergesOfByteLevelSpaces() throws {
    let tokenizer = try smallTokenizer(["Ġa", "Ġab", "ĠĠ"], merges: ["Ġ a", "Ġa b", "Ġ Ġ"])
    let ab = tokenizer.id(of: "Ġab")!
    #expect(tokenizer.encode(" ab") == [ab])
    // Three spaces before a word: "  " then " ab" (the last space joins the word).
    #expect(tokenizer.encode("   ab") == [tokenizer.id(of: "ĠĠ")!, ab])
    #expect(tokenizer.decode([tokenizer.id(of: "ĠĠ")!, ab]) == "   ab")
    #expect(tokenizer.token(for: ab) == "Ġab" && tokenizer.token(for: 10_000) == nil)
    #expect(tokenizer.bytes(of: ab) == Array(" ab".utf8) && tokenizer.bytes(of: -1) == [])
  }

  @Test func duplicateMergesKeepTheFirstRank() throws {
    let tokenizer = try smallTokenizer(["ab", "bc"], merges: ["b c", "a b", "b c"])
    #expect(tokenizer.mergeCount == 2)
    #expect(tokenizer.encode("abc") == [97, tokenizer.id(of: "bc")!])
  }

  @Test func ignoreMergesKeepsWholeTokens() throws {
    let extra = ["ab", "abc"]
    let merging = try smallTokenizer(extra, merges: ["a b"])
    #expect(merging.encode("abc") == [256, 99])
    let whole = try smallTokenizer(extra, merges: ["a b"], ignoreMerges: true)
    #expect(whole.ignoresMerges)
    #expect(whole.encode("abc") == [257])
    #expect(whole.encode("abcab") == [256, 99, 256])
    #expect(try smallTokenizer([], merges: [], pre: .llama3).ignoresMerges)
    #expect(try !smallTokenizer([], merges: [], pre: .qwen2).ignoresMerges)
  }

  @Test func specialTokensAreMatchedWholeAndLongestFirst() throws {
    let extra = ["<s>", "</s>", "<s>x", "<u>", "Ġa"]
    let tokenizer = try smallTokenizer(
      extra, merges: ["Ġ a"], types: [3, 3, 3, 4, 1], bos: 256, eos: 257, addBOS: true)
    let (s, close, sx, u, spaceA) = (256, 257, 258, 259, 260)
    #expect(
      tokenizer.bosID == s && tokenizer.eosID == close && tokenizer.addBOS && !tokenizer.addEOS)
    #expect(tokenizer.encode("b<s>c", addSpecial: false) == [98, s, 99])
    #expect(tokenizer.encode("b<s>c") == [s, 98, s, 99])
    #expect(tokenizer.encode("<s>xy</s>", addSpecial: false) == [sx, 121, close])
    #expect(tokenizer.encode("<s<s>>", addSpecial: false) == [60, 115, s, 62])
    #expect(tokenizer.encode("a<u> a", addSpecial: false) == [97, u, spaceA])
    // The text before a special token ends a piece: " " stays a lone space.
    #expect(tokenizer.encode(" <s> a", addSpecial: false) == [32, s, spaceA])
    #expect(tokenizer.decode([s, 98, u, close]) == "<s>b<u></s>")
    #expect(tokenizer.decode([s, 98, u, close], skipSpecialTokens: true) == "b<u>")
    #expect(tokenizer.tokenType(of: s) == BPETokenizer.TokenType.control)
    #expect(tokenizer.tokenType(of: u) == BPETokenizer.TokenType.userDefined)
    #expect(tokenizer.id(of: "<s>") == s && tokenizer.id(of: "<t>") == nil)

    let withEOS = try smallTokenizer(
      extra, merges: [], types: [3, 3, 3, 4, 1], eos: 257, addEOS: true)
    #expect(withEOS.encode("b") == [98, close])
    #expect(withEOS.encode("b", addSpecial: false) == [98])
  }

  @Test func missingBytesAreDroppedOrBecomeTheUnknownToken() throws {
    // No token for "b": the GGUF route drops it (llama.cpp); a tokenizer.json unk_token takes it.
    var tokens = byteVocabulary(["<unk>"])
    tokens.remove(at: 98)
    let dropping = try BPETokenizer(
      tokens: tokens, merges: [], tokenTypes: nil, preTokenizer: .gpt2, bos: nil, eos: nil,
      unknown: 255, padding: nil, addBOS: false)
    #expect(dropping.unknownID == 255 && dropping.byteFallbackID == nil)
    #expect(dropping.encode("abc") == [97, 98])
    #expect(dropping.encode("b") == [])
    try withTemporaryDirectory { directory in
      let path = directory + "/tokenizer.json"
      let json = minimalTokenizerJSON(tokens: tokens, merges: [], unknown: "<unk>")
      try json.write(toFile: path, atomically: true, encoding: .utf8)
      let mapping = try BPETokenizer(tokenizerJSON: path)
      #expect(mapping.byteFallbackID == 255 && mapping.unknownID == 255)
      #expect(mapping.encode("abc") == [97, 255, 98])
      #expect(mapping.encode("b") == [255])
    }
  }

  @Test func decodeReplacesIllFormedUTF8() throws {
    let tokenizer = try smallTokenizer([], merges: [])
    #expect(tokenizer.decode([0xE6, 0x97]) == "\u{FFFD}")
    #expect(tokenizer.decode([0xC3, 0x28]) == "\u{FFFD}(")
    #expect(tokenizer.decode([0xF0, 0x9F, 0x98, 0x61]) == "\u{FFFD}a")
    #expect(tokenizer.decode([0x80, 0x80]) == "\u{FFFD}\u{FFFD}")
    #expect(tokenizer.decode([0x61, -1, 70_000, 0x62]) == "ab")
  }

  @Test func tokenizerJSONRoundTrip() throws {
    let extra = ["Ġa", "Ġab", "<s>", "<u>", "\"q\\", "ĠĠ"]
    let tokenizer = try smallTokenizer(
      extra, merges: ["Ġ a", "Ġa b", "Ġ Ġ"], types: [1, 1, 3, 4, 1, 1], pre: .smollm, bos: 258,
      addBOS: true)
    let texts = ["  ab <s>x1 ab<u>", "\"q\\ 12", "", "\t\n ab"]
    try withTemporaryDirectory { directory in
      let path = directory + "/tokenizer.json"
      try tokenizer.tokenizerJSON().write(toFile: path, atomically: true, encoding: .utf8)
      let loaded = try BPETokenizer(tokenizerJSON: path)
      #expect(loaded.vocabularySize == tokenizer.vocabularySize)
      #expect(loaded.preTokenizer == .smollm && loaded.addBOS && loaded.bosID == 258)
      #expect(loaded.tokenType(of: 258) == 3 && loaded.tokenType(of: 259) == 4)
      #expect(loaded.mergeCount == 3)
      for text in texts {
        #expect(loaded.encode(text) == tokenizer.encode(text), "\(escaped(text))")
      }
      #expect(loaded.tokenizerJSON() == tokenizer.tokenizerJSON())
    }
    for pre in PreTokenizer.allCases {
      let other = try smallTokenizer(extra, merges: ["Ġ a"], pre: pre)
      try withTemporaryDirectory { directory in
        let path = directory + "/tokenizer.json"
        try other.tokenizerJSON().write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try BPETokenizer(tokenizerJSON: path)
        #expect(loaded.preTokenizer == pre && loaded.ignoresMerges == other.ignoresMerges)
        #expect(!loaded.addBOS && loaded.bosID == nil)
      }
    }
  }

  @Test func tokenizerJSONFormsAndConfig() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/tokenizer.json"
      let tokens = byteVocabulary(["ab", "<|begin|>", "<|end|>"])
      // Merges as pairs, NFC normalization, a BOS template, added tokens outside model.vocab.
      var json = minimalTokenizerJSON(
        tokens: Array(tokens.prefix(257)), merges: ["[\"a\", \"b\"]"],
        normalizer: "{\"type\": \"NFC\"}",
        added: [(257, "<|begin|>", true), (258, "<|end|>", false)],
        postProcessor: """
          {"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|begin|>", "type_id": 0}}, \
          {"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {"<|begin|>": \
          {"id": "<|begin|>", "ids": [257], "tokens": ["<|begin|>"]}}}
          """)
      try json.write(toFile: path, atomically: true, encoding: .utf8)
      var tokenizer = try BPETokenizer(tokenizerJSON: path)
      #expect(tokenizer.vocabularySize == 259 && tokenizer.normalization == .nfc)
      #expect(tokenizer.addBOS && tokenizer.bosID == 257 && tokenizer.eosID == nil)
      #expect(tokenizer.encode("ab<|end|>") == [257, 256, 258])
      #expect(tokenizer.encode("e\u{301}", addSpecial: false) == [0xC3, 0xA9])
      #expect(tokenizer.decode([257, 97, 258], skipSpecialTokens: true) == "a<|end|>")
      #expect(tokenizer.chatTemplate == nil)

      // tokenizer_config.json beside it overrides the template and names the chat template.
      let config = """
        {"add_bos_token": false, "bos_token": {"content": "<|begin|>"}, "eos_token": "<|end|>", \
        "pad_token": "<|end|>", "chat_template": "{{ x }}"}
        """
      try config.write(
        toFile: directory + "/tokenizer_config.json", atomically: true, encoding: .utf8)
      tokenizer = try BPETokenizer(tokenizerJSON: path)
      #expect(!tokenizer.addBOS && tokenizer.bosID == 257 && tokenizer.eosID == 258)
      #expect(tokenizer.paddingID == 258 && tokenizer.chatTemplate == "{{ x }}")
      #expect(tokenizer.encode("ab") == [256])

      // A chat_template.jinja file is read when the config has none.
      try "{}".write(
        toFile: directory + "/tokenizer_config.json", atomically: true, encoding: .utf8)
      try "{{ y }}".write(
        toFile: directory + "/chat_template.jinja", atomically: true, encoding: .utf8)
      #expect(try BPETokenizer(tokenizerJSON: path).chatTemplate == "{{ y }}")

      // The pre-tokenizer forms of Llama 3 and Qwen2.
      for (pre, pattern) in [(PreTokenizer.llama3, llama3Pattern), (.qwen2, qwen2Pattern)] {
        json = minimalTokenizerJSON(
          tokens: tokens, merges: [],
          preTokenizer: """
            {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": \(jsonString(pattern))}, \
            "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, \
            "trim_offsets": true, "use_regex": false}]}
            """, ignoreMerges: pre == .llama3)
        try json.write(toFile: path, atomically: true, encoding: .utf8)
        tokenizer = try BPETokenizer(tokenizerJSON: path)
        #expect(tokenizer.preTokenizer == pre && tokenizer.ignoresMerges == (pre == .llama3))
      }
    }
  }
}

let llama3Pattern =
  #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
let qwen2Pattern =
  #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#

/// `text` as a JSON string literal.
func jsonString(_ text: String) -> String {
  String(decoding: try! JSONSerialization.data(withJSONObject: [text]), as: UTF8.self)
    .dropFirst().dropLast().description
}

/// A tokenizer.json with a BPE model over `tokens` (ids in order). `merges` are JSON values.
func minimalTokenizerJSON(
  tokens: [String], merges: [String], unknown: String? = nil, normalizer: String = "null",
  preTokenizer: String =
    #"{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}"#,
  added: [(Int, String, Bool)] = [], postProcessor: String = "null",
  decoder: String = #"{"type": "ByteLevel"}"#, modelType: String = "BPE", ignoreMerges: Bool = false
) -> String {
  let vocabulary = tokens.enumerated().map { "\(jsonString($0.element)): \($0.offset)" }
    .joined(separator: ", ")
  let addedTokens = added.map {
    "{\"id\": \($0.0), \"content\": \(jsonString($0.1)), \"single_word\": false, \"lstrip\": false, "
      + "\"rstrip\": false, \"normalized\": false, \"special\": \($0.2)}"
  }.joined(separator: ", ")
  return """
    {"version": "1.0", "truncation": null, "padding": null, "added_tokens": [\(addedTokens)],
    "normalizer": \(normalizer), "pre_tokenizer": \(preTokenizer), "post_processor": \(postProcessor),
    "decoder": \(decoder), "model": {"type": "\(modelType)", "dropout": null,
    "unk_token": \(unknown.map(jsonString) ?? "null"), "continuing_subword_prefix": null,
    "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": \(ignoreMerges),
    "vocab": {\(vocabulary)}, "merges": [\(merges.joined(separator: ", "))]}}
    """
}
