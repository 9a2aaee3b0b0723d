/// How a byte-level BPE tokenizer cuts text into pieces before BPE runs on each piece: the
/// regular expressions of GPT-2, SmolLM (StarCoder), Llama 3 and Qwen2, written as one scanner
/// over Unicode scalars (no regex engine).
///
/// | case | GGUF `tokenizer.ggml.pre` | Hugging Face tokenizer.json `pre_tokenizer` |
/// |---|---|---|
/// | ``gpt2`` | `gpt-2`, `gpt2`, `phi-2` | `ByteLevel` (`use_regex`): `'s\|'t\|'re\|'ve\|'m\|'ll\|'d\| ?\p{L}+\| ?\p{N}+\| ?[^\s\p{L}\p{N}]+\|\s+(?!\S)\|\s+` |
/// | ``smollm`` | `smollm`, `starcoder`, `refact`, `codeshell`, `command-r` | `Sequence[Digits(individual_digits), ByteLevel]`: every `\p{N}` alone, the GPT-2 pattern between |
/// | ``llama3`` | `llama3`, `llama-v3`, `llama-bpe`, `falcon3` | `Split` of `(?i:'s\|'t\|'re\|'ve\|'m\|'ll\|'d)\|[^\r\n\p{L}\p{N}]?\p{L}+\|\p{N}{1,3}\| ?[^\s\p{L}\p{N}]+[\r\n]*\|\s*[\r\n]+\|\s+(?!\S)\|\s+`, then `ByteLevel` |
/// | ``qwen2`` | `qwen2`, `deepseek-r1-qwen`, `stablelm2` | the same with `\p{N}` instead of `\p{N}{1,3}` |
///
/// The character classes are those of the Onig engine that Hugging Face `tokenizers` uses:
/// `\p{L}` is the general categories Lu, Ll, Lt, Lm, Lo, `\p{N}` Nd, Nl, No (read from the Swift
/// runtime's Unicode tables, so only characters assigned in the newest Unicode versions can
/// differ), and `\s` the Unicode `White_Space` property (U+0009–U+000D, U+0020, U+0085, U+00A0,
/// U+1680, U+2000–U+200A, U+2028, U+2029, U+202F, U+205F, U+3000; not U+001C–U+001F, U+200B or
/// U+FEFF). In `(?i:…)` the contraction letters match either case, and `'s` also matches `'ſ`
/// (U+017F folds to `s`), as in Onig (llama.cpp's `[sS]` rewrite does not).
///
/// ```swift
/// PreTokenizer.smollm.split("x  12 it's")  // ["x", "  ", "1", "2", " it", "'s"]
/// PreTokenizer.gpt2.split("x  12 it's")    // ["x", " ", " 12", " it", "'s"]
/// ```
public enum PreTokenizer: String, Sendable, CaseIterable {
  case gpt2, smollm, llama3, qwen2

  /// The pre-tokenizer that a GGUF file's `tokenizer.ggml.pre` names.
  ///
  /// - Throws: ``BPETokenizerError/unknownPreTokenizer(_:)`` for names other than those in
  ///   ``ggufNames`` (llama.cpp's `default` pre-tokenizer is not reproduced).
  public init(ggufName: String) throws(BPETokenizerError) {
    guard let found = Self.allCases.first(where: { $0.ggufNames.contains(ggufName) }) else {
      throw .unknownPreTokenizer(ggufName)
    }
    self = found
  }

  /// The `tokenizer.ggml.pre` names that llama.cpp splits with this pre-tokenizer's regexes (and
  /// without other changes to tokenization), the first the one llama.cpp's converter writes.
  public var ggufNames: [String] {
    switch self {
    case .gpt2: ["gpt-2", "gpt2", "phi-2"]
    case .smollm: ["smollm", "starcoder", "refact", "codeshell", "command-r"]
    case .llama3: ["llama-bpe", "llama3", "llama-v3", "falcon3"]
    case .qwen2: ["qwen2", "deepseek-r1-qwen", "stablelm2"]
    }
  }

  /// Whether BPE keeps a piece that is itself in the vocabulary whole, without merging
  /// (tokenizer.json `ignore_merges`; llama.cpp sets it for the Llama 3 names).
  public var ignoresMergesByDefault: Bool { self == .llama3 }

  /// The split regex of the `Split` step of tokenizer.json (``llama3`` and ``qwen2``).
  var splitPattern: String? {
    switch self {
    case .gpt2, .smollm: nil
    case .llama3:
      #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    case .qwen2:
      #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    }
  }

  /// The pieces of `text`, as text (not byte-level strings). Their concatenation is `text`.
  public func split(_ text: String) -> [String] {
    let scalars = text.unicodeScalars.map(\.value)
    let classes = scalars.map(ScalarClass.of)
    var pieces: [String] = []
    scalars.withUnsafeBufferPointer { s in
      classes.withUnsafeBufferPointer { c in
        forEachPiece(s, c, in: 0..<s.count) { range in
          var piece = String.UnicodeScalarView()
          for value in s[range] { piece.append(Unicode.Scalar(value)!) }
          pieces.append(String(piece))
        }
      }
    }
    return pieces
  }

  /// Calls `body` with the scalar range of each piece of `s[range]`, in order. `c` holds the
  /// ``ScalarClass`` of each scalar. The range's ends act as the text's ends (for `(?!\S)`).
  func forEachPiece(
    _ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<UInt8>, in range: Range<Int>,
    _ body: (Range<Int>) -> Void
  ) {
    switch self {
    case .gpt2:
      var i = range.lowerBound
      while i < range.upperBound {
        let e = Self.gpt2Match(s, c, i, range.upperBound)
        body(i..<e)
        i = e
      }
    case .smollm:
      var p = range.lowerBound
      while p < range.upperBound {
        if c[p] == ScalarClass.number {
          body(p..<p + 1)
          p += 1
          continue
        }
        var q = p + 1
        while q < range.upperBound && c[q] != ScalarClass.number { q += 1 }
        var i = p
        while i < q {
          let e = Self.gpt2Match(s, c, i, q)
          body(i..<e)
          i = e
        }
        p = q
      }
    case .llama3, .qwen2:
      let maxDigits = self == .llama3 ? 3 : 1
      var i = range.lowerBound
      while i < range.upperBound {
        let e = Self.llamaMatch(s, c, i, range.upperBound, maxDigits: maxDigits)
        body(i..<e)
        i = e
      }
    }
  }

  // MARK: - The scanners

  /// The end of the GPT-2 pattern's match at `i` (leftmost alternative first, greedy).
  @inline(__always)
  static func gpt2Match(
    _ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int
  ) -> Int {
    let v = s[i]
    // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
    if v == 0x27 && i + 1 < end {
      let a = s[i + 1]
      if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 }
      if i + 2 < end {
        let b = s[i + 2]
        if (b == 0x65 && (a == 0x72 || a == 0x76)) || (a == 0x6C && b == 0x6C) { return i + 3 }
      }
    }
    //  ?\p{L}+ |  ?\p{N}+ |  ?[^\s\p{L}\p{N}]+
    let j = v == 0x20 ? i + 1 : i
    if j < end {
      let k = c[j]
      if k != ScalarClass.whitespace {
        var e = j + 1
        while e < end && c[e] == k { e += 1 }
        return e
      }
    }
    return whitespaceMatch(c, i, end)
  }

  /// `\s+(?!\S)|\s+` at a whitespace scalar `i`: the whole run when it reaches the end, all
  /// but its last scalar when that is followed by a non-space, else one scalar.
  @inline(__always)
  static func whitespaceMatch(_ c: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int) -> Int {
    var r = i + 1
    while r < end && c[r] == ScalarClass.whitespace { r += 1 }
    if r == end || r - i == 1 { return r }
    return r - 1
  }

  /// The end of the Llama 3 / Qwen2 pattern's match at `i`.
  @inline(__always)
  static func llamaMatch(
    _ s: UnsafeBufferPointer<UInt32>, _ c: UnsafeBufferPointer<UInt8>, _ i: Int, _ end: Int,
    maxDigits: Int
  ) -> Int {
    let v = s[i]
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if v == 0x27 && i + 1 < end {
      let a = foldedContractionLetter(s[i + 1])
      if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return i + 2 }
      if i + 2 < end {
        let b = foldedContractionLetter(s[i + 2])
        if (b == 0x65 && (a == 0x72 || a == 0x76)) || (a == 0x6C && b == 0x6C) { return i + 3 }
      }
    }
    let k = c[i]
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if k == ScalarClass.letter {
      var e = i + 1
      while e < end && c[e] == ScalarClass.letter { e += 1 }
      return e
    }
    if k != ScalarClass.number && v != 0x0A && v != 0x0D && i + 1 < end
      && c[i + 1] == ScalarClass.letter
    {
      var e = i + 2
      while e < end && c[e] == ScalarClass.letter { e += 1 }
      return e
    }
    // \p{N}{1,3} or \p{N}
    if k == ScalarClass.number {
      var e = i + 1
      while e < end && e - i < maxDigits && c[e] == ScalarClass.number { e += 1 }
      return e
    }
    //  ?[^\s\p{L}\p{N}]+[\r\n]*
    let j = v == 0x20 ? i + 1 : i
    if j < end && c[j] == ScalarClass.other {
      var e = j + 1
      while e < end && c[e] == ScalarClass.other { e += 1 }
      while e < end && (s[e] == 0x0A || s[e] == 0x0D) { e += 1 }
      return e
    }
    // \s*[\r\n]+ : up to and including the run's last CR or LF.
    var r = i
    var lastLineBreak = -1
    while r < end && c[r] == ScalarClass.whitespace {
      if s[r] == 0x0A || s[r] == 0x0D { lastLineBreak = r }
      r += 1
    }
    if lastLineBreak >= 0 { return lastLineBreak + 1 }
    // \s+(?!\S)|\s+
    if r == end || r - i == 1 { return r }
    return r - 1
  }

  /// The scalar value in lower case for the contraction letters under Onig's case folding
  /// (ASCII letters, and U+017F LATIN SMALL LETTER LONG S, which folds to `s`).
  @inline(__always)
  static func foldedContractionLetter(_ value: UInt32) -> UInt32 {
    if value >= 0x41 && value <= 0x5A { return value + 0x20 }
    if value == 0x17F { return 0x73 }
    return value
  }
}

/// The character classes that the pre-tokenizer patterns use, one byte per scalar.
enum ScalarClass {
  /// Not `\s`, `\p{L}` or `\p{N}`.
  static let other: UInt8 = 0
  static let letter: UInt8 = 1
  static let number: UInt8 = 2
  static let whitespace: UInt8 = 3

  static let ascii: [UInt8] = (0..<128).map { value -> UInt8 in
    switch value {
    case 0x41...0x5A, 0x61...0x7A: letter
    case 0x30...0x39: number
    case 0x09...0x0D, 0x20: whitespace
    default: other
    }
  }

  @inline(__always)
  static func of(_ value: UInt32) -> UInt8 {
    if value < 128 { return ascii[Int(value)] }
    guard let scalar = Unicode.Scalar(value) else { return other }
    let properties = scalar.properties
    if properties.isWhitespace { return whitespace }
    switch properties.generalCategory {
    case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
      return letter
    case .decimalNumber, .letterNumber, .otherNumber:
      return number
    default:
      return other
    }
  }
}
