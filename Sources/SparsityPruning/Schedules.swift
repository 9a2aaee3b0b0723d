/// How a group's sparsity level evolves over scheduler steps, for gradual pruning during
/// training.
public protocol SparsitySchedule: Sendable {
  /// The level at scheduler step `step` (PyTorch's `last_epoch`) for a group whose configured,
  /// final level is `target` (PyTorch's `base_sl`).
  func sparsityLevel(atStep step: Int, target: Double) -> Double
}

/// The cubic schedule of Zhu & Gupta, "To prune, or not to prune" (2017), with PyTorch
/// `CubicSL`'s exact semantics.
///
/// ```
/// s(t) = clamp(s_f + (s_0 − s_f) · (1 − (t − t_0) / (Δt · n))³, s_0, s_f)
/// ```
/// with `clamp(x, lo, hi) = max(lo, min(hi, x))`, and 0 before `t_0` when `initiallyZero`.
/// `Δt` only scales the horizon (no quantization of steps, despite PyTorch's docstring): the
/// target is reached at `t = t_0 + Δt · n`.
///
/// ```swift
/// let cubic = CubicSchedule(initialLevel: 0.1, initialStep: 3, stepInterval: 2, totalSteps: 5, initiallyZero: true)
/// cubic.sparsityLevel(atStep: 4, target: 0.8)   // 0.2897…
/// ```
public struct CubicSchedule: SparsitySchedule, Hashable {
  /// `s_0` (`init_sl`, default 0).
  public var initialLevel: Double
  /// `t_0` (`init_t`, default 0).
  public var initialStep: Int
  /// `Δt` (`delta_t`, default 10).
  public var stepInterval: Int
  /// `n` (`total_t`, default 100).
  public var totalSteps: Int
  /// Level 0 (instead of `s_0`) before `t_0` (default false).
  public var initiallyZero: Bool

  /// PyTorch `CubicSL`'s defaults: `s_0 = 0`, `t_0 = 0`, `Δt = 10`, `n = 100`.
  public init(
    initialLevel: Double = 0, initialStep: Int = 0, stepInterval: Int = 10, totalSteps: Int = 100,
    initiallyZero: Bool = false
  ) {
    self.initialLevel = initialLevel
    self.initialStep = initialStep
    self.stepInterval = stepInterval
    self.totalSteps = totalSteps
    self.initiallyZero = initiallyZero
  }

  public func sparsityLevel(atStep t: Int, target: Double) -> Double {
    if initiallyZero && t < initialStep { return 0 }
    let progress = 1.0 - Double(t - initialStep) / Double(stepInterval * totalSteps)
    let level = target + (initialLevel - target) * progress * progress * progress
    return Swift.max(initialLevel, Swift.min(target, level))
  }
}

/// `target · factor(step)`, PyTorch `LambdaSL`'s semantics: no clamping, so a factor above 1
/// gives a level above the target.
///
/// ```swift
/// let ramp = LambdaSchedule { step in Double(step) / 100 }
/// ```
public struct LambdaSchedule: SparsitySchedule {
  /// The multiplicative factor per step.
  public var factor: @Sendable (Int) -> Double

  /// A schedule whose level is `target · factor(step)`.
  public init(_ factor: @escaping @Sendable (Int) -> Double) { self.factor = factor }

  public func sparsityLevel(atStep step: Int, target: Double) -> Double { target * factor(step) }
}

/// Drives the sparsity levels of a ``Sparsifier``'s groups with schedules, as PyTorch's
/// `BaseScheduler` does.
///
/// ```swift
/// var scheduler = try SparsityScheduler(sparsifier: &sparsifier, schedule: CubicSchedule(totalSteps: 10))
/// for epoch in 0..<20 {
///   // … train one epoch with sparsifier.currentWeight(named:in:) …
///   try sparsifier.step(model)
///   scheduler.step(&sparsifier)
/// }
/// ```
///
/// Creating a scheduler records every group's configured level as its target (`base_sl`) and
/// takes the first step, so ``lastStep`` is 0 and the groups hold the step-0 levels, exactly
/// as PyTorch's constructor does. Each ``step(_:)`` advances ``lastStep``, writes the new
/// levels into the groups and re-enables mask updates. (PyTorch's warning about calling the
/// scheduler before the sparsifier has no counterpart.)
public struct SparsityScheduler: Sendable {
  /// The targets (`base_sl`), one per group.
  public let targetLevels: [Double]
  /// The last step taken (`last_epoch`).
  public private(set) var lastStep: Int = -1
  /// The levels set by the last step (`get_last_sl()`).
  public private(set) var lastLevels: [Double] = []
  let schedules: [any SparsitySchedule]

  /// One schedule for every group.
  public init(sparsifier: inout Sparsifier, schedule: some SparsitySchedule) {
    self.targetLevels = sparsifier.groups.map(\.configuration.sparsityLevel)
    self.schedules = Array(repeating: schedule, count: targetLevels.count)
    step(&sparsifier)
  }

  /// One schedule per group, in group order.
  ///
  /// - Throws: ``PruningError/invalidOption(name:rule:)`` when the counts differ (PyTorch:
  ///   "Expected {n} lr_lambdas, but got {m}").
  public init(sparsifier: inout Sparsifier, schedules: [any SparsitySchedule]) throws(PruningError) {
    guard schedules.count == sparsifier.groups.count else {
      throw .invalidOption(name: "schedules", rule: "Expected \(sparsifier.groups.count) lr_lambdas, but got \(schedules.count)")
    }
    self.targetLevels = sparsifier.groups.map(\.configuration.sparsityLevel)
    self.schedules = schedules
    step(&sparsifier)
  }

  /// Advances one step and sets every group's level.
  ///
  /// - Precondition: `sparsifier` has the groups this scheduler was created with.
  public mutating func step(_ sparsifier: inout Sparsifier) {
    precondition(sparsifier.groups.count == targetLevels.count, "the sparsifier's groups changed since the scheduler was created")
    lastStep += 1
    lastLevels = zip(schedules, targetLevels).map { $0.sparsityLevel(atStep: lastStep, target: $1) }
    for i in sparsifier.groups.indices { sparsifier.groups[i].configuration.sparsityLevel = lastLevels[i] }
    sparsifier.isMaskUpdateEnabled = true
  }
}
