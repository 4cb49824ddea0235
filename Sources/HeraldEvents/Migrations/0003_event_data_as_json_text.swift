import HeraldStorage

extension BusMigrations {
    /// The event log keeps each event's document as `json` (its text, checked once) instead of `jsonb`, uncompressed:
    /// events are written once and read back whole, a few times, by consumers, never queried inside. Measured under
    /// beacon load, converting 100 KB batches to jsonb, compressing them and rendering them back as text took a
    /// fifth of PostgreSQL's CPU. Rewrites the table once (it holds only the last days' events).
    /// Landed: never edit (its checksum is recorded by every deployment); add a new migration instead.
    static let v3 = Migration(
        version: 3,
        name: "event data as json text",
        sqlite: [],
        postgres: [
            "ALTER TABLE bus.events ALTER COLUMN data TYPE json USING data::json",
            "ALTER TABLE bus.events ALTER COLUMN data SET STORAGE EXTERNAL",
        ]
    )
}
