-- The dashboard's PostgreSQL role and database (store_url): least privilege.
--
-- Run it through create-dashboard-db.sh beside it (it asks for the password, or reads it from a
-- file, and passes it here on standard input), as the PostgreSQL superuser:
--
--   sudo -u postgres bash deploy/postgresql/create-dashboard-db.sh --password-file /root/dashboard-pg.pw
--
-- What it makes (names from the psql variables role, db, conn_limit; defaults dashboard,
-- dashboard, 130):
--   * a role that may log in and nothing more: NOSUPERUSER NOCREATEDB NOCREATEROLE
--     NOREPLICATION NOBYPASSRLS, member of no other role, at most conn_limit connections;
--   * a database owned by the superuser running this (not by the role: the role cannot drop it,
--     change its settings or make schemas in it), which only that role may connect to
--     (CONNECT is taken from PUBLIC; no TEMPORARY);
--   * in it a schema named after the role, owned by the role: the dashboard creates and migrates
--     its tables there ("$user" comes first in search_path, and the role's search_path in that
--     database is set to it). The schema public is closed to everyone but the superuser.
--
-- The password reaches the server once, in ALTER ROLE, with statement logging switched off for
-- this session (the server stores only its SCRAM-SHA-256 verifier). Running it again is safe: it
-- resets the role to exactly the above (and sets the new password).

\set ON_ERROR_STOP on
\set QUIET on
\if :{?role}
\else
  \set role dashboard
\endif
\if :{?db}
\else
  \set db dashboard
\endif
\if :{?conn_limit}
\else
  \set conn_limit 130
\endif

-- Nothing of this session goes to the server's log: not the statement with the password, not
-- even when it fails.
SET log_statement = 'none';
SET log_min_duration_statement = -1;
SET log_min_error_statement = 'panic';
SET password_encryption = 'scram-sha-256';

-- The password: one line on standard input (create-dashboard-db.sh writes it there).
\prompt password

-- The role.
SELECT format('CREATE ROLE %I', :'role')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role') \gexec
ALTER ROLE :"role" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
    CONNECTION LIMIT :conn_limit PASSWORD :'password';
\unset password
-- Member of nothing (a role it was granted before would lend it that role's privileges).
SELECT format('REVOKE %I FROM %I', g.rolname, m.rolname)
  FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid JOIN pg_roles m ON m.oid = a.member
 WHERE m.rolname = :'role' \gexec

-- The database: the superuser's; only the role may connect.
SELECT format('CREATE DATABASE %I TEMPLATE template0 ENCODING %L', :'db', 'UTF8')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"db" FROM :"role";
GRANT CONNECT ON DATABASE :"db" TO :"role";

\connect :db
SET client_min_messages = warning;
SET log_statement = 'none';
SET log_min_error_statement = 'panic';

-- public: nobody but the superuser (PostgreSQL 15 already takes CREATE from PUBLIC; older ones
-- let everyone create there).
REVOKE ALL ON SCHEMA public FROM PUBLIC;
-- The role's own schema, where its tables go.
CREATE SCHEMA IF NOT EXISTS :"role" AUTHORIZATION :"role";
ALTER SCHEMA :"role" OWNER TO :"role";
REVOKE ALL ON SCHEMA :"role" FROM PUBLIC;
ALTER ROLE :"role" IN DATABASE :"db" SET search_path = :"role";

SELECT format('role %s: login, at most %s connections, no superuser/createdb/createrole; '
              'database %s (connect: %s only), schema %s owned by it',
              :'role', :'conn_limit', :'db', :'role', :'role') AS done \gset
\echo :done
