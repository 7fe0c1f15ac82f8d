#if canImport(Glibc)
import Glibc
#endif

/// The wall clock (`CLOCK_REALTIME`), for what must agree across processes and machines:
/// cluster window buckets, reservation expiry in the in-process sale store.
public enum WallClock {
    /// Unix time in milliseconds.
    @Sendable public static func milliseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1000 + Int64(spec.tv_nsec) / 1_000_000
    }
}
