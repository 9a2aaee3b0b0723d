import SparsityCore

// Seeded random values for the test targets.

/// `count` normal floats of standard deviation `scale`, reproducible from `seed`.
public func randomNormalFloats(_ count: Int, seed: UInt64, scale: Double = 1) -> [Float] {
  var g = SeededGenerator(seed: seed)
  return (0..<count).map { _ in Float(g.nextNormal() * scale) }
}
