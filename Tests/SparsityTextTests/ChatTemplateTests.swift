import SparsityText
import Testing

/// Chat templates against transformers' `apply_chat_template` (renderings in the committed
/// fixture; no model files needed).
@Suite("Chat template")
struct ChatTemplateTests {
  let reference = BPEFixtures.reference

  func messages(_ chat: BPEFixtures.Chat) -> [(role: String, content: String)] {
    chat.messages.map { (role: $0.role, content: $0.content) }
  }

  @Test func smolLM2TemplateRendersLikeTransformers() throws {
    let template = try ChatTemplate(jinja: reference.chatTemplate)
    #expect(template.family == "ChatML")
    #expect(
      template.defaultSystemMessage
        == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
    let chats = reference.chat.filter { $0.template == "gguf" }
    #expect(chats.count >= 6)
    for chat in chats {
      #expect(
        template.render(messages(chat), addGenerationPrompt: chat.addGenerationPrompt)
          == chat.rendered,
        "\(chat.messages.map(\.role))")
    }
    #expect(template.render([], addGenerationPrompt: true) == "<|im_start|>assistant\n")
    #expect(template.render([], addGenerationPrompt: false) == "")
  }

  @Test func plainChatMLRendersLikeTransformers() throws {
    let template = try ChatTemplate(jinja: reference.plainChatMLTemplate)
    #expect(template.defaultSystemMessage == nil)
    for chat in reference.chat where chat.template == "plainChatML" {
      #expect(
        template.render(messages(chat), addGenerationPrompt: chat.addGenerationPrompt)
          == chat.rendered)
    }
  }

  /// Other spellings (whitespace control, trim_blocks/lstrip_blocks, comments, CRLF, escapes,
  /// attribute access, split literals), against transformers' renderings of the same
  /// conversations.
  @Test func templateVariantsRenderLikeTransformers() throws {
    let conversations = reference.chat.filter { $0.template == "gguf" }
    let smol = try ChatTemplate(jinja: reference.chatTemplate)
    #expect(reference.templateVariants.count >= 3)
    for variant in reference.templateVariants {
      let template = try ChatTemplate(jinja: variant.jinja)
      #expect(
        template.defaultSystemMessage
          == (variant.name.hasPrefix("smol") ? smol.defaultSystemMessage : nil), "\(variant.name)")
      #expect(variant.rendered.count == conversations.count)
      for (chat, expected) in zip(conversations, variant.rendered) {
        #expect(
          template.render(messages(chat), addGenerationPrompt: chat.addGenerationPrompt)
            == expected,
          "\(variant.name): \(chat.messages.map(\.role))")
      }
    }
  }

  @Test func otherTemplatesAreRefusedNamingTheFamily() {
    let llama3 = """
      {{- bos_token }}{%- for message in messages %}{{- '<|start_header_id|>' + message['role'] + \
      '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}{%- endfor %}
      """
    let gemma = """
      {% for message in messages %}{{ '<start_of_turn>' + message['role'] + '\\n' + message['content'] | trim + \
      '<end_of_turn>\\n' }}{% endfor %}
      """
    let mistral =
      "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] }}{% endif %}{% endfor %}"
    let chatMLWithTools = """
      {%- if tools %}{{- '<|im_start|>system\\n' }}{%- endif %}{%- for message in messages %}\
      {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}{%- endfor %}
      """
    let chatMLFiltered =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n'}}{% endfor %}"
    let chatMLSet =
      "{% set x = 1 %}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}"
    let cases: [(String, String)] = [
      (llama3, "Llama 3"), (gemma, "Gemma"), (mistral, "Llama 2 / Mistral"),
      (chatMLWithTools, "ChatML"),
      (chatMLFiltered, "ChatML"), (chatMLSet, "ChatML"), ("{{ messages }}", "unrecognized"),
      ("{% for message in messages %}", "unrecognized"),
      ("", "unrecognized"),
    ]
    for (jinja, family) in cases {
      let error = #expect(throws: BPETokenizerError.self) { try ChatTemplate(jinja: jinja) }
      guard case .unsupportedChatTemplate(let found, let reason)? = error else {
        Issue.record(
          "expected unsupportedChatTemplate for \(family), got \(String(describing: error))")
        continue
      }
      #expect(found == family)
      #expect(!reason.isEmpty)
      #expect(error?.description.hasPrefix("unsupported chat template (\(family)): ") == true)
    }
  }
}
