import Foundation

/// A byte-level BPE tokenizer (GPT-2 style: GPT-2, SmolLM, Llama 3, Qwen2), giving the ids of
/// Hugging Face `tokenizers` and llama.cpp.
///
/// Encoding runs in four steps, on Unicode scalars and bytes, never on `Character`s:
///
/// 1. **Special tokens.** Occurrences of the special tokens (GGUF token types 3 = control and
///    4 = user-defined; tokenizer.json `added_tokens`) in the text become those tokens, the
///    leftmost first and the longest of those starting there, as Hugging Face's added-token
///    matching does. They are never split.
/// 2. **Normalization** of the text between them: none, or NFC where a tokenizer.json asks.
/// 3. **Pre-tokenization** into pieces by the ``PreTokenizer``'s pattern.
/// 4. **BPE** inside each piece: the piece's UTF-8 bytes become the tokens of their
///    ``ByteLevel`` scalars, then the adjacent pair whose merge has the lowest rank (and of
///    equal ranks the leftmost) is merged until no pair has a merge. With
///    ``ignoresMerges`` a piece that is a token is kept whole. A byte whose scalar is not a
///    token becomes ``byteFallbackID`` or, when there is none, is dropped (llama.cpp and Hugging
///    Face do the same; SmolLM2's vocabulary lacks a few control bytes).
///
/// Decoding concatenates the tokens' bytes (a token holding a scalar outside the byte-level
/// alphabet, such as a special token, contributes its own UTF-8) and decodes them as UTF-8,
/// each ill-formed sequence becoming U+FFFD.
///
/// ```swift
/// let tokenizer = try BPETokenizer(tokenizerJSON: "SmolLM2-135M-Instruct/tokenizer.json")
/// let ids = tokenizer.encode("<|im_start|>user\nHello!")  // [1, 4093, 198, 19556, 17]
/// tokenizer.decode(ids)                                    // "<|im_start|>user\nHello!"
/// ```
///
/// The tokenizer is an immutable value; copies share their tables and can be used from any
/// number of threads. No input text makes it fail or crash. Pieces are cached within one
/// ``encode(_:addSpecial:)`` call.
public struct BPETokenizer: Sendable {
  /// The Unicode normalization applied to the text between special tokens.
  public enum Normalization: String, Sendable {
    case none
    /// Canonical composition (Qwen2's tokenizer.json; llama.cpp does not normalize).
    case nfc
  }

  /// How text is cut into pieces before BPE.
  public let preTokenizer: PreTokenizer
  /// The beginning-of-sequence token, if the model has one.
  public let bosID: Int?
  /// The end-of-sequence token, if the model has one.
  public let eosID: Int?
  /// The unknown token the model names (GGUF `unknown_token_id`, tokenizer.json
  /// `model.unk_token`).
  public let unknownID: Int?
  /// The token that bytes missing from the vocabulary become: tokenizer.json's
  /// `model.unk_token`; `nil` (they are dropped, as in llama.cpp and Hugging Face without an
  /// `unk_token`) for GGUF arrays.
  public let byteFallbackID: Int?
  /// The padding token, if the model names one.
  public let paddingID: Int?
  /// Whether ``encode(_:addSpecial:)`` starts with ``bosID`` (when `addSpecial`).
  public let addBOS: Bool
  /// Whether ``encode(_:addSpecial:)`` ends with ``eosID`` (when `addSpecial`).
  public let addEOS: Bool
  /// Whether a piece that is itself a token is kept whole (tokenizer.json `ignore_merges`).
  public let ignoresMerges: Bool
  /// The normalization of the text between special tokens.
  public let normalization: Normalization
  /// The chat template found beside a tokenizer.json (tokenizer_config.json's `chat_template`
  /// or chat_template.jinja), for ``ChatTemplate/init(jinja:)``; `nil` otherwise.
  public let chatTemplate: String?

  let storage: Storage

  /// The vocabulary and merge tables, shared by copies.
  final class Storage: Sendable {
    let tokens: [String]
    let tokenTypes: [Int32]
    /// Whether the token is in the BPE model's vocabulary (tokenizer.json `model.vocab`) rather
    /// than only an added token.
    let inModel: [Bool]
    /// Token ids by the UTF-8 bytes of the token string.
    let ids: [[UInt8]: Int32]
    /// The bytes each token decodes to: `bytes[offsets[id]..<offsets[id + 1]]`.
    let bytes: [UInt8]
    let offsets: [Int]
    /// The token of each byte's byte-level scalar, -1 if none.
    let byteIDs: [Int32]
    /// Merges: `(left << 32) | right` to `(rank << 32) | merged`.
    let merges: [UInt64: UInt64]
    /// The merges in rank order (the first of duplicates only).
    let mergeList: [(left: Int32, right: Int32)]
    /// Special tokens by first scalar, longest first.
    let specialsByFirstScalar: [UInt32: [(scalars: [UInt32], id: Int32)]]
    let asciiStartsSpecial: [Bool]

    init(
      tokens: [String], tokenTypes: [Int32], inModel: [Bool], ids: [[UInt8]: Int32],
      merges: [UInt64: UInt64], mergeList: [(left: Int32, right: Int32)]
    ) {
      self.tokens = tokens
      self.tokenTypes = tokenTypes
      self.inModel = inModel
      self.ids = ids
      self.merges = merges
      self.mergeList = mergeList
      var bytes: [UInt8] = []
      var offsets = [0]
      offsets.reserveCapacity(tokens.count + 1)
      var specials: [UInt32: [(scalars: [UInt32], id: Int32)]] = [:]
      var asciiStarts = [Bool](repeating: false, count: 128)
      for (id, token) in tokens.enumerated() {
        bytes += ByteLevel.decode(token) ?? Array(token.utf8)
        offsets.append(bytes.count)
        if BPETokenizer.isSpecialType(tokenTypes[id]) {
          let scalars = token.unicodeScalars.map(\.value)
          specials[scalars[0], default: []].append((scalars, Int32(id)))
          if scalars[0] < 128 { asciiStarts[Int(scalars[0])] = true }
        }
      }
      for key in specials.keys { specials[key]!.sort { $0.scalars.count > $1.scalars.count } }
      self.bytes = bytes
      self.offsets = offsets
      self.specialsByFirstScalar = specials
      self.asciiStartsSpecial = asciiStarts
      var byteIDs = [Int32](repeating: -1, count: 256)
      for byte in 0..<256 {
        if let id = ids[ByteLevel.utf8OfBytes[byte]] { byteIDs[byte] = id }
      }
      self.byteIDs = byteIDs
    }
  }

  /// GGUF token types.
  public enum TokenType {
    public static let normal = 1
    public static let unknown = 2
    /// Control tokens (`<|im_start|>`): matched whole in text, dropped by
    /// `decode(_:skipSpecialTokens: true)`.
    public static let control = 3
    /// User-defined tokens: matched whole in text, kept by every decode.
    public static let userDefined = 4
    public static let unused = 5
    public static let byte = 6
  }

  static func isSpecialType(_ type: Int32) -> Bool {
    type == Int32(TokenType.control) || type == Int32(TokenType.userDefined)
  }

  /// Creates a tokenizer from the arrays of a GGUF file's `tokenizer.ggml.*` metadata.
  ///
  /// - Parameters:
  ///   - tokens: `tokenizer.ggml.tokens`, byte-level strings in id order (special tokens as
  ///     their text).
  ///   - merges: `tokenizer.ggml.merges`, `"left right"` in rank order. Of a pair listed twice,
  ///     the first (lower rank) counts, as in llama.cpp.
  ///   - tokenTypes: `tokenizer.ggml.token_type` (see ``TokenType``), or `nil` (all normal).
  ///   - preTokenizer: from `tokenizer.ggml.pre` (``PreTokenizer/init(ggufName:)``).
  ///   - bos, eos, unknown, padding: `tokenizer.ggml.*_token_id`. Bytes missing from the
  ///     vocabulary are dropped, not made `unknown`, as llama.cpp does.
  ///   - addBOS: `tokenizer.ggml.add_bos_token`.
  ///   - addEOS: `tokenizer.ggml.add_eos_token`.
  ///   - ignoreMerges: `nil` takes ``PreTokenizer/ignoresMergesByDefault``.
  /// - Throws: ``BPETokenizerError/emptyVocabulary``, ``BPETokenizerError/emptyToken(id:)``,
  ///   ``BPETokenizerError/duplicateToken(_:id:firstID:)``,
  ///   ``BPETokenizerError/tokenTypeCountMismatch(tokens:tokenTypes:)``,
  ///   ``BPETokenizerError/badMerge(line:merge:)``,
  ///   ``BPETokenizerError/mergeOfUnknownToken(line:merge:token:)`` or
  ///   ``BPETokenizerError/specialTokenOutOfRange(role:id:vocabularySize:)``.
  public init(
    tokens: [String], merges: [String], tokenTypes: [Int]?, preTokenizer: PreTokenizer,
    bos: Int?, eos: Int?, unknown: Int?, padding: Int?, addBOS: Bool, addEOS: Bool = false,
    ignoreMerges: Bool? = nil
  ) throws(BPETokenizerError) {
    var pairs: [(left: String, right: String)] = []
    pairs.reserveCapacity(merges.count)
    for (index, merge) in merges.enumerated() {
      let parts = merge.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false)
      guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
        throw .badMerge(line: index + 1, merge: merge)
      }
      pairs.append(
        (String(String.UnicodeScalarView(parts[0])), String(String.UnicodeScalarView(parts[1]))))
    }
    try self.init(
      tokens: tokens, mergePairs: pairs, mergeTexts: merges, tokenTypes: tokenTypes,
      inModel: nil, preTokenizer: preTokenizer, bos: bos, eos: eos, unknown: unknown,
      byteFallback: nil, padding: padding, addBOS: addBOS, addEOS: addEOS,
      ignoreMerges: ignoreMerges ?? preTokenizer.ignoresMergesByDefault, normalization: .none,
      chatTemplate: nil)
  }

  init(
    tokens: [String], mergePairs: [(left: String, right: String)], mergeTexts: [String]?,
    tokenTypes: [Int]?, inModel: [Bool]?, preTokenizer: PreTokenizer, bos: Int?, eos: Int?,
    unknown: Int?, byteFallback: Int?, padding: Int?, addBOS: Bool, addEOS: Bool,
    ignoreMerges: Bool,
    normalization: Normalization, chatTemplate: String?
  ) throws(BPETokenizerError) {
    guard !tokens.isEmpty else { throw .emptyVocabulary }
    precondition(tokens.count < Int(Int32.max), "a vocabulary has fewer than Int32.max tokens")
    if let tokenTypes, tokenTypes.count != tokens.count {
      throw .tokenTypeCountMismatch(tokens: tokens.count, tokenTypes: tokenTypes.count)
    }
    for (role, id) in [("bos", bos), ("eos", eos), ("unknown", unknown), ("padding", padding)] {
      if let id, !(0..<tokens.count).contains(id) {
        throw .specialTokenOutOfRange(role: role, id: id, vocabularySize: tokens.count)
      }
    }
    var ids: [[UInt8]: Int32] = [:]
    ids.reserveCapacity(tokens.count)
    for (index, token) in tokens.enumerated() {
      guard !token.isEmpty else { throw .emptyToken(id: index) }
      if let first = ids.updateValue(Int32(index), forKey: Array(token.utf8)) {
        throw .duplicateToken(token, id: index, firstID: Int(first))
      }
    }
    var merges: [UInt64: UInt64] = [:]
    merges.reserveCapacity(mergePairs.count)
    var mergeList: [(left: Int32, right: Int32)] = []
    mergeList.reserveCapacity(mergePairs.count)
    for (index, pair) in mergePairs.enumerated() {
      func text() -> String { mergeTexts?[index] ?? pair.left + " " + pair.right }
      guard let left = ids[Array(pair.left.utf8)] else {
        throw .mergeOfUnknownToken(line: index + 1, merge: text(), token: pair.left)
      }
      guard let right = ids[Array(pair.right.utf8)] else {
        throw .mergeOfUnknownToken(line: index + 1, merge: text(), token: pair.right)
      }
      guard let merged = ids[Array(pair.left.utf8) + Array(pair.right.utf8)] else {
        throw .mergeOfUnknownToken(line: index + 1, merge: text(), token: pair.left + pair.right)
      }
      let key = UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))
      if merges[key] == nil {
        merges[key] = UInt64(mergeList.count) << 32 | UInt64(UInt32(merged))
        mergeList.append((left, right))
      }
    }
    let types =
      tokenTypes.map { $0.map { Int32(truncatingIfNeeded: $0) } }
      ?? [Int32](repeating: Int32(TokenType.normal), count: tokens.count)
    self.preTokenizer = preTokenizer
    self.bosID = bos
    self.eosID = eos
    self.unknownID = unknown
    self.byteFallbackID = byteFallback
    self.paddingID = padding
    self.addBOS = addBOS && bos != nil
    self.addEOS = addEOS && eos != nil
    self.ignoresMerges = ignoreMerges
    self.normalization = normalization
    self.chatTemplate = chatTemplate
    self.storage = Storage(
      tokens: tokens, tokenTypes: types,
      inModel: inModel ?? [Bool](repeating: true, count: tokens.count), ids: ids, merges: merges,
      mergeList: mergeList)
  }

  // MARK: - Vocabulary

  /// The number of tokens (ids are `0..<vocabularySize`).
  public var vocabularySize: Int { storage.tokens.count }

  /// The number of merges (after dropping repeated pairs).
  public var mergeCount: Int { storage.mergeList.count }

  /// The id of `token` (its byte-level spelling, or a special token's text, compared byte by
  /// byte), or `nil` if it is not in the vocabulary.
  public func id(of token: String) -> Int? {
    storage.ids[Array(token.utf8)].map(Int.init)
  }

  /// The token string with `id` (byte-level spelling), or `nil` if `id` is out of range.
  public func token(for id: Int) -> String? {
    storage.tokens.indices.contains(id) ? storage.tokens[id] : nil
  }

  /// The GGUF token type of `id` (see ``TokenType``; tokenizer.json added tokens are control
  /// when `special`, else user-defined), or `nil` if `id` is out of range.
  public func tokenType(of id: Int) -> Int? {
    storage.tokenTypes.indices.contains(id) ? Int(storage.tokenTypes[id]) : nil
  }

  /// The bytes that token `id` stands for (empty for an out-of-range id). Concatenated over a
  /// sequence of ids they are the UTF-8 of ``decode(_:skipSpecialTokens:)``'s text before
  /// repair, so a streaming caller can buffer incomplete UTF-8 sequences.
  public func bytes(of id: Int) -> [UInt8] {
    guard storage.tokens.indices.contains(id) else { return [] }
    return Array(storage.bytes[storage.offsets[id]..<storage.offsets[id + 1]])
  }

  // MARK: - Encoding

  /// The token ids of `text`. Special tokens written in the text are parsed as special tokens.
  ///
  /// - Parameter addSpecial: Whether to add ``bosID`` (``addBOS``) and ``eosID`` (``addEOS``).
  /// - Complexity: O(*n* log *n*) in the length of `text`'s longest piece, O(*n*) overall.
  public func encode(_ text: String, addSpecial: Bool = true) -> [Int] {
    var output: [Int] = []
    output.reserveCapacity(text.utf8.count / 3 + 2)
    if addSpecial && addBOS, let bosID { output.append(bosID) }
    let scalars = text.unicodeScalars.map(\.value)
    let classes = normalization == .none ? scalars.map(ScalarClass.of) : []
    var work = Work()
    let storage = self.storage
    scalars.withUnsafeBufferPointer { s in
      classes.withUnsafeBufferPointer { c in
        var segmentStart = 0
        var i = 0
        while i < s.count {
          let value = s[i]
          let mayStartSpecial =
            value < 128
            ? storage.asciiStartsSpecial[Int(value)] : storage.specialsByFirstScalar[value] != nil
          if mayStartSpecial, let match = specialMatch(s, at: i) {
            encodeSegment(s, c, segmentStart..<i, &output, &work)
            output.append(Int(match.id))
            i += match.length
            segmentStart = i
          } else {
            i += 1
          }
        }
        encodeSegment(s, c, segmentStart..<s.count, &output, &work)
      }
    }
    if addSpecial && addEOS, let eosID { output.append(eosID) }
    return output
  }

  /// The longest special token starting at `i`: its length in scalars and id.
  private func specialMatch(_ s: UnsafeBufferPointer<UInt32>, at i: Int) -> (
    length: Int, id: Int32
  )? {
    guard let candidates = storage.specialsByFirstScalar[s[i]] else { return nil }
    for candidate in candidates where candidate.scalars.count <= s.count - i {
      var k = 1
      while k < candidate.scalars.count && candidate.scalars[k] == s[i + k] { k += 1 }
      if k == candidate.scalars.count { return (k, candidate.id) }
    }
    return nil
  }

  /// Reusable buffers and the piece cache of one `encode` call.
  struct Work {
    var bytes: [UInt8] = []
    var cache: [[UInt8]: [Int32]] = [:]
    var symbols: [Int32] = []
    var previous: [Int32] = []
    var next: [Int32] = []
    var heap: [UInt64] = []
  }

  private func encodeSegment(
    _ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<UInt8>, _ range: Range<Int>,
    _ output: inout [Int], _ work: inout Work
  ) {
    guard !range.isEmpty else { return }
    if normalization == .nfc {
      var text = String.UnicodeScalarView()
      for value in s[range] { text.append(Unicode.Scalar(value)!) }
      let normalized = String(text).precomposedStringWithCanonicalMapping.unicodeScalars.map(
        \.value)
      let classes = normalized.map(ScalarClass.of)
      normalized.withUnsafeBufferPointer { ns in
        classes.withUnsafeBufferPointer { nc in
          preTokenizer.forEachPiece(ns, nc, in: 0..<ns.count) { piece in
            encodePiece(ns, piece, &output, &work)
          }
        }
      }
    } else {
      preTokenizer.forEachPiece(s, c, in: range) { piece in encodePiece(s, piece, &output, &work) }
    }
  }

  private func encodePiece(
    _ s: UnsafeBufferPointer<UInt32>, _ range: Range<Int>, _ output: inout [Int],
    _ work: inout Work
  ) {
    work.bytes.removeAll(keepingCapacity: true)
    for value in s[range] { appendUTF8(value, to: &work.bytes) }
    if work.bytes.count == 1 && !ignoresMerges {
      let id = storage.byteIDs[Int(work.bytes[0])]
      if id >= 0 {
        output.append(Int(id))
      } else if let byteFallbackID {
        output.append(byteFallbackID)
      }
      return
    }
    if let cached = work.cache[work.bytes] {
      for id in cached { output.append(Int(id)) }
      return
    }
    let ids = mergePiece(&work)
    work.cache[work.bytes] = ids
    for id in ids { output.append(Int(id)) }
  }

  @inline(__always)
  private func appendUTF8(_ value: UInt32, to bytes: inout [UInt8]) {
    if value < 0x80 {
      bytes.append(UInt8(value))
    } else if value < 0x800 {
      bytes.append(UInt8(0xC0 | (value >> 6)))
      bytes.append(UInt8(0x80 | (value & 0x3F)))
    } else if value < 0x10000 {
      bytes.append(UInt8(0xE0 | (value >> 12)))
      bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
      bytes.append(UInt8(0x80 | (value & 0x3F)))
    } else {
      bytes.append(UInt8(0xF0 | (value >> 18)))
      bytes.append(UInt8(0x80 | ((value >> 12) & 0x3F)))
      bytes.append(UInt8(0x80 | ((value >> 6) & 0x3F)))
      bytes.append(UInt8(0x80 | (value & 0x3F)))
    }
  }

  /// BPE over `work.bytes`, as Hugging Face's `Word::merge_all`: a min-heap of (rank,
  /// position) over adjacent pairs, stale entries skipped when popped.
  private func mergePiece(_ work: inout Work) -> [Int32] {
    let storage = self.storage
    if ignoresMerges {
      var spelled: [UInt8] = []
      spelled.reserveCapacity(work.bytes.count * 2)
      for byte in work.bytes { spelled += ByteLevel.utf8OfBytes[Int(byte)] }
      if let id = storage.ids[spelled], storage.inModel[Int(id)] { return [id] }
    }
    work.symbols.removeAll(keepingCapacity: true)
    for byte in work.bytes {
      let id = storage.byteIDs[Int(byte)]
      if id >= 0 {
        work.symbols.append(id)
      } else if let byteFallbackID {
        work.symbols.append(Int32(byteFallbackID))
      }
    }
    let count = work.symbols.count
    guard count > 1 else { return work.symbols }
    work.previous.removeAll(keepingCapacity: true)
    work.next.removeAll(keepingCapacity: true)
    for index in 0..<count {
      work.previous.append(Int32(index - 1))
      work.next.append(index + 1 < count ? Int32(index + 1) : -1)
    }
    work.heap.removeAll(keepingCapacity: true)
    let merges = storage.merges
    @inline(__always) func merge(_ left: Int32, _ right: Int32) -> UInt64? {
      merges[UInt64(UInt32(left)) << 32 | UInt64(UInt32(right))]
    }
    for index in 0..<(count - 1) {
      if let found = merge(work.symbols[index], work.symbols[index + 1]) {
        work.heap.append((found >> 32) << 32 | UInt64(index))
      }
    }
    Heap.heapify(&work.heap)
    let removed: Int32 = -2  // `previous` of a symbol merged into its left neighbour
    while let top = Heap.pop(&work.heap) {
      let rank = top >> 32
      let position = Int(top & 0xFFFF_FFFF)
      guard work.previous[position] != removed else { continue }
      let right = work.next[position]
      guard right >= 0, let found = merge(work.symbols[position], work.symbols[Int(right)]),
        found >> 32 == rank
      else { continue }
      work.symbols[position] = Int32(truncatingIfNeeded: found & 0xFFFF_FFFF)
      let after = work.next[Int(right)]
      work.previous[Int(right)] = removed
      work.next[position] = after
      if after >= 0 { work.previous[Int(after)] = Int32(position) }
      let before = work.previous[position]
      if before >= 0, let left = merge(work.symbols[Int(before)], work.symbols[position]) {
        Heap.push(&work.heap, (left >> 32) << 32 | UInt64(before))
      }
      if after >= 0, let next = merge(work.symbols[position], work.symbols[Int(after)]) {
        Heap.push(&work.heap, (next >> 32) << 32 | UInt64(position))
      }
    }
    var result: [Int32] = []
    var index: Int32 = 0
    while index >= 0 {
      result.append(work.symbols[Int(index)])
      index = work.next[Int(index)]
    }
    return result
  }

  // MARK: - Decoding

  /// The text of `ids`: the tokens' bytes (``bytes(of:)``) decoded as UTF-8, each ill-formed
  /// sequence replaced by U+FFFD, as Hugging Face's `ByteLevel` decoder does. Out-of-range ids
  /// are skipped.
  ///
  /// - Parameter skipSpecialTokens: Whether to leave out control tokens (`<|im_start|>`).
  public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) -> String {
    var bytes: [UInt8] = []
    let storage = self.storage
    for id in ids where storage.tokens.indices.contains(id) {
      if skipSpecialTokens && storage.tokenTypes[id] == Int32(TokenType.control) { continue }
      bytes += storage.bytes[storage.offsets[id]..<storage.offsets[id + 1]]
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}

/// A binary min-heap of `UInt64` keys in an array.
enum Heap {
  static func heapify(_ heap: inout [UInt64]) {
    guard heap.count > 1 else { return }
    for index in stride(from: heap.count / 2 - 1, through: 0, by: -1) { siftDown(&heap, index) }
  }

  @inline(__always)
  static func push(_ heap: inout [UInt64], _ key: UInt64) {
    heap.append(key)
    var child = heap.count - 1
    while child > 0 {
      let parent = (child - 1) / 2
      guard heap[parent] > key else { break }
      heap[child] = heap[parent]
      child = parent
    }
    heap[child] = key
  }

  @inline(__always)
  static func pop(_ heap: inout [UInt64]) -> UInt64? {
    guard let last = heap.popLast() else { return nil }
    guard !heap.isEmpty else { return last }
    let top = heap[0]
    heap[0] = last
    siftDown(&heap, 0)
    return top
  }

  @inline(__always)
  static func siftDown(_ heap: inout [UInt64], _ start: Int) {
    let key = heap[start]
    var index = start
    let count = heap.count
    while true {
      var child = 2 * index + 1
      guard child < count else { break }
      if child + 1 < count && heap[child + 1] < heap[child] { child += 1 }
      guard heap[child] < key else { break }
      heap[index] = heap[child]
      index = child
    }
    heap[index] = key
  }
}
