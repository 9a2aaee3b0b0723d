// swift-tools-version: 6.2
import PackageDescription

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
    .target(
      name: "Sparsity", dependencies: ["SparsityCore", "SparsityFormats", "SparsityIO", "SparsityPruning"]),
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
  ]
)
