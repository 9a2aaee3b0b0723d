import Foundation
import SparsityCore
import SparsityFormats
import SparsityIO
import SparsityKernels
import SparsityModels
import SparsityNN
import SparsityPruning
import SparsityText

/// The optical-recognition handwritten digits: 1,797 grey-scale images of 8 × 8 pixels with
/// their classes 0…9, as scikit-learn ships them (`sklearn.datasets.load_digits`).
///
/// The package bundles the data set (`Resources/digits.bin`, 116,821 bytes), so
/// ``builtIn()`` needs no download:
///
/// ```swift
/// let digits = try Digits.builtIn()
/// let parts = digits.split()          // 1,257 / 180 / 360 images
/// let first = parts.train.image(0)    // 64 pixels in [0, 1]
/// let label = parts.train.labels[0]
/// ```
///
/// ## File layout
///
/// All integers are little-endian.
///
/// | Offset               | Size        | Field                                             |
/// |----------------------|-------------|---------------------------------------------------|
/// | 0                    | 8           | magic `DIGITS01` (ASCII)                          |
/// | 8                    | 4           | `count`, UInt32                                   |
/// | 12                   | 2           | height, UInt16, must be 8                         |
/// | 14                   | 2           | width, UInt16, must be 8                          |
/// | 16                   | count × 64  | pixels, UInt8 0…16, image after image, row-major  |
/// | 16 + count × 64      | count       | labels, UInt8 0…9                                 |
///
/// The file holds exactly `16 + count × 65` bytes. `scripts/make_digits_resource.py` writes it.
///
/// The data set is the test part of the UCI ML "Optical Recognition of Handwritten Digits"
/// (E. Alpaydin, C. Kaynak, 1998, CC BY 4.0).
public struct Digits: Sendable {
  /// The side of an image, in pixels.
  public static let side = 8
  /// The pixels of one image.
  public static let pixelCount = 64
  /// The number of classes (the digits 0…9).
  public static let classCount = 10

  /// The images, `count × pixelCount` values, image after image, each row-major; a stored
  /// pixel `p` in 0…16 becomes `p / 16`, so every value lies in [0, 1].
  public let images: [Float]
  /// The class of each image, 0…9.
  public let labels: [Int32]

  /// The number of images.
  public var count: Int { labels.count }

  init(images: [Float], labels: [Int32]) {
    precondition(images.count == labels.count * Self.pixelCount)
    self.images = images
    self.labels = labels
  }

  /// The pixels of image `i`, row-major, in [0, 1].
  public func image(_ i: Int) -> ArraySlice<Float> {
    precondition(i >= 0 && i < count, "image index \(i) out of range 0..<\(count)")
    return images[(i * Self.pixelCount)..<((i + 1) * Self.pixelCount)]
  }

  /// The images at `indices`, in that order (an index may repeat).
  public func subset(_ indices: [Int]) -> Digits {
    var newImages = [Float]()
    newImages.reserveCapacity(indices.count * Self.pixelCount)
    var newLabels = [Int32]()
    newLabels.reserveCapacity(indices.count)
    for i in indices {
      newImages.append(contentsOf: image(i))
      newLabels.append(labels[i])
    }
    return Digits(images: newImages, labels: newLabels)
  }
}

// MARK: - Loading

extension Digits {
  /// The magic bytes at the start of a digits file.
  static let magic: [UInt8] = Array("DIGITS01".utf8)
  /// The bytes before the pixels.
  static let headerSize = 16

  /// The digits bundled with the package (`Resources/digits.bin`, 1,797 images).
  ///
  /// The file comes from SwiftPM's resource bundle of this module (`Bundle.module`):
  /// `swift-sparsity_SparsityNN.resources` next to the executable, else the one in the build
  /// directory. An executable moved away from both stops with SwiftPM's "could not load
  /// resource bundle"; ship the bundle folder next to it.
  ///
  /// The file is read, checked and decoded on every call (about 117 KB); keep the result.
  public static func builtIn() throws(DigitsError) -> Digits {
    guard let path = builtInPath() else { throw .resourceNotFound(name: "digits.bin") }
    return try Digits(contentsOf: path)
  }

  /// Where the bundled `digits.bin` lies, or `nil` if the resource bundle lacks it.
  static func builtInPath() -> String? {
    guard let folder = Bundle.module.url(forResource: "Resources", withExtension: nil) else { return nil }
    let path = folder.appendingPathComponent("digits.bin").path
    return FileManager.default.fileExists(atPath: path) ? path : nil
  }

  /// Reads a digits file in the layout described at ``Digits``.
  ///
  /// Throws a ``DigitsError`` naming `path` if the file cannot be read, has the wrong magic,
  /// shape or size, or holds a pixel above 16 or a label above 9.
  public init(contentsOf path: String) throws(DigitsError) {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
      throw .unreadable(path: path, detail: "no such file")
    }
    guard !isDirectory.boolValue else { throw .unreadable(path: path, detail: "is a directory") }
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch CocoaError.fileReadNoPermission {
      throw .unreadable(path: path, detail: "permission denied")
    } catch {
      throw .unreadable(path: path, detail: error.localizedDescription)
    }
    try self.init(bytes: [UInt8](data), path: path)
  }

  /// Decodes the bytes of a digits file; `path` only names the file in errors.
  init(bytes: [UInt8], path: String) throws(DigitsError) {
    let prefix = Array(bytes.prefix(Self.magic.count))
    guard prefix.elementsEqual(Self.magic.prefix(prefix.count)) else { throw .badMagic(path: path, found: prefix) }
    guard bytes.count >= Self.headerSize else {
      throw .truncated(path: path, expected: Self.headerSize, actual: bytes.count)
    }
    func uint(_ offset: Int, _ width: Int) -> Int {
      var value = 0
      for k in (0..<width).reversed() { value = value << 8 | Int(bytes[offset + k]) }
      return value
    }
    let count = uint(8, 4)
    let height = uint(12, 2)
    let width = uint(14, 2)
    guard height == Self.side && width == Self.side else {
      throw .badShape(path: path, height: height, width: width)
    }
    let pixelBytes = count * Self.pixelCount
    let expected = Self.headerSize + pixelBytes + count
    guard bytes.count >= expected else { throw .truncated(path: path, expected: expected, actual: bytes.count) }
    guard bytes.count == expected else { throw .trailingBytes(path: path, expected: expected, actual: bytes.count) }

    var images = [Float](repeating: 0, count: pixelBytes)
    for k in 0..<pixelBytes {
      let p = bytes[Self.headerSize + k]
      guard p <= 16 else {
        throw .pixelOutOfRange(path: path, image: k / Self.pixelCount, pixel: k % Self.pixelCount, value: Int(p))
      }
      images[k] = Float(p) / 16
    }
    var labels = [Int32](repeating: 0, count: count)
    for i in 0..<count {
      let l = bytes[Self.headerSize + pixelBytes + i]
      guard l < Self.classCount else { throw .labelOutOfRange(path: path, image: i, value: Int(l)) }
      labels[i] = Int32(l)
    }
    self.init(images: images, labels: labels)
  }
}

// MARK: - Split

extension Digits {
  /// The three disjoint parts of a data set made by ``Digits/split()``.
  public struct Split: Sendable {
    /// About 70 % of the images, for fitting.
    public let train: Digits
    /// About 10 %, for choosing hyper-parameters and early stopping.
    public let validation: Digits
    /// About 20 %, for the final report only.
    public let test: Digits
  }

  /// The seed of the shuffle in ``split()``.
  public static let splitSeed: UInt64 = 1797

  /// A fixed, stratified split into train (≈ 70 %), validation (≈ 10 %) and test (≈ 20 %):
  /// 1,257 / 180 / 360 images for the built-in data set.
  ///
  /// The result depends only on the labels, the same on every machine and every run:
  ///
  /// 1. Part sizes: test gets 20 % of `count` rounded up, validation 10 % rounded up (as
  ///    scikit-learn's `train_test_split` rounds its test part), train the rest: 360, 180
  ///    and 1,257 of 1,797.
  /// 2. Each part's size is shared among the classes in proportion to their counts by largest
  ///    remainder: class `c` with `n_c` images first gets `⌊size × n_c / count⌋`, and the images
  ///    still unassigned go one each to the classes with the largest remainders
  ///    `size × n_c mod count`, the lower class first on a tie. So every class has, in every
  ///    part, its proportional share rounded down or up. (In a set so small that a class's
  ///    test and validation shares add up to more than its images, validation gets only the
  ///    rest; this never happens with the built-in digits.)
  /// 3. A ``SparsityCore/SeededGenerator`` seeded with ``splitSeed`` shuffles the indices of
  ///    class 0 (in file order), then those of class 1, …, class 9, each by Fisher–Yates
  ///    (`j` drawn from `0...i` for `i` from the last position down to 1, by Lemire's
  ///    multiply-shift with rejection on the 64-bit output). The first test-share indices of
  ///    the shuffled class go to test, the next validation-share to validation, the rest to
  ///    train.
  /// 4. Each part lists its images in file order.
  ///
  /// `scripts/make_digits_resource.py` repeats this in Python and prints the indices.
  public func split() -> Split {
    let parts = Self.splitIndices(labels: labels)
    return Split(train: subset(parts.train), validation: subset(parts.validation), test: subset(parts.test))
  }

  /// The indices of ``split()``'s parts, each ascending.
  static func splitIndices(labels: [Int32]) -> (train: [Int], validation: [Int], test: [Int]) {
    let count = labels.count
    var members = [[Int]](repeating: [], count: classCount)
    for (i, label) in labels.enumerated() { members[Int(label)].append(i) }
    let classCounts = members.map(\.count)
    let testShares = shares(of: (count * 20 + 99) / 100, among: classCounts)
    let validationShares = shares(of: (count * 10 + 99) / 100, among: classCounts)

    var generator = SeededGenerator(seed: splitSeed)
    var train = [Int](), validation = [Int](), test = [Int]()
    for c in 0..<classCount {
      var indices = members[c]
      if indices.count > 1 {
        for i in stride(from: indices.count - 1, to: 0, by: -1) {
          indices.swapAt(i, boundedRandom(below: UInt64(i + 1), using: &generator))
        }
      }
      let t = testShares[c], v = min(validationShares[c], indices.count - t)
      test += indices[0..<t]
      validation += indices[t..<(t + v)]
      train += indices[(t + v)...]
    }
    return (train.sorted(), validation.sorted(), test.sorted())
  }

  /// `total` shared among classes in proportion to `counts`, by largest remainder.
  static func shares(of total: Int, among counts: [Int]) -> [Int] {
    let sum = counts.reduce(0, +)
    guard sum > 0 else { return counts.map { _ in 0 } }
    var result = counts.map { total * $0 / sum }
    let remainders = counts.map { total * $0 % sum }
    let order = counts.indices.sorted {
      remainders[$0] > remainders[$1] || (remainders[$0] == remainders[$1] && $0 < $1)
    }
    for c in order.prefix(total - result.reduce(0, +)) { result[c] += 1 }
    return result
  }

  /// A uniform integer in `0..<bound` (Lemire's multiply-shift with rejection); written out so
  /// the split does not depend on the standard library's `random(in:using:)`.
  static func boundedRandom(below bound: UInt64, using generator: inout SeededGenerator) -> Int {
    var (high, low) = generator.next().multipliedFullWidth(by: bound)
    if low < bound {
      let threshold = (0 &- bound) % bound
      while low < threshold { (high, low) = generator.next().multipliedFullWidth(by: bound) }
    }
    return Int(high)
  }
}

// MARK: - Errors

/// Why a digits file could not be loaded.
///
/// The ``description`` is one line naming the file and what is wrong with it:
///
/// ```swift
/// do { _ = try Digits(contentsOf: "digits.bin") }
/// catch { print("error: \(error)") }
/// ```
public enum DigitsError: Error, Equatable, Sendable, CustomStringConvertible {
  /// The package's resource bundle has no file `name`.
  case resourceNotFound(name: String)
  /// The file could not be read (missing, a directory, no permission…).
  case unreadable(path: String, detail: String)
  /// The file does not start with `DIGITS01`; `found` holds its first (up to 8) bytes.
  case badMagic(path: String, found: [UInt8])
  /// The header's image shape is not 8 × 8.
  case badShape(path: String, height: Int, width: Int)
  /// The file is shorter than its header says (or than the header itself).
  case truncated(path: String, expected: Int, actual: Int)
  /// The file is longer than its header says.
  case trailingBytes(path: String, expected: Int, actual: Int)
  /// A pixel is above 16.
  case pixelOutOfRange(path: String, image: Int, pixel: Int, value: Int)
  /// A label is above 9.
  case labelOutOfRange(path: String, image: Int, value: Int)

  public var description: String {
    switch self {
    case .resourceNotFound(let name):
      "resource '\(name)' not found in the SparsityNN resource bundle"
    case .unreadable(let path, let detail):
      "\(path): cannot read: \(detail)"
    case .badMagic(let path, let found):
      "\(path): not a digits file: starts with '\(Self.printable(found))' instead of 'DIGITS01'"
    case .badShape(let path, let height, let width):
      "\(path): images are \(height)×\(width), expected 8×8"
    case .truncated(let path, let expected, let actual):
      "\(path): truncated: \(actual) bytes, the header needs \(expected)"
    case .trailingBytes(let path, let expected, let actual):
      "\(path): \(actual) bytes, the header describes \(expected)"
    case .pixelOutOfRange(let path, let image, let pixel, let value):
      "\(path): image \(image), pixel \(pixel) is \(value), above 16"
    case .labelOutOfRange(let path, let image, let value):
      "\(path): label of image \(image) is \(value), above 9"
    }
  }

  /// `bytes` as ASCII, other bytes as `\xNN`.
  private static func printable(_ bytes: [UInt8]) -> String {
    bytes.map { b in
      (0x20..<0x7F).contains(b) && b != 0x5C
        ? String(UnicodeScalar(b)) : "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
    }.joined()
  }
}
