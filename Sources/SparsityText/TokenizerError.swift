/// Why a ``WordPieceTokenizer`` could not be created from a vocabulary.
///
/// Line numbers count from 1; for ``WordPieceTokenizer/init(vocabulary:lowercase:)`` the line of
/// a token is its position in the array plus one. The ``description`` is one line suitable for
/// an error message:
///
/// ```swift
/// do { _ = try WordPieceTokenizer(vocabularyFile: "vocab.txt") }
/// catch { print("error: \(error)") }  // error: vocabulary file not found: vocab.txt
/// ```
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
  /// No file exists at `path`.
  case vocabularyFileNotFound(path: String)
  /// The file at `path` exists but could not be read as UTF-8 text.
  case vocabularyFileUnreadable(path: String, detail: String)
  /// The vocabulary holds no token.
  case emptyVocabulary
  /// A line of the vocabulary is empty (an empty token can never be matched).
  case emptyToken(line: Int)
  /// `token` appears on `line` and before on `firstLine`.
  case duplicateToken(String, line: Int, firstLine: Int)
  /// One of the tokens the encoder needs (`[UNK]`, `[CLS]`, `[SEP]`, `[PAD]`) is not in the
  /// vocabulary.
  case missingSpecialToken(String)

  public var description: String {
    switch self {
    case .vocabularyFileNotFound(let path):
      "vocabulary file not found: \(path)"
    case .vocabularyFileUnreadable(let path, let detail):
      "vocabulary file \(path) could not be read: \(detail)"
    case .emptyVocabulary:
      "the vocabulary holds no token"
    case .emptyToken(let line):
      "vocabulary line \(line) is empty"
    case .duplicateToken(let token, let line, let firstLine):
      "vocabulary line \(line): token '\(token)' already appears on line \(firstLine)"
    case .missingSpecialToken(let token):
      "the vocabulary lacks the special token \(token)"
    }
  }
}
