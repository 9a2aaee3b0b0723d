import Foundation
import SparsityCore
import SparsityTestSupport
import Testing

@testable import SparsityIO

/// The GGUF reader on files written by gguf-py's GGUFWriter (scripts/make_gguf_fixtures.py):
/// header, metadata and tensor table as gguf-py reads them, values bit-exact with
/// `gguf.quants.dequantize`.
@Suite struct GGUFReaderTests {
  private static func int(_ value: Any?) -> Int? {
    if let n = value as? Int { return n }
    return (value as? NSNumber)?.intValue
  }

  @Test(arguments: GGUFFixtures.names)
  func headerAndTensorTableMatchGGUFPy(name: String) throws {
    let file = try GGUFFile(contentsOf: GGUFFixtures.path(name))
    let reference = try #require(GGUFFixtures.reference[name])
    #expect(file.version == Self.int(reference["version"]))
    #expect(file.alignment == Self.int(reference["alignment"]))
    #expect(file.dataOffset == Self.int(reference["data_offset"]) || file.tensors.isEmpty)
    #expect(file.fileSize == Self.int(reference["file_size"]))
    let tensors = try #require(reference["tensors"] as? [[String: Any]])
    #expect(file.tensors.map(\.name) == tensors.map { $0["name"] as? String ?? "" })
    for (info, expected) in zip(file.tensors, tensors) {
      #expect(Int(info.type.rawValue) == Self.int(expected["type"]), "\(info.name)")
      #expect(info.type.name == expected["type_name"] as? String, "\(info.name)")
      #expect(info.dimensions == (expected["dims"] as? [Any])?.compactMap { Self.int($0) }, "\(info.name)")
      #expect(info.shape == info.dimensions.reversed())
      #expect(info.offset == Self.int(expected["offset"]), "\(info.name)")
      #expect(info.byteCount == Self.int(expected["bytes"]), "\(info.name)")
      #expect(file.tensor(named: info.name) == info)
      #expect(file.bytes(of: info).count == info.byteCount)
    }
  }

  @Test(arguments: GGUFFixtures.names)
  func metadataMatchesWhatWasWritten(name: String) throws {
    let file = try GGUFFile(contentsOf: GGUFFixtures.path(name))
    let reference = try #require(GGUFFixtures.reference[name])
    let entries = try #require(reference["metadata"] as? [[String: Any]])
    #expect(file.metadataKeys == entries.map { $0["key"] as? String ?? "" })
    #expect(file.metadata.count == entries.count)
    for entry in entries {
      let key = try #require(entry["key"] as? String)
      let value = try #require(file.metadata[key], "\(key)")
      let type = try #require(entry["type"] as? String)
      #expect(value.type.name == type, "\(key)")
      if case .array(let array) = value {
        #expect(array.elementType.name == entry["element_type"] as? String, "\(key)")
      }
      let expected = try #require(entry["value"])
      #expect(sameReference(referenceText(value), expected), "\(key): \(value) vs \(expected)")
    }
  }

  @Test func readsEveryValueType() throws {
    let file = try GGUFFile(contentsOf: GGUFFixtures.path("types.gguf"))
    #expect(file.metadata["test.uint8"] == .uint8(255))
    #expect(file.metadata["test.int8"] == .int8(-128))
    #expect(file.metadata["test.uint16"] == .uint16(65535))
    #expect(file.metadata["test.int16"] == .int16(-32768))
    #expect(file.metadata["test.uint32"] == .uint32(.max))
    #expect(file.metadata["test.int32"] == .int32(.min))
    #expect(file.metadata["test.float32"] == .float32(1e-5))
    #expect(file.metadata["test.uint64"] == .uint64(.max))
    #expect(file.metadata["test.int64"] == .int64(.min))
    #expect(file.metadata["test.float64"] == .float64(-2.5e-300))
    #expect(file.metadata["test.true"] == .bool(true))
    #expect(file.metadata["test.false"] == .bool(false))
    #expect(try file.string("test.string") == "héllo wörld ✓ 日本語 🙂 e\u{301}")
    #expect(try file.string("test.empty_string") == "")
    #expect(try file.strings("test.strings") == ["a", "", "Ġthe", "<|im_start|>", "🙂", "日本"])
    #expect(file.metadata["test.empty_array"] == .array(.int32([])))
    #expect(try file.integers("test.empty_array") == [])
    #expect(file.metadata["test.uint8s"] == .array(.uint8([0, 1, 255])))
    #expect(file.metadata["test.int8s"] == .array(.int8([-128, 0, 127])))
    #expect(file.metadata["test.bools"] == .array(.bool([true, false, true])))
    #expect(file.metadata["test.float64s"] == .array(.float64([0.1, -1e300])))
    #expect(try file.integers("test.int32s") == Array(-3..<37))
    #expect(try file.integers("test.int64s") == [Int.min, Int.max])
    #expect(try file.floats("test.float32s") == [0.5, -1.25, Double(Float(1e-5)), Double(Float(3.0e38))])
    #expect(file.metadata["test.strings"]?.typeName == "[STRING]")
  }

  /// Q8_0 matrices split into their own int8 values and block scales, which multiply back to
  /// the dequantized values (bit-exact with gguf-py) element for element; other types and ranks give nil.
  @Test func q8_0BlocksAreTheFilesOwnValues() throws {
    let file = try GGUFFile(contentsOf: GGUFFixtures.path("types.gguf"))
    var split = 0
    for info in file.tensors {
      guard let (values, scales) = file.q8_0Blocks(info) else {
        if info.type == .q8_0 && info.shape.count == 2 {
          // Only a block scale that is negative or not finite keeps a Q8_0 matrix out of int8.
          let bytes = file.bytes(of: info)
          let halves = (0..<(bytes.count / 34)).map { GGUFDequantization.float(fromHalf: bytes.load(fromByteOffset: 34 * $0, as: UInt16.self)) }
          #expect(halves.contains { !($0 >= 0 && $0.isFinite) }, "\(info.name) \(info.shape)")
        }
        continue
      }
      split += 1
      let (rows, columns) = (info.shape[0], info.shape[1])
      #expect(values.shape == [rows, columns] && scales.shape == [rows, columns / 32])
      let q = values.scalars(as: Int8.self)
      let s = scales.floatValues
      let expected = try file.dequantized(info).floatValues
      for i in 0..<(rows * columns) where Float(q[i]) * s[i / 32] != expected[i] {
        Issue.record("\(info.name) element \(i): \(q[i]) × \(s[i / 32]) ≠ \(expected[i])")
        break
      }
    }
    #expect(split >= 1)
  }

  @Test func typedAccessorsConvertAndNameTheKey() throws {
    let file = try GGUFFile(contentsOf: GGUFFixtures.path("types.gguf"))
    #expect(try file.integer("test.uint8") == 255)
    #expect(try file.integer("test.int64") == Int.min)
    #expect(try file.integer("test.uint32") == 4_294_967_295)
    #expect(try file.float("test.float32") == Double(Float(1e-5)))
    #expect(try file.float("test.int16") == -32768)
    #expect(try file.bool("test.true"))
    #expect(try file.string("general.architecture") == "llama")
    #expect(throws: GGUFError.missingKey("llama.block_count")) { try file.integer("llama.block_count") }
    #expect(throws: GGUFError.wrongValueType(key: "test.string", expected: "an integer", found: "STRING")) {
      try file.integer("test.string")
    }
    #expect(throws: GGUFError.valueOutOfRange(key: "test.uint64", value: "18446744073709551615")) {
      try file.integer("test.uint64")
    }
    #expect(throws: GGUFError.valueOutOfRange(key: "test.uint64s", value: "18446744073709551615")) {
      try file.integers("test.uint64s")
    }
    #expect(throws: GGUFError.wrongValueType(key: "test.int32s", expected: "[STRING]", found: "[INT32]")) {
      try file.strings("test.int32s")
    }
    #expect(throws: GGUFError.wrongValueType(key: "test.uint8", expected: "BOOL", found: "UINT8")) {
      try file.bool("test.uint8")
    }
    #expect(throws: GGUFError.wrongValueType(key: "test.strings", expected: "STRING", found: "[STRING]")) {
      try file.string("test.strings")
    }
    #expect(throws: GGUFError.wrongValueType(key: "test.true", expected: "a number", found: "BOOL")) {
      try file.float("test.true")
    }
  }

  /// Every dequantizable tensor equals `gguf.quants.dequantize` bit for bit (NaN payloads included).
  @Test(arguments: ["types.gguf", "v2-align64.gguf"])
  func dequantizesBitExactlyLikeGGUFPy(name: String) throws {
    let expected = try SafetensorsFile(contentsOf: GGUFFixtures.path("expected.sft"))
    let file = try GGUFFile(contentsOf: GGUFFixtures.path(name))
    let fromMemory = try GGUFFile(bytes: try fileBytes(GGUFFixtures.path(name)))
    var checked = 0
    for info in file.tensors where info.type.isDequantizable {
      let reference = try expected.tensor(named: "\(name)/\(info.name)")
      let values = try file.dequantized(info.name)
      #expect(values.dtype == .float32)
      #expect(values.shape == info.shape, "\(info.name)")
      #expect(values.shape == reference.shape, "\(info.name)")
      let (got, want) = (bitPatterns(values), bitPatterns(reference))
      let mismatch = zip(got, want).enumerated().first { $0.element.0 != $0.element.1 }
      #expect(got == want, "\(info.name) (\(info.type)): first mismatch \(mismatch.map { "at \($0.offset): \(String($0.element.0, radix: 16)) vs \(String($0.element.1, radix: 16))" } ?? "none")")
      #expect(bitPatterns(try fromMemory.dequantized(info.name)) == want)
      // The free function gives the same values.
      let raw = try withExtendedLifetime(file) {
        try GGUFDequantization.dequantize(file.bytes(of: info), type: info.type, count: info.elementCount)
      }
      #expect(raw.map(\.bitPattern) == want)
      checked += 1
    }
    #expect(checked == expected.entries.filter { $0.name.hasPrefix(name + "/") }.count)
    #expect(checked > 0)
  }

  @Test func coversEveryDequantizableTypeAndShape() throws {
    let file = try GGUFFile(contentsOf: GGUFFixtures.path("types.gguf"))
    let types = Set(file.tensors.map(\.type))
    let dequantizable = GGMLType.allCases.filter(\.isDequantizable)
    #expect(Set(dequantizable) == [.f32, .f16, .bf16, .q8_0, .q4_0, .q4_1, .q5_0, .q5_1])
    #expect(Set(dequantizable).isSubset(of: types))
    #expect(Set(file.tensors.map(\.dimensions.count)) == [1, 2, 3])
  }

  @Test func refusesToDequantizeUnsupportedTypes() throws {
    let file = try GGUFFile(contentsOf: GGUFFixtures.path("types.gguf"))
    #expect(throws: GGUFError.unsupportedType(name: "q4_k.unsupported", type: .q4_K)) {
      try file.dequantized("q4_k.unsupported")
    }
    #expect(throws: GGUFError.unsupportedType(name: "i32.unsupported", type: .i32)) {
      try file.dequantized("i32.unsupported")
    }
    #expect(throws: GGUFError.missingTensor("nope")) { try file.dequantized("nope") }
    let q4k = try #require(file.tensor(named: "q4_k.unsupported"))
    #expect(q4k.dimensions == [256, 2] && q4k.byteCount == 2 * 144)
    #expect(throws: GGUFError.unsupportedType(name: "", type: .q4_K)) {
      _ = try GGUFDequantization.dequantize(file.bytes(of: q4k), type: .q4_K, count: 512)
    }
    #expect(
      GGUFError.unsupportedType(name: "q4_k.unsupported", type: .q4_K).description
        == "tensor 'q4_k.unsupported' has type Q4_K, which cannot be dequantized (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 can)")
  }

  /// The first Q4_1 block of SmolLM2's `blk.0.attn_q.weight` (the facts page's golden values).
  @Test func decodesTheGoldenQ4_1Block() throws {
    let hex = "0f30d8b9458765406f65164b677664502267655a"
    let bytes: [UInt8] = stride(from: 0, to: hex.count, by: 2).map {
      let start = hex.index(hex.startIndex, offsetBy: $0)
      return UInt8(hex[start..<hex.index(start, offsetBy: 2)], radix: 16)!
    }
    let values = try bytes.withUnsafeBytes { try GGUFDequantization.dequantize($0, type: .q4_1, count: 32) }
    #expect(GGUFDequantization.float(fromHalf: 0x300F) == 0.1268310546875)
    #expect(GGUFDequantization.float(fromHalf: 0xB9D8) == -0.73046875)
    #expect(Array(values.prefix(4)) == [-0.0963134765625, 0.1573486328125, -0.0963134765625, -0.73046875])
    #expect(values[16] == -0.22314453125)
  }

  /// The half-float decoder against Swift's `Float16` on all 65,536 patterns.
  @Test func halfDecoderIsExactOnEveryPattern() {
    var mismatches = 0
    for bits in 0...UInt16.max {
      let ours = GGUFDequantization.float(fromHalf: bits)
      let half = Float16(bitPattern: bits)
      if half.isNaN {
        // NaN: sign and payload kept, not quieted (as numpy's astype(float32)).
        let expected = UInt32(bits & 0x8000) << 16 | 0x7F80_0000 | UInt32(bits & 0x3FF) << 13
        if ours.bitPattern != expected { mismatches += 1 }
      } else if ours.bitPattern != Float(half).bitPattern {
        mismatches += 1
      }
    }
    #expect(mismatches == 0)
  }

  @Test func f32TensorsAreViewsOfTheMappingWhenAligned() throws {
    let file = try GGUFFile(contentsOf: GGUFFixtures.path("types.gguf"))
    let info = try #require(file.tensor(named: "f32.matrix"))
    let tensor = try file.dequantized(info.name)
    let view = file.bytes(of: info)
    #expect(address(of: tensor) == Int(bitPattern: view.baseAddress))
    // Evicting the pages keeps the values readable (they fault in again from the file).
    let before = bitPatterns(tensor)
    file.evictPages(of: info)
    tensor.evictPages()
    #expect(bitPatterns(tensor) == before)
    #expect(bitPatterns(try file.dequantized(info.name)) == before)
  }

  @Test func readsAcceptedEdgeCases() throws {
    let directory = GGUFFixtures.path("accepted")
    let names = try directoryListing(directory).filter { $0.hasSuffix(".gguf") }
    #expect(names.count >= 10)
    for name in names {
      let file = try GGUFFile(contentsOf: directory + "/" + name)
      for info in file.tensors where info.type.isDequantizable {
        let values = try file.dequantized(info.name)
        #expect(values.count == info.elementCount)
      }
    }
    let unaligned = try GGUFFile(contentsOf: directory + "/alignment-1-unaligned-f32.gguf")
    #expect(unaligned.alignment == 1)
    #expect(try unaligned.dequantized("x").scalars(as: Float.self) == [3, -4])
    #expect(try unaligned.dequantized("h").scalars(as: Float.self) == [1, -2, 0.5])
    let version2 = try GGUFFile(contentsOf: directory + "/alignment-64-version-2.gguf")
    #expect(version2.version == 2 && version2.alignment == 64 && version2.tensors[1].offset == 64)
    let named = try GGUFFile(contentsOf: directory + "/four-dimensions-q8_0.gguf")
    #expect(named.tensors[0].shape == [1, 2, 1, 32] && named.tensors[0].name.utf8.count == 63)
  }

  @Test func theLastTensorsPaddingIsOptional() throws {
    let bytes = try fileBytes(GGUFFixtures.path("v2-align64.gguf"))
    let file = try GGUFFile(bytes: bytes)
    let last = try #require(file.tensors.last)
    let minimal = file.dataOffset + last.offset + last.byteCount
    #expect(minimal < bytes.count)
    for length in minimal...bytes.count {
      #expect(throws: Never.self) { _ = try GGUFFile(bytes: Array(bytes.prefix(length))) }
    }
    #expect(throws: GGUFError.trailingBytes(expected: bytes.count, actual: bytes.count + 1)) {
      _ = try GGUFFile(bytes: bytes + [0])
    }
  }

  /// Every prefix of a valid file that cuts into its data or earlier is rejected, never a crash.
  @Test(arguments: ["types.gguf", "v2-align64.gguf", "metadata-only.gguf"])
  func rejectsEveryTruncation(name: String) throws {
    let bytes = try fileBytes(GGUFFixtures.path(name))
    let file = try GGUFFile(bytes: bytes)
    // Without tensors the file may end right after the infos (the padding is optional).
    let minimal =
      file.tensors.last.map { file.dataOffset + $0.offset + $0.byteCount }
      ?? (bytes.lastIndex { $0 != 0 } ?? 0) + 1
    for length in 0..<minimal {
      #expect(throws: GGUFError.self) { _ = try GGUFFile(bytes: Array(bytes.prefix(length))) }
    }
  }

  @Test func ggmlTypeTableMatchesGGUFPy() {
    #expect(GGMLType.allCases.count == 34)
    #expect(Set(GGMLType.allCases.map(\.rawValue)).count == 34)
    for removed: UInt32 in [4, 5, 31, 32, 33, 36, 37, 38, 42, 1000] { #expect(GGMLType(rawValue: removed) == nil) }
    #expect(GGMLType(rawValue: 3) == .q4_1)
    #expect(GGMLType(name: "Q4_K") == .q4_K)
    #expect((GGMLType.q4_K.blockElements, GGMLType.q4_K.blockBytes) == (256, 144))
    #expect((GGMLType.q6_K.blockElements, GGMLType.q6_K.blockBytes) == (256, 210))
    #expect((GGMLType.q5_1.blockElements, GGMLType.q5_1.blockBytes) == (32, 24))
    #expect((GGMLType.iq4_XS.blockElements, GGMLType.iq4_XS.blockBytes) == (256, 136))
    #expect((GGMLType.mxfp4.blockElements, GGMLType.mxfp4.blockBytes) == (32, 17))
    #expect(GGMLType.bf16.rawValue == 30 && GGMLType.bf16.description == "BF16")
    #expect(GGMLType.q8_0.rowBytes(elements: 64) == 68)
    #expect(GGMLType.q8_0.rowBytes(elements: 48) == nil)
  }

  @Test func recognizesTheMagic() throws {
    #expect(GGUFFile.hasMagic(atPath: GGUFFixtures.path("types.gguf")))
    #expect(!GGUFFile.hasMagic(atPath: Fixtures.path("reference.sft")))
    #expect(!GGUFFile.hasMagic(atPath: GGUFFixtures.path("does-not-exist.gguf")))
    #expect(GGUFFile.hasMagic(Array("GGUF".utf8)))
    #expect(!GGUFFile.hasMagic(Array("GGU".utf8)))
  }
}
