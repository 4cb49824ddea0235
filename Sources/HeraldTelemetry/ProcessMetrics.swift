import Foundation
import HeraldCore

#if canImport(Glibc)
    import Glibc
#endif

/// The process figures Prometheus' client libraries conventionally export (`process_*`), read from /proc on Linux,
/// and `herald_build_info`.
public enum ProcessMetrics {
    public static func collect() -> [SampledFamily] {
        var families = [
            SampledFamily(
                name: "herald_build_info", help: "Always 1; the labels name the running release.",
                samples: [.init(labels: [("version", HeraldVersion.current)], value: 1)]
            )
        ]
        #if os(Linux)
            let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            if let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) {
                let fields = statm.split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
                if fields.count >= 2 {
                    families.append(
                        .init(
                            name: "process_virtual_memory_bytes", help: "Virtual memory size in bytes.", samples: [.init(value: fields[0] * pageSize)]
                        ))
                    families.append(
                        .init(
                            name: "process_resident_memory_bytes", help: "Resident memory size in bytes.",
                            samples: [.init(value: fields[1] * pageSize)]))
                }
            }
            if let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") {
                // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15, starttime 22.
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 19, let utime = Double(fields[11]), let stime = Double(fields[12]), let start = Double(fields[19]) {
                    families.append(
                        .init(
                            name: "process_cpu_seconds_total", help: "User and system CPU time spent in seconds.", kind: .counter,
                            samples: [.init(value: (utime + stime) / ticks)])
                    )
                    if let boot = bootTime() {
                        families.append(
                            .init(
                                name: "process_start_time_seconds", help: "Start time of the process since the Unix epoch in seconds.",
                                samples: [.init(value: boot + start / ticks)])
                        )
                    }
                }
            }
            if let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") {
                families.append(
                    .init(name: "process_open_fds", help: "Number of open file descriptors.", samples: [.init(value: Double(descriptors.count))]))
            }
            var limit = rlimit()
            if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
                families.append(
                    .init(name: "process_max_fds", help: "Maximum number of open file descriptors.", samples: [.init(value: Double(limit.rlim_cur))]))
            }
        #endif
        return families
    }

    private static func bootTime() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        for line in stat.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst(6).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
