import Foundation
import SparsityCore
import SparsityModels
import SparsityNN
import SparsityTestSupport
import Testing

@testable import SparsityRecipes

/// The bundled digits, loaded once for the suite.
private let builtIn: Digits = try! Digits.builtIn()

/// The bytes of the bundled `digits.bin`.
private func builtInBytes() throws -> [UInt8] {
  try fileBytes(try #require(Digits.builtInPath()))
}

/// Writes `bytes` to a fresh temporary file, passes its path to `body` and removes it.
private func withTemporaryFile<R>(_ bytes: [UInt8], _ body: (String) throws -> R) throws -> R {
  let path = FileManager.default.temporaryDirectory
    .appendingPathComponent("sparsity-digits-\(UUID().uuidString).bin").path
  try Data(bytes).write(to: URL(fileURLWithPath: path))
  defer { try? FileManager.default.removeItem(atPath: path) }
  return try body(path)
}

/// The error that loading `bytes` from a file throws, or `nil` if it loads.
private func loadError(_ bytes: [UInt8]) throws -> (error: DigitsError?, path: String) {
  try withTemporaryFile(bytes) { path in
    do {
      _ = try Digits(contentsOf: path)
      return (nil, path)
    } catch let error as DigitsError {
      return (error, path)
    }
  }
}

/// A valid digits file with `count` images: pixel `k` of image `i` is `(i + k) % 17`, label `i % 10`.
private func syntheticFile(count: Int) -> [UInt8] {
  var bytes = Array("DIGITS01".utf8)
  bytes += withUnsafeBytes(of: UInt32(count).littleEndian, Array.init)
  bytes += [8, 0, 8, 0]
  for i in 0..<count { for k in 0..<64 { bytes.append(UInt8((i + k) % 17)) } }
  for i in 0..<count { bytes.append(UInt8(i % 10)) }
  return bytes
}

@Suite("Digits")
struct DigitsTests {
  // The expected values below are printed by scripts/make_digits_resource.py from
  // sklearn.datasets.load_digits() (scikit-learn 1.9.1); scikit-learn is the oracle.
  static let classCounts = [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
  static let classPixelSums = [56415, 57007, 55566, 56151, 56239, 55915, 56336, 54289, 57408, 56392]

  @Test func builtInMatchesScikitLearn() throws {
    let digits = builtIn
    #expect(digits.count == 1797)
    #expect(digits.images.count == 1797 * 64)
    #expect(digits.labels.count == 1797)
    #expect(try builtInBytes().count == 16 + 1797 * 65)

    var counts = [Int](repeating: 0, count: 10)
    var pixelSums = [Int](repeating: 0, count: 10)
    for i in 0..<digits.count {
      let label = Int(digits.labels[i])
      counts[label] += 1
      pixelSums[label] += digits.image(i).reduce(0) { $0 + Int(($1 * 16).rounded()) }
    }
    #expect(counts == Self.classCounts)
    #expect(pixelSums == Self.classPixelSums)
    #expect(pixelSums.reduce(0, +) == 561_718)

    // digits.images[0][0...1] and the first and last targets.
    let rows: [Float] = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0]
    #expect(Array(digits.image(0).prefix(16)) == rows.map { $0 / 16 })
    #expect(digits.labels.first == 0)
    #expect(digits.labels.last == 8)
  }

  @Test func pixelsAreScaledIntegersInUnitInterval() {
    #expect(builtIn.images.allSatisfy { $0 >= 0 && $0 <= 1 })
    #expect(builtIn.images.allSatisfy { ($0 * 16).rounded() == $0 * 16 })
    #expect(builtIn.images.contains(0))
    #expect(builtIn.images.contains(1))
    #expect(builtIn.labels.allSatisfy { (0...9).contains($0) })
  }

  @Test func imageAndSubset() {
    let digits = builtIn
    #expect(digits.image(5).count == Digits.pixelCount)
    #expect(digits.image(5).startIndex == 5 * 64)
    let picked = digits.subset([7, 3, 7])
    #expect(picked.count == 3)
    #expect(picked.labels == [digits.labels[7], digits.labels[3], digits.labels[7]])
    #expect(Array(picked.image(0)) == Array(digits.image(7)))
    #expect(Array(picked.image(1)) == Array(digits.image(3)))
    #expect(Array(picked.image(2)) == Array(digits.image(7)))
    #expect(digits.subset([]).count == 0)
  }

  @Test func loadsFromPath() throws {
    let bytes = syntheticFile(count: 23)
    let digits = try withTemporaryFile(bytes) { try Digits(contentsOf: $0) }
    #expect(digits.count == 23)
    #expect(digits.labels == (0..<23).map { Int32($0 % 10) })
    let expected: [Float] = (0..<64).map { k in Float((4 + k) % 17) / 16 }
    #expect(Array(digits.image(4)) == expected)
    // The bundled file through the path initialiser gives the same data.
    let again = try Digits(contentsOf: try #require(Digits.builtInPath()))
    #expect(again.images == builtIn.images && again.labels == builtIn.labels)
    // An empty data set is a valid file.
    #expect(try withTemporaryFile(syntheticFile(count: 0)) { try Digits(contentsOf: $0) }.count == 0)
  }

  // MARK: Split

  @Test func splitSizesAndContents() {
    let parts = builtIn.split()
    #expect(parts.train.count == 1257)
    #expect(parts.validation.count == 180)
    #expect(parts.test.count == 360)
    // Every image of a part is the original image of its index.
    let indices = Digits.splitIndices(labels: builtIn.labels)
    let pairs = [(parts.train, indices.train), (parts.validation, indices.validation), (parts.test, indices.test)]
    for (part, idx) in pairs {
      #expect(part.labels == idx.map { builtIn.labels[$0] })
      #expect(part.images == builtIn.subset(idx).images)
    }
  }

  @Test func splitIsAPartition() {
    let (train, validation, test) = Digits.splitIndices(labels: builtIn.labels)
    for part in [train, validation, test] { #expect(part == part.sorted() && Set(part).count == part.count) }
    #expect(Set(train).isDisjoint(with: validation))
    #expect(Set(train).isDisjoint(with: test))
    #expect(Set(validation).isDisjoint(with: test))
    #expect((train + validation + test).sorted() == Array(0..<1797))
  }

  @Test func splitIsStratified() {
    let parts = builtIn.split()
    for part in [parts.train, parts.validation, parts.test] {
      var counts = [Int](repeating: 0, count: 10)
      for label in part.labels { counts[Int(label)] += 1 }
      for c in 0..<10 {
        // |counts[c] − part.count × n_c / 1797| < 1, in integers.
        let exact = part.count * Self.classCounts[c]
        #expect(abs(counts[c] * 1797 - exact) < 1797, "class \(c): \(counts[c]) of \(part.count)")
        #expect(counts[c] > 0)
      }
    }
  }

  /// Golden values from the independent Python implementation in
  /// scripts/make_digits_resource.py: index sum, index square sum, first indices, per class.
  @Test func splitMatchesPythonReference() {
    let (train, validation, test) = Digits.splitIndices(labels: builtIn.labels)
    func summary(_ part: [Int]) -> [Int] { [part.reduce(0, +), part.reduce(0) { $0 + $1 * $1 }] + part.prefix(5) }
    func perClass(_ part: [Int]) -> [Int] {
      var counts = [Int](repeating: 0, count: 10)
      for i in part { counts[Int(builtIn.labels[i])] += 1 }
      return counts
    }
    #expect(summary(train) == [1_151_599, 1_382_415_847, 0, 1, 2, 5, 6])
    #expect(summary(validation) == [154_708, 186_770_766, 3, 4, 11, 30, 32])
    #expect(summary(test) == [307_399, 363_495_273, 9, 16, 18, 20, 21])
    #expect(perClass(train) == [124, 127, 124, 128, 127, 128, 127, 125, 121, 126])
    #expect(perClass(validation) == [18, 18, 18, 18, 18, 18, 18, 18, 18, 18])
    #expect(perClass(test) == [36, 37, 35, 37, 36, 36, 36, 36, 35, 36])
  }

  @Test func splitIsDeterministic() throws {
    let a = builtIn.split()
    let b = try Digits.builtIn().split()
    #expect(a.train.labels == b.train.labels && a.train.images == b.train.images)
    #expect(a.validation.labels == b.validation.labels && a.validation.images == b.validation.images)
    #expect(a.test.labels == b.test.labels && a.test.images == b.test.images)
  }

  @Test func splitOfSmallSets() throws {
    for count in [0, 1, 2, 3, 9, 10, 11, 19, 20, 23, 100] {
      let digits = try withTemporaryFile(syntheticFile(count: count)) { try Digits(contentsOf: $0) }
      let parts = digits.split()
      if count >= 100 { #expect(parts.validation.count == (count * 10 + 99) / 100) }
      #expect(parts.test.count == (count * 20 + 99) / 100, "count \(count)")
      #expect(parts.validation.count <= (count * 10 + 99) / 100, "count \(count)")
      let (train, validation, test) = Digits.splitIndices(labels: digits.labels)
      #expect((train + validation + test).sorted() == Array(0..<count), "count \(count)")
    }
  }

  @Test func sharesAreLargestRemainder() {
    #expect(Digits.shares(of: 360, among: Self.classCounts) == [36, 37, 35, 37, 36, 36, 36, 36, 35, 36])
    #expect(Digits.shares(of: 3, among: [1, 1, 1, 1]) == [1, 1, 1, 0])
    #expect(Digits.shares(of: 0, among: [5, 5]) == [0, 0])
    #expect(Digits.shares(of: 4, among: [0, 0]) == [0, 0])
    var rng = SeededGenerator(seed: 7)
    for _ in 0..<200 {
      let counts = (0..<10).map { _ in Digits.boundedRandom(below: 50, using: &rng) + 1 }
      let sum = counts.reduce(0, +)
      let total = Digits.boundedRandom(below: UInt64(sum + 1), using: &rng)
      let shares = Digits.shares(of: total, among: counts)
      #expect(shares.reduce(0, +) == total)
      for c in 0..<10 { #expect(abs(shares[c] * sum - total * counts[c]) < sum) }
    }
  }

  @Test func boundedRandomStaysInRange() {
    var rng = SeededGenerator(seed: 3)
    for bound in [1, 2, 3, 7, 1797, 1 << 40] as [UInt64] {
      for _ in 0..<100 { #expect(UInt64(Digits.boundedRandom(below: bound, using: &rng)) < bound) }
    }
    var hits = [Int](repeating: 0, count: 6)
    for _ in 0..<6000 { hits[Digits.boundedRandom(below: 6, using: &rng)] += 1 }
    #expect(hits.allSatisfy { (850...1150).contains($0) }, "\(hits)")
  }

  // MARK: Corrupt files

  @Test func truncatedFile() throws {
    let bytes = try builtInBytes()
    for length in [bytes.count - 1, 16 + 1797 * 64, 100, 17] {
      let (error, path) = try loadError(Array(bytes.prefix(length)))
      #expect(error == .truncated(path: path, expected: 116_821, actual: length))
    }
    for length in [15, 8, 0] {
      let (error, path) = try loadError(Array(bytes.prefix(length)))
      #expect(error == .truncated(path: path, expected: 16, actual: length))
    }
    let (error, path) = try loadError(Array(bytes.prefix(100)))
    #expect(error?.description == "\(path): truncated: 100 bytes, the header needs 116821")
  }

  @Test func badMagic() throws {
    var bytes = syntheticFile(count: 2)
    bytes[7] = UInt8(ascii: "2")
    let (error, path) = try loadError(bytes)
    #expect(error == .badMagic(path: path, found: Array("DIGITS02".utf8)))
    #expect(error?.description == "\(path): not a digits file: starts with 'DIGITS02' instead of 'DIGITS01'")
    // A short file that is not a digits file is reported as such, not as truncated.
    let (short, shortPath) = try loadError([0x89, 0x50, 0x4E])
    #expect(short == .badMagic(path: shortPath, found: [0x89, 0x50, 0x4E]))
    #expect(short?.description == "\(shortPath): not a digits file: starts with '\\x89PN' instead of 'DIGITS01'")
  }

  @Test func badShape() throws {
    var bytes = syntheticFile(count: 2)
    bytes[12] = 28
    let (error, path) = try loadError(bytes)
    #expect(error == .badShape(path: path, height: 28, width: 8))
  }

  @Test func trailingBytes() throws {
    let (error, path) = try loadError(syntheticFile(count: 3) + [0])
    #expect(error == .trailingBytes(path: path, expected: 16 + 3 * 65, actual: 16 + 3 * 65 + 1))
  }

  @Test func hugeCountIsTruncatedNotACrash() throws {
    var bytes = syntheticFile(count: 1)
    bytes[8...11] = [0xFF, 0xFF, 0xFF, 0xFF]
    let (error, path) = try loadError(bytes)
    #expect(error == .truncated(path: path, expected: 16 + 0xFFFF_FFFF * 65, actual: 16 + 65))
  }

  @Test func labelOutOfRange() throws {
    var bytes = syntheticFile(count: 12)
    bytes[16 + 12 * 64 + 11] = 10
    let (error, path) = try loadError(bytes)
    #expect(error == .labelOutOfRange(path: path, image: 11, value: 10))
    #expect(error?.description == "\(path): label of image 11 is 10, above 9")
  }

  @Test func pixelOutOfRange() throws {
    var bytes = syntheticFile(count: 4)
    bytes[16 + 2 * 64 + 9] = 17
    let (error, path) = try loadError(bytes)
    #expect(error == .pixelOutOfRange(path: path, image: 2, pixel: 9, value: 17))
    #expect(error?.description == "\(path): image 2, pixel 9 is 17, above 16")
  }

  @Test func unreadableFile() throws {
    let missing = FileManager.default.temporaryDirectory
      .appendingPathComponent("sparsity-digits-missing-\(UUID().uuidString).bin").path
    #expect(throws: DigitsError.unreadable(path: missing, detail: "no such file")) {
      try Digits(contentsOf: missing)
    }
    let directory = FileManager.default.temporaryDirectory.path
    #expect(throws: DigitsError.unreadable(path: directory, detail: "is a directory")) {
      try Digits(contentsOf: directory)
    }
    let description = DigitsError.unreadable(path: missing, detail: "no such file").description
    #expect(description == "\(missing): cannot read: no such file")
    #expect(DigitsError.resourceNotFound(name: "digits.bin").description.contains("digits.bin"))
  }
}
