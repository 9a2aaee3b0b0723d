/// Why a ``BPETokenizer``, a ``PreTokenizer`` or a ``ChatTemplate`` could not be created.
///
/// Merge lines count from 1 (the merge at index `i` of the array is line `i + 1`, its rank is
/// `i`); token ids count from 0. The ``description`` is one line suitable for an error message:
///
/// ```swift
/// do { _ = try PreTokenizer(ggufName: "falcon") }
/// catch { print("error: \(error)") }  // error: unknown pre-tokenizer 'falcon' (supported: …)
/// ```
public enum BPETokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
  /// No file exists at `path`.
  case fileNotFound(path: String)
  /// The file at `path` exists but could not be read.
  case fileUnreadable(path: String, detail: String)
  /// The file at `path` is not the JSON expected: `detail` says where.
  case invalidJSON(path: String, detail: String)
  /// The GGUF `tokenizer.ggml.pre` / tokenizer.json pre-tokenizer name is not one this library
  /// reproduces exactly.
  case unknownPreTokenizer(String)
  /// A part of a tokenizer.json this library does not reproduce exactly: `component` is the
  /// JSON key (`model`, `normalizer`, `pre_tokenizer`, `decoder`, `post_processor`,
  /// `added_tokens`), `detail` what it holds.
  case unsupported(component: String, detail: String)
  /// The vocabulary holds no token.
  case emptyVocabulary
  /// The token with `id` is the empty string.
  case emptyToken(id: Int)
  /// `token` has `id` and also the smaller `firstID` (tokens are compared byte by byte).
  case duplicateToken(String, id: Int, firstID: Int)
  /// No token has `id`, although larger ids exist (tokenizer.json vocabularies).
  case missingTokenID(Int)
  /// `tokenTypes` does not have one entry per token.
  case tokenTypeCountMismatch(tokens: Int, tokenTypes: Int)
  /// Merge `line` is not two non-empty tokens separated by one space.
  case badMerge(line: Int, merge: String)
  /// Merge `line` names, or makes, `token`, which is not in the vocabulary.
  case mergeOfUnknownToken(line: Int, merge: String, token: String)
  /// The `role` token id (`bos`, `eos`, `unknown`, `padding`) is not below the vocabulary size.
  case specialTokenOutOfRange(role: String, id: Int, vocabularySize: Int)
  /// A special token named by tokenizer.json / tokenizer_config.json is not in the vocabulary.
  case unknownSpecialToken(role: String, token: String)
  /// A chat template that ``ChatTemplate`` cannot render exactly; `family` names what it looks
  /// like (`Llama 3`, `ChatML variant`, …), `reason` what did not match.
  case unsupportedChatTemplate(family: String, reason: String)

  public var description: String {
    switch self {
    case .fileNotFound(let path):
      "tokenizer file not found: \(path)"
    case .fileUnreadable(let path, let detail):
      "tokenizer file \(path) could not be read: \(detail)"
    case .invalidJSON(let path, let detail):
      "\(path) is not a valid tokenizer file: \(detail)"
    case .unknownPreTokenizer(let name):
      "unknown pre-tokenizer '\(name)' (supported: "
        + PreTokenizer.allCases.map { $0.ggufNames.joined(separator: ", ") }.joined(separator: "; ")
        + ")"
    case .unsupported(let component, let detail):
      "unsupported tokenizer \(component): \(detail)"
    case .emptyVocabulary:
      "the vocabulary holds no token"
    case .emptyToken(let id):
      "token \(id) is empty"
    case .duplicateToken(let token, let id, let firstID):
      "token \(id) '\(token)' is also token \(firstID)"
    case .missingTokenID(let id):
      "the vocabulary has no token with id \(id)"
    case .tokenTypeCountMismatch(let tokens, let tokenTypes):
      "\(tokenTypes) token types for \(tokens) tokens"
    case .badMerge(let line, let merge):
      "merge \(line) '\(merge)' is not two tokens separated by one space"
    case .mergeOfUnknownToken(let line, let merge, let token):
      "merge \(line) '\(merge)': '\(token)' is not in the vocabulary"
    case .specialTokenOutOfRange(let role, let id, let vocabularySize):
      "the \(role) token id \(id) is outside the vocabulary of \(vocabularySize) tokens"
    case .unknownSpecialToken(let role, let token):
      "the \(role) token '\(token)' is not in the vocabulary"
    case .unsupportedChatTemplate(let family, let reason):
      "unsupported chat template (\(family)): \(reason)"
    }
  }
}
