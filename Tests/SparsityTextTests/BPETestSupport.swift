import Foundation
import SparsityText
import Testing

/// The committed BPE fixture (Fixtures/bpe/smollm2_cases.json, made by
/// scripts/make_bpe_tokenizer_fixtures.py) and the model files that the same script writes
/// beside the SmolLM2 GGUF (not committed).
enum BPEFixtures {
  struct Case: Decodable, Sendable {
    var text: String
    /// The reference ids (SmolLM2's pre-tokenizer, no BOS).
    var ids: [Int]
    /// The ids with GPT-2's pre-tokenizer over the same vocabulary.
    var gpt2Ids: [Int]
    var decoded: String
    var decodedSkippingSpecial: String
    /// Byte-level pieces per pre-tokenizer (no special-token parsing).
    var pieces: [String: [String]]
    /// The NFC form, where it differs.
    var nfc: String?
  }

  struct LossyDecode: Decodable, Sendable {
    var ids: [Int]
    var decoded: String
  }

  struct Chat: Decodable, Sendable {
    struct Message: Decodable, Sendable {
      var role: String
      var content: String
    }
    var template: String
    var messages: [Message]
    var addGenerationPrompt: Bool
    var rendered: String
    var ids: [Int]
  }

  struct TemplateVariant: Decodable, Sendable {
    var name: String
    var jinja: String
    /// The renderings of the `gguf` conversations of ``File/chat``, in order.
    var rendered: [String]
  }

  struct File: Decodable, Sendable {
    var source: String
    var vocabularySize: Int
    var bos: Int
    var eos: Int
    var chatTemplate: String
    var plainChatMLTemplate: String
    var missingBytes: [Int]
    var cases: [Case]
    var lossyDecodes: [LossyDecode]
    var chat: [Chat]
    var templateVariants: [TemplateVariant]
  }

  static let reference: File = {
    let path = Fixtures.path("bpe/smollm2_cases.json")
    do {
      return try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
      fatalError("cannot load \(path): \(error)")
    }
  }()

  /// The folder of the SmolLM2 model (`SPARSITY_SMOLLM2_DIR` or the default cache folder).
  static let modelDirectory: String =
    ProcessInfo.processInfo.environment["SPARSITY_SMOLLM2_DIR"]
    ?? NSHomeDirectory() + "/.cache/swift-sparsity/models/SmolLM2-135M-Instruct"

  /// Whether tokenizer.json and gguf-vocab.json are there.
  static let modelFilesPresent: Bool = ["tokenizer.json", "gguf-vocab.json"].allSatisfy {
    FileManager.default.fileExists(atPath: modelDirectory + "/" + $0)
  }

  static let skipReason: Comment = """
    needs tokenizer.json and gguf-vocab.json in ~/.cache/swift-sparsity/models/SmolLM2-135M-Instruct \
    (run scripts/fetch_smollm2.py, then scripts/make_bpe_tokenizer_fixtures.py)
    """

  /// The GGUF's tokenizer arrays, as gguf-py read them.
  struct GGUFVocabulary: Decodable, Sendable {
    var pre: String
    var tokens: [String]
    var merges: [String]
    var tokenTypes: [Int]
    var bos: Int?
    var eos: Int?
    var unknown: Int?
    var padding: Int?
    var addBOS: Bool
    var chatTemplate: String?
  }

  static let ggufVocabulary: GGUFVocabulary = {
    let path = modelDirectory + "/gguf-vocab.json"
    do {
      return try JSONDecoder().decode(
        GGUFVocabulary.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    } catch {
      fatalError("cannot load \(path): \(error)")
    }
  }()

  /// The tokenizer built from the GGUF arrays (the lead's GGUF route).
  static let fromGGUF: BPETokenizer = {
    let vocabulary = ggufVocabulary
    do {
      return try BPETokenizer(
        tokens: vocabulary.tokens, merges: vocabulary.merges, tokenTypes: vocabulary.tokenTypes,
        preTokenizer: PreTokenizer(ggufName: vocabulary.pre), bos: vocabulary.bos,
        eos: vocabulary.eos, unknown: vocabulary.unknown, padding: vocabulary.padding,
        addBOS: vocabulary.addBOS)
    } catch {
      fatalError("cannot build the GGUF tokenizer: \(error)")
    }
  }()

  /// The tokenizer loaded from the reference tokenizer.json.
  static let fromJSON: BPETokenizer = {
    do { return try BPETokenizer(tokenizerJSON: modelDirectory + "/tokenizer.json") } catch {
      fatalError("cannot load tokenizer.json: \(error)")
    }
  }()
}
