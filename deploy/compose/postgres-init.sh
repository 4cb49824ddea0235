#!/usr/bin/env bash
# Runs once, when the postgres container initialises an empty data directory (docker-entrypoint-initdb.d):
# creates Herald's role and database. The role owns the database but is neither a superuser nor BYPASSRLS, so
# PostgreSQL's row-level security binds it (README.md, "PostgreSQL"). Its password is the herald_db_password
# Docker secret, the one written in HERALD_DATABASE_URL in herald.env.
set -euo pipefail
password=$(cat /run/secrets/herald_db_password)
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v password="$password" <<'SQL'
CREATE ROLE herald LOGIN PASSWORD :'password' NOSUPERUSER NOBYPASSRLS;
CREATE DATABASE herald OWNER herald;
SQL
