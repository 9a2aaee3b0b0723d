// swift-tools-version: 6.2
import Foundation
import PackageDescription

// The compute loops of SparsityKernels live in `_SparsityKernelsImpl`, the only target built
// for a specific CPU. Build settings (environment variables read when the manifest loads):
//   SPARSITY_PORTABLE=1         no target-CPU flag: baseline x86-64 (or any architecture),
//                               correct everywhere, several times slower. CI builds this too.
//   SPARSITY_TARGET_CPU=NAME    the `-target-cpu` for the kernels; default `haswell` (AVX2 +
//                               FMA: every x86-64-v3 CPU, Zen 1–5, Intel since 2013). Names of
//                               AVX-512 CPUs (znver4, znver5, skylake-avx512, icelake-server,
//                               sapphirerapids, x86-64 v4 class) make the kernels require AVX-512.
// Before any kernel runs, SparsityKernels (built without the flag) checks CPUID/XGETBV for the
// features that the chosen CPU implies and refuses with an error naming the missing ones.
let environment = ProcessInfo.processInfo.environment
let portableKernels = environment["SPARSITY_PORTABLE"].map { $0 != "" && $0 != "0" } ?? false
let kernelCPU = environment["SPARSITY_TARGET_CPU"] ?? "haswell"
let avx512CPUs: Set<String> = [
  "znver4", "znver5", "skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake",
  "icelake-client", "icelake-server", "tigerlake", "rocketlake", "sapphirerapids",
  "emeraldrapids", "graniterapids", "graniterapids-d", "diamondrapids",
]
var kernelSwiftSettings: [SwiftSetting] = []
var kernelISA = "SPARSITY_ISA_PORTABLE"
#if arch(x86_64)
  if !portableKernels {
    kernelISA = avx512CPUs.contains(kernelCPU) ? "SPARSITY_ISA_AVX512" : "SPARSITY_ISA_AVX2"
    kernelSwiftSettings = [
      .unsafeFlags(["-target-cpu", kernelCPU]), .define("SPARSITY_FMA"), .define(kernelISA),
    ]
  }
#endif

let package = Package(
  name: "swift-sparsity",
  products: [
    .library(name: "Sparsity", targets: ["Sparsity"]),
    .executable(name: "sparsity", targets: ["sparsity"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.0"),
  ],
  targets: [
    .target(name: "SparsityCore"),
    .target(name: "SparsityFormats", dependencies: ["SparsityCore"]),
    .target(name: "SparsityIO", dependencies: ["SparsityCore", "SparsityFormats"]),
    .target(name: "SparsityPruning", dependencies: ["SparsityCore", "SparsityFormats"]),
    .target(name: "_SparsityCPUID"),
    .target(name: "_SparsityKernelsImpl", swiftSettings: kernelSwiftSettings),
    .target(
      name: "SparsityKernels",
      dependencies: ["SparsityCore", "SparsityFormats", "_SparsityKernelsImpl", "_SparsityCPUID"],
      swiftSettings: [.define(kernelISA)]),
    .target(name: "SparsityText"),
    .target(
      name: "SparsityNN",
      dependencies: ["SparsityCore", "SparsityFormats", "SparsityIO", "SparsityPruning", "SparsityKernels", "SparsityText"],
      resources: [.copy("Resources")]),
    .target(
      name: "Sparsity",
      dependencies: [
        "SparsityCore", "SparsityFormats", "SparsityIO", "SparsityPruning", "SparsityKernels", "SparsityNN",
        "SparsityText",
      ]),
    .target(
      name: "SparsityCLI",
      dependencies: [
        "Sparsity",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .executableTarget(name: "sparsity", dependencies: ["SparsityCLI"]),
    .testTarget(
      name: "SparsityCoreTests",
      dependencies: ["SparsityCore", .product(name: "PropertyBased", package: "swift-property-based")]),
    .testTarget(
      name: "SparsityFormatsTests",
      dependencies: [
        "SparsityFormats", "SparsityIO", .product(name: "PropertyBased", package: "swift-property-based"),
      ],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "SparsityIOTests",
      dependencies: ["SparsityIO", .product(name: "PropertyBased", package: "swift-property-based")],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "SparsityPruningTests",
      dependencies: [
        "SparsityPruning", "SparsityIO", .product(name: "PropertyBased", package: "swift-property-based"),
      ],
      resources: [.copy("Fixtures")]),
    .testTarget(name: "SparsityCLITests", dependencies: ["SparsityCLI", "sparsity"]),
    .testTarget(
      name: "SparsityNNTests",
      dependencies: ["SparsityNN", .product(name: "PropertyBased", package: "swift-property-based")],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "SparsityTextTests",
      dependencies: ["SparsityText"],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "SparsityKernelsTests",
      dependencies: ["SparsityKernels", .product(name: "PropertyBased", package: "swift-property-based")]),
  ]
)
