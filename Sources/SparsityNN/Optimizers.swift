import Foundation

/// Updates parameters from their gradients.
public protocol Optimizer: AnyObject {
  /// The parameters updated, in a fixed order.
  var parameters: [Variable] { get }
  /// One update with the given learning rate; parameters without a gradient are skipped.
  func step(learningRate: Double)
}

extension Optimizer {
  /// Forgets every parameter's gradient (call before each backward pass).
  public func zeroGradients() {
    for p in parameters { p.gradient = nil }
  }
}

/// Stochastic gradient descent with momentum and (coupled) weight decay, as PyTorch `SGD`
/// with `dampening = 0`: `b ← μ·b + (g + λ·p)`, `p ← p − lr·b` (Nesterov: `p ← p − lr·(g + μ·b)`).
public final class SGD: Optimizer {
  public let parameters: [Variable]
  public let momentum: Double
  public let weightDecay: Double
  public let nesterov: Bool
  private var buffers: [[Float]?]

  public init(_ parameters: [Variable], momentum: Double = 0.9, weightDecay: Double = 0, nesterov: Bool = false) {
    self.parameters = parameters
    self.momentum = momentum
    self.weightDecay = weightDecay
    self.nesterov = nesterov
    buffers = Array(repeating: nil, count: parameters.count)
  }

  public func step(learningRate: Double) {
    let (lr, mu, wd) = (Float(learningRate), Float(momentum), Float(weightDecay))
    for (i, p) in parameters.enumerated() {
      guard let g = p.gradient else { continue }
      var b = buffers[i] ?? [Float](repeating: 0, count: p.count)
      let first = buffers[i] == nil
      var value = p.value
      p.value = []  // unshare, so the update happens in place
      value.withUnsafeMutableBufferPointer { v in
        b.withUnsafeMutableBufferPointer { b in
          for j in 0..<v.count {
            let gj = g[j] + wd * v[j]
            b[j] = first ? gj : mu * b[j] + gj
            v[j] -= lr * (nesterov ? gj + mu * b[j] : b[j])
          }
        }
      }
      p.value = value
      buffers[i] = b
    }
  }
}

/// Adam with decoupled weight decay, as PyTorch `AdamW`: `p ← p·(1 − lr·λ)`, then the
/// bias-corrected Adam step `p ← p − lr·m̂ / (√v̂ + ε)`.
public final class AdamW: Optimizer {
  public let parameters: [Variable]
  public let beta1: Double
  public let beta2: Double
  public let epsilon: Double
  public let weightDecay: Double
  private var moments: [(m: [Float], v: [Float])?]
  private var steps = 0

  public init(
    _ parameters: [Variable], beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-8, weightDecay: Double = 0.01
  ) {
    self.parameters = parameters
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
    self.weightDecay = weightDecay
    moments = Array(repeating: nil, count: parameters.count)
  }

  public func step(learningRate: Double) {
    steps += 1
    let (b1, b2) = (Float(beta1), Float(beta2))
    let correction1 = Float(1 - pow(beta1, Double(steps))), correction2 = Float(1 - pow(beta2, Double(steps)))
    let (lr, eps, decay) = (Float(learningRate), Float(epsilon), Float(1 - learningRate * weightDecay))
    for (i, p) in parameters.enumerated() {
      guard let g = p.gradient else { continue }
      var (m, v) = moments[i] ?? ([Float](repeating: 0, count: p.count), [Float](repeating: 0, count: p.count))
      moments[i] = nil
      var value = p.value
      p.value = []  // unshare, so the update happens in place
      value.withUnsafeMutableBufferPointer { w in
        m.withUnsafeMutableBufferPointer { m in
          v.withUnsafeMutableBufferPointer { v in
            g.withUnsafeBufferPointer { g in
              for j in 0..<w.count {
                m[j] = b1 * m[j] + (1 - b1) * g[j]
                v[j] = b2 * v[j] + (1 - b2) * g[j] * g[j]
                let update = (m[j] / correction1) / ((v[j] / correction2).squareRoot() + eps)
                w[j] = w[j] * decay - lr * update
              }
            }
          }
        }
      }
      p.value = value
      moments[i] = (m, v)
    }
  }
}

/// Linear warmup from 0 to `peak` over `warmupSteps`, then a cosine decay to `floor` at `totalSteps`.
public struct WarmupCosineSchedule: Sendable, Equatable {
  public var peak: Double
  public var warmupSteps: Int
  public var totalSteps: Int
  public var floor: Double

  public init(peak: Double, warmupSteps: Int, totalSteps: Int, floor: Double = 0) {
    precondition(warmupSteps >= 0 && totalSteps >= warmupSteps, "schedule needs 0 ≤ warmup ≤ total steps")
    self.peak = peak
    self.warmupSteps = warmupSteps
    self.totalSteps = totalSteps
    self.floor = floor
  }

  /// The learning rate of step `step` (0-based).
  public func learningRate(at step: Int) -> Double {
    if step < warmupSteps { return peak * Double(step + 1) / Double(warmupSteps) }
    let span = max(totalSteps - warmupSteps, 1)
    let progress = min(Double(step - warmupSteps) / Double(span), 1)
    return floor + (peak - floor) * 0.5 * (1 + cos(Double.pi * progress))
  }
}
