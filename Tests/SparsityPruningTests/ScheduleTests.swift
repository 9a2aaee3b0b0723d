import SparsityCore
import Testing

@testable import SparsityPruning

/// Schedules: PyTorch CubicSL / LambdaSL semantics (reference §1.5, §4.3 cases 11–12).
@Suite struct ScheduleTests {
  static func sparsifier(levels: [Double]) throws -> (Sparsifier, NamedTensors) {
    let model = NamedTensors(levels.indices.map { ("layer\($0).weight", randomMatrix(4, 8, seed: UInt64($0))) })
    var sparsifier = Sparsifier()
    try sparsifier.prepare(
      model, configurations: levels.enumerated().map { TensorConfiguration(tensor: "layer\($0.offset).weight", sparsityLevel: $0.element) })
    return (sparsifier, model)
  }

  @Test func cubicGoldenSequence() throws {
    var (sparsifier, _) = try Self.sparsifier(levels: [0.8, 0.4])
    let schedule = CubicSchedule(initialLevel: 0.1, initialStep: 3, stepInterval: 2, totalSteps: 5, initiallyZero: true)
    var scheduler = SparsityScheduler(sparsifier: &sparsifier, schedule: schedule)
    let expected: [[Double]] = [
      [0, 0], [0, 0], [0, 0], [0.1, 0.1], [0.2897, 0.1813], [0.4416, 0.2464], [0.5599, 0.2971], [0.6488, 0.3352],
      [0.7125, 0.3625], [0.7552, 0.3808], [0.7811, 0.3919], [0.7944, 0.3976], [0.7993, 0.3997], [0.8, 0.4], [0.8, 0.4],
    ]
    #expect(scheduler.lastStep == 0)
    for (t, row) in expected.enumerated() {
      if t > 0 { scheduler.step(&sparsifier) }
      #expect(scheduler.lastStep == t)
      for (g, value) in row.enumerated() {
        #expect(Swift.abs(sparsifier.groups[g].configuration.sparsityLevel - value) < 5e-5, "t=\(t) group \(g)")
      }
    }
    #expect(scheduler.targetLevels == [0.8, 0.4])
  }

  @Test func cubicBeforeStartIsInitialLevelUnlessInitiallyZero() {
    let cubic = CubicSchedule(initialLevel: 0.2, initialStep: 10, stepInterval: 1, totalSteps: 10)
    #expect(cubic.sparsityLevel(atStep: 3, target: 0.9) == 0.2)
    #expect(Swift.abs(cubic.sparsityLevel(atStep: 10, target: 0.9) - 0.2) < 1e-15)
    #expect(cubic.sparsityLevel(atStep: 20, target: 0.9) == 0.9)
    #expect(cubic.sparsityLevel(atStep: 99, target: 0.9) == 0.9)
    var zero = cubic
    zero.initiallyZero = true
    #expect(zero.sparsityLevel(atStep: 3, target: 0.9) == 0)
    // Halfway: s_f + (s_0 − s_f)·(1/2)³.
    #expect(Swift.abs(cubic.sparsityLevel(atStep: 15, target: 0.9) - (0.9 - 0.7 / 8)) < 1e-12)
  }

  @Test func lambdaScheduleHasNoClamp() throws {
    var (sparsifier, _) = try Self.sparsifier(levels: [0.5])
    var scheduler = SparsityScheduler(sparsifier: &sparsifier, schedule: LambdaSchedule { Double($0) * 10 })
    #expect(sparsifier.groups[0].configuration.sparsityLevel == 0)
    scheduler.step(&sparsifier)
    #expect(sparsifier.groups[0].configuration.sparsityLevel == 5)
    #expect(scheduler.lastLevels == [5])
  }

  @Test func perGroupSchedulesMustMatchGroupCount() throws {
    var (sparsifier, _) = try Self.sparsifier(levels: [0.5, 0.5])
    #expect(throws: PruningError.invalidOption(name: "schedules", rule: "Expected 2 lr_lambdas, but got 1")) {
      _ = try SparsityScheduler(sparsifier: &sparsifier, schedules: [LambdaSchedule { _ in 1 }])
    }
    let scheduler = try SparsityScheduler(
      sparsifier: &sparsifier, schedules: [LambdaSchedule { _ in 1 }, LambdaSchedule { _ in 0.5 }])
    #expect(scheduler.lastLevels == [0.5, 0.25])
  }

  @Test func schedulerReenablesMaskUpdates() throws {
    var (sparsifier, model) = try Self.sparsifier(levels: [0.5])
    sparsifier.isMaskUpdateEnabled = false
    var scheduler = SparsityScheduler(sparsifier: &sparsifier, schedule: CubicSchedule(stepInterval: 1, totalSteps: 4))
    #expect(sparsifier.isMaskUpdateEnabled)
    // A gradual ramp: masks grow sparser step by step and pruned weights stay pruned.
    var previous = 0.0
    for _ in 0..<6 {
      try sparsifier.step(model)
      let sparsity = try #require(sparsifier.state["layer0.weight"]).mask.sparsity
      #expect(sparsity >= previous)
      previous = sparsity
      scheduler.step(&sparsifier)
    }
    #expect(previous == 0.5)
    _ = model
  }
}
