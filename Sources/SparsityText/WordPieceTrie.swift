/// Two prefix trees over the vocabulary, keyed by Unicode scalars, for WordPiece's greedy
/// longest-match-first search.
///
/// Node 0 is the root for the first piece of a word: every token is inserted from there with
/// its full spelling. Node 1 is the root for the following pieces: each token that starts with
/// the continuation prefix `##` is also inserted from there without the prefix. Walking a word
/// from a root and keeping the deepest node that ends a token finds the longest vocabulary
/// entry that starts there, which is what trying ever shorter substrings (the reference
/// implementation) finds, with one lookup per scalar instead of one per substring. Tokens are
/// compared scalar by scalar, so canonically equivalent spellings stay different tokens, as in
/// the Python and Rust implementations.
struct WordPieceTrie: Sendable {
  /// The root for a word's first piece.
  static let wordStart: Int32 = 0
  /// The root for a word's later pieces (`##` tokens).
  static let continuation: Int32 = 1

  /// Edges: `(node << 21) | scalar` to the child node. Scalars fit in 21 bits.
  private var children: [UInt64: Int32] = [:]
  /// The token id that ends at each node, or -1.
  private var tokenIDs: [Int32] = [-1, -1]

  @inline(__always)
  private static func key(_ node: Int32, _ scalar: UInt32) -> UInt64 {
    UInt64(UInt32(bitPattern: node)) << 21 | UInt64(scalar)
  }

  /// Adds `scalars` with `id` below `root` and returns the id already stored there, if any
  /// (the vocabulary then has a duplicate, and the first id stays). Empty spellings are not
  /// stored.
  mutating func insert(_ scalars: some Sequence<Unicode.Scalar>, id: Int32, from root: Int32)
    -> Int32?
  {
    var node = root
    for scalar in scalars {
      let key = Self.key(node, scalar.value)
      if let child = children[key] {
        node = child
      } else {
        let child = Int32(tokenIDs.count)
        tokenIDs.append(-1)
        children[key] = child
        node = child
      }
    }
    guard node != root else { return nil }
    let existing = tokenIDs[Int(node)]
    if existing >= 0 { return existing }
    tokenIDs[Int(node)] = id
    return nil
  }

  /// The id of the token spelled exactly `scalars` from `root`, or `nil`.
  func exactMatch(_ scalars: some Sequence<Unicode.Scalar>, from root: Int32) -> Int32? {
    var node = root
    for scalar in scalars {
      guard let child = children[Self.key(node, scalar.value)] else { return nil }
      node = child
    }
    let id = tokenIDs[Int(node)]
    return node != root && id >= 0 ? id : nil
  }

  /// The longest token that spells `word[start..<end]` for some `end > start`, walking from
  /// `root`, as `(end, id)`; `nil` when no token matches.
  func longestMatch(in word: UnsafeBufferPointer<UInt32>, from start: Int, root: Int32)
    -> (end: Int, id: Int32)?
  {
    var node = root
    var best: (end: Int, id: Int32)? = nil
    var position = start
    while position < word.count {
      guard let child = children[Self.key(node, word[position])] else { break }
      node = child
      position += 1
      let id = tokenIDs[Int(node)]
      if id >= 0 { best = (position, id) }
    }
    return best
  }
}
