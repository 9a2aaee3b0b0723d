import Dispatch

/// Times several bodies in alternating rounds — A, B, C, then C, B, A, … — so that a busy,
/// shared machine (a neighbour on the L3, frequency changes) slows them alike and their ratio
/// stays meaningful. The one A/B timing helper of the package: the dispatcher's autotuning,
/// `sparsity bench`, the model evaluations and the digits recipe all use it.
///
/// ```swift
/// let t = InterleavedTiming.measure([{ dense() }, { sparse() }], rounds: 5)
/// let speedup = t.median(0) / t.median(1)
/// ```
public struct InterleavedTiming: Sendable {
  /// Seconds of every timed run, per body, in run order.
  public var seconds: [[Double]]

  /// The median of body `i`'s runs.
  public func median(_ i: Int) -> Double {
    let s = seconds[i].sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
  }

  /// The fastest of body `i`'s runs.
  public func best(_ i: Int) -> Double { seconds[i].min() ?? .nan }

  /// Runs every body `warmups` times untimed, then timed rounds that run each body once
  /// (alternating the order every round): at least `rounds`, and more — up to `maximumRounds` —
  /// while the timed total is under `minimumSeconds`.
  ///
  /// - Parameter groups: bodies with the same group share a working set (a weight); a body
  ///   whose group differs from the one timed just before runs once untimed first, so every
  ///   timing sees its own data in cache rather than the previous body's. `nil`: no re-warming.
  public static func measure(
    _ bodies: [() -> Void], warmups: Int = 1, rounds: Int = 5, minimumSeconds: Double = 0, maximumRounds: Int = 100,
    groups: [Int]? = nil
  ) -> InterleavedTiming {
    precondition(groups == nil || groups!.count == bodies.count, "one group per body")
    for body in bodies {
      for _ in 0..<warmups { body() }
    }
    var seconds = [[Double]](repeating: [], count: bodies.count)
    var total = 0.0
    var round = 0
    var last = groups?.last
    while round < rounds || (total < minimumSeconds && round < maximumRounds) {
      let order = round % 2 == 0 ? Array(bodies.indices) : bodies.indices.reversed()
      for i in order {
        if let groups {
          if groups[i] != last { bodies[i]() }
          last = groups[i]
        }
        let t0 = DispatchTime.now().uptimeNanoseconds
        bodies[i]()
        let t = Double(DispatchTime.now().uptimeNanoseconds - t0) * 1e-9
        seconds[i].append(t)
        total += t
      }
      round += 1
    }
    return InterleavedTiming(seconds: seconds)
  }
}
