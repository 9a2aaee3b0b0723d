/// The encoding of one text: `[CLS]`, the WordPiece ids, `[SEP]`.
///
/// ```swift
/// let encoded = tokenizer.encode("Hello, world!")
/// encoded.ids            // [101, 7592, 1010, 2088, 999, 102]
/// encoded.attentionMask  // [1, 1, 1, 1, 1, 1]
/// ```
public struct TokenizedText: Sendable, Hashable {
  /// Token ids, starting with `[CLS]` and ending with `[SEP]`.
  public var ids: [Int32]
  /// Whether ids were dropped to fit the maximum length.
  public var isTruncated: Bool

  /// Creates an encoding from its ids.
  public init(ids: [Int32], isTruncated: Bool = false) {
    self.ids = ids
    self.isTruncated = isTruncated
  }

  /// The number of tokens, special tokens included.
  public var count: Int { ids.count }

  /// One 1 per token: every token of an unpadded encoding is attended to.
  public var attentionMask: [Int32] { Array(repeating: 1, count: ids.count) }

  /// One 0 per token: a single text is segment 0.
  public var tokenTypeIDs: [Int32] { Array(repeating: 0, count: ids.count) }
}

/// The encodings of several texts, padded to one length, as flat row-major arrays ready to be
/// shaped `[batchSize, sequenceLength]`.
///
/// Row `r` of a field is `field[r * sequenceLength ..< (r + 1) * sequenceLength]`. Padding
/// positions hold the `[PAD]` id in ``ids`` and 0 in ``attentionMask``.
public struct TokenizedBatch: Sendable, Hashable {
  /// The number of texts (rows).
  public var batchSize: Int
  /// The length of every row after padding.
  public var sequenceLength: Int
  /// Token ids, `batchSize × sequenceLength`, row-major.
  public var ids: [Int32]
  /// 1 for a real token, 0 for padding, `batchSize × sequenceLength`, row-major.
  public var attentionMask: [Int32]
  /// Segment ids, all 0 for single texts, `batchSize × sequenceLength`, row-major.
  public var tokenTypeIDs: [Int32]
  /// The number of real (unpadded) tokens in each row, special tokens included.
  public var lengths: [Int]
  /// Whether each row's text was truncated to fit the maximum length.
  public var truncated: [Bool]

  /// Creates a batch from its fields; the arrays must have the documented sizes.
  public init(
    batchSize: Int, sequenceLength: Int, ids: [Int32], attentionMask: [Int32],
    tokenTypeIDs: [Int32], lengths: [Int], truncated: [Bool]
  ) {
    precondition(
      ids.count == batchSize * sequenceLength, "ids must hold batchSize × sequenceLength")
    precondition(
      attentionMask.count == ids.count && tokenTypeIDs.count == ids.count,
      "attentionMask and tokenTypeIDs must be as long as ids")
    precondition(
      lengths.count == batchSize && truncated.count == batchSize,
      "lengths and truncated must hold one entry per row")
    self.batchSize = batchSize
    self.sequenceLength = sequenceLength
    self.ids = ids
    self.attentionMask = attentionMask
    self.tokenTypeIDs = tokenTypeIDs
    self.lengths = lengths
    self.truncated = truncated
  }
}

/// How ``WordPieceTokenizer/encode(batch:maxLength:padding:)`` pads rows.
public enum Padding: Sendable, Hashable {
  /// Pad every row to the longest row of the batch.
  case longest
  /// Pad every row to the maximum length.
  case maxLength
}
