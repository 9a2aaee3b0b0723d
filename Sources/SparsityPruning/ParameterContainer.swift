import SparsityCore

/// A model seen as named tensors: what ``Sparsifier`` prunes.
///
/// Names follow PyTorch state-dict keys (`encoder.layer.0.attention.self.query.weight`), so a
/// safetensors file, a dictionary of tensors or (later) an NN module with named parameters can
/// all be pruned the same way: conform and expose the names, reads and writes.
///
/// ```swift
/// var model = NamedTensors([("fc1.weight", w1), ("fc1.bias", b1), ("fc2.weight", w2)])
/// var sparsifier = Sparsifier(defaults: PruningConfiguration(pattern: .twoFour))
/// try sparsifier.prepare(model)
/// ```
public protocol ParameterContainer {
  /// Every parameter's name, in a stable order.
  var parameterNames: [String] { get }
  /// The parameter named `name`, or `nil`.
  func parameter(named name: String) -> Tensor?
  /// Replaces the parameter named `name` (which exists) with `value` of the same shape.
  mutating func setParameter(named name: String, to value: Tensor)
}

/// An ordered list of named tensors: the simplest ``ParameterContainer``.
public struct NamedTensors: ParameterContainer, Sendable {
  /// The tensors in order.
  public private(set) var entries: [(name: String, tensor: Tensor)]
  private var index: [String: Int]

  /// Wraps `entries`.
  ///
  /// - Precondition: names are unique.
  public init(_ entries: [(name: String, tensor: Tensor)] = []) {
    self.entries = entries
    var index: [String: Int] = [:]
    for (i, entry) in entries.enumerated() {
      precondition(index.updateValue(i, forKey: entry.name) == nil, "duplicate tensor name '\(entry.name)'")
    }
    self.index = index
  }

  public var parameterNames: [String] { entries.map(\.name) }

  public func parameter(named name: String) -> Tensor? { index[name].map { entries[$0].tensor } }

  public mutating func setParameter(named name: String, to value: Tensor) {
    guard let i = index[name] else { preconditionFailure("there is no tensor '\(name)'") }
    precondition(entries[i].tensor.shape == value.shape, "tensor '\(name)' has shape \(entries[i].tensor.shape), not \(value.shape)")
    entries[i].tensor = value
  }

  /// Appends a tensor, or replaces the one with the same name (any shape).
  public mutating func insert(_ tensor: Tensor, named name: String) {
    if let i = index[name] {
      entries[i].tensor = tensor
    } else {
      index[name] = entries.count
      entries.append((name, tensor))
    }
  }
}

extension Dictionary: ParameterContainer where Key == String, Value == Tensor {
  /// The keys in ascending order.
  public var parameterNames: [String] { keys.sorted() }

  public func parameter(named name: String) -> Tensor? { self[name] }

  public mutating func setParameter(named name: String, to value: Tensor) {
    precondition(self[name]?.shape == value.shape, "tensor '\(name)' is missing or has another shape than \(value.shape)")
    self[name] = value
  }
}
