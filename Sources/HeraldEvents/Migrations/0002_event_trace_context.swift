import HeraldStorage

extension BusMigrations {
    /// Landed: never edit (its checksum is recorded by every deployment); add a new migration instead.
    static let v2 = Migration(
        version: 2,
        name: "event trace context",
        sqlite: ["ALTER TABLE bus_events ADD COLUMN trace_context TEXT"],
        postgres: ["ALTER TABLE bus.events ADD COLUMN trace_context TEXT"]
    )
}
