import Foundation
import SparsityCore
import SparsityTestSupport
import Testing

@testable import SparsityIO

@Suite struct SafetensorsWriterTests {
  @Test(arguments: [
    ([("", Tensor([1] as [Float]))], SafetensorsError.invalidName(name: "", detail: "names must not be empty")),
    ([("__metadata__", Tensor([1] as [Float]))], .invalidName(name: "__metadata__", detail: "the name is reserved for the metadata")),
    ([("a", Tensor([1] as [Float])), ("a", Tensor([2] as [Int8]))], .duplicateName("a")),
  ])
  func rejectsInvalidNames(tensors: [(String, Tensor)], expected: SafetensorsError) {
    #expect(throws: expected) { _ = try SafetensorsFile.serialize(tensors.map { (name: $0.0, tensor: $0.1) }) }
  }

  @Test func writingIntoAMissingDirectoryThrowsAndCreatesNothing() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/missing/model.safetensors"
      let error = expectSafetensorsError {
        try SafetensorsFile.write([("a", Tensor([1] as [Float]))], to: path)
      }
      #expect(
        error == .io(
          path: path,
          detail: "cannot create a temporary file: directory '\(directory)/missing' does not exist"))
      #expect(error?.description.hasPrefix(path) == true)
      let listing = try directoryListing(directory)
      #expect(listing.isEmpty)
    }
  }

  @Test func aFailedWriteLeavesTheTargetUntouchedAndNoTemporaryFiles() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/model.safetensors"
      let original: [(name: String, tensor: Tensor)] = [("w", Tensor([1, 2, 3] as [Float]))]
      try SafetensorsFile.write(original, metadata: ["v": "1"], to: path)
      let before = try fileBytes(path)

      #expect(throws: SafetensorsError.duplicateName("x")) {
        try SafetensorsFile.write(
          [("x", Tensor([1] as [Float])), ("x", Tensor([2] as [Float]))], to: path)
      }
      let after = try fileBytes(path)
      let listing = try directoryListing(directory)
      #expect(after == before)
      #expect(listing == ["model.safetensors"])
    }
  }

  @Test func replacesAnExistingFileAtomically() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/model.safetensors"
      try SafetensorsFile.write([("old", Tensor([1] as [Float]))], to: path)
      let old = try SafetensorsFile(contentsOf: path)  // keeps the old file mapped
      let oldTensor = try old.tensor(named: "old")
      let new: [(name: String, tensor: Tensor)] = [("new", Tensor([5, 6] as [Int32]))]
      try SafetensorsFile.write(new, to: path)
      let listing = try directoryListing(directory)
      #expect(listing == ["model.safetensors"])
      #expect(sameTensors(try SafetensorsFile(contentsOf: path).tensors(), new))
      // The rename left the old inode, and the tensor mapped from it, intact.
      #expect(oldTensor.scalars(as: Float.self) == [1])
    }
  }

  @Test func mutatingAMappedTensorCopiesAndLeavesTheFileAlone() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/weights.safetensors"
      let values: [Float] = [1, 2, 3, 4, 5, 6]
      try SafetensorsFile.write([("w", Tensor(values, shape: [2, 3]))], to: path)
      let bytesBefore = try fileBytes(path)

      let file = try SafetensorsFile(contentsOf: path)
      var tensor = try file.tensor(named: "w")
      #expect(tensor.shape == [2, 3])
      #expect(tensor.scalars(as: Float.self) == values)
      let mappedAddress = address(of: tensor)
      tensor.withUnsafeMutableBufferPointer(as: Float.self) { $0[0] = -100 }
      #expect(address(of: tensor) != mappedAddress)
      #expect(tensor.scalars(as: Float.self) == [-100, 2, 3, 4, 5, 6])

      #expect(try file.tensor(named: "w").scalars(as: Float.self) == values)
      #expect(try fileBytes(path) == bytesBefore)
    }
  }

  @Test func tensorsOutliveTheFileValue() throws {
    try withTemporaryDirectory { directory in
      let path = directory + "/w.safetensors"
      try SafetensorsFile.write([("w", Tensor([7, 8] as [Int16]))], to: path)
      let tensor = try { try SafetensorsFile(contentsOf: path).tensor(named: "w") }()
      #expect(tensor.scalars(as: Int16.self) == [7, 8])
    }
  }
}
