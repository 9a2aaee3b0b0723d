import SparsityText
import Testing

/// Every fixture text must give exactly the ids and tokens of the Hugging Face fast tokenizer
/// of all-MiniLM-L6-v2, untruncated and truncated.
@Suite("Hugging Face parity")
struct HuggingFaceParityTests {
  let tokenizer = Fixtures.miniLM
  let cases = Fixtures.reference.cases

  @Test func fixtureIsVaried() {
    #expect(cases.count >= 300)
    #expect(cases.contains { $0.ids128 != nil })
    #expect(cases.contains { $0.ids256 != nil })
    #expect(cases.contains { $0.text.isEmpty })
    #expect(tokenizer.vocabularySize == 30522)
  }

  @Test func untruncatedIDsAndTokensMatch() {
    var matched = 0
    for item in cases {
      let ids = tokenizer.encode(item.text, maxLength: .max).ids
      let tokens = tokenizer.tokens(item.text)
      let pieceIDs = tokenizer.tokenIDs(item.text)
      #expect(ids == item.ids, "ids of \"\(escaped(item.text))\"")
      #expect(tokens == item.tokens, "tokens of \"\(escaped(item.text))\"")
      #expect(pieceIDs == Array(item.ids.dropFirst().dropLast()), "\"\(escaped(item.text))\"")
      if ids == item.ids && tokens == item.tokens { matched += 1 }
    }
    #expect(matched == cases.count, "\(matched) of \(cases.count) fixture texts match")
  }

  @Test(arguments: [128, 256])
  func truncatedIDsMatch(maxLength: Int) {
    var matched = 0
    for item in cases {
      let expected = (maxLength == 128 ? item.ids128 : item.ids256) ?? item.ids
      let encoded = tokenizer.encode(item.text, maxLength: maxLength)
      #expect(encoded.ids == expected, "\"\(escaped(item.text))\" at \(maxLength)")
      #expect(encoded.isTruncated == (expected != item.ids))
      if encoded.ids == expected { matched += 1 }
    }
    #expect(matched == cases.count)
  }

  @Test func defaultMaxLengthIs128() {
    for item in cases where item.ids128 != nil {
      #expect(tokenizer.encode(item.text).ids == item.ids128)
      #expect(tokenizer.encode(item.text).count == 128)
    }
  }

  @Test func casedModeMatches() throws {
    let cased = try WordPieceTokenizer(
      vocabularyFile: Fixtures.path("vocab.txt"), lowercase: false)
    #expect(!Fixtures.reference.cased.isEmpty)
    for item in Fixtures.reference.cased {
      #expect(cased.encode(item.text, maxLength: .max).ids == item.ids, "\"\(escaped(item.text))\"")
    }
  }

  @Test func batchRowsMatchTheFixture() {
    let slice = Array(cases.prefix(64))
    let batch = tokenizer.encode(batch: slice.map(\.text), maxLength: 128, padding: .maxLength)
    #expect(batch.batchSize == slice.count)
    #expect(batch.sequenceLength == 128)
    for (row, item) in slice.enumerated() {
      let expected = item.ids128 ?? item.ids
      let start = row * 128
      #expect(Array(batch.ids[start..<start + expected.count]) == expected)
      #expect(batch.ids[(start + expected.count)..<(start + 128)].allSatisfy { $0 == 0 })
      #expect(batch.lengths[row] == expected.count)
    }
  }
}
