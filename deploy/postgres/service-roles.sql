-- One PostgreSQL role per Herald service, each owning its own schema and nothing else (issue: "each service with its
-- own schema and role"). Run it as a superuser in Herald's database after every `herald migrate` (it is idempotent):
--
--   herald migrate --database-url postgres://herald:…@db/herald
--   psql -v ON_ERROR_STOP=1 -U postgres -d herald -f deploy/postgres/service-roles.sql
--   psql -U postgres -c "ALTER ROLE herald_users PASSWORD '…'"        -- once per role
--
-- then start each service with its own role and without migrating:
--
--   herald serve --services users --no-migrate --database-url postgres://herald_users:…@db/herald
--   herald serve --services notifications --no-migrate --database-url postgres://herald_notifications:…@db/herald \
--     (with HERALD_USERS_URL and HERALD_INTERNAL_TOKEN: a service without the Users tables checks access over HTTP)
--
-- What each role gets:
--   - ownership of its schema and every table, partition and sequence in it (the Analytics service creates and drops
--     its daily partitions itself, which only an owner may do); row-level security still binds it (FORCE);
--   - the shared event bus (schema bus: read and write rows, no DDL), the tenancy functions, and read access to
--     herald_migrations (readiness reports pending migrations);
--   - nothing in the other services' schemas: a service that reached into another's tables would fail at once.
-- The database's owner (Herald's migration role) becomes a member of every service role, so `herald migrate` can
-- still change their tables; new tables a migration creates belong to it until this script runs again.
DO $$
DECLARE
    service text;
    service_role text;
    migrator text;
    item record;
BEGIN
    SELECT pg_get_userbyid(datdba) INTO migrator FROM pg_database WHERE datname = current_database();
    FOREACH service IN ARRAY ARRAY['users', 'notifications', 'analytics', 'integrations', 'billing'] LOOP
        service_role := 'herald_' || service;
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = service_role) THEN
            EXECUTE format('CREATE ROLE %I LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE', service_role);
        END IF;
        IF migrator <> service_role AND NOT pg_has_role(migrator, service_role, 'MEMBER') THEN
            EXECUTE format('GRANT %I TO %I', service_role, migrator);
        END IF;
        EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), service_role);
        IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = service) THEN
            EXECUTE format('ALTER SCHEMA %I OWNER TO %I', service, service_role);
            -- Tables, partitioned tables and their partitions; sequences owned by a column follow their table.
            FOR item IN
                SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = service AND c.relkind IN ('r', 'p', 'v', 'm')
            LOOP
                EXECUTE format('ALTER TABLE %I.%I OWNER TO %I', service, item.relname, service_role);
            END LOOP;
            FOR item IN
                SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = service AND c.relkind = 'S'
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))
            LOOP
                EXECUTE format('ALTER SEQUENCE %I.%I OWNER TO %I', service, item.relname, service_role);
            END LOOP;
            FOR item IN
                SELECT p.oid::regprocedure AS signature FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = service
            LOOP
                EXECUTE format('ALTER ROUTINE %s OWNER TO %I', item.signature, service_role);
            END LOOP;
        END IF;
        IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'bus') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA bus TO %I', service_role);
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA bus TO %I', service_role);
            EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA bus TO %I', service_role);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'tenancy') THEN
            EXECUTE format('GRANT USAGE ON SCHEMA tenancy TO %I', service_role);
        END IF;
        IF to_regclass('public.herald_migrations') IS NOT NULL THEN
            EXECUTE format('GRANT SELECT ON public.herald_migrations TO %I', service_role);
        END IF;
        -- The public schema is for nobody but the migration role.
        EXECUTE format('REVOKE CREATE ON SCHEMA public FROM %I', service_role);
    END LOOP;
END
$$;
