// swift-tools-version: 6.2
// Regression benchmarks for the kernels (ordo-one/package-benchmark), kept in their own package
// so the root package's `swift build` / `swift test` never build them or their dependencies.
//
//   swift package --package-path Benchmarks --disable-sandbox benchmark
//   swift package --package-path Benchmarks --disable-sandbox benchmark baseline update main
//   swift package --package-path Benchmarks --disable-sandbox benchmark baseline check main
import PackageDescription

let package = Package(
  name: "swift-sparsity-benchmarks",
  platforms: [.macOS(.v13)],
  dependencies: [
    .package(name: "swift-sparsity", path: ".."),
    // The malloc interposer trait only: the default traits also pull in the Swift 6.3 runtime
    // interposer, which this machine's package mirror does not have.
    .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
  ],
  targets: [
    .executableTarget(
      name: "KernelBenchmarks",
      dependencies: [
        .product(name: "Sparsity", package: "swift-sparsity"),
        .product(name: "Benchmark", package: "benchmark"),
      ],
      path: "Benchmarks/KernelBenchmarks",
      plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")])
  ]
)
