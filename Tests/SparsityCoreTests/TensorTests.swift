import SparsityCore
import SparsityTestSupport
import Testing

private func address(_ t: Tensor) -> UnsafeRawPointer? { t.withUnsafeBytes { $0.baseAddress } }

@Suite("Tensor basics")
struct TensorTests {
  @Test(arguments: byteAlignedDTypes)
  func zerosHaveZeroBytesAndTheRightSize(_ dtype: DType) {
    let t = Tensor(zeros: [3, 5], dtype: dtype)
    #expect(t.shape == [3, 5])
    #expect(t.rank == 2)
    #expect(t.count == 15)
    #expect(t.byteCount == 15 * dtype.byteWidth!)
    #expect(bytes(of: t).allSatisfy { $0 == 0 })
    #expect(t.dtype == dtype)
  }

  @Test func subByteZerosPackTwoElementsPerByte() {
    #expect(Tensor(zeros: [2, 3], dtype: .float4E2M1).byteCount == 3)
    #expect(Tensor(zeros: [4], dtype: .float6E2M3).byteCount == 3)
  }

  @Test func scalarsAndShapes() {
    let v = Tensor([1, 2, 3] as [Int32])
    #expect(v.shape == [3])
    #expect(v.dtype == .int32)
    let s = Tensor(scalar: Float(2.5))
    #expect(s.shape == [])
    #expect(s.rank == 0)
    #expect(s.count == 1)
    #expect(s.scalars(as: Float.self) == [2.5])
    let r = Tensor(repeating: Float16(1.5), shape: [2, 2])
    #expect(r.dtype == .float16)
    #expect(r.doubleValues == [1.5, 1.5, 1.5, 1.5])
    let e = Tensor([] as [Float], shape: [0, 4])
    #expect(e.count == 0)
    #expect(e.byteCount == 0)
    #expect(Tensor.elementCount([2, 0, 3]) == 0)
    #expect(Tensor.elementCount([]) == 1)
    #expect(Tensor.strides(of: [2, 3, 4]) == [12, 4, 1])
    #expect(Tensor.strides(of: []) == [])
  }

  @Test func copyingInitCopiesTheBytes() {
    var raw: [UInt8] = [0, 0, 0x80, 0x3F, 0, 0, 0, 0x40]
    let t = raw.withUnsafeBytes { Tensor(shape: [2], dtype: .float32, copying: $0) }
    raw[3] = 0
    #expect(t.scalars(as: Float.self) == [1, 2])
  }

  @Test func equalityIsBitwise() {
    let a = Tensor([0.0, 1] as [Float])
    #expect(a == Tensor([0.0, 1] as [Float]))
    #expect(a != Tensor([-0.0, 1] as [Float]), "-0.0 is a different bit pattern")
    #expect(Tensor([Float.nan]) == Tensor([Float.nan]), "the same NaN bits are equal")
    #expect(a != Tensor([0.0, 1] as [Float], shape: [2, 1]))
    #expect(a != Tensor([0.0, 1] as [Double]))
    #expect(a.isBitwiseEqual(to: a))
    #expect(!a.isBitwiseEqual(to: Tensor([0.0, 2] as [Float])))
  }

  @Test func copiesHaveValueSemantics() {
    var a = Tensor([1, 2, 3, 4] as [Float], shape: [2, 2])
    let b = a
    #expect(address(a) == address(b), "copies share storage until written")
    a.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = 9 }
    #expect(a.scalars(as: Float.self) == [9, 2, 3, 4])
    #expect(b.scalars(as: Float.self) == [1, 2, 3, 4])
    #expect(address(a) != address(b))

    // Mutating the other copy, through raw bytes, leaves the first alone too.
    var c = b
    c.withUnsafeMutableBytes { $0[0] = 0; $0[1] = 0; $0[2] = 0; $0[3] = 0 }
    #expect(c.scalars(as: Float.self) == [0, 2, 3, 4])
    #expect(b.scalars(as: Float.self) == [1, 2, 3, 4])
  }

  @Test func uniqueStorageIsWrittenInPlace() {
    var a = Tensor([1, 2, 3] as [Int8])
    let before = address(a)
    a.withUnsafeMutableBufferPointer(as: Int8.self) { $0[1] = 7 }
    #expect(address(a) == before)
    #expect(a.scalars(as: Int8.self) == [1, 7, 3])
  }

  @Test func reshapedSharesStorageAndStaysIndependent() {
    let a = Tensor((0..<6).map(Float.init), shape: [2, 3])
    var b = a.reshaped([3, 2])
    #expect(address(a) == address(b))
    b.withUnsafeMutableBufferPointer(as: Float.self) { $0[5] = -1 }
    #expect(a.scalars(as: Float.self) == [0, 1, 2, 3, 4, 5])
    #expect(b.scalars(as: Float.self) == [0, 1, 2, 3, 4, -1])
    #expect(a.shape == [2, 3])
  }

  @Test func borrowedStorageIsCopiedOnWrite() {
    let owner = ByteOwner([1, 2, 3, 4, 5, 6])
    let storage = TensorStorage(borrowing: UnsafeRawBufferPointer(owner.pointer), owner: owner)
    #expect(!storage.isWritable)
    #expect(storage.byteCount == 6)
    var t = Tensor(shape: [2, 3], dtype: .uint8, storage: storage)
    #expect(address(t) == UnsafeRawPointer(owner.pointer.baseAddress!), "reads use the borrowed bytes")
    #expect(t.scalars(as: UInt8.self) == [1, 2, 3, 4, 5, 6])
    // Even as the only reference, borrowed storage is copied before the first write.
    t.withUnsafeMutableBufferPointer(as: UInt8.self) { $0[0] = 100 }
    #expect(t.scalars(as: UInt8.self) == [100, 2, 3, 4, 5, 6])
    #expect(Array(owner.pointer) == [1, 2, 3, 4, 5, 6], "the borrowed bytes are never written")
    let copied = address(t)
    #expect(copied != UnsafeRawPointer(owner.pointer.baseAddress!))
    // The copy is owned and unique: the next write happens in place.
    t.withUnsafeMutableBufferPointer(as: UInt8.self) { $0[1] = 101 }
    #expect(address(t) == copied)
    #expect(t.scalars(as: UInt8.self) == [100, 101, 3, 4, 5, 6])
  }

  @Test func storageCopyIsIndependentAndWritable() {
    let s = TensorStorage(zeroedByteCount: 8)
    #expect(s.isWritable)
    s.baseAddress.storeBytes(of: 7, as: UInt8.self)
    let c = s.copy()
    c.baseAddress.storeBytes(of: 9, as: UInt8.self)
    #expect(s.baseAddress.load(as: UInt8.self) == 7)
    #expect(c.baseAddress.load(as: UInt8.self) == 9)
    #expect(c.byteCount == 8)
    #expect(Int(bitPattern: s.baseAddress) % 64 == 0, "allocations are 64-byte aligned")
    #expect(TensorStorage(zeroedByteCount: 0).byteCount == 0)
  }

  @Test(arguments: [
    (Tensor([1, 2, 3, 4] as [Float], shape: [2, 2]), "Tensor<F32>[2, 2][1, 2, 3, 4]"),
    (Tensor([0.5, -2] as [Double]), "Tensor<F64>[2][0.5, -2]"),
    (Tensor((1...9).map { Int8($0) }), "Tensor<I8>[9][1, 2, 3, 4, 5, 6, 7, 8, …]"),
    (Tensor(zeros: [4], dtype: .float8E4M3), "Tensor<F8_E4M3>[4][4 bytes]"),
    (Tensor(zeros: [0], dtype: .float32), "Tensor<F32>[0][0 bytes]"),
  ])
  func description(_ t: Tensor, _ expected: String) {
    #expect(t.description == expected)
  }

  @Test(arguments: [0, 1, 2, 7, 100])
  func parallelForEachRangeCoversEveryIndexOnce(_ count: Int) {
    let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: max(count, 1))
    defer { hits.deallocate() }
    hits.initialize(repeating: 0)
    Parallel.forEachRange(count) { range in
      for i in range { hits[i] += 1 }
    }
    #expect(hits.prefix(count).allSatisfy { $0 == 1 })
    #expect(Parallel.workerCount >= 1)
  }

  @Test func parallelForEachRunsEveryChunk() {
    let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: 13)
    defer { hits.deallocate() }
    hits.initialize(repeating: 0)
    Parallel.forEach(chunks: 13) { hits[$0] += 1 }
    #expect(Array(hits) == Array(repeating: 1, count: 13))
    Parallel.forEach(chunks: 0) { _ in Issue.record("no chunk should run") }
  }
}
