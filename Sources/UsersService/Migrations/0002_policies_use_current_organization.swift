import HeraldStorage

extension UsersMigrations {
    /// Every tenant policy reads the tenant (and the user, for rows a user sees across organizations) through
    /// the storage layer's SQL functions.
    static let v2 = Migration(
        version: 2,
        name: "tenant policies use tenancy.current_organization()",
        statements: [
            .raw(
                sqlite: [],
                postgres: [
                    """
                    ALTER POLICY tenant_isolation ON users.organizations
                    USING (
                        id = tenancy.current_organization()
                        OR id IN (SELECT organization_id FROM users.memberships WHERE user_id = tenancy.current_user_id())
                    )
                    WITH CHECK (id = tenancy.current_organization())
                    """,
                    """
                    ALTER POLICY tenant_isolation ON users.memberships
                    USING (organization_id = tenancy.current_organization() OR user_id = tenancy.current_user_id())
                    WITH CHECK (organization_id = tenancy.current_organization())
                    """,
                    "ALTER POLICY tenant_isolation ON users.invitations USING (organization_id = tenancy.current_organization())",
                    "ALTER POLICY tenant_isolation ON users.sites USING (organization_id = tenancy.current_organization())",
                    """
                    ALTER POLICY tenant_isolation ON users.audit_logs
                    USING (
                        organization_id = tenancy.current_organization()
                        OR (organization_id IS NULL AND subject_user_id IN (
                            SELECT user_id FROM users.memberships WHERE organization_id = tenancy.current_organization()))
                        OR (organization_id IS NULL AND subject_user_id = tenancy.current_user_id())
                    )
                    WITH CHECK (organization_id IS NULL OR organization_id = tenancy.current_organization())
                    """,
                ]
            )
        ]
    )
}
