import Dispatch
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif
import _SparsityCPUID

/// Fork–join parallelism over a fixed number of workers.
public enum Parallel {
  /// The number of workers: the online processors, or `SPARSITY_THREADS` when set.
  public static let workerCount: Int = {
    #if canImport(Glibc)
      if let text = getenv("SPARSITY_THREADS"), let n = Int(String(cString: text)), n > 0 {
        return n
      }
      return Swift.max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    #else
      return 1
    #endif
  }()

  /// Runs `body(chunk)` for every chunk in `0..<chunks`, concurrently, and returns when all
  /// have finished. With one chunk (or one worker) it runs inline; so does a call made while
  /// another is running (from inside a chunk, or from a second thread).
  ///
  /// The work runs on ``ForkJoinPool/shared`` — the calling thread plus `workerCount − 1`
  /// persistent threads that spin briefly between jobs — not on `DispatchQueue.concurrentPerform`,
  /// which on Linux ran two 40 µs chunks one after the other and took 1.15–1.5× the ideal
  /// time for chunks of 10–200 µs (measured on the 2-core machine; kernels at M = 1 and small
  /// layers live in that range).
  public static func forEach(chunks: Int, _ body: (Int) -> Void) {
    if chunks <= 0 { return }
    if chunks == 1 || workerCount == 1 || !ForkJoinPool.shared.run(chunks: chunks, body) {
      for c in 0..<chunks { body(c) }
    }
  }

  /// Splits `0..<count` into about `workerCount` contiguous ranges and runs them concurrently.
  public static func forEachRange(_ count: Int, minimumChunk: Int = 1, _ body: (Range<Int>) -> Void) {
    let chunks = Swift.max(1, Swift.min(workerCount, count / Swift.max(1, minimumChunk)))
    forEach(chunks: chunks) { c in
      let lo = count * c / chunks
      let hi = count * (c + 1) / chunks
      if lo < hi { body(lo..<hi) }
    }
  }
}

#if canImport(Glibc)
  /// The threads behind ``Parallel/forEach(chunks:_:)``: `Parallel.workerCount − 1` persistent
  /// workers and the caller take chunks from one atomic counter. Between jobs a worker spins for
  /// about 200 µs (so the next job of an inference pass starts in well under a microsecond), then
  /// sleeps on a condition variable until a job arrives.
  public final class ForkJoinPool: @unchecked Sendable {
    /// One job: its chunks are claimed from `next`; `remaining` counts those not yet finished.
    /// `body` points at the caller's closure, valid until every chunk has finished; a worker that
    /// still holds the job afterwards only finds `next ≥ chunks` and never reads it.
    private final class Job: @unchecked Sendable {
      let chunks: Int
      let body: UnsafePointer<(Int) -> Void>
      let next = Atomic<Int>(0)
      let remaining: Atomic<Int>

      init(chunks: Int, body: UnsafePointer<(Int) -> Void>) {
        self.chunks = chunks
        self.body = body
        remaining = Atomic(chunks)
      }

      /// Runs chunks until none is left to claim.
      func work() {
        while true {
          let c = next.wrappingAdd(1, ordering: .relaxed).oldValue
          if c >= chunks { return }
          body.pointee(c)
          remaining.wrappingSubtract(1, ordering: .releasing)
        }
      }
    }

    /// The pool every `Parallel.forEach` uses.
    public static let shared = ForkJoinPool(threads: Parallel.workerCount - 1)

    private let threads: Int
    private let started = Atomic<Bool>(false)
    /// Set while a job runs: a second caller finds it set and runs its chunks inline.
    private let busy = Atomic<Bool>(false)
    /// Incremented for every job; workers wait for it to change.
    private let generation = Atomic<Int>(0)
    private let current = Mutex<Job?>(nil)
    private let sleepers = Atomic<Int>(0)
    private let sleepLock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeUp = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init(threads: Int) {
      self.threads = Swift.max(0, threads)
      pthread_mutex_init(sleepLock, nil)
      pthread_cond_init(wakeUp, nil)
    }

    /// Runs the job on the pool; returns false (having run nothing) when the pool is busy or
    /// has no threads.
    func run(chunks: Int, _ body: (Int) -> Void) -> Bool {
      guard threads > 0, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
        return false
      }
      startThreadsIfNeeded()
      withoutActuallyEscaping(body) { body in
        let box = UnsafeMutablePointer<(Int) -> Void>.allocate(capacity: 1)
        box.initialize(to: body)
        defer {
          box.deinitialize(count: 1)
          box.deallocate()
        }
        let job = Job(chunks: chunks, body: box)
        current.withLock { $0 = job }
        // Sequentially consistent with the sleeper count (a store–load pair on each side): either
        // this sees a worker's sleepers increment and wakes it, or that worker sees this job.
        generation.wrappingAdd(1, ordering: .sequentiallyConsistent)
        if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
          pthread_mutex_lock(sleepLock)
          pthread_cond_broadcast(wakeUp)
          pthread_mutex_unlock(sleepLock)
        }
        job.work()
        while job.remaining.load(ordering: .acquiring) > 0 { pause() }
        current.withLock { $0 = nil }
      }
      busy.store(false, ordering: .releasing)
      return true
    }

    private func startThreadsIfNeeded() {
      guard started.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
        return
      }
      for _ in 0..<threads {
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { raw in
          let pool = Unmanaged<ForkJoinPool>.fromOpaque(raw!).takeRetainedValue()
          pool.workerLoop()
          return nil
        }, context)
        precondition(result == 0, "could not start a worker thread (pthread_create: \(result))")
        pthread_detach(thread)
      }
    }

    private func workerLoop() {
      var seen = generation.load(ordering: .acquiring)
      while true {
        seen = waitForJob(after: seen)
        if let job = current.withLock({ $0 }) { job.work() }
      }
    }

    /// Spins about 200 µs for the generation to move past `seen`, then sleeps until it does.
    private func waitForJob(after seen: Int) -> Int {
      let deadline = DispatchTime.now().uptimeNanoseconds + 200_000
      var spins = 0
      while true {
        let g = generation.load(ordering: .acquiring)
        if g != seen { return g }
        spins += 1
        if spins & 255 == 0 && DispatchTime.now().uptimeNanoseconds > deadline { break }
        pause()
      }
      pthread_mutex_lock(sleepLock)
      sleepers.wrappingAdd(1, ordering: .sequentiallyConsistent)
      var g = generation.load(ordering: .sequentiallyConsistent)
      while g == seen {
        pthread_cond_wait(wakeUp, sleepLock)
        g = generation.load(ordering: .acquiring)
      }
      sleepers.wrappingSubtract(1, ordering: .acquiringAndReleasing)
      pthread_mutex_unlock(sleepLock)
      return g
    }

    @inline(__always)
    private func pause() { sparsity_spin_pause() }
  }
#else
  /// Without Glibc (the package targets Linux) there is no pool: every job runs inline.
  public final class ForkJoinPool: Sendable {
    public static let shared = ForkJoinPool(threads: 0)
    init(threads: Int) {}
    func run(chunks: Int, _ body: (Int) -> Void) -> Bool { false }
  }
#endif
