import Foundation
import SparsityCore
import SparsityKernels
import SparsityNN

/// One training step of a transformer MLP block (`fc2(relu(fc1(x))²)`, xFormers' squared-ReLU
/// block) at ViT shapes, dense against 2:4 sparse training, timed in alternating rounds
/// (``InterleavedTiming``): `sparsity bench --training` as API.
///
/// A step is the forward pass over `tokens × dimension` inputs, a mean-squared-error loss, the
/// backward pass into both layers' weights and biases and into the input (as for any block past
/// a network's first), and an SGD update (momentum 0.9) — the optimizer step included, as a
/// training loop runs it. Variants:
/// - `dense`: both Linear layers dense;
/// - `2:4 weights`: both layers ``SemiSparseLinear`` (weights made 2:4 both ways every step,
///   `x·W̃ᵀ` and `g·W̃` on the 2:4 kernels, `gᵀx` dense, straight-through);
/// - `2:4 activations`: the squared-ReLU activations made 2:4 before `fc2`
///   (``sparseActivationMLP(_:fc1:fc2:algorithm:gradient:)``, masked gradient: `fc2`'s forward
///   and weight gradient and `fc1`'s weight and input gradients on the 2:4 kernels).
public enum TrainingStepBenchmark {
  /// A block shape and token count.
  public struct Case: Sendable, Hashable {
    public var dimension: Int
    public var hidden: Int
    public var tokens: Int
    public init(dimension: Int, hidden: Int, tokens: Int) {
      self.dimension = dimension
      self.hidden = hidden
      self.tokens = tokens
    }
    /// `dimension↔hidden`.
    public var shape: String { "\(dimension)↔\(hidden)" }
  }

  public enum Variant: String, CaseIterable, Sendable, Codable {
    case dense
    case weights = "2:4 weights"
    case activations = "2:4 activations"
  }

  /// One variant's step time on one case.
  public struct Record: Codable, Sendable {
    public var dimension: Int
    public var hidden: Int
    public var tokens: Int
    public var variant: Variant
    /// Median seconds per step.
    public var seconds: Double
    /// The dense step's median over this one's (same case, same run).
    public var speedup: Double
  }

  /// ViT-B (768↔3072) and ViT-L (1024↔4096) MLP blocks at 4,096 and 16,384 tokens.
  public static let defaultCases: [Case] = [(768, 3072), (1024, 4096)].flatMap { d, h in
    [4096, 16384].map { Case(dimension: d, hidden: h, tokens: $0) }
  }

  /// Times every variant on every case (`rounds` alternating rounds after one warm-up step each).
  public static func run(
    cases: [Case] = defaultCases, variants: [Variant] = Variant.allCases, rounds: Int = 3, progress: (String) -> Void = { _ in }
  ) -> [Record] {
    var records: [Record] = []
    for c in cases {
      progress("training step \(c.shape), \(c.tokens) tokens: \(variants.map(\.rawValue).joined(separator: ", "))")
      let steps = variants.map { step(for: $0, case: c) }
      let timing = InterleavedTiming.measure(steps, warmups: 1, rounds: rounds)
      let dense = variants.firstIndex(of: .dense).map { timing.median($0) }
      for (i, variant) in variants.enumerated() {
        let seconds = timing.median(i)
        records.append(
          Record(
            dimension: c.dimension, hidden: c.hidden, tokens: c.tokens, variant: variant, seconds: seconds,
            speedup: dense.map { $0 / seconds } ?? .nan))
      }
    }
    return records
  }

  /// The sparsifier's speed on one matrix (``Sparse24/sparsifyBothWays(_:algorithm:name:)``).
  public struct SparsifierRecord: Codable, Sendable {
    public var rows: Int
    public var columns: Int
    /// Median seconds per call (fresh output buffers, as a training step allocates them).
    public var seconds: Double
    /// Bytes read (`A`) and written (both packed forms and the mask) per second, in GB/s.
    public var gigabytesPerSecond: Double
    /// The same pass into output buffers written before: the kernel's own streaming, without
    /// the system's first-touch page faults.
    public var kernelSeconds: Double
    public var kernelGigabytesPerSecond: Double
    /// This machine's memory bandwidth in the same run for the same kind of traffic: the matrix
    /// copied with non-temporal stores, bytes read and written per second (GB/s).
    public var copyGigabytesPerSecond: Double
    /// The kernel's bandwidth as a fraction of the copy's.
    public var fractionOfCopy: Double { kernelGigabytesPerSecond / copyGigabytesPerSecond }
  }

  /// Weights of the ViT-B/L blocks (3072×768, 4096×1024) and activations of 4,096 ViT-L tokens
  /// (4096×4096) and of 16,384 (16384×4096): the matrices a step makes 2:4.
  public static let sparsifierShapes = [(3072, 768), (4096, 1024), (4096, 4096), (16384, 4096)]

  /// Calls per matrix of ``sparsifierThroughput(shapes:repetitions:workers:)`` by default.
  public static let sparsifierRepetitions = 9

  /// Times making each `rows × columns` matrix 2:4 both ways (transposable greedy by magnitude),
  /// median of `repetitions`, alternating with a streaming copy of the matrix (the memory
  /// bandwidth the kernel is held to).
  public static func sparsifierThroughput(
    shapes: [(Int, Int)] = sparsifierShapes, repetitions: Int = sparsifierRepetitions, workers: Int = Parallel.workerCount
  ) throws -> [SparsifierRecord] {
    try shapes.map { rows, columns in
      let (call, kernel, copy) = try Sparse24.measureThroughput(rows: rows, columns: columns, workers: workers, repetitions: repetitions)
      return SparsifierRecord(
        rows: rows, columns: columns, seconds: call.seconds, gigabytesPerSecond: call.gigabytesPerSecond,
        kernelSeconds: kernel.seconds, kernelGigabytesPerSecond: kernel.gigabytesPerSecond,
        copyGigabytesPerSecond: copy.gigabytesPerSecond)
    }
  }

  /// A closure running one training step of a fresh block in `variant` (its own weights, inputs
  /// and optimizer, made once).
  static func step(for variant: Variant, case c: Case) -> () -> Void {
    var generator = SeededGenerator(seed: 7)
    let block = MLP(c.dimension, hidden: c.hidden, activation: .squaredReLU, generator: &generator)
    switch variant {
    case .dense: break
    case .weights: swapLinearWithSemiSparseLinear(block)
    case .activations: block.sparseActivations = .masked
    }
    // The input takes a gradient, as every block past a network's first does (and as in
    // xFormers' `benchmark_sp24.py`): the backward runs all six products.
    let x = Variable(randomNormal: [c.tokens, c.dimension], standardDeviation: 1, seed: 8, requiresGradient: true)
    let target = [Float](repeating: 0, count: c.tokens * c.dimension)
    let rows = [Int32](repeating: 1, count: c.tokens)
    let optimizer = SGD(block.parameters())
    return {
      let loss = maskedMeanSquaredError(block(x), target: target, rowMask: rows)
      optimizer.zeroGradients()
      x.gradient = nil
      loss.backward()
      optimizer.step(learningRate: 1e-4)
    }
  }
}
