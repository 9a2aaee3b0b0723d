import Foundation

/// Hugging Face `tokenizer.json`: reading one into a ``BPETokenizer`` and writing one that
/// `tokenizers` / transformers load and that encodes identically.
extension BPETokenizer {
  /// Loads a Hugging Face `tokenizer.json` with a byte-level BPE model, and the
  /// `tokenizer_config.json` (and `chat_template.jinja`) beside it when present.
  ///
  /// Supported, and reproduced exactly: `model.type` `BPE` (`vocab`, `merges` as `"a b"`
  /// strings or `["a", "b"]` pairs, `unk_token`, `ignore_merges`; no dropout, byte fallback or
  /// subword prefixes/suffixes), `added_tokens` without `lstrip`/`rstrip`/`single_word` (those
  /// with `special` become control tokens, the others user-defined ones), `normalizer` `null`
  /// or `NFC`, the `pre_tokenizer`s listed at ``PreTokenizer`` (`add_prefix_space` false), the
  /// `ByteLevel` decoder, and a `post_processor` that is `null`, `ByteLevel` or a
  /// `TemplateProcessing` adding at most a token before and one after the text. `truncation`
  /// and `padding` are ignored. From tokenizer_config.json: `bos_token`, `eos_token`,
  /// `pad_token`, `add_bos_token`, `add_eos_token` (these take precedence over the
  /// post-processor) and `chat_template`.
  ///
  /// - Throws: ``BPETokenizerError/fileNotFound(path:)``,
  ///   ``BPETokenizerError/fileUnreadable(path:detail:)``,
  ///   ``BPETokenizerError/invalidJSON(path:detail:)``,
  ///   ``BPETokenizerError/unsupported(component:detail:)`` naming what is not supported, or
  ///   the vocabulary errors of
  ///   ``init(tokens:merges:tokenTypes:preTokenizer:bos:eos:unknown:padding:addBOS:addEOS:ignoreMerges:)``.
  public init(tokenizerJSON path: String) throws(BPETokenizerError) {
    let root = try JSONFile.object(at: path)
    func invalid(_ detail: String) -> BPETokenizerError { .invalidJSON(path: path, detail: detail) }

    guard let model = root["model"] as? [String: Any] else { throw invalid("no \"model\" object") }
    let modelType = model["type"] as? String
    guard modelType == "BPE" else {
      throw .unsupported(
        component: "model", detail: "type \(modelType ?? "(missing)") (only BPE is supported)")
    }
    if let dropout = JSONFile.value(model["dropout"]), (dropout as? Double) != 0 {
      throw .unsupported(component: "model", detail: "dropout \(dropout)")
    }
    for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
      if let value = JSONFile.value(model[key]), (value as? String) != "" {
        throw .unsupported(component: "model", detail: "\(key) '\(value)'")
      }
    }
    if (model["byte_fallback"] as? Bool) == true {
      throw .unsupported(component: "model", detail: "byte_fallback")
    }
    let ignoreMerges = model["ignore_merges"] as? Bool ?? false

    // Normalizer first: it decides whether added tokens marked `normalized` match as written.
    let normalization = try Self.normalization(of: root["normalizer"])

    // Tokens: the model's vocabulary, then the added tokens.
    guard let vocabulary = model["vocab"] as? [String: Any] else {
      throw invalid("model.vocab is not an object")
    }
    var tokens: [Int: String] = [:]
    tokens.reserveCapacity(vocabulary.count + 256)
    for (token, value) in vocabulary {
      guard let id = JSONFile.integer(value), id >= 0 else {
        throw invalid("model.vocab['\(token)'] is not a token id")
      }
      if let other = tokens.updateValue(token, forKey: id) {
        throw invalid("model.vocab gives id \(id) to both '\(other)' and '\(token)'")
      }
    }
    var types: [Int: Int] = [:]
    var addedOnly = Set<Int>()
    guard let added = (JSONFile.value(root["added_tokens"]) ?? [Any]()) as? [Any] else {
      throw invalid("added_tokens is not an array")
    }
    for entry in added {
      guard let entry = entry as? [String: Any], let id = JSONFile.integer(entry["id"]), id >= 0,
        let content = entry["content"] as? String
      else { throw invalid("an added_tokens entry lacks an id or content") }
      for option in ["lstrip", "rstrip", "single_word"] where (entry[option] as? Bool) == true {
        throw .unsupported(component: "added_tokens", detail: "'\(content)' sets \(option)")
      }
      if normalization == .nfc && (entry["normalized"] as? Bool) == true
        && content.precomposedStringWithCanonicalMapping.unicodeScalars.elementsEqual(
          content.unicodeScalars) == false
      {
        throw .unsupported(
          component: "added_tokens",
          detail: "'\(content)' is matched after NFC and changes under it")
      }
      if let other = tokens[id], other != content, types[id] == nil {
        throw invalid("added token \(id) '\(content)' is '\(other)' in model.vocab")
      }
      let inVocabulary = tokens[id] != nil && types[id] == nil
      tokens[id] = content
      types[id] = (entry["special"] as? Bool) == true ? TokenType.control : TokenType.userDefined
      if !inVocabulary { addedOnly.insert(id) }
    }
    let count = (tokens.keys.max() ?? -1) + 1
    var tokenArray: [String] = []
    var tokenTypes: [Int] = []
    var inModel: [Bool] = []
    tokenArray.reserveCapacity(count)
    for id in 0..<count {
      guard let token = tokens[id] else { throw .missingTokenID(id) }
      tokenArray.append(token)
      tokenTypes.append(types[id] ?? TokenType.normal)
      inModel.append(!addedOnly.contains(id))
    }

    // Merges.
    guard let mergeEntries = model["merges"] as? [Any] else {
      throw invalid("model.merges is not an array")
    }
    var pairs: [(left: String, right: String)] = []
    pairs.reserveCapacity(mergeEntries.count)
    for (index, entry) in mergeEntries.enumerated() {
      if let text = entry as? String {
        let parts = text.unicodeScalars.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
          throw .badMerge(line: index + 1, merge: text)
        }
        pairs.append(
          (String(String.UnicodeScalarView(parts[0])), String(String.UnicodeScalarView(parts[1]))))
      } else if let pair = entry as? [Any], pair.count == 2, let left = pair[0] as? String,
        let right = pair[1] as? String, !left.isEmpty, !right.isEmpty
      {
        pairs.append((left, right))
      } else {
        let parts = (entry as? [Any])?.map { ($0 as? String).map { "\"\($0)\"" } ?? "\($0)" }
        throw .badMerge(
          line: index + 1, merge: parts.map { "[\($0.joined(separator: ", "))]" } ?? "\(entry)")
      }
    }

    let preTokenizer = try Self.preTokenizer(of: root["pre_tokenizer"])
    try Self.checkDecoder(root["decoder"])
    let template = try Self.templateTokens(of: root["post_processor"])

    // tokenizer_config.json and chat_template.jinja beside the file.
    let directory = (path as NSString).deletingLastPathComponent
    let configPath = (directory as NSString).appendingPathComponent("tokenizer_config.json")
    let config =
      FileManager.default.fileExists(atPath: configPath) ? try JSONFile.object(at: configPath) : [:]
    func configToken(_ key: String) -> String? {
      if let text = config[key] as? String { return text }
      return (config[key] as? [String: Any])?["content"] as? String
    }
    func lookUp(_ token: String?, role: String) throws(BPETokenizerError) -> Int? {
      guard let token else { return nil }
      let bytes = Array(token.utf8)
      guard let id = tokenArray.firstIndex(where: { $0.utf8.elementsEqual(bytes) }) else {
        throw .unknownSpecialToken(role: role, token: token)
      }
      return id
    }
    for (role, key, found) in [
      ("bos", "bos_token", template.before), ("eos", "eos_token", template.after),
    ] {
      if let found, config[key] == nil, try lookUp(found.token, role: role) != found.id {
        throw invalid(
          "post_processor token '\(found.token)' has id \(found.id) in its special_tokens")
      }
    }
    let bos = try lookUp(configToken("bos_token") ?? template.before?.token, role: "bos")
    let eos = try lookUp(configToken("eos_token") ?? template.after?.token, role: "eos")
    let padding = try lookUp(configToken("pad_token"), role: "padding")
    let unknown = try lookUp(JSONFile.value(model["unk_token"]) as? String, role: "unknown")
    let namedUnknown = try lookUp(configToken("unk_token"), role: "unknown")
    let addBOS = config["add_bos_token"] as? Bool ?? (template.before != nil)
    let addEOS = config["add_eos_token"] as? Bool ?? (template.after != nil)
    var chatTemplate = config["chat_template"] as? String
    if chatTemplate == nil, let named = config["chat_template"] as? [[String: Any]] {
      chatTemplate = named.first { ($0["name"] as? String) == "default" }?["template"] as? String
    }
    let jinjaPath = (directory as NSString).appendingPathComponent("chat_template.jinja")
    if chatTemplate == nil, let data = FileManager.default.contents(atPath: jinjaPath) {
      chatTemplate = String(decoding: data, as: UTF8.self)
    }
    try self.init(
      tokens: tokenArray, mergePairs: pairs, mergeTexts: nil, tokenTypes: tokenTypes,
      inModel: inModel, preTokenizer: preTokenizer, bos: bos, eos: eos,
      unknown: unknown ?? namedUnknown, byteFallback: unknown, padding: padding, addBOS: addBOS,
      addEOS: addEOS, ignoreMerges: ignoreMerges,
      normalization: normalization, chatTemplate: chatTemplate)
  }

  private static func normalization(of value: Any?) throws(BPETokenizerError) -> Normalization {
    guard let object = JSONFile.value(value) as? [String: Any] else {
      if JSONFile.value(value) == nil { return .none }
      throw .unsupported(component: "normalizer", detail: "\(value!)")
    }
    switch object["type"] as? String {
    case "NFC":
      return .nfc
    case "Sequence":
      let inner = object["normalizers"] as? [Any] ?? []
      if inner.isEmpty { return .none }
      if inner.count == 1 { return try normalization(of: inner[0]) }
      throw .unsupported(
        component: "normalizer", detail: "a Sequence of \(inner.count) normalizers")
    case let type:
      throw .unsupported(component: "normalizer", detail: type ?? "(no type)")
    }
  }

  private static func preTokenizer(of value: Any?) throws(BPETokenizerError) -> PreTokenizer {
    guard let object = JSONFile.value(value) as? [String: Any] else {
      throw .unsupported(
        component: "pre_tokenizer", detail: "none (byte-level BPE needs ByteLevel)")
    }
    let type = object["type"] as? String ?? "(no type)"
    /// Whether `step` is ByteLevel without a prefix space, using the regex or not.
    func isByteLevel(_ step: Any, regex: Bool) throws(BPETokenizerError) -> Bool {
      guard let step = step as? [String: Any], step["type"] as? String == "ByteLevel" else {
        return false
      }
      if (step["add_prefix_space"] as? Bool) != false {
        throw .unsupported(component: "pre_tokenizer", detail: "ByteLevel with add_prefix_space")
      }
      return (step["use_regex"] as? Bool ?? true) == regex
    }
    if type == "ByteLevel" {
      if try isByteLevel(object, regex: true) { return .gpt2 }
      throw .unsupported(component: "pre_tokenizer", detail: "ByteLevel without use_regex alone")
    }
    guard type == "Sequence", let steps = object["pretokenizers"] as? [Any] else {
      throw .unsupported(component: "pre_tokenizer", detail: type)
    }
    let names = steps.map { (($0 as? [String: Any])?["type"] as? String) ?? "?" }
    if steps.count == 2, let digits = steps[0] as? [String: Any], names[0] == "Digits",
      try isByteLevel(steps[1], regex: true)
    {
      guard digits["individual_digits"] as? Bool == true else {
        throw .unsupported(component: "pre_tokenizer", detail: "Digits without individual_digits")
      }
      return .smollm
    }
    if steps.count == 2, let split = steps[0] as? [String: Any], names[0] == "Split",
      try isByteLevel(steps[1], regex: false)
    {
      let pattern = split["pattern"] as? [String: Any]
      let regex = pattern?["Regex"] as? String
      guard split["behavior"] as? String == "Isolated",
        (split["invert"] as? Bool ?? false) == false,
        let regex, let found = PreTokenizer.allCases.first(where: { $0.splitPattern == regex })
      else {
        throw .unsupported(
          component: "pre_tokenizer",
          detail: "Split \(regex.map { "of the regex \($0)" } ?? "of \(pattern ?? [:])") "
            + "(\(split["behavior"] ?? "no behavior"))")
      }
      return found
    }
    throw .unsupported(
      component: "pre_tokenizer", detail: "Sequence of \(names.joined(separator: ", "))")
  }

  private static func checkDecoder(_ value: Any?) throws(BPETokenizerError) {
    guard let object = JSONFile.value(value) as? [String: Any] else {
      throw .unsupported(component: "decoder", detail: "none (tokens would be joined with spaces)")
    }
    let type = object["type"] as? String ?? "(no type)"
    guard type == "ByteLevel" else { throw .unsupported(component: "decoder", detail: type) }
  }

  /// The special tokens a post-processor puts before and after a single text.
  private static func templateTokens(of value: Any?) throws(BPETokenizerError) -> (
    before: (token: String, id: Int)?, after: (token: String, id: Int)?
  ) {
    guard let object = JSONFile.value(value) as? [String: Any] else { return (nil, nil) }
    switch object["type"] as? String {
    case "ByteLevel":
      return (nil, nil)
    case "Sequence":
      var result: (before: (token: String, id: Int)?, after: (token: String, id: Int)?) = (nil, nil)
      for processor in object["processors"] as? [Any] ?? [] {
        let found = try templateTokens(of: processor)
        if found.before != nil || found.after != nil {
          guard result.before == nil && result.after == nil else {
            throw .unsupported(component: "post_processor", detail: "two TemplateProcessing steps")
          }
          result = found
        }
      }
      return result
    case "TemplateProcessing":
      let single = object["single"] as? [Any] ?? []
      let specials = object["special_tokens"] as? [String: Any] ?? [:]
      func special(_ item: Any) throws(BPETokenizerError) -> (token: String, id: Int)? {
        guard let entry = (item as? [String: Any])?["SpecialToken"] as? [String: Any] else {
          return nil
        }
        guard let name = entry["id"] as? String,
          let ids = (specials[name] as? [String: Any])?["ids"] as? [Any], ids.count == 1,
          let id = JSONFile.integer(ids[0])
        else {
          throw .unsupported(
            component: "post_processor", detail: "TemplateProcessing special token \(entry)")
        }
        return (name, id)
      }
      var items = single[...]
      var before: (token: String, id: Int)?
      var after: (token: String, id: Int)?
      if let item = items.first, let found = try special(item) {
        before = found
        items = items.dropFirst()
      }
      if let item = items.last, let found = try special(item) {
        after = found
        items = items.dropLast()
      }
      guard items.count == 1,
        let sequence = (items.first as? [String: Any])?["Sequence"] as? [String: Any],
        sequence["id"] as? String == "A"
      else {
        throw .unsupported(
          component: "post_processor", detail: "TemplateProcessing single \(single.count) items")
      }
      return (before, after)
    case let type:
      throw .unsupported(component: "post_processor", detail: type ?? "(no type)")
    }
  }

  // MARK: - Writing

  /// A Hugging Face `tokenizer.json` for this tokenizer: `tokenizers.Tokenizer.from_str` and
  /// transformers' `PreTrainedTokenizerFast(tokenizer_file:)` load it and encode every text to
  /// the ids of ``encode(_:addSpecial:)`` (BOS/EOS through a `TemplateProcessing`
  /// post-processor), and decode as ``decode(_:skipSpecialTokens:)``. Merges are written as
  /// pairs; the chat template is not part of it (tokenizer_config.json holds it).
  public func tokenizerJSON() -> String {
    let storage = self.storage
    var out = "{\n\"version\": \"1.0\",\n\"truncation\": null,\n\"padding\": null,\n"
    out.reserveCapacity(storage.bytes.count * 4 + storage.mergeList.count * 24)
    out += "\"added_tokens\": ["
    var first = true
    for (id, type) in storage.tokenTypes.enumerated() where Self.isSpecialType(type) {
      out += first ? "\n" : ",\n"
      first = false
      out += "{\"id\": \(id), \"content\": "
      JSONFile.appendString(storage.tokens[id], to: &out)
      out +=
        ", \"single_word\": false, \"lstrip\": false, \"rstrip\": false, \"normalized\": false, "
      out += "\"special\": \(type == Int32(TokenType.control))}"
    }
    out +=
      "\n],\n\"normalizer\": " + (normalization == .nfc ? "{\"type\": \"NFC\"}" : "null") + ",\n"
    func byteLevel(regex: Bool) -> String {
      "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": true, \"use_regex\": \(regex)}"
    }
    out += "\"pre_tokenizer\": "
    switch preTokenizer {
    case .gpt2:
      out += byteLevel(regex: true)
    case .smollm:
      out +=
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Digits\", \"individual_digits\": true}, "
      out += byteLevel(regex: true) + "]}"
    case .llama3, .qwen2:
      out +=
        "{\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", \"pattern\": {\"Regex\": "
      JSONFile.appendString(preTokenizer.splitPattern!, to: &out)
      out += "}, \"behavior\": \"Isolated\", \"invert\": false}, " + byteLevel(regex: false) + "]}"
    }
    out += ",\n\"post_processor\": "
    if addBOS || addEOS {
      func item(_ id: Int, typeID: Int) -> String {
        var text = "{\"SpecialToken\": {\"id\": "
        JSONFile.appendString(storage.tokens[id], to: &text)
        return text + ", \"type_id\": \(typeID)}}"
      }
      var single: [String] = []
      var pair: [String] = []
      for typeID in 0...1 {
        var items: [String] = []
        if addBOS, let bosID { items.append(item(bosID, typeID: typeID)) }
        items.append(
          "{\"Sequence\": {\"id\": \"\(typeID == 0 ? "A" : "B")\", \"type_id\": \(typeID)}}")
        if addEOS, let eosID { items.append(item(eosID, typeID: typeID)) }
        if typeID == 0 { single = items }
        pair += items
      }
      out += "{\"type\": \"TemplateProcessing\", \"single\": [" + single.joined(separator: ", ")
      out += "], \"pair\": [" + pair.joined(separator: ", ") + "], \"special_tokens\": {"
      var specials: [String] = []
      for id in Set([addBOS ? bosID : nil, addEOS ? eosID : nil].compactMap { $0 }).sorted() {
        var entry = ""
        JSONFile.appendString(storage.tokens[id], to: &entry)
        entry += ": {\"id\": "
        JSONFile.appendString(storage.tokens[id], to: &entry)
        entry += ", \"ids\": [\(id)], \"tokens\": ["
        JSONFile.appendString(storage.tokens[id], to: &entry)
        specials.append(entry + "]}")
      }
      out += specials.joined(separator: ", ") + "}}"
    } else {
      out += "null"
    }
    out +=
      ",\n\"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": true, \"trim_offsets\": true, \"use_regex\": true},\n"
    out += "\"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": "
    if let byteFallbackID {
      JSONFile.appendString(storage.tokens[byteFallbackID], to: &out)
    } else {
      out += "null"
    }
    out +=
      ", \"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, "
    out += "\"byte_fallback\": false, \"ignore_merges\": \(ignoresMerges),\n\"vocab\": {"
    first = true
    for (id, token) in storage.tokens.enumerated() where storage.inModel[id] {
      out += first ? "\n" : ",\n"
      first = false
      JSONFile.appendString(token, to: &out)
      out += ": \(id)"
    }
    out += "\n},\n\"merges\": ["
    first = true
    for merge in storage.mergeList {
      out += first ? "\n[" : ",\n["
      first = false
      JSONFile.appendString(storage.tokens[Int(merge.left)], to: &out)
      out += ", "
      JSONFile.appendString(storage.tokens[Int(merge.right)], to: &out)
      out += "]"
    }
    out += "\n]\n}\n}\n"
    return out
  }
}

/// Reading JSON files with Foundation, and writing JSON strings.
enum JSONFile {
  static func object(at path: String) throws(BPETokenizerError) -> [String: Any] {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw .fileNotFound(path: path)
    }
    guard !isDirectory.boolValue else {
      throw .fileUnreadable(path: path, detail: "it is a directory")
    }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw .fileUnreadable(path: path, detail: error.localizedDescription)
    }
    let parsed: Any
    do {
      parsed = try JSONSerialization.jsonObject(with: data)
    } catch {
      throw .invalidJSON(path: path, detail: "not JSON (\(error.localizedDescription))")
    }
    guard let object = parsed as? [String: Any] else {
      throw .invalidJSON(path: path, detail: "the top level is not an object")
    }
    return object
  }

  /// `value` unless it is missing or JSON `null`.
  static func value(_ value: Any?) -> Any? {
    guard let value, !(value is NSNull) else { return nil }
    return value
  }

  /// An integral JSON number.
  static func integer(_ value: Any?) -> Int? {
    guard let value = Self.value(value) else { return nil }
    if let integer = value as? Int { return integer }
    if let double = value as? Double, double == double.rounded(), abs(double) < 1e15 {
      return Int(double)
    }
    return nil
  }

  /// Appends `text` as a JSON string literal (UTF-8 as is; quotes, backslashes and control
  /// characters escaped).
  static func appendString(_ text: String, to out: inout String) {
    out.unicodeScalars.append("\"")
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      case _ where scalar.value < 0x20:
        let hex = String(scalar.value, radix: 16)
        out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
      default:
        out.unicodeScalars.append(scalar)
      }
    }
    out.unicodeScalars.append("\"")
  }
}
