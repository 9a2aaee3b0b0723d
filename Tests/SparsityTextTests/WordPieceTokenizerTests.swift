import Foundation
import SparsityText
import Testing

@Suite("WordPiece tokenizer")
struct WordPieceTokenizerTests {
  /// A small vocabulary: ids are the positions.
  static let smallVocabulary = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "a", "##ff", "##a",
    "b", "!", "hello", "##s", "unaffable", "é", "中", "##", "#",
  ]

  static func small(lowercase: Bool = true) throws -> WordPieceTokenizer {
    try WordPieceTokenizer(vocabulary: smallVocabulary, lowercase: lowercase)
  }

  @Test func greedyLongestMatchFirst() throws {
    let tokenizer = try Self.small()
    #expect(tokenizer.tokens("unaffable") == ["unaffable"])
    #expect(tokenizer.tokens("unaff") == ["un", "##aff"])
    #expect(tokenizer.tokens("affable") == ["a", "##ff", "##able"])
    #expect(tokenizer.tokens("hellos") == ["hello", "##s"])
    // No split spells the word: the whole word is [UNK], not a prefix of it.
    #expect(tokenizer.tokens("unx hello") == ["[UNK]", "hello"])
    #expect(tokenizer.tokenIDs("unx hello") == [1, 13])
  }

  @Test func specialTokenIDsAndLookups() throws {
    let tokenizer = try Self.small()
    let special = tokenizer.specialTokenIDs
    #expect(special.classification == 2 && special.separator == 3 && special.padding == 0)
    #expect(special.unknown == 1 && special.mask == 4)
    #expect(tokenizer.vocabularySize == Self.smallVocabulary.count)
    #expect(tokenizer.id(of: "##able") == 7)
    #expect(tokenizer.id(of: "able") == nil)
    #expect(tokenizer.id(of: "") == nil)
    #expect(tokenizer.token(for: 15) == "unaffable")
    #expect(tokenizer.token(for: 20) == nil)
    #expect(tokenizer.token(for: -1) == nil)
  }

  @Test func maskIsOptional() throws {
    let tokenizer = try WordPieceTokenizer(vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"])
    #expect(tokenizer.specialTokenIDs.mask == nil)
    #expect(tokenizer.tokens("[MASK] a") == ["[UNK]", "[UNK]", "[UNK]", "a"])
  }

  @Test func specialTokensInTextAreKept() throws {
    let tokenizer = try Self.small()
    #expect(tokenizer.tokenIDs("hello[SEP]hello") == [13, 3, 13])
    #expect(tokenizer.tokens("[MASK] [sep]") == ["[MASK]", "[UNK]", "[UNK]", "[UNK]"])
    #expect(tokenizer.encode("[CLS]").ids == [2, 2, 3])
  }

  @Test func punctuationAndHashes() throws {
    let tokenizer = try Self.small()
    // "#" is punctuation, so "##" in text is two words "#", never the vocabulary entry "##".
    #expect(tokenizer.tokens("##") == ["#", "#"])
    #expect(tokenizer.tokens("hello!!") == ["hello", "!", "!"])
  }

  @Test func lowercaseStripsAccentsAndCasedKeepsThem() throws {
    #expect(try Self.small().tokens("UNAFFABLE É") == ["unaffable", "[UNK]"])
    #expect(try Self.small().tokens("Une\u{301}") == ["[UNK]"])
    #expect(try Self.small().tokens("e\u{301}") == ["[UNK]"])
    let cased = try Self.small(lowercase: false)
    #expect(cased.tokens("unaffable UNAFFABLE é 中") == ["unaffable", "[UNK]", "é", "中"])
  }

  @Test(arguments: ["", " ", "\t\n\r ", "\u{0}", "\u{FFFD}", "\u{200B}", "\u{301}", "\u{3000}"])
  func emptyInputGivesClsSep(_ text: String) throws {
    let tokenizer = try Self.small()
    let encoded = tokenizer.encode(text)
    #expect(encoded.ids == [2, 3])
    #expect(encoded.attentionMask == [1, 1])
    #expect(encoded.tokenTypeIDs == [0, 0])
    #expect(!encoded.isTruncated)
    #expect(tokenizer.tokens(text).isEmpty)
  }

  @Test func wordsLongerThan100ScalarsAreUnknown() throws {
    let tokenizer = try WordPieceTokenizer(
      vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##a"])
    #expect(
      tokenizer.tokenIDs(String(repeating: "a", count: 100)) == [4] + Array(repeating: 5, count: 99)
    )
    #expect(tokenizer.tokenIDs(String(repeating: "a", count: 101)) == [1])
    // Scalars, not Characters, count: 50 "a" + combining accent pairs is 100 Characters of 2
    // scalars each, stripped to 50 by accent removal before counting.
    #expect(tokenizer.tokenIDs(String(repeating: "a\u{301}", count: 100)).count == 100)
    let cased = try WordPieceTokenizer(
      vocabulary: ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a", "##a"], lowercase: false)
    #expect(cased.tokenIDs(String(repeating: "a\u{301}", count: 50)) == [1])
    #expect(tokenizer.tokenIDs(String(repeating: "a", count: 10_000) + " a") == [1, 4])
  }

  @Test func truncationCountsSpecialTokens() throws {
    let tokenizer = try Self.small()
    let text = "hello hello hello hello"
    #expect(tokenizer.encode(text, maxLength: 6).ids == [2, 13, 13, 13, 13, 3])
    #expect(!tokenizer.encode(text, maxLength: 6).isTruncated)
    #expect(tokenizer.encode(text, maxLength: 5).ids == [2, 13, 13, 13, 3])
    #expect(tokenizer.encode(text, maxLength: 5).isTruncated)
    #expect(tokenizer.encode(text, maxLength: 2).ids == [2, 3])
    // Truncation cuts between the pieces of a word, as Hugging Face does.
    #expect(tokenizer.encode("unaff", maxLength: 3).ids == [2, 5, 3])
    #expect(tokenizer.encode("hello   ", maxLength: 3).isTruncated == false)
  }

  @Test func batchPadsToLongest() throws {
    let tokenizer = try Self.small()
    let batch = tokenizer.encode(batch: ["hello", "unaff hello!", ""])
    #expect(batch.batchSize == 3)
    #expect(batch.sequenceLength == 6)
    #expect(batch.ids == [2, 13, 3, 0, 0, 0, 2, 5, 6, 13, 12, 3, 2, 3, 0, 0, 0, 0])
    #expect(batch.attentionMask == [1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0])
    #expect(batch.tokenTypeIDs == Array(repeating: 0, count: 18))
    #expect(batch.lengths == [3, 6, 2])
    #expect(batch.truncated == [false, false, false])
  }

  @Test func batchPadsToMaxLengthAndTruncates() throws {
    let tokenizer = try WordPieceTokenizer(
      vocabulary: ["[UNK]", "[CLS]", "[SEP]", "x", "[PAD]"])  // padding id 4, not 0
    let batch = tokenizer.encode(batch: ["x", "x x x x x"], maxLength: 4, padding: .maxLength)
    #expect(batch.sequenceLength == 4)
    #expect(batch.ids == [1, 3, 2, 4, 1, 3, 3, 2])
    #expect(batch.attentionMask == [1, 1, 1, 0, 1, 1, 1, 1])
    #expect(batch.lengths == [3, 4])
    #expect(batch.truncated == [false, true])
  }

  @Test func emptyBatch() throws {
    let tokenizer = try Self.small()
    let longest = tokenizer.encode(batch: [])
    #expect(longest.batchSize == 0 && longest.sequenceLength == 0 && longest.ids.isEmpty)
    let fixed = tokenizer.encode(batch: [], maxLength: 16, padding: .maxLength)
    #expect(fixed.batchSize == 0 && fixed.sequenceLength == 16 && fixed.attentionMask.isEmpty)
  }

  @Test func miniLMExamplesFromTheDocumentation() {
    let tokenizer = Fixtures.miniLM
    #expect(tokenizer.encode("Hello, world!").ids == [101, 7592, 1010, 2088, 999, 102])
    #expect(
      tokenizer.tokens("Unaffable naïveté!") == ["una", "##ffa", "##ble", "naive", "##te", "!"])
    let batch = tokenizer.encode(batch: ["Hello", "Hello, world!"])
    #expect(batch.sequenceLength == 6)
    #expect(batch.ids == [101, 7592, 102, 0, 0, 0, 101, 7592, 1010, 2088, 999, 102])
    #expect(
      tokenizer.encode(batch: ["a b", "a"]).ids == [101, 1037, 1038, 102, 101, 1037, 102, 0])
  }

  @Test func copiesAreUsableConcurrently() async {
    let tokenizer = Fixtures.miniLM
    let texts = Fixtures.reference.cases.map(\.text)
    let expected = texts.map { tokenizer.encode($0).ids }
    let results = await withTaskGroup(of: [[Int32]].self) { group in
      for _ in 0..<4 { group.addTask { texts.map { tokenizer.encode($0).ids } } }
      return await group.reduce(into: []) { $0.append($1) }
    }
    #expect(results.allSatisfy { $0 == expected })
  }

  @Test func tenThousandSentencesAreFast() {
    let tokenizer = Fixtures.miniLM
    let sentences = (0..<10_000).map {
      "Sentence number \($0): the quick brown fox jumps over the lazy dog, naïvely!"
    }
    let clock = ContinuousClock()
    let elapsed = clock.measure {
      let batch = tokenizer.encode(batch: sentences)
      #expect(batch.batchSize == 10_000)
    }
    #if DEBUG
      let limit = Duration.seconds(30)
    #else
      let limit = Duration.seconds(1)
    #endif
    #expect(elapsed < limit, "10,000 sentences took \(elapsed)")
  }
}
