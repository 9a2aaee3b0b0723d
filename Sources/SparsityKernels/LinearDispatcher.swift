import Foundation
import SparsityCore
import Synchronization

/// Picks the fastest kernel for a weight and a token count by timing the candidates once
/// (LIBXSMM's plan-time autotuning).
///
/// A weight runs the kernels of its own packed form (``LinearWeight/ownKernels``): a sparse
/// weight holds no dense copy, so a sparse model takes fewer bytes than the dense one. With
/// ``denseFallback`` on (speed over memory; `SPARSITY_DENSE_FALLBACK=1` for ``shared``) the
/// dense kernels are candidates too, favoured by 10%: a sparse kernel is then chosen only when
/// it is at least ``denseBias`` times faster, and a sparse weight that loses keeps a dense copy
/// for the token counts where dense won.
///
/// Decisions are keyed by format, `out × in`, density (to 1%), and a token bucket (powers of
/// two: 1, 2, 4, 8, …), kept in memory and, for ``shared``, in a JSON file per machine:
/// `$SPARSITY_CACHE_DIR` or `$XDG_CACHE_HOME/swift-sparsity` or `~/.cache/swift-sparsity`,
/// named `autotune-<cpu>-<isa>-t<threads>.json`. Delete the file to re-tune; set
/// `SPARSITY_AUTOTUNE=0` to skip timing and use the built-in rules (``heuristicKernel(for:tokens:)``).
///
/// ```swift
/// let dispatcher = LinearDispatcher(cacheFile: nil)      // memory only
/// let kernel = dispatcher.kernel(for: weight, tokens: 128)
/// ```
public final class LinearDispatcher: Sendable {
  /// The dispatcher ``LinearWeight/apply(x:bias:)`` uses.
  public static let shared: LinearDispatcher = {
    let env = ProcessInfo.processInfo.environment
    let off = env["SPARSITY_AUTOTUNE"].map { $0 == "0" || $0.lowercased() == "off" } ?? false
    return LinearDispatcher(
      cacheFile: off ? nil : defaultCacheFile(), measures: !off, denseFallback: env["SPARSITY_DENSE_FALLBACK"] == "1")
  }()

  /// Whether a sparse weight may run the dense kernels on a dense copy of itself (made on
  /// first use, kept while dense wins) when they are faster.
  public let denseFallback: Bool

  /// A sparse kernel must beat the best dense kernel by this factor to be chosen.
  public let denseBias: Double
  /// Where decisions are persisted, or `nil`.
  public let cacheFile: String?
  /// Whether unknown cases are timed (otherwise the rules decide).
  public let measures: Bool
  private let state = Mutex<[String: LinearKernel]>([:])
  private let loaded = Mutex<Bool>(false)

  /// Creates a dispatcher.
  ///
  /// - Parameters:
  ///   - cacheFile: a JSON file to read decisions from and write them to, or `nil`.
  ///   - measures: time the candidates (`true`) or use the built-in rules.
  ///   - denseFallback: let sparse weights run dense kernels on a dense copy where faster.
  ///   - denseBias: with `denseFallback`, how much faster a sparse kernel must be than dense to be chosen (1.1).
  public init(cacheFile: String?, measures: Bool = true, denseFallback: Bool = false, denseBias: Double = 1.1) {
    self.denseFallback = denseFallback
    self.cacheFile = cacheFile
    self.measures = measures
    self.denseBias = denseBias
  }

  /// The default cache file for this machine and build.
  public static func defaultCacheFile() -> String {
    let env = ProcessInfo.processInfo.environment
    let dir: String
    if let d = env["SPARSITY_CACHE_DIR"], !d.isEmpty {
      dir = d
    } else if let x = env["XDG_CACHE_HOME"], !x.isEmpty {
      dir = x + "/swift-sparsity"
    } else {
      dir = (env["HOME"] ?? NSTemporaryDirectory()) + "/.cache/swift-sparsity"
    }
    let cpu = CPUFeatures.host.brand.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "-" }
    let name = String(cpu).split(separator: "-").joined(separator: "-")
    return "\(dir)/autotune-\(name)-\(CPUFeatures.kernelISA)-t\(Parallel.workerCount).json"
  }

  /// The token bucket of `m`: the smallest power of two ≥ m.
  public static func tokenBucket(_ m: Int) -> Int {
    var b = 1
    while b < m { b <<= 1 }
    return b
  }

  /// The cache key of a weight and token count.
  public func key(for weight: LinearWeight, tokens m: Int) -> String {
    let density = Int((weight.density * 100).rounded())
    let own = weight.form.isSparse && !denseFallback ? "|own" : ""
    return "\(weight.form)|\(weight.outFeatures)x\(weight.inFeatures)|d\(density)|m\(Self.tokenBucket(m))\(own)"
  }

  /// The kernels this dispatcher considers for `weight` at `tokens` rows.
  public func candidates(for weight: LinearWeight, tokens m: Int) -> [LinearKernel] {
    weight.candidateKernels(tokens: m).filter { denseFallback || !weight.form.isSparse || !$0.isDense }
  }

  /// The decisions made or loaded so far, by key.
  public var decisions: [String: LinearKernel] { loadIfNeeded(); return state.withLock { $0 } }

  /// The kernel to run `weight` on `tokens` rows: cached, or timed now (or, without timing,
  /// the rules).
  public func kernel(for weight: LinearWeight, tokens m: Int) -> LinearKernel {
    let candidates = candidates(for: weight, tokens: m)
    if candidates.count == 1 { return candidates[0] }
    loadIfNeeded()
    let key = key(for: weight, tokens: m)
    if let known = state.withLock({ $0[key] }), candidates.contains(known) { return known }
    guard measures else { return Self.heuristicKernel(for: weight, tokens: m, denseFallback: denseFallback) }
    let choice = tune(weight, tokens: m, candidates: candidates)
    state.withLock { $0[key] = choice }
    if !choice.isDense && weight.form.isSparse { weight.releaseDenseFallback() }
    save()
    return choice
  }

  /// Times every candidate for `weight` at the bucket's token count (capped at 2048) on
  /// random activations: one warm-up each, then rounds that run every candidate once in turn
  /// (at least five rounds, and 50 ms), keeping each one's best time — interleaved, so a
  /// neighbour's load on a shared machine slows all candidates alike instead of whichever ran
  /// while it lasted. Returns the fastest kernel, dense preferred unless beaten by ``denseBias``.
  public func tune(_ weight: LinearWeight, tokens m: Int, candidates: [LinearKernel]) -> LinearKernel {
    let rows = Swift.max(1, Swift.min(Self.tokenBucket(m), 2048))
    var rng = SeededGenerator(seed: 0x5EED)
    let x = Tensor.randomUniform([rows, weight.inFeatures], in: -1...1, using: &rng)
    let timing = InterleavedTiming.measure(
      candidates.map { kernel in { _ = weight.apply(x: x, kernel: kernel) } }, rounds: 5, minimumSeconds: 0.05)
    let times = candidates.indices.map(timing.best)
    // The weight's own kernels against the dense fallback's (when a sparse form has one).
    var bestOwn = (candidates[0], Double.infinity)
    var bestFallback = (candidates[0], Double.infinity)
    for (kernel, t) in zip(candidates, times) {
      if weight.ownKernels.contains(kernel) {
        if t < bestOwn.1 { bestOwn = (kernel, t) }
      } else if t < bestFallback.1 {
        bestFallback = (kernel, t)
      }
    }
    return bestOwn.1 * denseBias <= bestFallback.1 ? bestOwn.0 : bestFallback.0
  }

  /// The rules used without timing: the one-row kernels for M ≤ 2; a weight's own kernels,
  /// except with `denseFallback` where dense usually wins on this class of CPU (2:4 never, BSR
  /// at density > 0.7, CSR at density > 0.3).
  public static func heuristicKernel(for weight: LinearWeight, tokens m: Int, denseFallback: Bool = false) -> LinearKernel {
    let small = m <= 2
    let own = weight.ownKernels
    let maximumDensity = own.contains(.semiStructuredPanel) ? 1 : own.contains(.bsr) ? 0.7 : 0.3
    let kernels = !denseFallback || weight.density <= maximumDensity ? own : [.denseGEMM, .denseGEMV]
    return kernels.first { $0.isRowWise == small } ?? kernels[0]
  }

  // MARK: Persistence

  private struct CacheFile: Codable {
    var cpu: String
    var isa: String
    var threads: Int
    var decisions: [String: String]
  }

  private func loadIfNeeded() {
    let first = loaded.withLock { done in
      defer { done = true }
      return !done
    }
    guard first, let cacheFile, let data = FileManager.default.contents(atPath: cacheFile),
      let file = try? JSONDecoder().decode(CacheFile.self, from: data),
      file.cpu == CPUFeatures.host.brand, file.isa == CPUFeatures.kernelISA
    else { return }
    state.withLock { state in
      for (key, name) in file.decisions {
        if let k = LinearKernel(name: name), state[key] == nil { state[key] = k }
      }
    }
  }

  private func save() {
    guard let cacheFile else { return }
    let snapshot = state.withLock { $0 }
    let file = CacheFile(
      cpu: CPUFeatures.host.brand, isa: CPUFeatures.kernelISA, threads: Parallel.workerCount,
      decisions: snapshot.mapValues(\.name))
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    guard let data = try? encoder.encode(file) else { return }
    let url = URL(fileURLWithPath: cacheFile)
    // Best effort: a read-only home must not break inference.
    try? FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
    try? data.write(to: url, options: .atomic)
  }
}
