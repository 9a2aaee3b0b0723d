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
  /// 2:4 in the CUTLASS layout PyTorch's semi-structured tensors use.
  case semiStructured(CUTLASSSemiStructured)

  /// The dense tensor (a decompression for the sparse cases).
  public func dense() -> Tensor {
    switch self {
    case let .dense(t): t
    case let .csr(m): m.dense()
    case let .bsr(m): m.dense()
    case let .semiStructured(m): m.dense()
    }
  }

  /// The stored layout (`float32` encoding names the layout alone; ``dtype`` is the values' type).
  public var form: WeightForm {
    switch self {
    case .dense: .dense
    case .csr: .csr
    case let .bsr(m): .bsr(m.blockRows, m.blockColumns)
    case .semiStructured: .twoFour
    }
  }

  /// The dense shape.
  public var shape: [Int] {
    switch self {
    case let .dense(t): t.shape
    case let .csr(m): m.shape
    case let .bsr(m): m.shape
    case let .semiStructured(m): [m.rows, m.columns]
    }
  }

  /// The element type of the values.
  public var dtype: DType {
    switch self {
    case let .dense(t): t.dtype
    case let .csr(m): m.dtype
    case let .bsr(m): m.dtype
    case let .semiStructured(m): m.packed.dtype
    }
  }

  /// Bytes of every array stored for this tensor.
  public var byteCount: Int {
    switch self {
    case let .dense(t): t.byteCount
    case let .csr(m): m.byteCount
    case let .bsr(m): m.byteCount
    case let .semiStructured(m): m.byteCount
    }
  }

  /// Drops the resident pages of the mapped file bytes this tensor's arrays borrow (see
  /// ``TensorStorage/evictPages()``), once a weight is packed from them; the tensor stays readable.
  public func evictPages() {
    switch self {
    case let .dense(t): t.evictPages()
    case let .csr(m): m.values.evictPages()
    case let .bsr(m): m.values.evictPages()
    case let .semiStructured(m):
      m.packed.evictPages()
      m.meta.evictPages()
    }
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
    case let .semiStructured(m):
      m.packed.populatePages()
      m.meta.populatePages()
    }
  }

  /// The nonzeros as compressed rows, converted without a dense intermediate (a dense tensor is
  /// scanned in place). Requires a matrix.
  public func csr(name: String = "tensor") throws(SparseFormatError) -> CSRMatrix {
    switch self {
    case let .dense(t): try CSRMatrix(dense: t, name: name)
    case let .csr(m): m
    case let .bsr(m): CSRMatrix(m)
    case let .semiStructured(m): CSRMatrix(m)
    }
  }

  /// This tensor stored in `form` (the file forms: dense, 2:4 in PyTorch's CUTLASS layout, CSR, BSR).
  ///
  /// - Throws: ``SparseFormatError`` naming `name` when the values do not fit the form (a third
  ///   nonzero in a group of four, a block that does not divide the shape, a dtype CUTLASS lacks)
  ///   or the form has no file layout (N:M other than 2:4).
  public func stored(as form: WeightForm, name: String) throws(SparseFormatError) -> StoredTensor {
    if form == self.form { return self }
    switch form.layout {
    case .dense: return .dense(dense())
    case .csr: return .csr(try csr(name: name))
    case let .block(r, c): return .bsr(try BSRMatrix(csr: try csr(name: name), blockRows: r, blockColumns: c, name: name))
    case .nOfM(2, 4): return .semiStructured(try CUTLASSSemiStructured(compressing: dense(), name: name))
    case .nOfM:
      throw .shapeRule(tensor: name, shape: shape, rule: "files store N:M weights only as 2:4 (\(form) has no file layout)")
    }
  }

  /// The form a model loader packs this matrix in for the kernels: BSR and 2:4 tensors keep
  /// their stored form; CSR and dense ones take the form their zeros suit
  /// (``suitableForm(minimumSparsity:)``: a CSR file of 2:4 zeros packs as 2:4; a dense weight
  /// needs half its values zero to leave dense, a stored sparse one stays sparse).
  public var packedForm: WeightForm {
    switch self {
    case .bsr, .semiStructured: form
    case .csr: suitableForm(minimumSparsity: 0)
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
