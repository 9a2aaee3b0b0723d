import _SparsityCPUID

/// What this CPU can run, read with CPUID and XGETBV by code built for baseline x86-64, and
/// whether this build's kernels can run on it.
///
/// The kernels (module `_SparsityKernelsImpl`) are compiled for one target CPU (see
/// `Package.swift`: `SPARSITY_TARGET_CPU`, by default the build machine's class — `znver4`,
/// `skylake-avx512` or `haswell` — or `SPARSITY_PORTABLE=1`).
/// Running AVX2 code on a CPU without AVX2 would die with SIGILL; instead every entry point
/// checks ``requireKernelSupport()`` first and reports the missing features:
///
/// ```swift
/// if let problem = CPUFeatures.host.kernelSupportProblem { print(problem) }
/// ```
public struct CPUFeatures: Sendable, CustomStringConvertible {
  /// The processor's brand string (`"AMD EPYC 9R14 96-Core Processor"`), or `"unknown"`.
  public let brand: String
  /// Feature names present on this CPU and enabled by the OS (`"avx2"`, `"fma"`, `"avx512f"`, …).
  public let features: Set<String>

  /// The features of the machine this process runs on.
  public static let host = CPUFeatures()

  /// The instruction-set level this build's kernels were compiled for: `"avx512"` (the
  /// default on a build machine with AVX-512), `"avx2"` (`-target-cpu haswell`, the default
  /// elsewhere) or `"portable"`.
  public static var kernelISA: String {
    #if SPARSITY_ISA_AVX512
      return "avx512"
    #elseif SPARSITY_ISA_AVX2
      return "avx2"
    #else
      return "portable"
    #endif
  }

  /// The features the kernels of this build need.
  public static var requiredFeatures: [String] {
    #if SPARSITY_ISA_AVX512 && SPARSITY_CPU_ZNVER4
      return avx2Features + avx512Features + zen4Features
    #elseif SPARSITY_ISA_AVX512 && SPARSITY_VNNI && SPARSITY_VBMI && SPARSITY_BF16
      return avx2Features + avx512Features + ["avx512vnni", "avx512vbmi", "avx512bf16"]
    #elseif SPARSITY_ISA_AVX512 && SPARSITY_VNNI && SPARSITY_BF16
      return avx2Features + avx512Features + ["avx512vnni", "avx512bf16"]
    #elseif SPARSITY_ISA_AVX512 && SPARSITY_VNNI && SPARSITY_VBMI
      return avx2Features + avx512Features + ["avx512vnni", "avx512vbmi"]
    #elseif SPARSITY_ISA_AVX512 && SPARSITY_VNNI
      return avx2Features + avx512Features + ["avx512vnni"]
    #elseif SPARSITY_ISA_AVX512
      return avx2Features + avx512Features
    #elseif SPARSITY_ISA_AVX2
      return avx2Features
    #else
      return []
    #endif
  }

  private static let avx2Features = [
    "avx", "avx2", "fma", "f16c", "bmi1", "bmi2", "lzcnt", "movbe", "popcnt", "os-avx-state",
  ]
  private static let avx512Features = ["avx512f", "avx512dq", "avx512cd", "avx512bw", "avx512vl", "os-avx512-state"]
  /// The AVX-512 extensions a `-target-cpu znver4` build may use besides the base set.
  private static let zen4Features = [
    "avx512ifma", "avx512vbmi", "avx512vbmi2", "avx512vnni", "avx512bf16", "avx512bitalg", "avx512vpopcntdq",
    "gfni", "vaes", "vpclmulqdq",
  ]

  init() {
    var r: [UInt32] = [0, 0, 0, 0]
    var f = Set<String>()
    func bit(_ value: UInt32, _ n: UInt32) -> Bool { value & (1 << n) != 0 }
    if sparsity_cpuid(1, 0, &r) != 0 {
      let (ecx, edx) = (r[2], r[3])
      if bit(edx, 26) { f.insert("sse2") }
      if bit(ecx, 12) { f.insert("fma") }
      if bit(ecx, 22) { f.insert("movbe") }
      if bit(ecx, 23) { f.insert("popcnt") }
      if bit(ecx, 28) { f.insert("avx") }
      if bit(ecx, 29) { f.insert("f16c") }
    }
    if sparsity_cpuid(7, 0, &r) != 0 {
      let (ebx, ecx) = (r[1], r[2])
      if bit(ebx, 3) { f.insert("bmi1") }
      if bit(ebx, 5) { f.insert("avx2") }
      if bit(ebx, 8) { f.insert("bmi2") }
      if bit(ebx, 16) { f.insert("avx512f") }
      if bit(ebx, 17) { f.insert("avx512dq") }
      if bit(ebx, 21) { f.insert("avx512ifma") }
      if bit(ebx, 28) { f.insert("avx512cd") }
      if bit(ebx, 30) { f.insert("avx512bw") }
      if bit(ebx, 31) { f.insert("avx512vl") }
      if bit(ecx, 1) { f.insert("avx512vbmi") }
      if bit(ecx, 6) { f.insert("avx512vbmi2") }
      if bit(ecx, 8) { f.insert("gfni") }
      if bit(ecx, 9) { f.insert("vaes") }
      if bit(ecx, 10) { f.insert("vpclmulqdq") }
      if bit(ecx, 11) { f.insert("avx512vnni") }
      if bit(ecx, 12) { f.insert("avx512bitalg") }
      if bit(ecx, 14) { f.insert("avx512vpopcntdq") }
    }
    if sparsity_cpuid(7, 1, &r) != 0, bit(r[0], 5) { f.insert("avx512bf16") }
    if sparsity_cpuid(0x8000_0001, 0, &r) != 0, bit(r[2], 5) { f.insert("lzcnt") }
    let xcr0 = sparsity_xgetbv0()
    if xcr0 & 0b110 == 0b110 { f.insert("os-avx-state") }
    if xcr0 & 0b1110_0110 == 0b1110_0110 { f.insert("os-avx512-state") }
    features = f
    var name = [UInt8]()
    for leaf: UInt32 in [0x8000_0002, 0x8000_0003, 0x8000_0004] where sparsity_cpuid(leaf, 0, &r) != 0 {
      for word in r { withUnsafeBytes(of: word.littleEndian) { name.append(contentsOf: $0) } }
    }
    let text = String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)
      .split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
    brand = text.isEmpty ? "unknown" : text
  }

  /// The required features this CPU lacks (empty when the kernels can run).
  public var missingKernelFeatures: [String] {
    CPUFeatures.requiredFeatures.filter { !features.contains($0) }
  }

  /// A one-paragraph explanation when the kernels cannot run here, else `nil`.
  public var kernelSupportProblem: String? {
    let missing = missingKernelFeatures
    guard !missing.isEmpty else { return nil }
    return "this build's kernels are compiled for \(CPUFeatures.kernelISA.uppercased()), but this CPU "
      + "(\(brand)) lacks \(missing.joined(separator: ", ")); rebuild with `SPARSITY_PORTABLE=1 swift build -c release` "
      + "(any CPU) or choose a matching `SPARSITY_TARGET_CPU` (e.g. haswell for AVX2)"
  }

  /// Throws ``KernelError/unsupportedCPU(_:)`` when this build's kernels cannot run on the host.
  public static func requireKernelSupport() throws(KernelError) {
    if let problem = host.kernelSupportProblem { throw .unsupportedCPU(problem) }
  }

  public var description: String {
    "\(brand) [\(features.sorted().joined(separator: " "))]"
  }
}

/// Errors from preparing or running kernels.
public enum KernelError: Error, CustomStringConvertible, Equatable {
  /// This build's kernels need CPU features the host lacks; the text says which and how to
  /// build a portable binary.
  case unsupportedCPU(String)
  /// A weight that the kernels cannot take (dtype, pattern or shape), with the reason.
  case unsupportedWeight(String)

  public var description: String {
    switch self {
    case .unsupportedCPU(let text): text
    case .unsupportedWeight(let text): text
    }
  }
}

/// Process-wide allocator settings for heavy inference.
public enum MemoryTuning {
  /// Keeps freed large blocks in the C heap for reuse. Layers allocate activations of tens of
  /// MB; by default glibc maps each one fresh and unmaps it on free, so every allocation
  /// page-faults and zero-fills again (measured: 5–10% of a MiniLM forward pass at batch 32).
  /// Call once at program start (the `sparsity` tool does); a no-op off glibc.
  @discardableResult
  public static func retainFreedMemory() -> Bool { sparsity_retain_freed_memory() == 1 }

  /// Returns the C heap's free memory to the system once (`malloc_trim`): after a model is
  /// loaded, the buffers its packing used are not needed again. A no-op off glibc.
  public static func releaseFreedMemory() { sparsity_release_freed_memory() }
}
