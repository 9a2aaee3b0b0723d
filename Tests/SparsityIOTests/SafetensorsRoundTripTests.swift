import PropertyBased
import SparsityCore
import SparsityTestSupport
import Testing

@testable import SparsityIO

/// Shapes of every kind: scalar, empty, vectors and ragged matrices.
private let shapes: [[Int]] = [[], [0], [3, 0], [1], [2], [4], [7], [3, 5], [2, 3, 4], [1, 1, 13], [8, 6]]

@Suite struct SafetensorsRoundTripTests {
  @Test(arguments: DType.allCases)
  func roundTripsEveryShapeOfADType(dtype: DType) throws {
    let tensors = shapes.enumerated().compactMap { index, shape in
      sampleTensor(shape: shape, dtype: dtype, seed: UInt64(index + 1)).map { ("t\(index)", $0) }
    }
    // Sub-byte dtypes keep only the shapes that fill whole bytes; all others keep every shape.
    #expect(tensors.count >= (dtype.byteWidth == nil ? 5 : shapes.count))
    let metadata = ["dtype": dtype.rawValue, "format": "pt"]

    let bytes = try SafetensorsFile.serialize(tensors, metadata: metadata)
    let file = try SafetensorsFile(bytes: bytes)
    #expect(file.metadata == metadata)
    #expect(sameTensors(try file.tensors(), tensors))
    for (name, tensor) in tensors {
      let entry = try #require(file.entry(named: name))
      #expect(entry.dtype == dtype && entry.shape == tensor.shape)
      #expect(entry.dataRange.count == tensor.byteCount)
    }
    // read → write → read gives the same bytes.
    #expect(try SafetensorsFile.serialize(try file.tensors(), metadata: file.metadata) == bytes)
  }

  @Test func roundTripsAllDTypesInOneFileWithAlignedZeroCopyViews() throws {
    var tensors: [(name: String, tensor: Tensor)] = []
    for (index, dtype) in DType.allCases.enumerated() {
      let count = dtype.byteWidth == nil ? 8 : 3 + index % 5  // ragged byte counts
      if let tensor = sampleTensor(shape: [count], dtype: dtype, seed: UInt64(index)) {
        tensors.append(("w.\(dtype.rawValue.lowercased())", tensor))
      }
    }
    #expect(tensors.count == DType.allCases.count)
    try withTemporaryDirectory { directory in
      let path = directory + "/all.safetensors"
      try SafetensorsFile.write(tensors, to: path)
      let file = try SafetensorsFile(contentsOf: path)
      #expect(file.metadata.isEmpty)
      #expect(sameTensors(try file.tensors(), tensors))
      // The writer's order keeps each tensor aligned, so every tensor is a view of the
      // mapping: two reads share one address instead of making two copies.
      for entry in file.entries where entry.dataRange.count > 0 {
        let first = try file.tensor(named: entry.name)
        let second = try file.tensor(named: entry.name)
        #expect(address(of: first) == address(of: second), "\(entry.name) was copied")
        #expect(address(of: first) % (entry.dtype.byteWidth ?? 1) == 0)
      }
    }
  }

  @Test func ordersDataByDescendingAlignmentThenName() throws {
    let tensors: [(name: String, tensor: Tensor)] = [
      ("b", Tensor([1] as [Float16])), ("a", Tensor([1] as [Int8])), ("c", Tensor([1] as [Float])),
      ("a2", Tensor([1] as [Float])), ("B", Tensor([1] as [Float])), ("d", Tensor([1] as [Int64])),
    ]
    let file = try SafetensorsFile(bytes: try SafetensorsFile.serialize(tensors))
    #expect(file.entries.map(\.name) == ["d", "B", "a2", "c", "b", "a"])
    #expect(file.entries.map(\.dataRange) == [0..<8, 8..<12, 12..<16, 16..<20, 20..<22, 22..<23])
  }

  @Test func writesTheReferenceHeaderLayout() throws {
    // Same bytes as the reference implementation's `test_serialization` (safetensors tensor.rs).
    let values: [Float] = [0, 1, 2, 3, 4, 5]
    let bytes = try SafetensorsFile.serialize([("attn.0", Tensor(values, shape: [1, 2, 3]))])
    let header = #"{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}"#
    #expect(bytes.count == 8 + 64 + 24)
    #expect(bytes.prefix(8) == [64, 0, 0, 0, 0, 0, 0, 0])
    #expect(Array(bytes[8..<72]) == Array(header.utf8))
    // Empty file: "{}" padded to 8 bytes with spaces.
    #expect(try SafetensorsFile.serialize([]) == [8, 0, 0, 0, 0, 0, 0, 0] + Array("{}      ".utf8))
  }

  @Test func escapesNamesAndMetadataLikeTheReference() throws {
    let name = "q\"b\\s/\n\t\u{1}\u{7F}é"
    let bytes = try SafetensorsFile.serialize(
      [(name, Tensor([1] as [UInt8]))], metadata: ["k\u{0}": "v\r\u{8}\u{C}"])
    let header = String(decoding: bytes[8...].prefix { $0 != 0x01 }, as: UTF8.self)
    #expect(header.hasPrefix(#"{"__metadata__":{"k\u0000":"v\r\b\f"},"q\"b\\s/\n\t\u0001"#))
    let file = try SafetensorsFile(bytes: bytes)
    #expect(file.entries.map(\.name) == [name])
    #expect(file.metadata == ["k\u{0}": "v\r\u{8}\u{C}"])
  }

  @Test func readsMisalignedDataIntoAlignedCopies() throws {
    // A hand-made header of 9 bytes puts the data at byte 17: misaligned for F32.
    let values: [Float] = [1.5, -2, 3.25]
    var json = Array(#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}"#.utf8)
    while json.count % 8 != 1 { json.append(0x20) }
    #expect((8 + json.count) % 4 != 0)
    var bytes = (0..<8).map { UInt8(truncatingIfNeeded: json.count >> (8 * $0)) } + json
    values.withUnsafeBytes { bytes.append(contentsOf: $0) }
    let file = try SafetensorsFile(bytes: bytes)
    let tensor = try file.tensor(named: "x")
    #expect(address(of: tensor) % 4 == 0)
    #expect(tensor.scalars(as: Float.self) == values)
  }

  @Test func acceptsPaddingAndAnyTensorOrderInTheHeader() throws {
    // Tensors listed out of data order, whitespace inside the JSON, tab/newline padding.
    let json = #"{ "b" : {"shape":[1],"dtype":"U8","data_offsets":[2,3]}, "a":{"data_offsets":[0,2],"dtype":"I8","shape":[2]} }"# + "\n\t  "
    let bytes = (0..<8).map { UInt8(truncatingIfNeeded: json.utf8.count >> (8 * $0)) } + Array(json.utf8) + [7, 8, 9]
    let file = try SafetensorsFile(bytes: bytes)
    #expect(file.entries.map(\.name) == ["a", "b"])
    #expect(try file.tensor(named: "a").scalars(as: Int8.self) == [7, 8])
    #expect(try file.tensor(named: "b").scalars(as: UInt8.self) == [9])
  }

  @Test func namesAMissingTensor() throws {
    let file = try SafetensorsFile(bytes: try SafetensorsFile.serialize([("a", Tensor([1] as [Float]))]))
    #expect(file.entry(named: "b") == nil)
    #expect(throws: SafetensorsError.missingTensor("b")) { try file.tensor(named: "b") }
    #expect(SafetensorsError.missingTensor("b").description == "no tensor named 'b'")
  }

  @Test func roundTripsRandomNamesMetadataAndTensors() async {
    let text = Gen.character(in: "\u{0}"..."\u{D7FF}").string(of: 0...6)
    let byteDTypes = DType.allCases.filter { $0.byteWidth != nil }
    let tensors = zip(text, Gen<DType?>.element(of: byteDTypes), Gen.int(in: 0...9)).array(of: 0...6)
    let metadata = zip(text, text).dictionary(ofAtMost: 0...4)
    await propertyCheck(input: tensors, metadata) { specs, metadata in
      var seen = Set<String>()
      let named = specs.enumerated().compactMap { index, spec -> (name: String, tensor: Tensor)? in
        let name = "n" + spec.0
        guard let dtype = spec.1, seen.insert(name).inserted,
          let tensor = sampleTensor(shape: [spec.2], dtype: dtype, seed: UInt64(index))
        else { return nil }
        return (name, tensor)
      }
      do {
        let bytes = try SafetensorsFile.serialize(named, metadata: metadata)
        #expect((bytes.count - named.reduce(0) { $0 + $1.tensor.byteCount }) % 8 == 0)
        let file = try SafetensorsFile(bytes: bytes)
        #expect(file.metadata == metadata)
        #expect(sameTensors(try file.tensors(), named))
      } catch {
        Issue.record("round trip failed: \(error)")
      }
    }
  }
}
