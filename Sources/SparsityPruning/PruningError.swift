import SparsityCore
import SparsityFormats

/// Bad input to a pruning step: an option out of range, a tensor that does not fit a method, or
/// calibration data that does not match its weight.
///
/// Every case names the tensor (when there is one) and the rule broken, so the message alone
/// says what to fix. Texts that reproduce PyTorch's `WeightNormSparsifier` errors are kept word
/// for word (``zerosPerBlockTooLarge``, ``zerosPerBlockNegative``, ``unsupportedNorm(_:)``).
public enum PruningError: Error, Equatable, Sendable, CustomStringConvertible {
  /// `zeros_per_block` is larger than the block (PyTorch's `ValueError` text).
  case zerosPerBlockTooLarge
  /// `zeros_per_block` is negative (PyTorch's `ValueError` text).
  case zerosPerBlockNegative
  /// A norm other than L1 or L2 (PyTorch's `NotImplementedError` text).
  case unsupportedNorm(Int)
  /// A sparsity (or sparsity level) outside its range or not a number.
  case invalidSparsity(tensor: String?, value: Double, rule: String)
  /// An option that is out of range or does not fit the others.
  case invalidOption(name: String, rule: String)
  /// The tensor cannot be pruned this way (rank, dtype, shape).
  case unsupportedTensor(tensor: String, shape: [Int], dtype: DType, rule: String)
  /// The method cannot produce this pattern.
  case unsupportedPattern(tensor: String?, method: String, pattern: SparsityPattern, rule: String)
  /// A tensor holds NaN or infinity, which has no rank.
  case nonFiniteValue(tensor: String, index: Int)
  /// A method that needs calibration inputs got none for this tensor.
  case missingCalibration(tensor: String, expectedName: String)
  /// Calibration inputs whose shape does not match the weight.
  case calibrationShape(tensor: String, inputShape: [Int], weightShape: [Int], rule: String)
  /// A tensor named in a configuration or a state is not in the model.
  case unknownTensor(String)
  /// A tensor was configured twice.
  case duplicateTensor(String)
  /// SparseGPT's Hessian stayed not positive definite even after raising the dampening.
  case notPositiveDefinite(tensor: String, dampening: Double)
  /// A saved sparsifier state that cannot be read.
  case invalidState(String)

  /// The one-line message.
  public var description: String {
    switch self {
    case .zerosPerBlockTooLarge:
      return "Number of zeros per block cannot be more than the total number of elements in that block."
    case .zerosPerBlockNegative:
      return "Number of zeros per block should be positive."
    case let .unsupportedNorm(p):
      return "L-\(p) is not yet implemented."
    case let .invalidSparsity(tensor, value, rule):
      return "\(tensor.map { "tensor '\($0)': " } ?? "")sparsity \(value) is invalid: \(rule)"
    case let .invalidOption(name, rule):
      return "option \(name): \(rule)"
    case let .unsupportedTensor(tensor, shape, dtype, rule):
      return "tensor '\(tensor)' (\(dtype) \(shape)) cannot be pruned: \(rule)"
    case let .unsupportedPattern(tensor, method, pattern, rule):
      return "\(tensor.map { "tensor '\($0)': " } ?? "")\(method) cannot prune to \(pattern): \(rule)"
    case let .nonFiniteValue(tensor, index):
      return "tensor '\(tensor)' holds NaN or infinity at flat index \(index); scores need finite weights"
    case let .missingCalibration(tensor, expectedName):
      return "tensor '\(tensor)' needs calibration inputs, but there is no tensor '\(expectedName)'"
    case let .calibrationShape(tensor, inputShape, weightShape, rule):
      return "calibration inputs of '\(tensor)' have shape \(inputShape), weight \(weightShape): \(rule)"
    case let .unknownTensor(name):
      return "there is no tensor '\(name)' in the model"
    case let .duplicateTensor(name):
      return "tensor '\(name)' is configured more than once"
    case let .notPositiveDefinite(tensor, dampening):
      return "tensor '\(tensor)': the calibration Hessian is not positive definite even with dampening \(dampening)"
    case let .invalidState(detail):
      return "invalid sparsifier state: \(detail)"
    }
  }
}
