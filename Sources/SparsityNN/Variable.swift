import SparsityCore

/// A `float32` array in a reverse-mode autograd graph: a value, its shape, and — after
/// ``backward()`` on a scalar that depends on it — the gradient of that scalar.
///
/// Operations (``linear(_:weight:bias:)``, ``relu(_:)``, ``layerNorm(_:weight:bias:epsilon:)``, …)
/// return new variables that remember their inputs and how to pass a gradient back to them, but
/// only when some input ``requiresGradient`` and recording is on (see ``Gradients/disabled(_:)``):
/// inference builds no graph.
///
/// ```swift
/// let w = Variable(randomNormal: [10, 64], standardDeviation: 0.1, seed: 1, requiresGradient: true)
/// let x = Variable(batch, shape: [32, 64])
/// let loss = crossEntropy(linear(x, weight: w), labels: labels)
/// loss.backward()
/// w.gradient  // ∂loss/∂w, [10 × 64]
/// ```
public final class Variable {
  /// The values, row-major.
  public var value: [Float] { didSet { version &+= 1 } }
  /// Counts assignments to ``value`` (caches of derived forms, such as a packed weight, check it).
  public private(set) var version = 0
  /// The shape; `value.count` is the product of its extents.
  public let shape: [Int]
  /// Whether gradients flow into this variable (true for parameters).
  public let requiresGradient: Bool
  /// The accumulated gradient after ``backward()``, same layout as ``value``; `nil` before.
  public var gradient: [Float]?

  let parents: [Variable]
  /// Adds this node's gradient into its parents' gradients.
  let propagate: ((Variable) -> Void)?

  /// A leaf: data (`requiresGradient == false`) or a parameter (`true`).
  public init(_ value: [Float], shape: [Int], requiresGradient: Bool = false) {
    precondition(shape.allSatisfy { $0 >= 0 }, "negative extent in \(shape)")
    precondition(
      value.count == shape.reduce(1, *), "\(value.count) values do not fill shape \(shape)")
    self.value = value
    self.shape = shape
    self.requiresGradient = requiresGradient
    self.parents = []
    self.propagate = nil
  }

  /// An operation's result. Records `parents` and `propagate` only when one of the parents
  /// requires a gradient and recording is on.
  init(_ value: [Float], shape: [Int], parents: [Variable], propagate: @escaping (Variable) -> Void) {
    precondition(value.count == shape.reduce(1, *), "\(value.count) values do not fill shape \(shape)")
    self.value = value
    self.shape = shape
    let records = Gradients.areEnabled && parents.contains { $0.requiresGradient }
    self.requiresGradient = records
    self.parents = records ? parents : []
    self.propagate = records ? propagate : nil
  }

  /// A `float32` tensor's values.
  public convenience init(_ tensor: Tensor, requiresGradient: Bool = false) {
    self.init(tensor.converted(to: .float32).floatValues, shape: tensor.shape, requiresGradient: requiresGradient)
  }

  /// Normal values with mean 0 and the given standard deviation, reproducible from `seed`.
  public convenience init(
    randomNormal shape: [Int], standardDeviation: Double, seed: UInt64, requiresGradient: Bool = false
  ) {
    var generator = SeededGenerator(seed: seed)
    let values = (0..<shape.reduce(1, *)).map { _ in Float(generator.nextNormal() * standardDeviation) }
    self.init(values, shape: shape, requiresGradient: requiresGradient)
  }

  /// Uniform values in `-bound ..< bound`, reproducible from `seed`.
  public convenience init(randomUniform shape: [Int], bound: Double, seed: UInt64, requiresGradient: Bool = false) {
    var generator = SeededGenerator(seed: seed)
    let values = (0..<shape.reduce(1, *)).map { _ in Float((generator.nextUnitDouble() * 2 - 1) * bound) }
    self.init(values, shape: shape, requiresGradient: requiresGradient)
  }

  /// The values as a `float32` tensor.
  public var tensor: Tensor { Tensor(value, shape: shape) }

  /// The number of values.
  public var count: Int { value.count }

  /// The single value of a one-element variable (a loss).
  public var scalar: Float {
    precondition(value.count == 1, "scalar of a variable with shape \(shape)")
    return value[0]
  }

  /// Computes the gradient of this scalar with respect to every variable it depends on that
  /// requires one, adding into their ``gradient``s (call ``Optimizer/zeroGradients()`` between steps).
  public func backward() {
    precondition(value.count == 1, "backward() starts from a scalar, not shape \(shape)")
    guard requiresGradient else { return }
    backward(seed: [1])
  }

  /// Back-propagates `seed` (∂loss/∂self, same layout as ``value``).
  public func backward(seed: [Float]) {
    precondition(seed.count == value.count, "seed has \(seed.count) values for shape \(shape)")
    accumulate(seed)
    for node in topologicalOrder().reversed() {
      guard let propagate = node.propagate, node.gradient != nil else { continue }
      propagate(node)
      // Interior gradients are not needed once passed on; parameters keep theirs.
      if !node.parents.isEmpty { node.gradient = nil }
    }
  }

  /// Every node reachable through parents, each after all of its parents.
  private func topologicalOrder() -> [Variable] {
    var order: [Variable] = []
    var visited = Set<ObjectIdentifier>()
    var stack: [(Variable, Bool)] = [(self, false)]
    while let item = stack.popLast() {
      let (node, expanded) = item
      if expanded {
        order.append(node)
        continue
      }
      guard visited.insert(ObjectIdentifier(node)).inserted else { continue }
      stack.append((node, true))
      for p in node.parents where p.requiresGradient && !visited.contains(ObjectIdentifier(p)) {
        stack.append((p, false))
      }
    }
    return order
  }

  /// Adds `delta` into ``gradient`` (allocating it as zeros first).
  func accumulate(_ delta: [Float]) {
    guard requiresGradient else { return }
    if gradient == nil {
      gradient = delta
    } else {
      gradient!.withUnsafeMutableBufferPointer { g in
        delta.withUnsafeBufferPointer { d in
          for i in 0..<g.count { g[i] += d[i] }
        }
      }
    }
  }

  /// Calls `body` with the gradient buffer (allocated as zeros if needed) for in-place accumulation.
  func accumulate(_ body: (UnsafeMutableBufferPointer<Float>) -> Void) {
    guard requiresGradient else { return }
    if gradient == nil { gradient = [Float](repeating: 0, count: value.count) }
    gradient!.withUnsafeMutableBufferPointer { body($0) }
  }
}

extension Variable: CustomStringConvertible {
  public var description: String {
    "Variable(shape: \(shape)\(requiresGradient ? ", requiresGradient" : ""))"
  }
}

/// Whether operations record the graph for ``Variable/backward()``.
public enum Gradients {
  @TaskLocal static var enabled = true

  /// True unless inside ``disabled(_:)``.
  public static var areEnabled: Bool { enabled }

  /// Runs `body` without recording any graph (inference, weight updates).
  public static func disabled<R>(_ body: () throws -> R) rethrows -> R {
    try $enabled.withValue(false, operation: body)
  }
}
