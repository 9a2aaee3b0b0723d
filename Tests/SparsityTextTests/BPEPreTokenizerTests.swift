import Foundation
import SparsityText
import Testing

/// The four pre-tokenizers against Hugging Face `tokenizers`' pre-tokenizers of GPT-2,
/// SmolLM2, Llama 3 and Qwen2 on every fixture text (no model files needed).
@Suite("BPE pre-tokenizers")
struct BPEPreTokenizerTests {
  let cases = BPEFixtures.reference.cases

  @Test(arguments: PreTokenizer.allCases)
  func piecesMatchHuggingFace(_ pre: PreTokenizer) {
    var matched = 0
    for item in cases {
      let pieces = pre.split(item.text)
      #expect(pieces.joined() == item.text)
      let byteLevel = pieces.map { ByteLevel.encode(Array($0.utf8)) }
      let expected = item.pieces[pre.rawValue]
      #expect(byteLevel == expected, "\(pre) pieces of \"\(escaped(item.text))\"")
      if byteLevel == expected { matched += 1 }
    }
    #expect(matched == cases.count, "\(matched) of \(cases.count) texts")
  }

  @Test func fixtureIsVaried() {
    #expect(cases.count >= 200)
    #expect(cases.contains { $0.text.isEmpty })
    // The pre-tokenizers disagree somewhere, so each is checked on its own.
    for (a, b) in [("gpt2", "smollm"), ("llama3", "qwen2"), ("gpt2", "llama3")] {
      #expect(cases.contains { $0.pieces[a] != $0.pieces[b] }, "\(a) vs \(b)")
    }
  }

  @Test func documentedRules() {
    // Digits alone (smollm) change how a space run before a digit splits.
    #expect(PreTokenizer.smollm.split("x  12 it's") == ["x", "  ", "1", "2", " it", "'s"])
    #expect(PreTokenizer.gpt2.split("x  12 it's") == ["x", " ", " 12", " it", "'s"])
    // Contractions: case-sensitive for GPT-2, case-insensitive (with ſ) for Llama 3 / Qwen2.
    #expect(PreTokenizer.gpt2.split("IT'S") == ["IT", "'", "S"])
    #expect(PreTokenizer.llama3.split("IT'S a'ſ") == ["IT", "'S", " a", "'ſ"])
    #expect(PreTokenizer.llama3.split("1234567") == ["123", "456", "7"])
    #expect(PreTokenizer.qwen2.split("1234") == ["1", "2", "3", "4"])
    #expect(
      PreTokenizer.llama3.split("foo.\n\nbar\n  x") == ["foo", ".\n\n", "bar", "\n", " ", " x"])
    // \s is White_Space: U+00A0 and U+3000 are spaces, U+200B and U+001C are not.
    #expect(PreTokenizer.gpt2.split("a\u{A0}\u{A0}b") == ["a", "\u{A0}", "\u{A0}", "b"])
    #expect(PreTokenizer.gpt2.split("a\u{200B}\u{200B}b") == ["a", "\u{200B}\u{200B}", "b"])
    #expect(PreTokenizer.gpt2.split("a\u{1C}\u{1C}b") == ["a", "\u{1C}\u{1C}", "b"])
    #expect(PreTokenizer.gpt2.split("  a  ") == [" ", " a", "  "])
    #expect(PreTokenizer.gpt2.split("") == [])
  }

  /// Foundation's NFC (used for tokenizer.json `NFC` normalizers) agrees with `tokenizers`'.
  @Test func nfcMatchesHuggingFace() {
    #expect(cases.contains { $0.nfc != nil })
    for item in cases {
      let composed = item.text.precomposedStringWithCanonicalMapping
      #expect(
        composed.unicodeScalars.elementsEqual((item.nfc ?? item.text).unicodeScalars),
        "\"\(escaped(item.text))\"")
    }
  }
}
