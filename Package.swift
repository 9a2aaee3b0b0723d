// swift-tools-version: 6.2
import Foundation
import PackageDescription

// The compute loops of SparsityKernels live in `_SparsityKernelsImpl`, the only target built
// for a specific CPU. Build settings (environment variables read when the manifest loads):
//   SPARSITY_PORTABLE=1         no target-CPU flag: baseline x86-64 (or any architecture),
//                               correct everywhere, several times slower. CI builds this too.
//   SPARSITY_TARGET_CPU=NAME    the `-target-cpu` for the kernels. Default: the build machine's
//                               own class, read from /proc/cpuinfo — `znver4` on an AMD CPU with
//                               AVX-512 (Zen 4, Zen 5), `skylake-avx512` on another AVX-512 CPU,
//                               else `haswell` (AVX2 + FMA: every x86-64-v3 CPU, Zen 1–5, Intel
//                               since 2013). Set `haswell` for a binary that runs on any AVX2 CPU.
//                               Names of AVX-512 CPUs (below) select the AVX-512 kernels.
// Before any kernel runs, SparsityKernels (built without the flag) checks CPUID/XGETBV for the
// features that the chosen CPU implies and refuses with an error naming the missing ones.
let environment = ProcessInfo.processInfo.environment
let portableKernels = environment["SPARSITY_PORTABLE"].map { $0 != "" && $0 != "0" } ?? false

/// The kernel target for the machine this manifest is evaluated on (Linux: /proc/cpuinfo).
func buildMachineCPU() -> String {
  guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "haswell" }
  var fields: [String: String] = [:]
  for line in text.split(separator: "\n") {
    if line.isEmpty { break }  // the first processor's block is enough
    let parts = line.split(separator: ":", maxSplits: 1)
    guard parts.count == 2 else { continue }
    fields[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
  }
  let flags = Set((fields["flags"] ?? "").split(separator: " ").map(String.init))
  let avx512 = ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
  if avx512 {
    let amd = fields["vendor_id"] == "AuthenticAMD" && (Int(fields["cpu family"] ?? "") ?? 0) >= 25
    return amd ? "znver4" : "skylake-avx512"
  }
  return "haswell"
}
let kernelCPU = environment["SPARSITY_TARGET_CPU"] ?? buildMachineCPU()
let avx512CPUs: Set<String> = [
  "znver4", "znver5", "skylake-avx512", "skx", "cascadelake", "cooperlake", "cannonlake",
  "icelake-client", "icelake-server", "tigerlake", "rocketlake", "sapphirerapids",
  "emeraldrapids", "graniterapids", "graniterapids-d", "diamondrapids",
]
var kernelSwiftSettings: [SwiftSetting] = []
var kernelISA = "SPARSITY_ISA_PORTABLE"
var checkDefines: [SwiftSetting] = []
#if arch(x86_64)
  if !portableKernels {
    kernelISA = avx512CPUs.contains(kernelCPU) ? "SPARSITY_ISA_AVX512" : "SPARSITY_ISA_AVX2"
    kernelSwiftSettings = [
      .unsafeFlags(["-target-cpu", kernelCPU]), .define("SPARSITY_FMA"), .define(kernelISA),
    ]
    // znver4 code may use every AVX-512 extension of Zen 4; the runtime check then asks for them.
    if kernelCPU == "znver4" { checkDefines.append(.define("SPARSITY_CPU_ZNVER4")) }
    // CPUs with AVX512-VNNI (`vpdpbusd`): the int8 kernels use it; the others widen to int16.
    let vnniCPUs: Set<String> = avx512CPUs.subtracting(["skylake-avx512", "skx", "cannonlake"])
    if vnniCPUs.contains(kernelCPU) {
      kernelSwiftSettings.append(.define("SPARSITY_VNNI"))
      checkDefines.append(.define("SPARSITY_VNNI"))
    }
    // CPUs with AVX512-BF16 (`vdpbf16ps`): the bf16 kernels use it; the others widen to fp32.
    let bf16CPUs: Set<String> = ["znver4", "znver5", "cooperlake", "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d", "diamondrapids"]
    if bf16CPUs.contains(kernelCPU) {
      kernelSwiftSettings.append(.define("SPARSITY_BF16"))
      checkDefines.append(.define("SPARSITY_BF16"))
    }
    // ... and AVX512-VBMI (`vpermb`, `vpmultishiftqb`: the int8 2:4 shuffle controls).
    let vbmiCPUs: Set<String> = vnniCPUs.subtracting(["cascadelake", "cooperlake"])
    if vbmiCPUs.contains(kernelCPU) {
      kernelSwiftSettings.append(.define("SPARSITY_VBMI"))
      checkDefines.append(.define("SPARSITY_VBMI"))
    }
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
    .target(name: "SparsityCore", dependencies: ["_SparsityCPUID"]),
    .target(name: "SparsityFormats", dependencies: ["SparsityCore"]),
    .target(name: "SparsityIO", dependencies: ["SparsityCore", "SparsityFormats"]),
    .target(name: "SparsityPruning", dependencies: ["SparsityCore", "SparsityFormats"]),
    .target(name: "_SparsityCPUID"),
    .target(name: "_SparsityBF16"),
    .target(name: "_SparsityKernelsImpl", dependencies: ["SparsityCore", "_SparsityBF16", "_SparsityCPUID"], swiftSettings: kernelSwiftSettings),
    .target(
      name: "SparsityKernels",
      dependencies: ["SparsityCore", "SparsityFormats", "_SparsityKernelsImpl", "_SparsityCPUID"],
      swiftSettings: [.define(kernelISA)] + checkDefines),
    .target(name: "SparsityText"),
    // The framework: autograd, modules, layers (trainable and packed), optimizers, training.
    .target(
      name: "SparsityNN",
      dependencies: ["SparsityCore", "SparsityFormats", "SparsityIO", "SparsityPruning", "SparsityKernels"]),
    // Model architectures built on the framework: BERT and the sentence embedder, the digits MLP/ViT.
    .target(
      name: "SparsityModels",
      dependencies: ["SparsityCore", "SparsityFormats", "SparsityIO", "SparsityKernels", "SparsityNN", "SparsityText"]),
    // Recipes and evaluation: file pruning, the digits experiment, distillation, embedding
    // evaluation, the bundled data (digits, sentence corpus).
    .target(
      name: "SparsityRecipes",
      dependencies: [
        "SparsityCore", "SparsityFormats", "SparsityIO", "SparsityPruning", "SparsityKernels", "SparsityNN",
        "SparsityModels", "SparsityText",
      ],
      resources: [.copy("Resources")]),
    .target(
      name: "Sparsity",
      dependencies: [
        "SparsityCore", "SparsityFormats", "SparsityIO", "SparsityPruning", "SparsityKernels", "SparsityNN",
        "SparsityModels", "SparsityRecipes", "SparsityText",
      ]),
    .target(
      name: "SparsityCLI",
      dependencies: [
        "Sparsity",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]),
    .executableTarget(name: "sparsity", dependencies: ["SparsityCLI"]),
    // Helpers shared by the test targets (temporary directories, tensor comparisons, …); no product.
    .target(name: "SparsityTestSupport", dependencies: ["SparsityCore"], path: "Tests/SparsityTestSupport"),
    .testTarget(
      name: "SparsityCoreTests",
      dependencies: [
        "SparsityCore", "SparsityTestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
      ]),
    .testTarget(
      name: "SparsityFormatsTests",
      dependencies: [
        "SparsityFormats", "SparsityIO", "SparsityTestSupport",
        .product(name: "PropertyBased", package: "swift-property-based"),
      ],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "SparsityIOTests",
      dependencies: [
        "SparsityIO", "SparsityTestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
      ],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "SparsityPruningTests",
      dependencies: [
        "SparsityPruning", "SparsityIO", "SparsityTestSupport",
        .product(name: "PropertyBased", package: "swift-property-based"),
      ],
      resources: [.copy("Fixtures")]),
    .testTarget(name: "SparsityCLITests", dependencies: ["SparsityCLI", "sparsity", "SparsityTestSupport"]),
    .testTarget(
      name: "SparsityNNTests",
      dependencies: [
        "SparsityNN", "SparsityModels", "SparsityTestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
      ]),
    .testTarget(
      name: "SparsityModelsTests",
      dependencies: ["SparsityModels", "SparsityNN", "SparsityKernels", "SparsityIO", "SparsityText", "SparsityTestSupport"],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "SparsityRecipesTests",
      dependencies: [
        "SparsityRecipes", "SparsityModels", "SparsityNN", "SparsityPruning", "SparsityText", "SparsityTestSupport",
      ]),
    .testTarget(
      name: "SparsityTextTests",
      dependencies: ["SparsityText", "SparsityTestSupport"],
      resources: [.copy("Fixtures")]),
    .testTarget(
      name: "SparsityKernelsTests",
      dependencies: [
        "SparsityKernels", "SparsityTestSupport", .product(name: "PropertyBased", package: "swift-property-based"),
      ]),
  ]
)
