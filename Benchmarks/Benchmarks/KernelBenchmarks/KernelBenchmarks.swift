import Benchmark
import Sparsity

// A few kernels on the ViT-L fc1 shape (out 4096, in 1024), for regression tracking: dense
// GEMM/GEMV, 2:4, BSR 32×32 at 90% and CSR at 90%, at M = 1 and M = 128. Throughput is in
// layer calls; compare runs with `benchmark baseline check`. The side-by-side report with
// speedups and peers is `sparsity bench`.
let benchmarks: @Sendable () -> Void = {
  Benchmark.defaultConfiguration = .init(
    metrics: [.wallClock, .throughput], timeUnits: .microseconds, warmupIterations: 3,
    maxDuration: .seconds(2), maxIterations: 200)

  let (n, k) = (4096, 1024)
  let dense = SyntheticWeights.dense(rows: n, columns: k, seed: 1)
  let cases: [(String, LinearWeight, LinearKernel, LinearKernel)] = {
    do {
      let semi = SyntheticWeights.semiStructured(rows: n, columns: k, seed: 2)
      let block = SyntheticWeights.blockSparse(rows: n, columns: k, block: 32, sparsity: 0.9, seed: 3)
      let unstructured = SyntheticWeights.unstructured(rows: n, columns: k, sparsity: 0.9, seed: 4)
      return [
        ("dense", try LinearWeight(dense: dense), .denseGEMV, .denseGEMM),
        ("2:4", try LinearWeight(SemiStructuredMatrix(dense: semi, n: 2, m: 4)), .semiStructuredGEMV, .semiStructuredPanel),
        ("bsr32 90%", try LinearWeight(BSRMatrix(dense: block, blockRows: 32, blockColumns: 32)), .bsrGEMV, .bsr),
        ("csr 90%", try LinearWeight(CSRMatrix(dense: unstructured)), .csrSpMV, .csrPanel),
      ]
    } catch {
      fatalError("cannot build the benchmark weights: \(error)")
    }
  }()
  let x1 = SyntheticWeights.dense(rows: 1, columns: k, seed: 5)
  let x128 = SyntheticWeights.dense(rows: 128, columns: k, seed: 6)
  for (name, weight, small, large) in cases {
    Benchmark("\(name) 4096x1024 M=1 \(small)") { benchmark in
      for _ in benchmark.scaledIterations { blackHole(weight.apply(x: x1, bias: nil, kernel: small)) }
    }
    Benchmark("\(name) 4096x1024 M=128 \(large)") { benchmark in
      for _ in benchmark.scaledIterations { blackHole(weight.apply(x: x128, bias: nil, kernel: large)) }
    }
  }
}
