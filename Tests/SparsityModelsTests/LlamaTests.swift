import Foundation
import SparsityCore
import SparsityKernels
import SparsityNN
import Testing

@testable import SparsityModels

let tinyLlama = LlamaConfiguration(
  vocabularySize: 61, hiddenSize: 24, intermediateSize: 40, layerCount: 2, headCount: 6, kvHeadCount: 2, maxPositions: 64,
  rmsNormEpsilon: 1e-5, ropeTheta: 10_000)

@Suite("Llama decoder")
struct LlamaTests {
  /// Decoding one token at a time through the KV cache gives the logits of the whole-sequence pass.
  @Test(arguments: [1, 5, 23])
  func cachedDecodingEqualsTheFullPass(prompt: Int) {
    let model = LlamaModel(tinyLlama, seed: 3)
    let ids: [Int32] = (0..<30).map { Int32(($0 * 17 + 5) % 61) }
    let full = model(ids).value  // gradients on, no cache: the recorded (training) path
    let cache = KVCache(tinyLlama, capacity: 30)
    var cached = Gradients.disabled { model(Array(ids[0..<prompt]), cache: cache).value }
    for t in prompt..<30 { cached += Gradients.disabled { model([ids[t]], cache: cache).value } }
    #expect(cache.count == 30)
    let worst = zip(full, cached).map { abs($0 - $1) }.max()!
    #expect(worst < 1e-4, "max |Δ| \(worst)")
  }
}

@Suite struct GGUFRowOrderTests {
  /// llama.cpp's q/k row order is undone the same way for int8 values (Q8_0 kept in int8) as for
  /// floats: whole rows move, row `h·d + j·d/2 + i` ← GGUF row `h·d + 2i + j`.
  @Test func int8RowsMoveLikeFloatRows() throws {
    let (rows, columns, heads) = (16, 3, 2)
    let floats = Tensor((0..<(rows * columns)).map { Float($0 % 120) }, shape: [rows, columns])
    let bytes = Tensor((0..<(rows * columns)).map { Int8($0 % 120) }, shape: [rows, columns])
    let f = try GGUFLlamaTensors.unpermuted(floats, heads: heads, name: "q")
    let b = try GGUFLlamaTensors.unpermuted(bytes, heads: heads, name: "q")
    #expect(b.dtype == .int8)
    #expect(b.scalars(as: Int8.self).map(Float.init) == f.floatValues)
    // Row 1 of head 0 (d = 8: j = 0, i = 1) comes from GGUF row 2.
    #expect(Array(f.floatValues[3..<6]) == Array(floats.floatValues[6..<9]))
  }
}
