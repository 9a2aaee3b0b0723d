import SparsityCore

/// A layer or a model: parameters, sub-modules, and a training flag.
///
/// Subclasses list their own parameters and children under PyTorch state-dict names; the
/// dotted names of every parameter follow (`blocks.0.attention.query.weight`), so weights load
/// from and save to safetensors files written by PyTorch for the same architecture.
open class Module {
  /// Whether the module is training (dropout active). Set for a whole tree with ``train(_:)``.
  public private(set) var isTraining = true

  public init() {}

  /// This module's own parameters by local name (`weight`, `bias`).
  open var ownParameters: [(name: String, parameter: Variable)] { [] }

  /// The direct sub-modules by local name (`fc1`, `blocks.0`).
  open var children: [(name: String, module: Module)] { [] }

  /// Every parameter of the tree under its dotted name, children in order.
  public func namedParameters() -> [(name: String, parameter: Variable)] {
    var result = ownParameters
    for (prefix, child) in children {
      result += child.namedParameters().map { (prefix + "." + $0.name, $0.parameter) }
    }
    return result
  }

  /// Every module of the tree under its dotted name (`""` for this one), parents first.
  public func namedModules() -> [(name: String, module: Module)] {
    var result: [(name: String, module: Module)] = [("", self)]
    for (prefix, child) in children {
      result += child.namedModules().map { ($0.name.isEmpty ? prefix : prefix + "." + $0.name, $0.module) }
    }
    return result
  }

  /// The parameters (in ``namedParameters()`` order).
  public func parameters() -> [Variable] { namedParameters().map(\.parameter) }

  /// The number of parameter values.
  public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

  /// Puts `module` in place of the direct child `name` (``children`` lists it there afterwards).
  /// Modules whose children can be swapped — the layers holding `LinearLayer`s — override this;
  /// the default refuses.
  open func replaceChild(_ name: String, with module: Module) {
    preconditionFailure("\(type(of: self)) cannot replace its child '\(name)'")
  }

  /// `module` as the type of the child it replaces (a programmer error otherwise).
  public static func checked<M>(_ module: Module, replacing old: M) -> M {
    guard let typed = module as? M else { preconditionFailure("\(type(of: module)) cannot replace a \(M.self)") }
    return typed
  }

  /// Replaces the module `old` wherever it is a child in this tree by `new`; returns whether it was found.
  @discardableResult
  public func replace(_ old: Module, with new: Module) -> Bool {
    for (_, parent) in namedModules() {
      for (name, child) in parent.children where child === old {
        parent.replaceChild(name, with: new)
        return true
      }
    }
    return false
  }

  /// Sets training mode (`true`) or evaluation mode (`false`) on the whole tree.
  public func train(_ on: Bool = true) {
    for (_, module) in namedModules() { module.isTraining = on }
  }
}

// MARK: - State dictionaries

/// Why a state dictionary does not fit a model.
public enum StateDictError: Error, Equatable, CustomStringConvertible {
  case missingTensor(String)
  case unexpectedTensor(String)
  case shapeMismatch(tensor: String, expected: [Int], found: [Int])
  case unsupportedType(tensor: String, dtype: DType)

  public var description: String {
    switch self {
    case .missingTensor(let n): "the model needs tensor '\(n)', which the state dictionary lacks"
    case .unexpectedTensor(let n): "tensor '\(n)' is not a parameter of the model (strict loading)"
    case let .shapeMismatch(n, e, f): "tensor '\(n)' has shape \(f), the model's parameter has \(e)"
    case let .unsupportedType(n, d): "tensor '\(n)' has dtype \(d); parameters load from floating-point tensors"
    }
  }
}

extension Module {
  /// The parameters as `float32` tensors under their dotted names.
  public func stateDict() -> [(name: String, tensor: Tensor)] {
    namedParameters().map { ($0.name, $0.parameter.tensor) }
  }

  /// Copies values from `tensors` (any floating-point dtype, converted) into the parameters.
  ///
  /// - Parameter strict: whether a tensor that is not a parameter is an error (as PyTorch's
  ///   `load_state_dict(strict=True)`); when false such tensors are ignored.
  /// - Throws: ``StateDictError`` naming the first missing, unexpected, mis-shaped or
  ///   non-float tensor; the parameters are unchanged then.
  public func load(_ tensors: [String: Tensor], strict: Bool = true) throws(StateDictError) {
    let parameters = namedParameters()
    let names = Set(parameters.map(\.name))
    if strict, let extra = tensors.keys.sorted().first(where: { !names.contains($0) }) {
      throw .unexpectedTensor(extra)
    }
    var values: [[Float]] = []
    for (name, parameter) in parameters {
      guard let t = tensors[name] else { throw .missingTensor(name) }
      guard t.shape == parameter.shape else { throw .shapeMismatch(tensor: name, expected: parameter.shape, found: t.shape) }
      guard t.dtype.isFloatingPoint, t.dtype.isNumeric else { throw .unsupportedType(tensor: name, dtype: t.dtype) }
      values.append(t.converted(to: .float32).floatValues)
    }
    for ((_, parameter), v) in zip(parameters, values) { parameter.value = v }
  }
}
