import Foundation
import SparsityTestSupport
import SparsityText
import Testing

/// The committed fixtures (copied into the test bundle), made by
/// scripts/make_tokenizer_fixtures.py.
enum Fixtures {
  static let directory = fixturesDirectory(in: .module)

  static func path(_ name: String) -> String { directory + "/" + name }

  /// One text and what the Hugging Face fast tokenizer makes of it.
  struct Case: Decodable, Sendable {
    var text: String
    /// `tokenizer.tokenize(text)`: no [CLS]/[SEP], untruncated.
    var tokens: [String]?
    /// `[CLS] … [SEP]`, untruncated.
    var ids: [Int32]
    /// Truncated to 128 ids, where that differs from `ids`.
    var ids128: [Int32]?
    /// Truncated to 256 ids, where that differs from `ids`.
    var ids256: [Int32]?
  }

  struct File: Decodable, Sendable {
    var source: String
    var cases: [Case]
    var cased: [Case]
  }

  /// The decoded tokenizer_cases.json fixture.
  static let reference: File = {
    do {
      let data = try Data(contentsOf: URL(fileURLWithPath: path("tokenizer_cases.json")))
      return try JSONDecoder().decode(File.self, from: data)
    } catch {
      fatalError("cannot load \(path("tokenizer_cases.json")): \(error)")
    }
  }()

  /// The all-MiniLM-L6-v2 tokenizer (uncased) over the committed vocab.txt.
  static let miniLM: WordPieceTokenizer = {
    do { return try WordPieceTokenizer(vocabularyFile: path("vocab.txt")) } catch {
      fatalError("cannot load \(path("vocab.txt")): \(error)")
    }
  }()
}

/// `text` with every scalar outside printable ASCII escaped, for failure messages.
func escaped(_ text: String) -> String {
  var out = ""
  for scalar in text.unicodeScalars.prefix(80) {
    if scalar.value >= 0x20 && scalar.value < 0x7F {
      out.unicodeScalars.append(scalar)
    } else {
      out += "\\u{\(String(scalar.value, radix: 16))}"
    }
  }
  return text.unicodeScalars.count > 80 ? out + "…" : out
}
