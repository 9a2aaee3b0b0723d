/// What BERT's normalizer and pre-tokenizer do with each Unicode scalar, as all-MiniLM-L6-v2's
/// fast tokenizer (Hugging Face `tokenizers`: `BertNormalizer` + `BertPreTokenizer`) does it.
///
/// The normalizer cleans the text (removes U+0000, U+FFFD and control/format/private-use
/// characters, turns whitespace into spaces), puts spaces around CJK ideographs, and — when
/// lower-casing — decomposes to NFD, drops nonspacing marks and lower-cases. The pre-tokenizer
/// splits the result on spaces and isolates each punctuation character. The decisions come from
/// per-code-point tables that `scripts/make_tokenizer_tables.py` generates by asking the Hugging
/// Face library itself (`BertNormalizationTables.swift`), so they follow its Unicode data
/// (character categories of Unicode 8.0, current lower-casing) rather than the Unicode version
/// of the Swift runtime. Everything here works on scalars (code points), never on `Character`s.
enum BertNormalization {
  /// How the normalizer treats a code point; the raw values are those of the generated tables.
  enum Kind: UInt8 {
    /// Kept as it is (it may still be punctuation).
    case keep = 0
    /// Removed by clean-up: U+0000, U+FFFD, or a control, format, private-use character.
    case remove = 1
    /// Whitespace: becomes a space, which separates words.
    case space = 2
    /// A CJK ideograph: a word of its own.
    case ideograph = 3
    /// A CJK compatibility ideograph: a word of its own, replaced by its canonical decomposition
    /// when lower-casing (NFD), kept otherwise.
    case ideographMapped = 4
    /// A nonspacing mark: dropped when lower-casing (which strips accents), kept otherwise.
    case stripped = 5
    /// Replaced by a mapping (NFD, marks dropped, lower-cased) when lower-casing, kept otherwise.
    case mapped = 6
    /// A precomposed Hangul syllable: decomposed into conjoining jamo (NFD) when lower-casing.
    case hangul = 7
  }

  /// What happens to an ASCII byte, precomputed from the general tables.
  enum ASCIIAction: UInt8 {
    case remove, space, punctuation, letter
  }

  /// The action for each ASCII scalar.
  static let asciiActions: [ASCIIAction] = (0..<128).map { value in
    switch kind(of: UInt32(value)).kind {
    case .remove: return .remove
    case .space: return .space
    default: return isPunctuation(UInt32(value)) ? .punctuation : .letter
    }
  }

  /// Each ASCII scalar after lower-casing (a letter's mapping; the scalar itself otherwise).
  static let asciiLowercased: [UInt8] = (0..<128).map { value in
    let (kind, payload) = kind(of: UInt32(value))
    guard kind == .mapped else { return UInt8(value) }
    let scalars = mapping(payload)
    precondition(scalars.count == 1 && scalars[scalars.startIndex] < 128, "ASCII maps to ASCII")
    return UInt8(scalars[scalars.startIndex])
  }

  /// The kind of a code point and, for mapped kinds, the index of its mapping.
  ///
  /// - Complexity: O(log *r*), *r* the number of runs in the tables (about 1,700).
  static func kind(of value: UInt32) -> (kind: Kind, payload: Int) {
    let starts = runStarts
    var low = 0
    var high = starts.count  // invariant: starts[low] <= value, and value < starts[high] if any
    while high - low > 1 {
      let middle = (low + high) / 2
      if starts[middle] <= value { low = middle } else { high = middle }
    }
    let kind = Kind(rawValue: runKinds[low]) ?? .keep
    switch kind {
    case .mapped, .ideographMapped:
      return (kind, Int(runPayloads[low]) + Int(value - starts[low]))
    default:
      return (kind, 0)
    }
  }

  /// The scalars that mapping `index` produces.
  static func mapping(_ index: Int) -> ArraySlice<UInt32> {
    let start = index == 0 ? 0 : Int(mappingEnds[index - 1])
    return mappingScalars[start..<Int(mappingEnds[index])]
  }

  /// Whether the pre-tokenizer isolates `value` as punctuation: ASCII 33–47, 58–64, 91–96,
  /// 123–126, or a punctuation category (Pc, Pd, Pe, Pf, Pi, Po, Ps) in Unicode 8.0.
  static func isPunctuation(_ value: UInt32) -> Bool {
    let ranges = punctuationRanges
    var low = 0
    var high = ranges.count / 2
    while low < high {
      let middle = (low + high) / 2
      if ranges[2 * middle + 1] < value {
        low = middle + 1
      } else {
        high = middle
      }
    }
    return low < ranges.count / 2 && ranges[2 * low] <= value
  }

  /// Appends the conjoining jamo of the Hangul syllable `value` (U+AC00…U+D7A3), its NFD.
  static func appendHangulJamo(of value: UInt32, to body: (UInt32) -> Void) {
    let index = value - 0xAC00
    body(0x1100 + index / 588)
    body(0x1161 + (index % 588) / 28)
    let trailing = index % 28
    if trailing != 0 { body(0x11A7 + trailing) }
  }
}
