import ArgumentParser
import Foundation
import Sparsity

/// `--model FILE.gguf|DIR` and `--weights PRUNED.safetensors`: a Llama-family language model.
struct LanguageModelOptions: ParsableArguments {
  @Option(help: "A GGUF file or a Hugging Face folder (config.json, model.safetensors or a sharded index, tokenizer.json) of a Llama-family decoder.")
  var model: String

  @Option(help: "A safetensors file with pruned weights under Hugging Face names (from `sparsity prune-model`), used in place of the model's own.")
  var weights: String?

  @OptionGroup var quantization: QuantizationOptions

  /// The model, its Linear layers (decoder and LM head) quantized when --dtype says so (each
  /// keeping its layout: a 2:4 layer becomes an int8 2:4 layer); a GGUF file's Q8_0 matrices
  /// kept in int8 unless --dtype asks for floats or weight-only int8. Options are checked first.
  func load() throws -> LanguageModel {
    let encoding = try quantization.encoding()
    let loaded = try LanguageModel(path: model, weights: weights, holding: .packed, keepingQ8_0: try quantization.keepsQ8_0())
    if encoding != .float32 {
      do { try quantize(loaded.model, encoding: encoding) } catch { throw CLIError("\(error)") }
      MemoryTuning.releaseFreedMemory()
    }
    return loaded
  }
}

/// Text generation with a Llama-family decoder, streamed, then its speed.
struct Generate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Generate text with a Llama-family language model, streamed; then print prefill and decode tokens/s.",
    discussion: """
      Greedy by default; --temperature T > 0 samples from softmax(logits / T), restricted to the --top-k most \
      likely tokens (0: all) and the smallest set whose probability reaches --top-p, seeded by --seed. --chat \
      wraps the text in the model's chat template (a user turn and the assistant's prompt). Generation ends at \
      the end-of-sequence token or after --max-tokens. Decode tokens/s counts the steps after the first token \
      (whose logits come from the prefill).
      """)

  @OptionGroup var modelOptions: LanguageModelOptions

  @Option(help: "The prompt text.")
  var prompt: String?

  @Option(help: "A file whose text is the prompt.")
  var promptFile: String?

  @Option(help: "A user message, sent through the model's chat template.")
  var chat: String?

  @Option(help: "The most tokens to generate.")
  var maxTokens = 128

  @Option(help: "Sampling temperature (0: greedy).")
  var temperature = 0.0

  @Option(help: "Sample among the K most likely tokens (0: all).")
  var topK = 0

  @Option(help: "Sample among the most likely tokens whose probabilities sum to P.")
  var topP = 1.0

  @Option(help: "The sampling seed.")
  var seed: UInt64 = 0

  @Flag(help: "Keep generating past the end-of-sequence token (benchmarks).")
  var ignoreEOS = false

  @Flag(help: "Print one JSON object (the text and the timings) instead of streaming.")
  var json = false

  func validate() throws {
    let given = [prompt != nil, promptFile != nil, chat != nil].filter { $0 }.count
    guard given == 1 else { throw ValidationError("give exactly one of --prompt, --prompt-file and --chat") }
    guard maxTokens >= 1 else { throw ValidationError("--max-tokens must be at least 1") }
    guard temperature >= 0, temperature.isFinite else { throw ValidationError("--temperature must be ≥ 0") }
    guard topK >= 0 else { throw ValidationError("--top-k must be ≥ 0") }
    guard topP > 0, topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
  }

  func run() throws {
    var text = prompt ?? ""
    if let promptFile {
      guard let contents = try? String(contentsOfFile: promptFile, encoding: .utf8) else {
        throw CLIError("cannot read the prompt file \(promptFile) as UTF-8 text")
      }
      text = contents
    }
    let lm = try modelOptions.load()
    if let chat {
      guard let template = lm.chatTemplate else {
        throw CLIError("--chat: \(lm.files.chatTemplateProblem ?? "the model has no chat template")")
      }
      text = template.render([(role: "user", content: chat)], addGenerationPrompt: true)
    }
    let ids = lm.tokenizer.encode(text)
    let sampling = Sampling(temperature: temperature, topK: topK, topP: topP, seed: seed)
    var generated: [Int] = []
    var stream = UTF8Stream()
    let statistics: GenerationStatistics
    do {
      statistics = try lm.generate(prompt: ids, maxTokens: maxTokens, sampling: sampling, ignoreEOS: ignoreEOS) { id in
        generated.append(id)
        if !json { stream.write(lm.tokenizer.bytes(of: id)) }
        return true
      }
    } catch {
      throw CLIError("\(error)")
    }
    if json {
      let object: [String: Any] = [
        "text": lm.tokenizer.decode(generated, skipSpecialTokens: true), "tokens": generated,
        "prompt_tokens": statistics.promptTokens, "prefill_seconds": statistics.prefillSeconds,
        "prefill_tokens_per_second": statistics.prefillTokensPerSecond, "decode_tokens": statistics.decodeTokens,
        "decode_seconds": statistics.decodeSeconds, "decode_tokens_per_second": statistics.decodeTokensPerSecond,
        "stopped_at_eos": statistics.stoppedAtEOS,
      ]
      let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
      say(String(decoding: data, as: UTF8.self))
      return
    }
    stream.finish()
    let summary = String(
      format: "prefill: %d tokens in %.3f s (%.1f tokens/s); decode: %d tokens in %.3f s (%.1f tokens/s)%@",
      statistics.promptTokens, statistics.prefillSeconds, statistics.prefillTokensPerSecond, statistics.decodeTokens,
      statistics.decodeSeconds, statistics.decodeTokensPerSecond, statistics.stoppedAtEOS ? "; stopped at end of sequence" : "")
    FileHandle.standardError.write(Data((summary + "\n").utf8))
  }
}

/// Writes UTF-8 bytes to standard output as they arrive, holding back an incomplete character
/// (a token may end inside one) until the bytes that complete it come.
struct UTF8Stream {
  private var pending: [UInt8] = []

  mutating func write(_ bytes: [UInt8]) {
    pending += bytes
    // Everything up to the start of a trailing incomplete sequence is complete.
    var cut = pending.count
    var back = 0
    while back < min(4, pending.count) {
      let byte = pending[pending.count - 1 - back]
      if byte & 0xC0 != 0x80 {
        let length = byte < 0x80 ? 1 : byte >> 5 == 0b110 ? 2 : byte >> 4 == 0b1110 ? 3 : byte >> 3 == 0b11110 ? 4 : 1
        if length > back + 1 { cut = pending.count - 1 - back }
        break
      }
      back += 1
    }
    guard cut > 0 else { return }
    FileHandle.standardOutput.write(Data(pending[0..<cut]))
    pending.removeFirst(cut)
  }

  mutating func finish() {
    var bytes = pending
    bytes.append(UInt8(ascii: "\n"))
    FileHandle.standardOutput.write(Data(String(decoding: bytes, as: UTF8.self).utf8))
    pending = []
  }
}
