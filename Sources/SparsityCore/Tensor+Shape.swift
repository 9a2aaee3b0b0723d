extension Tensor {
  /// The same elements with a new shape; one extent may be `-1` (inferred).
  ///
  /// ```swift
  /// Tensor(zeros: [2, 6]).reshaped([3, -1]).shape   // [3, 4]
  /// ```
  /// - Complexity: O(1); the storage is shared.
  public func reshaped(_ newShape: [Int]) -> Tensor {
    var copy = self
    copy.reshape(to: newShape)
    return copy
  }

  /// Changes the shape in place; one extent may be `-1`.
  public mutating func reshape(to newShape: [Int]) {
    var resolved = newShape
    if let inferred = newShape.firstIndex(of: -1) {
      precondition(newShape.filter { $0 == -1 }.count == 1, "more than one -1 in \(newShape)")
      let known = newShape.enumerated().filter { $0.offset != inferred }.map(\.element)
        .reduce(1, *)
      precondition(known > 0 && count % known == 0, "cannot reshape \(shape) to \(newShape)")
      resolved[inferred] = count / known
    }
    precondition(
      Tensor.elementCount(resolved) == count, "cannot reshape \(shape) to \(newShape)")
    shape = resolved
  }

  /// The transpose of a matrix (rank 2).
  public func transposed() -> Tensor {
    precondition(rank == 2, "transposed() needs a matrix, got shape \(shape)")
    return permuted([1, 0])
  }

  /// The tensor with its axes reordered: axis `i` of the result is axis `axes[i]` of `self`.
  public func permuted(_ axes: [Int]) -> Tensor {
    precondition(
      axes.sorted() == Array(0..<rank), "\(axes) is not a permutation of the \(rank) axes")
    let width = elementByteWidth
    let newShape = axes.map { shape[$0] }
    var result = Tensor(zeros: newShape, dtype: dtype)
    let n = count
    guard n > 0 else { return result }
    let sourceStrides = Tensor.strides(of: shape)
    let permutedStrides = axes.map { sourceStrides[$0] }
    withUnsafeBytes { src in
      result.withUnsafeMutableBytes { dst in
        if rank == 2 && width == 4 && axes == [1, 0] {
          // Blocked 2-D transpose of 32-bit elements (the common weight case).
          let s = src.bindMemory(to: UInt32.self)
          let d = dst.bindMemory(to: UInt32.self)
          let rows = shape[0]
          let cols = shape[1]
          let tile = 32
          for r0 in stride(from: 0, to: rows, by: tile) {
            for c0 in stride(from: 0, to: cols, by: tile) {
              for r in r0..<min(r0 + tile, rows) {
                for c in c0..<min(c0 + tile, cols) { d[c * rows + r] = s[r * cols + c] }
              }
            }
          }
          return
        }
        var index = [Int](repeating: 0, count: rank)
        var sourceOffset = 0
        for flat in 0..<n {
          (dst.baseAddress! + flat * width).copyMemory(
            from: src.baseAddress! + sourceOffset * width, byteCount: width)
          // Advance the multi-index over the result's shape.
          var axis = rank - 1
          while axis >= 0 {
            index[axis] += 1
            sourceOffset += permutedStrides[axis]
            if index[axis] < newShape[axis] { break }
            sourceOffset -= permutedStrides[axis] * newShape[axis]
            index[axis] = 0
            axis -= 1
          }
        }
      }
    }
    return result
  }

  /// The elements with index in `range` along `axis`.
  ///
  /// ```swift
  /// let x = Tensor((0..<12).map(Float.init), shape: [3, 4])
  /// x.sliced(1..<3, axis: 1)   // columns 1 and 2: shape [3, 2]
  /// ```
  public func sliced(_ range: Range<Int>, axis: Int = 0) -> Tensor {
    precondition(axis >= 0 && axis < rank, "axis \(axis) out of range for shape \(shape)")
    precondition(
      range.lowerBound >= 0 && range.upperBound <= shape[axis],
      "slice \(range) out of bounds for extent \(shape[axis]) of axis \(axis)")
    var newShape = shape
    newShape[axis] = range.count
    var result = Tensor(zeros: newShape, dtype: dtype)
    let width = elementByteWidth
    let outer = shape[..<axis].reduce(1, *)
    let inner = shape[(axis + 1)...].reduce(1, *) * width
    let chunk = range.count * inner
    guard chunk > 0 else { return result }
    withUnsafeBytes { src in
      result.withUnsafeMutableBytes { dst in
        for o in 0..<outer {
          (dst.baseAddress! + o * chunk).copyMemory(
            from: src.baseAddress! + (o * shape[axis] + range.lowerBound) * inner,
            byteCount: chunk)
        }
      }
    }
    return result
  }

  /// The tensors joined along `axis`; all other extents and the dtypes must match.
  public static func concatenated(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
    precondition(!tensors.isEmpty, "concatenated needs at least one tensor")
    let first = tensors[0]
    precondition(axis >= 0 && axis < first.rank, "axis \(axis) out of range for \(first.shape)")
    for t in tensors {
      precondition(t.dtype == first.dtype, "dtype \(t.dtype) differs from \(first.dtype)")
      precondition(
        t.rank == first.rank
          && zip(t.shape, first.shape).enumerated().allSatisfy { $0.offset == axis || $0.element.0 == $0.element.1 },
        "shape \(t.shape) does not match \(first.shape) outside axis \(axis)")
    }
    var newShape = first.shape
    newShape[axis] = tensors.map { $0.shape[axis] }.reduce(0, +)
    var result = Tensor(zeros: newShape, dtype: first.dtype)
    let width = first.elementByteWidth
    let outer = first.shape[..<axis].reduce(1, *)
    let inner = first.shape[(axis + 1)...].reduce(1, *) * width
    let rowBytes = newShape[axis] * inner
    result.withUnsafeMutableBytes { dst in
      var offset = 0
      for t in tensors {
        let chunk = t.shape[axis] * inner
        if chunk > 0 {
          t.withUnsafeBytes { src in
            for o in 0..<outer {
              (dst.baseAddress! + o * rowBytes + offset).copyMemory(
                from: src.baseAddress! + o * chunk, byteCount: chunk)
            }
          }
        }
        offset += chunk
      }
    }
    return result
  }

  /// Bytes per element. - Precondition: not a sub-byte dtype.
  @inlinable
  public var elementByteWidth: Int {
    guard let w = dtype.byteWidth else {
      preconditionFailure("element access is not defined for sub-byte dtype \(dtype)")
    }
    return w
  }
}
