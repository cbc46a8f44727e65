-- The dashboard's MySQL/MariaDB account: read-only monitoring, nothing more.
--
--   1. Replace CHANGE-ME-PASSWORD below (and the host part '127.0.0.1' with the address the
--      dashboard's collector connects from; keep it as narrow as you can).
--   2. mariadb -u root < deploy/mysql-grants.sql      (or: mysql -u root < ...)
--   3. [mysql] url = "mysql://monitor:<password>@<db host>:3306/" in the dashboard's
--      configuration, then `python -m dashboard check`: it lists each grant as ok or MISSING,
--      with what it unlocks.
--
-- Nothing here can change data, kill a session or change a setting. Running it again is safe.
-- The /*M!100509 ... */ line runs on MariaDB >= 10.5.9 only; MySQL skips it (MySQL has no
-- such privilege: REPLICATION CLIENT covers replica status there).

CREATE USER IF NOT EXISTS 'monitor'@'127.0.0.1' IDENTIFIED BY 'CHANGE-ME-PASSWORD';

-- A monitor must never crowd out the application: the collector keeps at most two persistent
-- connections (status each second, statement digests every 15 s), plus `check` and a queue
-- collector of kind "sql". Statements time out on the server side as well (the collector sets
-- max_statement_time / MAX_EXECUTION_TIME per session).
ALTER USER 'monitor'@'127.0.0.1' WITH MAX_USER_CONNECTIONS 5;

-- PROCESS: the whole process list (SHOW FULL PROCESSLIST / information_schema.PROCESSLIST), not
-- only the account's own sessions: the page's "running now" list and db.long_running.
-- Without it the dashboard sees only itself.
GRANT PROCESS ON *.* TO 'monitor'@'127.0.0.1';

-- REPLICATION CLIENT: binary log and replication status (SHOW BINLOG STATUS / SHOW MASTER
-- STATUS, SHOW BINARY LOGS). On MariaDB >= 10.5 this is the same privilege as BINLOG MONITOR
-- (SHOW GRANTS prints it under that name); MySQL calls it REPLICATION CLIENT.
GRANT REPLICATION CLIENT ON *.* TO 'monitor'@'127.0.0.1';

-- SLAVE MONITOR (MariaDB >= 10.5.9): SHOW REPLICA STATUS / SHOW SLAVE STATUS. Without it that
-- statement fails with error 1227 on MariaDB, even with REPLICATION CLIENT.
/*M!100509 GRANT SLAVE MONITOR ON *.* TO 'monitor'@'127.0.0.1' */;

-- performance_schema: statement digests (exact top statements, db.avg_query_ms) and
-- setup_consumers (whether statement instrumentation is on). Read only: performance_schema
-- must be switched on in the server's configuration (performance_schema=ON, then restart).
GRANT SELECT ON performance_schema.* TO 'monitor'@'127.0.0.1';

-- performance_schema.threads: lets each of the dashboard's (at most two) connections switch off
-- instrumentation of its OWN statements (UPDATE ... SET INSTRUMENTED = 'NO' WHERE
-- PROCESSLIST_ID = CONNECTION_ID()), so the server does not digest the monitoring queries.
-- The top statements leave the dashboard's own statements out either way; without this grant
-- they take room in the server's digest table.
GRANT UPDATE ON performance_schema.threads TO 'monitor'@'127.0.0.1';

-- mysql.slow_log: the fallback source of slow statements when performance_schema is off and the
-- slow log goes to a table (SET GLOBAL log_output = 'TABLE'; slow_query_log = ON). Drop this
-- line if your slow log goes to a file only.
GRANT SELECT ON mysql.slow_log TO 'monitor'@'127.0.0.1';

-- A queue of kind "sql" ([[queues]] kind = "sql") reads counts from the application's job table
-- with this account (unless that queue has its own url): grant exactly that table, e.g.
-- GRANT SELECT ON shop.jobs TO 'monitor'@'127.0.0.1';
