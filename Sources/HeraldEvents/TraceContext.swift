import Instrumentation
import Tracing

/// Carries traces across the bus: the W3C `traceparent` of the current task goes into each event it publishes,
/// and the consumer that applies the event opens its span as a child of it. With no tracer bootstrapped
/// (tracing off) both ends do nothing.
public enum TraceContext {
    /// The current task's `traceparent`, if a span is active and a tracer is configured.
    public static func current() -> String? {
        guard let context = ServiceContext.current else { return nil }
        var carrier: [String: String] = [:]
        InstrumentationSystem.instrument.inject(context, into: &carrier, using: DictionaryInjector())
        return carrier["traceparent"]
    }

    /// A service context whose parent span is the one `traceparent` names (the top level when it names none).
    public static func context(from traceparent: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        guard let traceparent, !traceparent.isEmpty else { return context }
        InstrumentationSystem.instrument.extract(["traceparent": traceparent], into: &context, using: DictionaryExtractor())
        return context
    }
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
