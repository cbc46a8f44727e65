#!/usr/bin/env bash
# The dashboard's PostgreSQL role, database and schema (dashboard-db.sql beside this script, which
# says what each gets). Run it as the PostgreSQL superuser on the primary:
#
#   sudo -u postgres bash deploy/postgresql/create-dashboard-db.sh [options]
#
#   --password-file FILE   the role's password: the file's first line (make one with
#                          `umask 077; head -c 24 /dev/urandom | base64 | tr '+/' '-_' > FILE`:
#                          URL-safe, so it goes into store_url as it is). Without it the script
#                          asks twice on the terminal (nothing is echoed).
#   --role NAME            the login role (default dashboard)
#   --database NAME        its database (default dashboard)
#   --connection-limit N   the role's connection limit (default 130: two machines, three
#                          processes each, store_pool_size = 20, and a few for commands)
#
# psql connects as usual (the unix socket as the postgres user; PGHOST, PGPORT, PGUSER and the
# other libpq variables to go elsewhere). The password goes to psql on its standard input, never
# on a command line or in the environment. Running it again is safe (and sets the new password).
# Then add pg_hba-dashboard.conf's lines to pg_hba.conf and reload.
set -euo pipefail

die() { echo "create-dashboard-db: $*" >&2; exit 2; }

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
role=dashboard db=dashboard limit=130 pwfile=
while (($#)); do
    case "$1" in
        --password-file) pwfile="${2:?--password-file needs a file}"; shift 2 ;;
        --role) role="${2:?--role needs a name}"; shift 2 ;;
        --database) db="${2:?--database needs a name}"; shift 2 ;;
        --connection-limit) limit="${2:?--connection-limit needs a number}"; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown option $1 (--help)" ;;
    esac
done
for name in "$role" "$db"; do
    [[ "$name" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "'$name': a name of lower-case letters, digits and _"
done
[[ "$limit" =~ ^[0-9]{1,5}$ ]] && ((limit >= 1)) || die "--connection-limit: a number from 1 to 99999"

if [[ -n "$pwfile" ]]; then
    [[ -r "$pwfile" ]] || die "cannot read the password file $pwfile"
    IFS= read -r password < "$pwfile" || [[ -n "${password:-}" ]] || die "$pwfile is empty"
elif [[ -t 0 ]]; then
    IFS= read -rsp "Password of the PostgreSQL role $role: " password; echo >&2
    IFS= read -rsp "Again: " again; echo >&2
    [[ "$password" == "$again" ]] || die "the two passwords differ"
else
    die "no --password-file, and no terminal to ask for the password on"
fi
((${#password} >= 16)) || die "the password is shorter than 16 characters"

printf '%s\n' "$password" | psql -X -v ON_ERROR_STOP=1 -v role="$role" -v db="$db" \
    -v conn_limit="$limit" -f "$here/dashboard-db.sql"
echo "store_url = \"postgresql://$role:<password, URL-encoded>@<this server or its virtual IP>:5432/$db\""
