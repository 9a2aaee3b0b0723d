import Dispatch
import Foundation
import Synchronization
import Testing

@testable import SparsityCore

/// The fork–join pool behind `Parallel.forEach`: every chunk exactly once, whatever the timing.
@Suite struct ForkJoinPoolTests {
  /// Runs `jobs` jobs of `chunks` chunks on a two-thread pool of its own and counts the calls.
  private func counts(pool: ForkJoinPool, jobs: Int, chunks: Int, work: Int = 0) -> [Int] {
    let hits = UnsafeMutableBufferPointer<Atomic<Int>>.allocate(capacity: chunks)
    defer { hits.deallocate() }
    for i in 0..<chunks { (hits.baseAddress! + i).initialize(to: Atomic(0)) }
    for _ in 0..<jobs {
      let ran = pool.run(chunks: chunks) { c in
        var x = 0.0
        for i in 0..<work { x += Double(i) }
        if x >= 0 { hits[c].wrappingAdd(1, ordering: .relaxed) }
      }
      #expect(ran)
    }
    return (0..<chunks).map { hits[$0].load(ordering: .relaxed) }
  }

  @Test(arguments: [(1, 1), (2, 2), (3, 17), (4, 1000)])
  func everyChunkRunsOncePerJob(threads: Int, chunks: Int) {
    let pool = ForkJoinPool(threads: threads)
    // Back-to-back jobs (workers still spinning), then jobs with short work.
    #expect(counts(pool: pool, jobs: 500, chunks: chunks) == Array(repeating: 500, count: chunks))
    #expect(counts(pool: pool, jobs: 50, chunks: chunks, work: 2_000) == Array(repeating: 50, count: chunks))
  }

  @Test func jobsAfterIdleGapsRunEveryChunk() {
    let pool = ForkJoinPool(threads: 1)
    #expect(counts(pool: pool, jobs: 1, chunks: 8) == Array(repeating: 1, count: 8))
    // Past the ~200 µs spin: the worker sleeps on the condition variable and must be woken.
    for _ in 0..<5 {
      usleep(2_000)
      #expect(counts(pool: pool, jobs: 1, chunks: 8) == Array(repeating: 1, count: 8))
    }
  }

  @Test func aPoolWithoutThreadsDeclines() {
    #expect(!ForkJoinPool(threads: 0).run(chunks: 4) { _ in Issue.record("must not run") })
  }

  @Test func nestedCallsRunInline() {
    let total = Atomic<Int>(0)
    Parallel.forEach(chunks: 4) { _ in
      Parallel.forEach(chunks: 5) { _ in total.wrappingAdd(1, ordering: .relaxed) }
    }
    #expect(total.load(ordering: .relaxed) == 20)
  }

  @Test func concurrentCallersEachGetAllTheirChunks() {
    let total = Atomic<Int>(0)
    DispatchQueue.concurrentPerform(iterations: 8) { _ in
      for _ in 0..<50 {
        Parallel.forEach(chunks: 7) { _ in total.wrappingAdd(1, ordering: .relaxed) }
      }
    }
    #expect(total.load(ordering: .relaxed) == 8 * 50 * 7)
  }
}
