/// A reduction over elements.
public enum Reduction: Sendable {
  case sum, mean, max, min
  /// Sum of absolute values.
  case l1Norm
  /// Square root of the sum of squares.
  case l2Norm
}

extension Tensor {
  /// Reduces every element to one number (accumulated in `Double`).
  ///
  /// `max`/`min` of an empty tensor are `nan`; `mean` of an empty tensor is `nan`.
  public func reduced(_ reduction: Reduction) -> Double {
    Tensor.reduce(doubleValues[...], reduction)
  }

  /// Reduces along `axis`, giving a tensor of `self`'s dtype without that axis (or with extent
  /// 1 when `keepingAxis` is true). Integer sums saturate as conversions do.
  public func reduced(_ reduction: Reduction, axis: Int, keepingAxis: Bool = false) -> Tensor {
    precondition(axis >= 0 && axis < rank, "axis \(axis) out of range for shape \(shape)")
    let outer = shape[..<axis].reduce(1, *)
    let extent = shape[axis]
    let inner = shape[(axis + 1)...].reduce(1, *)
    let values = doubleValues
    var out = [Double](repeating: 0, count: outer * inner)
    var column = [Double](repeating: 0, count: extent)
    for o in 0..<outer {
      for i in 0..<inner {
        for k in 0..<extent { column[k] = values[(o * extent + k) * inner + i] }
        out[o * inner + i] = Tensor.reduce(column[...], reduction)
      }
    }
    var newShape = shape
    if keepingAxis { newShape[axis] = 1 } else { newShape.remove(at: axis) }
    return Tensor(doubles: out, shape: newShape, dtype: dtype)
  }

  static func reduce(_ values: ArraySlice<Double>, _ reduction: Reduction) -> Double {
    switch reduction {
    case .sum: return values.reduce(0, +)
    case .mean: return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    case .max:
      return values.isEmpty ? .nan : values.contains { $0.isNaN } ? .nan : values.max()!
    case .min:
      return values.isEmpty ? .nan : values.contains { $0.isNaN } ? .nan : values.min()!
    case .l1Norm: return values.reduce(0) { $0 + Swift.abs($1) }
    case .l2Norm: return values.reduce(0) { $0 + $1 * $1 }.squareRoot()
    }
  }
}
