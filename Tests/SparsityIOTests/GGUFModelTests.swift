import Foundation
import SparsityCore
import Testing

@testable import SparsityIO

/// The reader on the real SmolLM2-135M-Instruct Q4_1 file (the facts page's golden values,
/// read with gguf-py 0.19). Runs only where the model is: `$SPARSITY_SMOLLM2_GGUF` or
/// `~/.cache/swift-sparsity/models/SmolLM2-135M-Instruct/SmolLM2-135M-Instruct.Q4_1.gguf`.
@Suite(.enabled(if: GGUFFixtures.smolLM2 != nil, "SmolLM2-135M-Instruct.Q4_1.gguf is not on this machine"))
struct GGUFModelTests {
  static func open() throws -> GGUFFile { try GGUFFile(contentsOf: try #require(GGUFFixtures.smolLM2)) }

  @Test func headerMetadataAndTensorTable() throws {
    let file = try Self.open()
    #expect(file.version == 3 && file.alignment == 32 && file.metadata["general.alignment"] == nil)
    #expect(file.metadata.count == 33 && file.metadataKeys.count == 33)
    #expect(file.tensors.count == 272)
    #expect(file.dataOffset == 1_785_664 && file.fileSize == 98_362_432)
    #expect(try file.string("general.architecture") == "llama")
    #expect(try file.integer("general.file_type") == 3)
    #expect(try file.integer("general.quantization_version") == 2)
    #expect(try file.integer("llama.block_count") == 30)
    #expect(try file.integer("llama.context_length") == 8192)
    #expect(try file.integer("llama.embedding_length") == 576)
    #expect(try file.integer("llama.feed_forward_length") == 1536)
    #expect(try file.integer("llama.attention.head_count") == 9)
    #expect(try file.integer("llama.attention.head_count_kv") == 3)
    #expect(try file.integer("llama.rope.dimension_count") == 64)
    #expect(try file.integer("llama.vocab_size") == 49152)
    #expect(try file.float("llama.rope.freq_base") == 100_000)
    #expect(try file.float("llama.attention.layer_norm_rms_epsilon") == Double(Float(1e-5)))
    #expect(try file.string("tokenizer.ggml.model") == "gpt2")
    #expect(try file.string("tokenizer.ggml.pre") == "smollm")
    #expect(try file.strings("tokenizer.ggml.tokens").count == 49152)
    #expect(try file.integers("tokenizer.ggml.token_type").count == 49152)
    #expect(try file.strings("tokenizer.ggml.merges").count == 48900)
    #expect(try file.integer("tokenizer.ggml.bos_token_id") == 1)
    #expect(try file.integer("tokenizer.ggml.eos_token_id") == 2)
    #expect(try file.integer("tokenizer.ggml.unknown_token_id") == 0)
    #expect(try file.integer("tokenizer.ggml.padding_token_id") == 2)
    #expect(try file.bool("tokenizer.ggml.add_bos_token") == false)
    #expect(try file.bool("tokenizer.ggml.add_space_prefix") == false)
    #expect(try file.string("tokenizer.chat_template").contains("<|im_start|>"))

    var counts: [GGMLType: Int] = [:]
    for info in file.tensors { counts[info.type, default: 0] += 1 }
    #expect(counts == [.q4_1: 210, .f32: 61, .q8_0: 1])
    #expect(file.tensors.first?.name == "token_embd.weight" && file.tensors.last?.name == "output_norm.weight")
    #expect(file.tensor(named: "output.weight") == nil)
    let embedding = try #require(file.tensor(named: "token_embd.weight"))
    #expect(embedding.type == .q8_0 && embedding.dimensions == [576, 49152] && embedding.shape == [49152, 576])
    #expect(file.tensors[1...9].map(\.name) == [
      "blk.0.attn_norm.weight", "blk.0.ffn_down.weight", "blk.0.ffn_gate.weight", "blk.0.ffn_up.weight",
      "blk.0.ffn_norm.weight", "blk.0.attn_k.weight", "blk.0.attn_output.weight", "blk.0.attn_q.weight",
      "blk.0.attn_v.weight",
    ])
    let last = try #require(file.tensors.last)
    #expect(file.dataOffset + last.offset + last.byteCount == file.fileSize)
  }

  private static func sums(_ tensor: Tensor) -> (sum: Double, absolute: Double) {
    tensor.withUnsafeBufferPointer(as: Float.self) { values in
      values.reduce(into: (0.0, 0.0)) { result, v in
        result.0 += Double(v)
        result.1 += Double(abs(v))
      }
    }
  }

  @Test func goldenValues() throws {
    let file = try Self.open()
    let q = try file.dequantized("blk.0.attn_q.weight")
    #expect(q.shape == [576, 576])
    let qBytes = try withExtendedLifetime(file) {
      Array(file.bytes(of: try #require(file.tensor(named: "blk.0.attn_q.weight"))).prefix(20))
    }
    #expect(qBytes == [0x0f, 0x30, 0xd8, 0xb9, 0x45, 0x87, 0x65, 0x40, 0x6f, 0x65, 0x16, 0x4b, 0x67, 0x76, 0x64, 0x50, 0x22, 0x67, 0x65, 0x5a])
    let qValues = q.scalars(as: Float.self)
    #expect(Array(qValues.prefix(4)) == [-0.0963134765625, 0.1573486328125, -0.0963134765625, -0.73046875])
    #expect(qValues[16] == -0.22314453125)
    let (qSum, qAbs) = Self.sums(q)
    #expect(abs(qSum - 59.223221) < 1e-4 && abs(qAbs - 63395.398727) < 1e-3)
    #expect(qValues.min()! > -4.79 && qValues.max()! < 5.26)

    let embedding = try file.dequantized("token_embd.weight")
    #expect(embedding.shape == [49152, 576])
    let (eSum, eAbs) = Self.sums(embedding)
    #expect(abs(eSum - -15353.044494) < 1e-3 && abs(eAbs - 2802153.619806) < 1e-2)
    let first = Array(embedding.scalars(as: Float.self).prefix(4)).map(Double.init)
    for (a, b) in zip(first, [-0.1065444946, 0.0329780579, 0.0481986999, -0.0228309631]) { #expect(abs(a - b) < 1e-9) }

    let norm = try file.dequantized("output_norm.weight")
    #expect(Array(norm.scalars(as: Float.self).prefix(4)) == [1.7578125, 1.8203125, 1.78125, 1.6015625])
    #expect(abs(Self.sums(norm).sum - 1038.332031) < 1e-4)
    let attnNorm = try file.dequantized("blk.0.attn_norm.weight")
    #expect(abs(Self.sums(attnNorm).sum - 0.612944) < 1e-5)
    let attnFirst = Array(attnNorm.scalars(as: Float.self).prefix(4)).map(Double.init)
    for (a, b) in zip(attnFirst, [0.01397705, 0.02380371, -0.01977539, -0.03027344]) { #expect(abs(a - b) < 1e-8) }
  }

  /// Opening validates 272 tensor infos and 49k-string arrays; dequantizing all 135M weights
  /// stays well under a second in a release build (the time is printed, not asserted: debug
  /// builds are several times slower).
  @Test func opensAndDequantizesEverything() throws {
    let clock = ContinuousClock()
    var file: GGUFFile?
    let openTime = try clock.measure { file = try Self.open() }
    let opened = try #require(file)
    var elements = 0
    let decodeTime = try clock.measure {
      for info in opened.tensors {
        let tensor = try opened.dequantized(info)
        elements += tensor.count
        opened.evictPages(of: info)
      }
    }
    #expect(elements == opened.tensors.map(\.elementCount).reduce(0, +))
    #expect(elements > 134_000_000)
    print("SmolLM2 Q4_1: opened in \(openTime), dequantized \(elements) weights in \(decodeTime)")
  }
}
