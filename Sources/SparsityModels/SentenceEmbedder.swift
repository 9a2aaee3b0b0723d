import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityNN
import SparsityPruning
import SparsityText

/// Sentence embeddings as sentence-transformers computes them for BERT models such as
/// all-MiniLM-L6-v2: WordPiece → encoder → mean over real tokens → L2 normalisation.
public final class SentenceEmbedder {
  public let tokenizer: WordPieceTokenizer
  public let model: BertModel
  /// Longer texts are truncated to this many tokens ([CLS] and [SEP] included).
  public var maxLength: Int

  public init(tokenizer: WordPieceTokenizer, model: BertModel, maxLength: Int = 256) {
    self.tokenizer = tokenizer
    self.model = model
    self.maxLength = min(maxLength, model.configuration.maxPositions)
  }

  /// Loads a sentence-transformers folder: `config.json`, weights, `vocab.txt` and, when
  /// present, `sentence_bert_config.json` for the maximum length (else 256) and
  /// `tokenizer_config.json` for lower-casing (else true).
  ///
  /// - Parameters:
  ///   - weights: a safetensors file to read the encoder's weights from instead of the folder's
  ///     (e.g. a pruned one; it must hold every tensor the encoder uses).
  ///   - holding: trainable layers (default) or inference layers packed from the file.
  public convenience init(directory: String, weights: String? = nil, holding: LoadedWeights = .trainable) throws(ModelLoadingError) {
    try self.init(directory: directory, model: try BertModel(directory: directory, weights: weights, holding: holding))
  }

  /// The tokenizer and settings of a sentence-transformers folder around an encoder loaded from it.
  public convenience init(directory: String, model: BertModel) throws(ModelLoadingError) {
    let vocabulary = (directory as NSString).appendingPathComponent("vocab.txt")
    var lowercase = true
    if let data = FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent("tokenizer_config.json")),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let flag = object["do_lower_case"] as? Bool
    {
      lowercase = flag
    }
    var maxLength = 256
    if let data = FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent("sentence_bert_config.json")),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any], let length = object["max_seq_length"] as? Int
    {
      maxLength = length
    }
    let tokenizer: WordPieceTokenizer
    do { tokenizer = try WordPieceTokenizer(vocabularyFile: vocabulary, lowercase: lowercase) } catch {
      throw .unreadable(path: vocabulary, detail: "\(error)")
    }
    guard tokenizer.vocabularySize == model.configuration.vocabularySize else {
      throw .unsupported(
        path: vocabulary,
        detail: "\(tokenizer.vocabularySize) tokens but config.json says vocab_size \(model.configuration.vocabularySize)")
    }
    self.init(tokenizer: tokenizer, model: model, maxLength: maxLength)
  }

  /// Unit-length embeddings `[texts.count × hidden]`, row-major, in input order. Texts are
  /// sorted by length and run `batchSize` at a time, each batch padded to its longest text.
  ///
  /// - Parameter time: wraps each step of the forward pass (per-layer profiles).
  public func embed(
    _ texts: [String], batchSize: Int = 32, time: (String, () -> Variable) -> Variable = { $1() }
  ) -> [Float] {
    precondition(batchSize > 0, "batch size must be positive")
    let d = model.configuration.hiddenSize
    let encoded = texts.map { tokenizer.encode($0, maxLength: maxLength) }
    let order = texts.indices.sorted { encoded[$0].count > encoded[$1].count }
    var result = [Float](repeating: 0, count: texts.count * d)
    model.train(false)
    Gradients.disabled {
      for start in stride(from: 0, to: order.count, by: batchSize) {
        let members = Array(order[start..<min(start + batchSize, order.count)])
        let batch = tokenizer.encode(batch: members.map { texts[$0] }, maxLength: maxLength)
        let h = model.hiddenStates(
          ids: batch.ids, attentionMask: batch.attentionMask, batch: batch.batchSize, tokens: batch.sequenceLength, time: time)
        let pooled = Self.meanPooled(h.value, mask: batch.attentionMask, batch: batch.batchSize, tokens: batch.sequenceLength, hidden: d)
        for (row, index) in members.enumerated() {
          result.replaceSubrange(index * d..<(index + 1) * d, with: pooled[row * d..<(row + 1) * d])
        }
      }
    }
    return result
  }

  /// The mean of the hidden states of real tokens per sequence, scaled to unit length
  /// (sentence-transformers' `Pooling(mean)` then `Normalize`, which divides by max(‖v‖, 1e-12)).
  static func meanPooled(_ h: [Float], mask: [Int32], batch: Int, tokens: Int, hidden d: Int) -> [Float] {
    var out = [Float](repeating: 0, count: batch * d)
    for b in 0..<batch {
      var sum = [Double](repeating: 0, count: d)
      var count = 0
      for t in 0..<tokens where mask[b * tokens + t] != 0 {
        count += 1
        for j in 0..<d { sum[j] += Double(h[(b * tokens + t) * d + j]) }
      }
      let mean = sum.map { $0 / Double(max(count, 1)) }
      let norm = max(mean.reduce(0) { $0 + $1 * $1 }.squareRoot(), 1e-12)
      for j in 0..<d { out[b * d + j] = Float(mean[j] / norm) }
    }
    return out
  }
}

