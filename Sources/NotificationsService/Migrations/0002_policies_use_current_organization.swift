import HeraldStorage

extension NotificationsMigrations {
    /// Every tenant policy of this service reads the tenant through one SQL function.
    static let v2 = Migration(
        version: 2,
        name: "tenant policies use tenancy.current_organization()",
        statements: landedTenantTables.map(TenantIsolation.adoptFunction)
    )
}
