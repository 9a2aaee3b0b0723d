import Foundation

/// BERT's WordPiece tokenizer, giving the same ids as Hugging Face's `BertTokenizerFast` (the
/// `tokenizers` pipeline in all-MiniLM-L6-v2's `tokenizer.json`).
///
/// Tokenization runs in three steps, all on Unicode scalars (code points), never on
/// `Character`s:
///
/// 1. **Special tokens.** Occurrences of `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]` and `[MASK]` (those
///    in the vocabulary) in the raw text are kept as those tokens, case-sensitively, as Hugging
///    Face does. So `"a [SEP] b"` encodes a separator in the middle.
/// 2. **Basic tokenization.** The rest of the text is cleaned (U+0000, U+FFFD and control,
///    format and private-use characters removed, whitespace turned into spaces), CJK
///    ideographs become words of their own, and when ``lowercase`` is on the text is
///    decomposed (NFD), stripped of nonspacing marks (accents) and lower-cased. It is then
///    split on spaces, and every punctuation character (ASCII 33–47, 58–64, 91–96, 123–126 and
///    the Unicode `P*` categories) becomes a word of its own.
/// 3. **WordPiece.** Each word becomes the longest vocabulary entry that starts it, then the
///    longest `##` entry that continues it, and so on. A word with no such split, or longer
///    than ``maxScalarsPerWord`` scalars, becomes a single `[UNK]`.
///
/// The character classes follow the Hugging Face library rather than the Unicode version of
/// the Swift runtime (see `BertNormalization`): characters that Unicode assigned after 8.0 are
/// kept as they are (most newer emoji therefore make their word `[UNK]`), Greek capital sigma
/// always becomes `σ` (never the final `ς`), and the fifth CJK range starts at U+2B920.
///
/// ```swift
/// let tokenizer = try WordPieceTokenizer(vocabularyFile: "all-MiniLM-L6-v2/vocab.txt")
/// tokenizer.tokens("Unaffable naïveté!")  // ["una", "##ffa", "##ble", "naive", "##te", "!"]
/// let batch = tokenizer.encode(batch: ["Hello", "Hello, world!"])
/// batch.sequenceLength  // 6
/// batch.ids             // [101, 7592, 102, 0, 0, 0,  101, 7592, 1010, 2088, 999, 102]
/// ```
///
/// The tokenizer is an immutable value; copies share their tables and can be used from any
/// number of threads. No input text makes it fail or crash.
public struct WordPieceTokenizer: Sendable {
  /// Words longer than this many scalars (after normalization) become `[UNK]`.
  public static let maxScalarsPerWord = 100
  /// The prefix of the vocabulary entries that continue a word.
  public static let continuationPrefix = "##"

  /// The ids of the special tokens.
  public struct SpecialTokenIDs: Sendable, Hashable {
    /// `[CLS]`, which starts every encoding.
    public var classification: Int32
    /// `[SEP]`, which ends every encoding.
    public var separator: Int32
    /// `[PAD]`, which fills batch rows up to their common length.
    public var padding: Int32
    /// `[UNK]`, for words that the vocabulary cannot spell.
    public var unknown: Int32
    /// `[MASK]`, if the vocabulary has it.
    public var mask: Int32?
  }

  /// Whether the text is lower-cased and stripped of accents (the uncased models, such as
  /// all-MiniLM-L6-v2). When `false`, neither happens (no NFD either), as in cased BERT.
  public let lowercase: Bool
  /// The ids of `[CLS]`, `[SEP]`, `[PAD]`, `[UNK]` and `[MASK]`.
  public let specialTokenIDs: SpecialTokenIDs

  private let storage: Storage

  private final class Storage: Sendable {
    let tokens: [String]
    let trie: WordPieceTrie
    /// The special tokens recognized in raw text, longest first: UTF-8 bytes and id.
    let specialTokens: [(bytes: [UInt8], id: Int32)]
    /// Whether some special token starts with each byte value.
    let startsSpecialToken: [Bool]

    init(tokens: [String], trie: WordPieceTrie, specialTokens: [(bytes: [UInt8], id: Int32)]) {
      self.tokens = tokens
      self.trie = trie
      self.specialTokens = specialTokens.sorted { $0.bytes.count > $1.bytes.count }
      var starts = [Bool](repeating: false, count: 256)
      for token in specialTokens { starts[Int(token.bytes[0])] = true }
      self.startsSpecialToken = starts
    }
  }

  /// Loads a vocabulary file: one token per line, in id order (line 1 is id 0), UTF-8, lines
  /// ending in `\n` or `\r\n` — the `vocab.txt` of BERT models.
  ///
  /// - Parameters:
  ///   - path: The file's path.
  ///   - lowercase: Whether to lower-case and strip accents (`true` for uncased models).
  /// - Throws: ``TokenizerError`` if the file is missing or unreadable, or for the vocabulary
  ///   problems listed at ``init(vocabulary:lowercase:)``.
  public init(vocabularyFile path: String, lowercase: Bool = true) throws(TokenizerError) {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw .vocabularyFileNotFound(path: path)
    }
    guard !isDirectory.boolValue else {
      throw .vocabularyFileUnreadable(path: path, detail: "it is a directory")
    }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw .vocabularyFileUnreadable(path: path, detail: "\(error.localizedDescription)")
    }
    var tokens: [String] = []
    var lineStart = data.startIndex
    while lineStart < data.endIndex {
      let newline = data[lineStart...].firstIndex(of: 0x0A)
      var lineEnd = newline ?? data.endIndex
      if lineEnd > lineStart && data[lineEnd - 1] == 0x0D { lineEnd -= 1 }
      guard let token = String(validating: data[lineStart..<lineEnd], as: UTF8.self) else {
        throw .vocabularyFileUnreadable(
          path: path, detail: "line \(tokens.count + 1) is not valid UTF-8")
      }
      tokens.append(token)
      guard let newline else { break }
      lineStart = newline + 1
    }
    try self.init(vocabulary: tokens, lowercase: lowercase)
  }

  /// Creates a tokenizer from its vocabulary, in id order.
  ///
  /// - Parameters:
  ///   - vocabulary: The tokens; the token at index `i` has id `i`. Continuation pieces start
  ///     with ``continuationPrefix``.
  ///   - lowercase: Whether to lower-case and strip accents (`true` for uncased models).
  /// - Throws: ``TokenizerError/emptyVocabulary``, ``TokenizerError/emptyToken(line:)``,
  ///   ``TokenizerError/duplicateToken(_:line:firstLine:)`` (tokens are compared scalar by
  ///   scalar), or ``TokenizerError/missingSpecialToken(_:)`` if `[UNK]`, `[CLS]`, `[SEP]` or
  ///   `[PAD]` is absent.
  public init(vocabulary: [String], lowercase: Bool = true) throws(TokenizerError) {
    guard !vocabulary.isEmpty else { throw .emptyVocabulary }
    precondition(vocabulary.count <= Int(Int32.max), "a vocabulary has at most Int32.max tokens")
    var trie = WordPieceTrie()
    let prefix = Self.continuationPrefix.unicodeScalars
    for (index, token) in vocabulary.enumerated() {
      guard !token.isEmpty else { throw .emptyToken(line: index + 1) }
      let id = Int32(index)
      if let first = trie.insert(token.unicodeScalars, id: id, from: WordPieceTrie.wordStart) {
        throw .duplicateToken(token, line: index + 1, firstLine: Int(first) + 1)
      }
      if token.unicodeScalars.starts(with: prefix) {
        _ = trie.insert(
          token.unicodeScalars.dropFirst(prefix.count), id: id, from: WordPieceTrie.continuation)
      }
    }
    func id(_ token: String) throws(TokenizerError) -> Int32 {
      guard let id = trie.exactMatch(token.unicodeScalars, from: WordPieceTrie.wordStart) else {
        throw .missingSpecialToken(token)
      }
      return id
    }
    let special = SpecialTokenIDs(
      classification: try id("[CLS]"), separator: try id("[SEP]"), padding: try id("[PAD]"),
      unknown: try id("[UNK]"),
      mask: trie.exactMatch("[MASK]".unicodeScalars, from: WordPieceTrie.wordStart))
    var recognized: [(bytes: [UInt8], id: Int32)] = [
      (Array("[CLS]".utf8), special.classification), (Array("[SEP]".utf8), special.separator),
      (Array("[PAD]".utf8), special.padding), (Array("[UNK]".utf8), special.unknown),
    ]
    if let mask = special.mask { recognized.append((Array("[MASK]".utf8), mask)) }
    self.lowercase = lowercase
    self.specialTokenIDs = special
    self.storage = Storage(tokens: vocabulary, trie: trie, specialTokens: recognized)
  }

  /// The number of tokens in the vocabulary.
  public var vocabularySize: Int { storage.tokens.count }

  /// The id of `token` (spelled exactly, scalar by scalar), or `nil` if it is not in the
  /// vocabulary.
  public func id(of token: String) -> Int32? {
    storage.trie.exactMatch(token.unicodeScalars, from: WordPieceTrie.wordStart)
  }

  /// The token with `id`, or `nil` if `id` is out of range.
  public func token(for id: Int32) -> String? {
    storage.tokens.indices.contains(Int(id)) ? storage.tokens[Int(id)] : nil
  }

  /// The WordPiece tokens of `text`, without `[CLS]`/`[SEP]` and without truncation, like
  /// Hugging Face's `tokenizer.tokenize(text)`.
  ///
  /// - Complexity: O(*n*) in the length of `text`.
  public func tokens(_ text: String) -> [String] {
    tokenIDs(text).map { storage.tokens[Int($0)] }
  }

  /// The ids of ``tokens(_:)``: no `[CLS]`/`[SEP]`, no truncation.
  ///
  /// - Complexity: O(*n*) in the length of `text`.
  public func tokenIDs(_ text: String) -> [Int32] {
    var ids: [Int32] = []
    appendTokenIDs(of: text, to: &ids, limit: .max)
    return ids
  }

  /// Encodes `text` as `[CLS]`, its WordPiece ids, `[SEP]`, keeping the first
  /// `maxLength - 2` WordPiece ids when there are more.
  ///
  /// - Parameters:
  ///   - text: Any string; an empty one gives `[CLS] [SEP]`.
  ///   - maxLength: The most ids in the result, special tokens included; at least 2.
  ///     all-MiniLM-L6-v2 was trained with 128 (its `tokenizer.json`); sentence-transformers
  ///     runs it with 256 (`sentence_bert_config.json`).
  /// - Complexity: O(*n*) in the length of the encoded part of `text`: tokenization stops
  ///   once `maxLength` is exceeded.
  public func encode(_ text: String, maxLength: Int = 128) -> TokenizedText {
    precondition(maxLength >= 2, "maxLength must leave room for [CLS] and [SEP], got \(maxLength)")
    var ids: [Int32] = [specialTokenIDs.classification]
    let limit = maxLength - 1  // [CLS] and the kept WordPiece ids
    appendTokenIDs(of: text, to: &ids, limit: limit)
    let truncated = ids.count > limit
    if truncated { ids.removeSubrange(limit...) }
    ids.append(specialTokenIDs.separator)
    return TokenizedText(ids: ids, isTruncated: truncated)
  }

  /// Encodes several texts with ``encode(_:maxLength:)`` and pads them to a common length.
  ///
  /// ```swift
  /// let batch = tokenizer.encode(batch: ["a b", "a"], padding: .longest)
  /// // batch.ids:           [101, 1037, 1038, 102,   101, 1037, 102, 0]
  /// // batch.attentionMask: [1, 1, 1, 1,             1, 1, 1, 0]
  /// ```
  ///
  /// - Parameters:
  ///   - texts: The texts, one row each; may be empty.
  ///   - maxLength: The most ids per row, special tokens included; at least 2.
  ///   - padding: ``Padding/longest`` pads to the longest row, ``Padding/maxLength`` to
  ///     `maxLength`.
  public func encode(batch texts: [String], maxLength: Int = 128, padding: Padding = .longest)
    -> TokenizedBatch
  {
    let rows = texts.map { encode($0, maxLength: maxLength) }
    let length =
      switch padding {
      case .longest: rows.map(\.count).max() ?? 0
      case .maxLength: maxLength
      }
    var ids = [Int32](repeating: specialTokenIDs.padding, count: rows.count * length)
    var mask = [Int32](repeating: 0, count: rows.count * length)
    for (row, encoded) in rows.enumerated() {
      let start = row * length
      ids.replaceSubrange(start..<start + encoded.count, with: encoded.ids)
      mask.replaceSubrange(
        start..<start + encoded.count, with: repeatElement(1, count: encoded.count))
    }
    return TokenizedBatch(
      batchSize: rows.count, sequenceLength: length, ids: ids, attentionMask: mask,
      tokenTypeIDs: [Int32](repeating: 0, count: rows.count * length),
      lengths: rows.map(\.count), truncated: rows.map(\.isTruncated))
  }
}

extension WordPieceTokenizer {
  /// Appends the WordPiece ids of `text` (no `[CLS]`/`[SEP]`) to `ids`, and stops early once
  /// `ids` holds more than `limit` ids: words are tokenized independently, so the ids kept by
  /// truncation do not depend on the rest.
  private func appendTokenIDs(of text: String, to ids: inout [Int32], limit: Int) {
    var text = text
    text.makeContiguousUTF8()
    _ = text.utf8.withContiguousStorageIfAvailable { bytes in
      withUnsafeTemporaryAllocation(of: UInt32.self, capacity: Self.maxScalarsPerWord) { word in
        var scanner = Scanner(
          tokenizer: self, trie: storage.trie, word: word, unknown: specialTokenIDs.unknown)
        scanner.scan(bytes, to: &ids, limit: limit)
      }
    }
  }

  /// The normalizer, pre-tokenizer and WordPiece model in one pass over UTF-8 bytes.
  private struct Scanner {
    let lowercase: Bool
    let trie: WordPieceTrie
    let unknown: Int32
    let specialTokens: [(bytes: [UInt8], id: Int32)]
    let startsSpecialToken: [Bool]
    let asciiActions = BertNormalization.asciiActions
    let asciiLowercased = BertNormalization.asciiLowercased
    /// The current word's scalars; only the first `maxScalarsPerWord` are stored.
    let word: UnsafeMutableBufferPointer<UInt32>
    /// The current word's length in scalars, which may exceed the buffer (it is then [UNK]).
    var length = 0

    init(
      tokenizer: WordPieceTokenizer, trie: WordPieceTrie, word: UnsafeMutableBufferPointer<UInt32>,
      unknown: Int32
    ) {
      self.lowercase = tokenizer.lowercase
      self.trie = trie
      self.unknown = unknown
      self.specialTokens = tokenizer.storage.specialTokens
      self.startsSpecialToken = tokenizer.storage.startsSpecialToken
      self.word = word
    }

    mutating func scan(_ bytes: UnsafeBufferPointer<UInt8>, to ids: inout [Int32], limit: Int) {
      var index = 0
      let count = bytes.count
      while index < count {
        if ids.count > limit { return }
        let lead = bytes[index]
        if startsSpecialToken[Int(lead)], let (length, id) = specialToken(in: bytes, at: index) {
          finishWord(to: &ids)
          ids.append(id)
          index += length
          continue
        }
        if lead < 0x80 {
          index += 1
          switch asciiActions[Int(lead)] {
          case .letter: append(UInt32(lowercase ? asciiLowercased[Int(lead)] : lead))
          case .space: finishWord(to: &ids)
          case .punctuation: isolate(UInt32(lead), to: &ids)
          case .remove: break
          }
          continue
        }
        // Multi-byte UTF-8; Swift strings hold valid UTF-8 only.
        let value: UInt32
        if lead < 0xE0 {
          value = UInt32(lead & 0x1F) << 6 | UInt32(bytes[index + 1] & 0x3F)
          index += 2
        } else if lead < 0xF0 {
          value =
            UInt32(lead & 0x0F) << 12 | UInt32(bytes[index + 1] & 0x3F) << 6
            | UInt32(bytes[index + 2] & 0x3F)
          index += 3
        } else {
          value =
            UInt32(lead & 0x07) << 18 | UInt32(bytes[index + 1] & 0x3F) << 12
            | UInt32(bytes[index + 2] & 0x3F) << 6 | UInt32(bytes[index + 3] & 0x3F)
          index += 4
        }
        let (kind, payload) = BertNormalization.kind(of: value)
        switch kind {
        case .keep: push(value, to: &ids)
        case .remove: break
        case .space: finishWord(to: &ids)
        case .ideograph: isolate(value, to: &ids)
        case .ideographMapped:
          let mapped = BertNormalization.mapping(payload)
          isolate(lowercase ? mapped[mapped.startIndex] : value, to: &ids)
        case .stripped: if !lowercase { push(value, to: &ids) }
        case .mapped:
          if lowercase {
            for scalar in BertNormalization.mapping(payload) { push(scalar, to: &ids) }
          } else {
            push(value, to: &ids)
          }
        case .hangul:
          if lowercase {
            BertNormalization.appendHangulJamo(of: value) { append($0) }
          } else {
            append(value)
          }
        }
      }
      finishWord(to: &ids)
    }

    /// The byte length and id of the longest special token at `index`, if one is there.
    private func specialToken(in bytes: UnsafeBufferPointer<UInt8>, at index: Int)
      -> (length: Int, id: Int32)?
    {
      for token in specialTokens where token.bytes.count <= bytes.count - index {
        var matches = true
        for (offset, byte) in token.bytes.enumerated() where bytes[index + offset] != byte {
          matches = false
          break
        }
        if matches { return (token.bytes.count, token.id) }
      }
      return nil
    }

    /// Adds a normalized scalar: punctuation is a word of its own, anything else extends the
    /// current word (the normalized text holds no whitespace other than what `.space` gave).
    @inline(__always)
    private mutating func push(_ scalar: UInt32, to ids: inout [Int32]) {
      if BertNormalization.isPunctuation(scalar) {
        isolate(scalar, to: &ids)
      } else {
        append(scalar)
      }
    }

    @inline(__always)
    private mutating func append(_ scalar: UInt32) {
      if length < word.count { word[length] = scalar }
      length += 1
    }

    /// Ends the current word and makes `scalar` a word of its own.
    private mutating func isolate(_ scalar: UInt32, to ids: inout [Int32]) {
      finishWord(to: &ids)
      append(scalar)
      finishWord(to: &ids)
    }

    /// Appends the WordPiece ids of the current word and starts a new one.
    private mutating func finishWord(to ids: inout [Int32]) {
      guard length > 0 else { return }
      defer { length = 0 }
      guard length <= word.count else {
        ids.append(unknown)
        return
      }
      let scalars = UnsafeBufferPointer(rebasing: word[0..<length])
      let mark = ids.count
      var start = 0
      while start < length {
        let root = start == 0 ? WordPieceTrie.wordStart : WordPieceTrie.continuation
        guard let (end, id) = trie.longestMatch(in: scalars, from: start, root: root) else {
          ids.removeSubrange(mark...)
          ids.append(unknown)
          return
        }
        ids.append(id)
        start = end
      }
    }
  }
}
