import SparsityCore

/// Symmetric int8 quantization with one scale per row, with torchao's semantics (0.18:
/// `Int8Tensor.from_hp(t, PerRow())`, used for the weights of `Int8WeightOnlyConfig` and
/// `Int8DynamicActivationInt8WeightConfig` and, at run time, for the latter's activations):
///
/// - `scale = max(amax / 127.5, ε)` with `amax` the row's largest magnitude and `ε` the float32
///   machine epsilon (a row of zeros gets scale ε);
/// - `q = clamp(round_half_even(v · (1 / scale)), −128, 127)` — a multiplication by the
///   reciprocal, as torchao does, not a division;
/// - `v ≈ q · scale`.
///
/// Checked against torchao on `Tests/SparsityFormatsTests/Fixtures/quantization.safetensors`
/// (`scripts/make_quantization_fixtures.py`).
public enum Int8Quantization {
  /// The smallest scale: float32's machine epsilon.
  public static let minimumScale = Float.ulpOfOne

  /// The scale of a row whose largest magnitude is `amax`.
  @inlinable
  public static func scale(amax: Float) -> Float { max(amax / 127.5, minimumScale) }

  /// `v` quantized with the reciprocal of its row's scale (NaN → 0).
  @inlinable
  public static func quantize(_ v: Float, reciprocal: Float) -> Int8 {
    let r = (v * reciprocal).rounded(.toNearestOrEven)
    guard !r.isNaN else { return 0 }
    return Int8(max(-128, min(127, r)))
  }

  /// The rows of a float matrix `[rows, columns]` quantized: int8 values (same shape) and one
  /// scale per row.
  ///
  /// - Throws: ``SparseFormatError/shapeRule(tensor:shape:rule:)`` for a non-matrix, a
  ///   non-floating-point dtype or a NaN/infinite value (named with its row and column).
  public static func quantizeRows(_ matrix: Tensor, name: String) throws(SparseFormatError) -> (values: Tensor, scales: Tensor) {
    guard matrix.rank == 2, matrix.dtype.isFloatingPoint, matrix.dtype.isNumeric else {
      throw .shapeRule(tensor: name, shape: matrix.shape, rule: "int8 quantization needs a floating-point matrix, got \(matrix.dtype) rank \(matrix.rank)")
    }
    let (rows, columns) = (matrix.shape[0], matrix.shape[1])
    let v = matrix.dtype == .float32 ? matrix : matrix.converted(to: .float32)
    var q = [Int8](repeating: 0, count: rows * columns)
    var scales = [Float](repeating: 0, count: rows)
    let bad: (Int, Int)? = v.withUnsafeBufferPointer(as: Float.self) { x in
      for r in 0..<rows {
        var amax: Float = 0
        for c in 0..<columns {
          let e = x[r * columns + c]
          guard e.isFinite else { return (r, c) }
          amax = max(amax, e.magnitude)
        }
        let s = scale(amax: amax)
        scales[r] = s
        let reciprocal = 1 / s
        for c in 0..<columns { q[r * columns + c] = quantize(x[r * columns + c], reciprocal: reciprocal) }
      }
      return nil
    }
    if let (r, c) = bad {
      throw .shapeRule(tensor: name, shape: matrix.shape, rule: "int8 quantization needs finite values; row \(r), column \(c) is not")
    }
    return (Tensor(q, shape: [rows, columns]), Tensor(scales, shape: [rows]))
  }
}

/// What a quantized linear layer does with its activations.
public enum ActivationQuantization: String, Sendable, Hashable, CaseIterable {
  /// Float activations against the dequantized weight (weight-only: torchao's `Int8WeightOnlyConfig`).
  case none
  /// Activations quantized per token at run time, int8 × int8 products accumulated in int32
  /// (torchao's `Int8DynamicActivationInt8WeightConfig`).
  case dynamic
}

/// A matrix of int8 values with float32 scales (symmetric: no zero point), stored in any layout:
/// the values are a ``StoredTensor`` of int8 (dense, N:M, CSR, BSR — a pruned weight quantized
/// keeps its zeros), and the scales either one per row (`[rows]`, torchao's per-channel int8) or
/// one per row and group of consecutive columns (`[rows, columns / groupSize]`: GGUF Q8_0's
/// blocks of 32, compressed-tensors' "group" strategy), `value = q · scale`.
public struct QuantizedMatrix: Sendable, Equatable {
  /// The int8 values in their layout.
  public let values: StoredTensor
  /// `[rows]` float32 scales, or `[rows, groups]` with a scale per group of ``groupSize`` columns.
  public let scales: Tensor
  /// How the layer built from this matrix treats its activations.
  public let activations: ActivationQuantization

  /// Assembles a matrix and checks that the parts agree.
  ///
  /// - Throws: ``SparseFormatError/invalidEncoding(tensor:format:detail:)`` when the values are
  ///   not int8, not a matrix, or the scales are not float32 `[rows]` or `[rows, groups]` (groups
  ///   dividing the columns) holding positive, finite values.
  public init(values: StoredTensor, scales: Tensor, activations: ActivationQuantization, name: String) throws(SparseFormatError) {
    guard values.dtype == .int8, values.shape.count == 2 else {
      throw .invalidEncoding(tensor: name, format: "int8", detail: "values must be an int8 matrix, got \(values.dtype) \(values.shape)")
    }
    let (rows, columns) = (values.shape[0], values.shape[1])
    let perRow = scales.shape == [rows]
    let perGroup = scales.rank == 2 && scales.shape[0] == rows && scales.shape[1] >= 1 && columns % scales.shape[1] == 0
    guard scales.dtype == .float32, perRow || perGroup else {
      throw .invalidEncoding(
        tensor: name, format: "int8",
        detail: "scales must be F32 [\(rows)] (per row) or [\(rows), G] with G dividing \(columns) (per group), got \(scales.dtype) \(scales.shape)")
    }
    if let bad = scales.scalars(as: Float.self).firstIndex(where: { !($0 > 0 && $0.isFinite) }) {
      let place = perRow ? "row \(bad)" : "row \(bad / scales.shape[1]), group \(bad % scales.shape[1])"
      throw .invalidEncoding(tensor: name, format: "int8", detail: "scale of \(place) must be positive and finite")
    }
    self.values = values
    self.scales = scales
    self.activations = activations
  }

  /// Quantizes a float matrix (already pruned, if it is to be sparse) per row and stores the
  /// values in `layout`'s file form.
  ///
  /// - Throws: the errors of ``Int8Quantization/quantizeRows(_:name:)`` and of
  ///   ``StoredTensor/stored(as:name:)`` (values that do not fit the layout).
  public init(quantizing matrix: Tensor, layout: WeightForm.Layout, activations: ActivationQuantization, name: String)
    throws(SparseFormatError)
  {
    let (q, scales) = try Int8Quantization.quantizeRows(matrix, name: name)
    try self.init(values: try StoredTensor.dense(q).stored(as: WeightForm(layout), name: name), scales: scales, activations: activations, name: name)
  }

  /// `[rows, columns]`.
  public var shape: [Int] { values.shape }

  /// The encoding that names this matrix's form.
  public var encoding: WeightForm.Encoding { activations == .dynamic ? .int8Dynamic : .int8 }

  /// Columns per scale: `nil` for one scale per row.
  public var groupSize: Int? { scales.rank == 2 ? shape[1] / scales.shape[1] : nil }

  /// The dequantized matrix `q · scale` in float32.
  public func dequantized() -> Tensor {
    let q = values.dense()
    let (rows, columns) = (shape[0], shape[1])
    let groups = scales.rank == 2 ? scales.shape[1] : 1
    let width = columns / groups
    var out = [Float](repeating: 0, count: rows * columns)
    q.withUnsafeBufferPointer(as: Int8.self) { q in
      scales.withUnsafeBufferPointer(as: Float.self) { s in
        for r in 0..<rows {
          for c in 0..<columns { out[r * columns + c] = Float(q[r * columns + c]) * s[r * groups + c / width] }
        }
      }
    }
    return Tensor(out, shape: [rows, columns])
  }
}
