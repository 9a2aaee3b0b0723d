import SparsityCore

extension Tensor {
  /// Whether at least the fraction `fraction` of the values are zero; stops reading once the
  /// nonzeros rule it out (half a pass over a dense weight at 0.5).
  func hasZeros(atLeast fraction: Double) -> Bool {
    guard dtype == .float32 else { return sparsity >= fraction }
    let allowed = Int((1 - fraction) * Double(count))  // nonzeros allowed
    return withUnsafeBufferPointer(as: Float.self) { v in
      var nonzeros = 0
      var i = 0
      while i < v.count {
        let end = Swift.min(v.count, i + 4096)
        for j in i..<end where v[j].magnitude != 0 { nonzeros += 1 }
        if nonzeros > allowed { return false }
        i = end
      }
      return true
    }
  }
}

/// A tensor as a file stores it: dense, or compressed in one of the sparse formats.
///
/// The arrays of a tensor read from a file borrow the file's mapped pages; nothing here makes
/// a dense copy of a sparse tensor except ``dense()``, which is a decompression.
public enum StoredTensor: Sendable, Equatable {
  case dense(Tensor)
  case csr(CSRMatrix)
  case bsr(BSRMatrix)
  /// 2:4 in the CUTLASS layout PyTorch's semi-structured tensors use (f16, bf16, i8 values).
  case cutlass(CUTLASSSemiStructured)
  /// N:M in its logical form, kept values + bit-packed positions (any value type; the file
  /// layout of f32 2:4, which CUTLASS stores only as 1:2, and of every other N:M).
  case nOfM(SemiStructuredMatrix)
  /// Int8 values (in any of the layouts above) with one scale per row.
  indirect case quantized(QuantizedMatrix)

  /// The dense tensor (a decompression for the sparse cases).
  public func dense() -> Tensor {
    switch self {
    case let .dense(t): t
    case let .csr(m): m.dense()
    case let .bsr(m): m.dense()
    case let .cutlass(m): m.dense()
    case let .nOfM(m): m.dense()
    case let .quantized(m): m.dequantized()
    }
  }

  /// The stored layout (`float32` encoding names the layout alone; ``dtype`` is the values' type).
  public var form: WeightForm {
    switch self {
    case .dense: .dense
    case .csr: .csr
    case let .bsr(m): .bsr(m.blockRows, m.blockColumns)
    case .cutlass: .twoFour
    case let .nOfM(m): WeightForm(.nOfM(n: m.n, m: m.m))
    case let .quantized(m): WeightForm(m.values.form.layout, encoding: m.encoding)
    }
  }

  /// The dense shape.
  public var shape: [Int] {
    switch self {
    case let .dense(t): t.shape
    case let .csr(m): m.shape
    case let .bsr(m): m.shape
    case let .cutlass(m): [m.rows, m.columns]
    case let .nOfM(m): m.shape
    case let .quantized(m): m.shape
    }
  }

  /// The element type of the values.
  public var dtype: DType {
    switch self {
    case let .dense(t): t.dtype
    case let .csr(m): m.dtype
    case let .bsr(m): m.dtype
    case let .cutlass(m): m.packed.dtype
    case let .nOfM(m): m.dtype
    case let .quantized(m): m.values.dtype
    }
  }

  /// Bytes of every array stored for this tensor.
  public var byteCount: Int {
    switch self {
    case let .dense(t): t.byteCount
    case let .csr(m): m.byteCount
    case let .bsr(m): m.byteCount
    case let .cutlass(m): m.byteCount
    case let .nOfM(m): m.byteCount
    case let .quantized(m): m.values.byteCount + m.scales.byteCount
    }
  }

  /// Drops the resident pages of the mapped file bytes this tensor's arrays borrow (see
  /// ``TensorStorage/evictPages()``), once a weight is packed from them; the tensor stays readable.
  public func evictPages() {
    switch self {
    case let .dense(t): t.evictPages()
    case let .csr(m): m.values.evictPages()
    case let .bsr(m): m.values.evictPages()
    case let .cutlass(m):
      m.packed.evictPages()
      m.meta.evictPages()
    case let .nOfM(m): m.values.evictPages()
    case let .quantized(m): m.values.evictPages()
    }
  }

  /// The scale shape past the rows of a quantized matrix (`[]` per row, `[groups]` per group).
  private var quantizedScaleColumns: ArraySlice<Int> {
    if case let .quantized(q) = self { return q.scales.shape.dropFirst() }
    return []
  }

  /// Matrices with the same number of columns stacked row-wise for packing in `form`: for the
  /// dense form, one dense tensor (`float32` when the dtypes differ); for a sparse form, their
  /// nonzeros as one CSR matrix — never a dense copy.
  public static func stackingRows(_ parts: [StoredTensor], for form: WeightForm, name: String = "stacked") throws(SparseFormatError)
    -> StoredTensor
  {
    guard let first = parts.first, parts.allSatisfy({ $0.shape.count == 2 && $0.shape[1] == first.shape[1] }) else {
      throw .shapeRule(tensor: name, shape: parts.first?.shape ?? [], rule: "stacked matrices must share their column count")
    }
    let columns = first.shape[1]
    let rows = parts.reduce(0) { $0 + $1.shape[0] }
    if form.encoding != .float32 {
      // Quantized: the int8 values stacked in the layout, the scales one after the other (never
      // requantized, so every value and scale is kept exactly).
      let quantized = parts.compactMap { part -> QuantizedMatrix? in
        if case let .quantized(q) = part { return q }
        return nil
      }
      guard quantized.count == parts.count else {
        throw .shapeRule(tensor: name, shape: first.shape, rule: "stacking \(form) needs quantized parts")
      }
      guard quantized.allSatisfy({ $0.scales.shape.dropFirst() == first.quantizedScaleColumns }) else {
        throw .shapeRule(
          tensor: name, shape: first.shape,
          rule: "stacked int8 matrices must share their scale grouping, got \(quantized.map { $0.groupSize.map { "groups of \($0)" } ?? "per row" })")
      }
      let values = try stackingRows(quantized.map(\.values), for: WeightForm(form.layout), name: name)
      let scales = Tensor(quantized.flatMap { $0.scales.scalars(as: Float.self) }, shape: [rows] + Array(first.quantizedScaleColumns))
      let activations: ActivationQuantization = form.encoding == .int8Dynamic ? .dynamic : .none
      return .quantized(try QuantizedMatrix(values: values, scales: scales, activations: activations, name: name))
    }
    if !form.isSparse {
      let dtype = Set(parts.map(\.dtype)).count == 1 ? first.dtype : .float32
      var stacked = Tensor(zeros: [rows, columns], dtype: dtype)
      stacked.withUnsafeMutableBytes { out in
        var offset = 0
        for t in parts.map({ $0.dense() }) {
          let part = t.dtype == dtype ? t : t.converted(to: dtype)
          part.withUnsafeBytes { out.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
          offset += part.byteCount
        }
      }
      return .dense(stacked)
    }
    var offsets: [Int32] = [0]
    var indices: [Int32] = []
    var valueTensors: [Tensor] = []
    for part in parts {
      let m = try part.csr(name: name)
      let base = Int32(indices.count)
      offsets += m.rowOffsets.dropFirst().map { $0 + base }
      indices += m.columnIndices
      valueTensors.append(m.values)
    }
    let dtype = Set(valueTensors.map(\.dtype)).count == 1 ? valueTensors[0].dtype : .float32
    let converted = valueTensors.map { $0.dtype == dtype ? $0 : $0.converted(to: dtype) }
    var values = Tensor(zeros: [indices.count], dtype: dtype)
    values.withUnsafeMutableBytes { out in
      var offset = 0
      for t in converted where t.byteCount > 0 {
        t.withUnsafeBytes { out.baseAddress!.advanced(by: offset).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        offset += t.byteCount
      }
    }
    return .csr(try CSRMatrix(shape: [rows, columns], rowOffsets: offsets, columnIndices: indices, values: values, name: name))
  }

  /// Maps the mapped file pages of this tensor's arrays before they are all read (packing).
  public func populatePages() {
    switch self {
    case let .dense(t): t.populatePages()
    case let .csr(m): m.values.populatePages()
    case let .bsr(m): m.values.populatePages()
    case let .cutlass(m):
      m.packed.populatePages()
      m.meta.populatePages()
    case let .nOfM(m): m.values.populatePages()
    case let .quantized(m): m.values.populatePages()
    }
  }

  /// The nonzeros as compressed rows, converted without a dense intermediate (a dense tensor is
  /// scanned in place). Requires a matrix.
  public func csr(name: String = "tensor") throws(SparseFormatError) -> CSRMatrix {
    switch self {
    case let .dense(t): try CSRMatrix(dense: t, name: name)
    case let .csr(m): m
    case let .bsr(m): CSRMatrix(m)
    case let .cutlass(m): CSRMatrix(m)
    case let .nOfM(m): CSRMatrix(m)
    case let .quantized(m): try CSRMatrix(dense: m.dequantized(), name: name)
    }
  }

  /// This tensor stored in `form`, in the file layout of its value type: 2:4 in PyTorch's CUTLASS
  /// layout for f16, bf16 and i8 values (what `to_sparse_semi_structured` holds), every other N:M
  /// (f32 2:4 among them: CUTLASS stores f32 only as 1:2) as kept values + bit-packed positions.
  ///
  /// - Throws: ``SparseFormatError`` naming `name` when the values do not fit the form (a third
  ///   nonzero in a group of four, a block that does not divide the shape).
  public func stored(as form: WeightForm, name: String) throws(SparseFormatError) -> StoredTensor {
    switch (form.encoding, self) {
    case (.float32, .quantized): return try StoredTensor.dense(dense()).stored(as: form, name: name)
    case (.int8, let .quantized(m)), (.int8Dynamic, let .quantized(m)):
      let activations: ActivationQuantization = form.encoding == .int8Dynamic ? .dynamic : .none
      let values = try m.values.stored(as: WeightForm(form.layout), name: name)
      return .quantized(try QuantizedMatrix(values: values, scales: m.scales, activations: activations, name: name))
    case (.int8, _), (.int8Dynamic, _):
      let activations: ActivationQuantization = form.encoding == .int8Dynamic ? .dynamic : .none
      return .quantized(try QuantizedMatrix(quantizing: dense(), layout: form.layout, activations: activations, name: name))
    case (.bfloat16, _):
      // The values rounded to bf16 (to nearest even), then stored in the layout (CUTLASS 2:4 where PyTorch's shapes allow).
      let values = dtype == .bfloat16 ? self : StoredTensor.dense(dense().converted(to: .bfloat16))
      return try values.stored(as: WeightForm(form.layout), name: name)
    case (.float32, _): break
    }
    switch form.layout {
    case .dense: return form == self.form ? self : .dense(dense())
    case .csr: return form == self.form ? self : .csr(try csr(name: name))
    case let .block(r, c):
      return form == self.form ? self : .bsr(try BSRMatrix(csr: try csr(name: name), blockRows: r, blockColumns: c, name: name))
    case let .nOfM(n, m):
      let cutlass = n == 2 && m == 4 && CUTLASSSemiStructured.storesTwoFour(dtype: dtype, shape: shape)
      switch self {
      case .cutlass where cutlass: return self
      case let .nOfM(matrix) where !cutlass && matrix.n == n && matrix.m == m: return self
      case let .cutlass(matrix): return .nOfM(try SemiStructuredMatrix(matrix, name: name))
      default:
        if cutlass { return .cutlass(try CUTLASSSemiStructured(compressing: dense(), name: name)) }
        return .nOfM(try SemiStructuredMatrix(csr: try csr(name: name), n: n, m: m, name: name))
      }
    }
  }

  /// The fewest bytes among this matrix stored in each of `forms` that fits it (ties go to the
  /// earlier form), or this tensor when none fits: what `--compress auto` writes.
  public func compactest(of forms: [WeightForm], name: String) -> StoredTensor {
    var best: StoredTensor?
    for form in forms {
      guard let candidate = try? stored(as: form, name: name) else { continue }
      if best == nil || candidate.byteCount < best!.byteCount { best = candidate }
    }
    return best ?? self
  }

  /// The form a model loader packs this matrix in for the kernels: BSR and 2:4 tensors keep
  /// their stored form; CSR and dense ones take the form their zeros suit
  /// (``suitableForm(minimumSparsity:)``: a CSR file of 2:4 zeros packs as 2:4; a dense weight
  /// needs half its values zero to leave dense, a stored sparse one stays sparse).
  public var packedForm: WeightForm {
    switch self {
    case .bsr, .cutlass: form
    case let .nOfM(m): m.n == 2 && m.m == 4 ? form : suitableForm(minimumSparsity: 0)
    case .csr: suitableForm(minimumSparsity: 0)
    case let .quantized(m): WeightForm(m.values.packedForm.layout, encoding: m.encoding)
    case .dense: suitableForm()
    }
  }

  /// The sparse form that suits this matrix's zeros, or ``WeightForm/dense`` to keep it dense:
  /// 2:4 when every group of 4 inputs holds at most 2 nonzeros; else BSR with the largest
  /// square block (32, 16, 8, 4) that divides the shape and leaves at most half of the blocks
  /// nonzero; else CSR when at least `minimumSparsity` of the values are zero. Decided from the
  /// nonzero structure without a dense copy.
  public func suitableForm(minimumSparsity: Double = 0.5) -> WeightForm {
    guard shape.count == 2, shape[0] * shape[1] > 0, dtype.byteWidth != nil else { return .dense }
    if case let .dense(t) = self, !t.hasZeros(atLeast: minimumSparsity - 1e-9) { return .dense }
    guard let csr = try? csr() else { return .dense }
    let (rows, columns) = (shape[0], shape[1])
    guard 1 - Double(csr.nonzeroCount) / Double(rows * columns) >= minimumSparsity - 1e-9 else { return .dense }
    if columns % 4 == 0 && csr.conforms(nOfM: 2, 4) { return .twoFour }
    for side in [32, 16, 8, 4] where rows % side == 0 && columns % side == 0 {
      if csr.nonzeroBlockCount(blockRows: side, blockColumns: side) * 2 <= (rows / side) * (columns / side) {
        return .bsr(side, side)
      }
    }
    return .csr
  }
}
