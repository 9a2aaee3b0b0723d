import Foundation
import SparsityTestSupport
import SparsityText
import Testing

/// SmolLM2's real vocabulary, through both routes (the GGUF arrays and the reference
/// tokenizer.json), against the transformers reference in the committed fixture.
@Suite(
  "BPE parity with transformers (SmolLM2)",
  .enabled(if: BPEFixtures.modelFilesPresent, BPEFixtures.skipReason))
struct BPEParityTests {
  let reference = BPEFixtures.reference

  @Test func vocabularyAndSpecialTokens() {
    for tokenizer in [BPEFixtures.fromGGUF, BPEFixtures.fromJSON] {
      #expect(tokenizer.vocabularySize == reference.vocabularySize)
      #expect(tokenizer.preTokenizer == .smollm && !tokenizer.addBOS && !tokenizer.ignoresMerges)
      #expect(tokenizer.bosID == reference.bos && tokenizer.eosID == reference.eos)
      #expect(tokenizer.id(of: "<|im_start|>") == 1 && tokenizer.id(of: "Ġworld") == 905)
      #expect(tokenizer.tokenType(of: 2) == BPETokenizer.TokenType.control)
      #expect(tokenizer.mergeCount == 48_900)
      #expect(tokenizer.byteFallbackID == nil)
      for byte in 0...255 {
        #expect(
          (tokenizer.id(of: String(ByteLevel.scalars[byte])) == nil)
            == reference.missingBytes.contains(byte))
      }
    }
    #expect(BPEFixtures.fromGGUF.unknownID == 0 && BPEFixtures.fromGGUF.paddingID == 2)
    #expect(BPEFixtures.fromJSON.chatTemplate == reference.chatTemplate)
  }

  @Test(arguments: ["gguf", "tokenizer.json"])
  func idsMatchTheFixture(route: String) {
    let tokenizer = route == "gguf" ? BPEFixtures.fromGGUF : BPEFixtures.fromJSON
    var matched = 0
    for item in reference.cases {
      let ids = tokenizer.encode(item.text)
      #expect(ids == item.ids, "\(route) ids of \"\(escaped(item.text))\"")
      #expect(tokenizer.encode(item.text, addSpecial: false) == item.ids)
      if ids == item.ids { matched += 1 }
    }
    #expect(matched == reference.cases.count, "\(matched) of \(reference.cases.count) texts")
    for chat in reference.chat {
      #expect(
        tokenizer.encode(chat.rendered) == chat.ids, "\(route) ids of \"\(escaped(chat.rendered))\""
      )
    }
  }

  /// The same vocabulary with GPT-2's pre-tokenizer gives transformers' uncorrected GGUF
  /// conversion (which ignores `tokenizer.ggml.pre`).
  @Test func gpt2PreTokenizerMatchesTheUncorrectedConversion() throws {
    let vocabulary = BPEFixtures.ggufVocabulary
    let tokenizer = try BPETokenizer(
      tokens: vocabulary.tokens, merges: vocabulary.merges, tokenTypes: vocabulary.tokenTypes,
      preTokenizer: .gpt2, bos: vocabulary.bos, eos: vocabulary.eos, unknown: vocabulary.unknown,
      padding: vocabulary.padding, addBOS: vocabulary.addBOS)
    #expect(reference.cases.contains { $0.gpt2Ids != $0.ids })
    for item in reference.cases {
      #expect(tokenizer.encode(item.text) == item.gpt2Ids, "\"\(escaped(item.text))\"")
    }
  }

  @Test func decodingMatchesTheFixture() {
    let tokenizer = BPEFixtures.fromGGUF
    for item in reference.cases {
      #expect(tokenizer.decode(item.ids) == item.decoded, "\"\(escaped(item.text))\"")
      #expect(
        tokenizer.decode(item.ids, skipSpecialTokens: true) == item.decodedSkippingSpecial,
        "\"\(escaped(item.text))\"")
      // Round trip, except for texts with bytes that the vocabulary lacks (they are dropped).
      let lacksBytes = item.text.utf8.contains { reference.missingBytes.contains(Int($0)) }
      #expect((tokenizer.decode(tokenizer.encode(item.text)) == item.text) == !lacksBytes)
      #expect(
        String(decoding: item.ids.flatMap(tokenizer.bytes(of:)), as: UTF8.self) == item.decoded)
    }
    #expect(reference.lossyDecodes.count >= 10)
    for item in reference.lossyDecodes {
      #expect(tokenizer.decode(item.ids) == item.decoded, "\(item.ids)")
      #expect(BPEFixtures.fromJSON.decode(item.ids) == item.decoded)
    }
  }

  /// tokenizerJSON() loads back with the same ids. With BPE_EXPORT_PATH set, it is also written
  /// there for `scripts/make_bpe_tokenizer_fixtures.py --check-export` (transformers' check).
  @Test(arguments: ["gguf", "tokenizer.json"])
  func exportedTokenizerJSONEncodesIdentically(route: String) throws {
    let tokenizer = route == "gguf" ? BPEFixtures.fromGGUF : BPEFixtures.fromJSON
    let json = tokenizer.tokenizerJSON()
    if let exportPath = ProcessInfo.processInfo.environment["BPE_EXPORT_PATH"], route == "gguf" {
      try json.write(toFile: exportPath, atomically: true, encoding: .utf8)
    }
    try withTemporaryDirectory { directory in
      let path = directory + "/tokenizer.json"
      try json.write(toFile: path, atomically: true, encoding: .utf8)
      let loaded = try BPETokenizer(tokenizerJSON: path)
      #expect(
        loaded.vocabularySize == tokenizer.vocabularySize
          && loaded.mergeCount == tokenizer.mergeCount)
      for item in reference.cases {
        #expect(loaded.encode(item.text) == item.ids, "\"\(escaped(item.text))\"")
      }
      #expect(loaded.tokenizerJSON() == json)
    }
  }

  @Test func chatTemplateOfTheGGUFRendersTheFixture() throws {
    let template = try ChatTemplate(jinja: try #require(BPEFixtures.ggufVocabulary.chatTemplate))
    for chat in reference.chat where chat.template == "gguf" {
      let messages = chat.messages.map { (role: $0.role, content: $0.content) }
      let rendered = template.render(messages, addGenerationPrompt: chat.addGenerationPrompt)
      #expect(rendered == chat.rendered)
      #expect(BPEFixtures.fromGGUF.encode(rendered) == chat.ids)
    }
  }

  /// ~100k characters well under a second (optimized builds; the bound is loose unoptimized).
  @Test func tokenizesALongTextQuickly() {
    let tokenizer = BPEFixtures.fromGGUF
    var text = ""
    while text.unicodeScalars.count < 100_000 {
      for item in reference.cases { text += item.text + "\n" }
    }
    let characters = text.unicodeScalars.count
    let clock = ContinuousClock()
    var ids: [Int] = []
    let elapsed = clock.measure { ids = tokenizer.encode(text) }
    let seconds =
      Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
    print(
      "BPE: \(characters) characters -> \(ids.count) tokens in \(seconds) s (\(Int(Double(characters) / seconds)) characters/s)"
    )
    #expect(seconds < 2.0)
    #expect(ids.count > characters / 8)
  }
}
