import HeraldStorage

extension IntegrationsMigrations {
    /// Every tenant policy of this service reads the tenant through one SQL function.
    static let v3 = Migration(
        version: 3,
        name: "tenant policies use tenancy.current_organization()",
        statements: landedTenantTables.map(TenantIsolation.adoptFunction)
    )
}
