/// A chat template (the Jinja `chat_template` of a GGUF file or tokenizer_config.json) that
/// this library renders exactly as transformers' `apply_chat_template` does.
///
/// Recognized are the ChatML templates of the SmolLM2-Instruct kind: a loop over the messages
/// writing `P + role + Q + content + R` for each (for ChatML `<|im_start|>`, `\n`,
/// `<|im_end|>\n`), optionally preceded, for the first message when the conversation does not
/// start with a system message, by a default system block
/// (`{% if loop.first and messages[0]['role'] != 'system' %}…{% endif %}`), and optionally
/// followed by `{% if add_generation_prompt %}…{% endif %}`. String literals may be split and
/// use either quote or escape sequences; `message.role` and `message['role']` are the same;
/// whitespace control (`{%-`, `-%}`) and `trim_blocks` are applied as transformers' Jinja
/// environment does. Any other template is refused, naming the family it looks like, rather
/// than rendered approximately.
///
/// ```swift
/// let template = try ChatTemplate(jinja: ggufChatTemplate)
/// template.defaultSystemMessage  // "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
/// template.render([(role: "user", content: "Hi")], addGenerationPrompt: true)
/// // "<|im_start|>system\nYou are … Hugging Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
/// ```
public struct ChatTemplate: Sendable {
  /// The Jinja source it was recognized from (for writing it back into a model folder).
  public let source: String
  /// What the template looks like (`ChatML` for the recognized ones).
  public let family: String
  /// The system message that the template inserts when the conversation has none, if any.
  public let defaultSystemMessage: String?
  /// The text inserted before the first message when it is not a system message.
  let defaultSystemBlock: String?
  /// One message's text: literals, the role and the content.
  let messageParts: [Part]
  /// The text added by `add_generation_prompt`.
  let generationPrompt: String?

  enum Part: Sendable, Equatable {
    case literal(String)
    case role
    case content
  }

  /// Recognizes `jinja`.
  ///
  /// - Throws: ``BPETokenizerError/unsupportedChatTemplate(family:reason:)`` if it is not one of
  ///   the templates described above.
  public init(jinja: String) throws(BPETokenizerError) {
    source = jinja
    let family = Self.family(of: jinja)
    func refuse(_ reason: String) -> BPETokenizerError {
      .unsupportedChatTemplate(family: family, reason: reason)
    }
    let items: [JinjaItem]
    do { items = try JinjaLexer.items(of: jinja) } catch { throw refuse(error.reason) }
    var parser = JinjaParser(items: items)
    let nodes: [JinjaNode]
    do { nodes = try parser.parseBlock(until: []) } catch { throw refuse(error.reason) }

    var rest = nodes[...]
    guard case .forLoop(let body)? = rest.first else {
      throw refuse("it does not start with {% for message in messages %}")
    }
    rest = rest.dropFirst()
    var generationPrompt: String?
    if case .condition(let condition, let thenNodes)? = rest.first {
      guard condition == [.name("add_generation_prompt")],
        let literal = Self.literalOutput(thenNodes)
      else {
        throw refuse(
          "after the loop only {% if add_generation_prompt %}'text'{% endif %} is supported")
      }
      generationPrompt = literal
      rest = rest.dropFirst()
    }
    guard rest.isEmpty else { throw refuse("it has more after the message loop") }

    var bodyRest = body[...]
    var defaultBlock: String?
    if case .condition(let condition, let thenNodes)? = bodyRest.first {
      let expected: [JinjaToken] = [
        .name("loop"), .symbol("["), .string("first"), .symbol("]"), .name("and"),
        .name("messages"), .symbol("["), .number("0"), .symbol("]"), .symbol("["), .string("role"),
        .symbol("]"), .symbol("!="), .string("system"),
      ]
      guard condition == expected, let literal = Self.literalOutput(thenNodes) else {
        throw refuse(
          "the only condition in the loop supported is "
            + "loop.first and messages[0]['role'] != 'system' around a literal")
      }
      defaultBlock = literal
      bodyRest = bodyRest.dropFirst()
    }
    guard bodyRest.count == 1, case .output(let parts) = bodyRest.first!,
      parts.contains(.content), parts.contains(.role)
    else { throw refuse("the loop body is not one output of literals, the role and the content") }

    self.family = "ChatML"
    guard case .literal(let start)? = parts.first, start.contains("<|im_start|>") else {
      throw refuse("a message does not start with <|im_start|>")
    }
    self.messageParts = parts
    self.defaultSystemBlock = defaultBlock
    self.generationPrompt = generationPrompt
    // The default system message: the default block rendered as a message with role "system".
    var message: String?
    if let defaultBlock, let contentIndex = parts.firstIndex(of: .content) {
      let prefix = Array(
        Self.render(Array(parts[..<contentIndex]), role: "system", content: "").unicodeScalars)
      let suffix = Array(
        Self.render(Array(parts[(contentIndex + 1)...]), role: "system", content: "").unicodeScalars
      )
      let block = Array(defaultBlock.unicodeScalars)
      if block.count >= prefix.count + suffix.count, block.starts(with: prefix),
        block.reversed().starts(with: suffix.reversed())
      {
        message = String(
          String.UnicodeScalarView(block[prefix.count..<(block.count - suffix.count)]))
      } else {
        // The plain ChatML system block, when a message adds more (indentation) around it.
        var text = Substring(defaultBlock)
        if text.hasPrefix("<|im_start|>system\n") {
          text = text.dropFirst("<|im_start|>system\n".count)
          if text.hasSuffix("\n") { text = text.dropLast() }
          if text.hasSuffix("<|im_end|>") {
            message = String(text.dropLast("<|im_end|>".count))
          }
        }
      }
    }
    self.defaultSystemMessage = message
  }

  /// The prompt text of `messages`, as `apply_chat_template(messages, tokenize=False,
  /// add_generation_prompt=addGenerationPrompt)`.
  public func render(_ messages: [(role: String, content: String)], addGenerationPrompt: Bool)
    -> String
  {
    var out = ""
    for (index, message) in messages.enumerated() {
      if index == 0, let defaultSystemBlock, messages[0].role != "system" {
        out += defaultSystemBlock
      }
      out += Self.render(messageParts, role: message.role, content: message.content)
    }
    if addGenerationPrompt, let generationPrompt { out += generationPrompt }
    return out
  }

  static func render(_ parts: [Part], role: String, content: String) -> String {
    var out = ""
    for part in parts {
      switch part {
      case .literal(let text): out += text
      case .role: out += role
      case .content: out += content
      }
    }
    return out
  }

  /// The text of nodes that only output literals.
  static func literalOutput(_ nodes: [JinjaNode]) -> String? {
    guard nodes.count == 1, case .output(let parts) = nodes[0] else { return nil }
    var text = ""
    for part in parts {
      guard case .literal(let literal) = part else { return nil }
      text += literal
    }
    return text
  }

  /// The family a template looks like, by its markers.
  static func family(of template: String) -> String {
    let markers: [(String, String)] = [
      ("<|start_header_id|>", "Llama 3"), ("[INST]", "Llama 2 / Mistral"),
      ("<start_of_turn>", "Gemma"), ("<|START_OF_TURN_TOKEN|>", "Command-R"),
      ("<|im_start|>", "ChatML"), ("<|user|>", "Zephyr / Phi-3"),
      ("<|assistant|>", "Zephyr / Phi-3"),
      ("<｜User｜>", "DeepSeek"),
    ]
    return markers.first { template.contains($0.0) }?.1 ?? "unrecognized"
  }
}

// MARK: - A small Jinja reader (just enough to recognize templates exactly)

struct JinjaError: Error {
  var reason: String
}

enum JinjaToken: Equatable, Sendable {
  case name(String)
  case string(String)
  case number(String)
  case symbol(String)
}

enum JinjaItem {
  case text(String)
  case expression([JinjaToken])
  case statement([JinjaToken])
}

indirect enum JinjaNode: Sendable {
  case output([ChatTemplate.Part])
  case forLoop([JinjaNode])
  case condition([JinjaToken], [JinjaNode])
}

enum JinjaLexer {
  /// The template's items, with whitespace control and `trim_blocks` applied; text left
  /// between tags is kept as literal text.
  static func items(of template: String) throws(JinjaError) -> [JinjaItem] {
    // Jinja first normalizes newlines and (keep_trailing_newline=False) drops a final one.
    var source = template.replacingLineBreaks()
    if source.hasSuffix("\n") { source.removeLast() }
    let s = Array(source.unicodeScalars)
    var raw:
      [(kind: Character, tokens: [JinjaToken], text: String, trimLeft: Bool, trimRight: Bool)] = []
    var text = String.UnicodeScalarView()
    var i = 0
    while i < s.count {
      if s[i] == "{" && i + 1 < s.count && (s[i + 1] == "{" || s[i + 1] == "%" || s[i + 1] == "#") {
        let kind = s[i + 1]
        let close: Unicode.Scalar = kind == "{" ? "}" : kind
        raw.append(("t", [], String(text), false, false))
        text = String.UnicodeScalarView()
        var j = i + 2
        var trimLeft = false
        if j < s.count && s[j] == "-" {
          trimLeft = true
          j += 1
        } else if j < s.count && s[j] == "+" {
          throw JinjaError(reason: "'+' whitespace control")
        }
        // Find the closing delimiter outside string literals.
        var k = j
        var quote: Unicode.Scalar?
        while k + 1 < s.count {
          if let q = quote {
            if s[k] == "\\" {
              k += 2
              continue
            }
            if s[k] == q { quote = nil }
          } else if kind != "#" && (s[k] == "'" || s[k] == "\"") {
            quote = s[k]
          } else if s[k] == close && s[k + 1] == "}" {
            break
          }
          k += 1
        }
        guard k + 1 < s.count else { throw JinjaError(reason: "an unclosed tag") }
        var end = k
        var trimRight = false
        if end > j && s[end - 1] == "-" {
          trimRight = true
          end -= 1
        } else if end > j && s[end - 1] == "+" {
          throw JinjaError(reason: "'+' whitespace control")
        }
        if kind != "#" {
          let tokens = try tokenize(Array(s[j..<end]))
          raw.append((kind == "{" ? "e" : "s", tokens, "", trimLeft, trimRight))
        } else {
          raw.append(("c", [], "", trimLeft, trimRight))
        }
        i = k + 2
      } else {
        text.append(s[i])
        i += 1
      }
    }
    raw.append(("t", [], String(text), false, false))

    // Whitespace control (`-`), trim_blocks (the newline right after a block or comment tag)
    // and lstrip_blocks (spaces and tabs from the start of a line up to a block or comment tag),
    // as transformers' Jinja environment sets them.
    func isBlock(_ kind: Character) -> Bool { kind == "s" || kind == "c" }
    for index in raw.indices where raw[index].kind == "t" {
      var value = Substring(raw[index].text)
      var lineStarting = index == 0
      if index > 0 {
        let before = raw[index - 1]
        if before.trimRight {
          value = value.drop { $0.isWhitespace }
        } else if isBlock(before.kind) && value.hasPrefix("\n") {
          value = value.dropFirst()
          lineStarting = true
        }
      }
      if index + 1 < raw.count {
        let after = raw[index + 1]
        if after.trimLeft {
          while let last = value.last, last.isWhitespace { value = value.dropLast() }
        } else if isBlock(after.kind) {
          let newline = value.lastIndex(of: "\n")
          let line = newline.map { value[value.index(after: $0)...] } ?? value[...]
          if (newline != nil || lineStarting) && line.allSatisfy({ $0.isWhitespace }) {
            value = value[..<line.startIndex]
          }
        }
      }
      raw[index].text = String(value)
    }
    var items: [JinjaItem] = []
    for entry in raw {
      switch entry.kind {
      case "t": if !entry.text.isEmpty { items.append(.text(entry.text)) }
      case "e": items.append(.expression(entry.tokens))
      case "s": items.append(.statement(entry.tokens))
      default: break
      }
    }
    return items
  }

  /// The tokens inside a tag, with `x.name` rewritten as `x['name']`.
  static func tokenize(_ s: [Unicode.Scalar]) throws(JinjaError) -> [JinjaToken] {
    var tokens: [JinjaToken] = []
    var i = 0
    func isNameStart(_ c: Unicode.Scalar) -> Bool {
      c == "_" || (c.isASCII && c.properties.isAlphabetic)
    }
    func isNameChar(_ c: Unicode.Scalar) -> Bool {
      isNameStart(c) || (c.value >= 0x30 && c.value <= 0x39)
    }
    while i < s.count {
      let c = s[i]
      if c.properties.isWhitespace {
        i += 1
      } else if isNameStart(c) {
        var j = i + 1
        while j < s.count && isNameChar(s[j]) { j += 1 }
        let name = String(String.UnicodeScalarView(s[i..<j]))
        if case .symbol(".")? = tokens.last {
          tokens.removeLast()
          tokens += [.symbol("["), .string(name), .symbol("]")]
        } else {
          tokens.append(.name(name))
        }
        i = j
      } else if c.value >= 0x30 && c.value <= 0x39 {
        var j = i + 1
        while j < s.count && ((s[j].value >= 0x30 && s[j].value <= 0x39) || s[j] == ".") { j += 1 }
        tokens.append(.number(String(String.UnicodeScalarView(s[i..<j]))))
        i = j
      } else if c == "'" || c == "\"" {
        var j = i + 1
        var raw: [Unicode.Scalar] = []
        while j < s.count && s[j] != c {
          if s[j] == "\\" && j + 1 < s.count {
            raw.append(s[j])
            raw.append(s[j + 1])
            j += 2
          } else {
            raw.append(s[j])
            j += 1
          }
        }
        guard j < s.count else { throw JinjaError(reason: "an unterminated string literal") }
        tokens.append(.string(try unescape(raw)))
        i = j + 1
      } else {
        let two = i + 1 < s.count ? String(String.UnicodeScalarView([c, s[i + 1]])) : ""
        if ["==", "!=", "<=", ">=", "//", "**"].contains(two) {
          tokens.append(.symbol(two))
          i += 2
        } else {
          tokens.append(.symbol(String(c)))
          i += 1
        }
      }
    }
    return tokens
  }

  /// A string literal's value: Python's `unicode-escape` after newline normalization, as Jinja.
  static func unescape(_ raw: [Unicode.Scalar]) throws(JinjaError) -> String {
    var out = String.UnicodeScalarView()
    var i = 0
    func hex(_ count: Int) throws(JinjaError) -> Unicode.Scalar {
      guard i + 1 + count <= raw.count,
        let value = UInt32(
          String(String.UnicodeScalarView(raw[(i + 1)..<(i + 1 + count)])), radix: 16),
        let scalar = Unicode.Scalar(value)
      else { throw JinjaError(reason: "a bad escape in a string literal") }
      i += 1 + count
      return scalar
    }
    while i < raw.count {
      let c = raw[i]
      if c == "\r" {
        out.append("\n")
        i += (i + 1 < raw.count && raw[i + 1] == "\n") ? 2 : 1
        continue
      }
      guard c == "\\", i + 1 < raw.count else {
        out.append(c)
        i += 1
        continue
      }
      i += 1
      let e = raw[i]
      switch e {
      case "n":
        out.append("\n")
        i += 1
      case "t":
        out.append("\t")
        i += 1
      case "r":
        out.append("\r")
        i += 1
      case "\\":
        out.append("\\")
        i += 1
      case "'":
        out.append("'")
        i += 1
      case "\"":
        out.append("\"")
        i += 1
      case "a":
        out.append("\u{7}")
        i += 1
      case "b":
        out.append("\u{8}")
        i += 1
      case "f":
        out.append("\u{C}")
        i += 1
      case "v":
        out.append("\u{B}")
        i += 1
      case "\n": i += 1
      case "x": out.append(try hex(2))
      case "u": out.append(try hex(4))
      case "U": out.append(try hex(8))
      case "0"..."7":
        var j = i
        var value: UInt32 = 0
        while j < raw.count && j < i + 3 && ("0"..."7").contains(raw[j]) {
          value = value * 8 + raw[j].value - 0x30
          j += 1
        }
        out.append(Unicode.Scalar(value)!)
        i = j
      case "N":
        throw JinjaError(reason: "a \\N{…} escape in a string literal")
      default:
        out.append("\\")
        out.append(e)
        i += 1
      }
    }
    return String(out)
  }
}

extension String {
  /// `\r\n` and `\r` as `\n` (Jinja normalizes the newlines of template text).
  fileprivate func replacingLineBreaks() -> String {
    var out = String.UnicodeScalarView()
    var previousCR = false
    for scalar in unicodeScalars {
      if scalar == "\r" {
        out.append("\n")
        previousCR = true
        continue
      }
      if scalar == "\n" && previousCR {
        previousCR = false
        continue
      }
      previousCR = false
      out.append(scalar)
    }
    return String(out)
  }
}

struct JinjaParser {
  var items: [JinjaItem]
  var index = 0

  /// Nodes up to (and consuming) a statement whose first word is in `terminators`.
  mutating func parseBlock(until terminators: Set<String>) throws(JinjaError) -> [JinjaNode] {
    var nodes: [JinjaNode] = []
    func appendOutput(_ parts: [ChatTemplate.Part]) {
      if case .output(let previous)? = nodes.last {
        nodes[nodes.count - 1] = .output(Self.merged(previous + parts))
      } else {
        nodes.append(.output(Self.merged(parts)))
      }
    }
    while index < items.count {
      let item = items[index]
      index += 1
      switch item {
      case .text(let text):
        appendOutput([.literal(text)])
      case .expression(let tokens):
        appendOutput(try Self.parts(of: tokens))
      case .statement(let tokens):
        guard case .name(let keyword)? = tokens.first else {
          throw JinjaError(reason: "a statement without a keyword")
        }
        if terminators.contains(keyword) {
          guard tokens.count == 1 else {
            throw JinjaError(reason: "{% \(keyword) %} with arguments")
          }
          return nodes
        }
        switch keyword {
        case "for":
          guard tokens == [.name("for"), .name("message"), .name("in"), .name("messages")] else {
            throw JinjaError(reason: "a loop other than {% for message in messages %}")
          }
          nodes.append(.forLoop(try parseBlock(until: ["endfor"])))
        case "if":
          nodes.append(.condition(Array(tokens.dropFirst()), try parseBlock(until: ["endif"])))
        default:
          throw JinjaError(reason: "{% \(keyword) %} is not supported")
        }
      }
    }
    guard terminators.isEmpty else {
      throw JinjaError(reason: "a missing {% \(terminators.sorted().joined(separator: "/")) %}")
    }
    return nodes
  }

  /// `'literal' + message['role'] + …` as parts.
  static func parts(of tokens: [JinjaToken]) throws(JinjaError) -> [ChatTemplate.Part] {
    var parts: [ChatTemplate.Part] = []
    var i = 0
    while i < tokens.count {
      if !parts.isEmpty {
        guard tokens[i] == .symbol("+") || tokens[i] == .symbol("~") else {
          throw JinjaError(reason: "an expression other than a concatenation")
        }
        i += 1
      }
      guard i < tokens.count else { throw JinjaError(reason: "an expression ending in +") }
      if case .string(let literal) = tokens[i] {
        parts.append(.literal(literal))
        i += 1
      } else if i + 3 < tokens.count, tokens[i] == .name("message"), tokens[i + 1] == .symbol("["),
        case .string(let key) = tokens[i + 2], tokens[i + 3] == .symbol("]"),
        key == "role" || key == "content"
      {
        parts.append(key == "role" ? .role : .content)
        i += 4
      } else {
        throw JinjaError(
          reason: "an expression using \(tokens[i]) (only literals, message.role, message.content)")
      }
    }
    return parts
  }

  static func merged(_ parts: [ChatTemplate.Part]) -> [ChatTemplate.Part] {
    var out: [ChatTemplate.Part] = []
    for part in parts {
      if case .literal(let text) = part {
        if text.isEmpty { continue }
        if case .literal(let previous)? = out.last {
          out[out.count - 1] = .literal(previous + text)
          continue
        }
      }
      out.append(part)
    }
    return out
  }
}
