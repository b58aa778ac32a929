#!/usr/bin/env bash
# Prepares this machine for `make test`: the Debian packages the tests use (installed when run
# as root; otherwise it prints the command and stops), the local PostgreSQL, MariaDB and Redis
# servers (started when down), and the test databases named by DECANT_TEST_PG_URL and
# DECANT_TEST_MYSQL_URL (created when missing). Servers that are not on loopback are only
# checked, never started. Safe to run again: it changes nothing that is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_URL=${DECANT_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/decant_test}
MYSQL_URL=${DECANT_TEST_MYSQL_URL:-mysql://root@127.0.0.1:3306/decant_test}
REDIS_URL=${DECANT_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}

say() { printf '=== %s\n' "$*"; }
fail() { printf 'test-prepare: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" -eq 0 ]; }

# url_part URL FIELD [DEFAULT]: host, port, user, password or database (the path) of a URL.
url_part() {
  node -e '
    const u = new URL(process.argv[1]);
    const v = { host: u.hostname.replace(/^\[|\]$/g, ""), port: u.port, user: decodeURIComponent(u.username),
      password: decodeURIComponent(u.password), database: decodeURIComponent(u.pathname.slice(1)) }[process.argv[2]];
    process.stdout.write(v || process.argv[3] || "");' "$1" "$2" "${3:-}"
}
is_loopback() { [[ $1 == 127.* || $1 == localhost || $1 == ::1 ]]; }

wait_for() { # wait_for NAME CMD...: up to 60 s
  local name=$1; shift
  for _ in $(seq 1 120); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  fail "$name did not come up"
}

# --- Debian packages -------------------------------------------------------------------
# promtool (prometheus): the alert and dashboard tests; python3-grpcio, python3-grpc-tools:
# the Python example client (run with /usr/bin/python3, whose modules these are); chromium:
# the status page tests; spin: the migration protocol's model check; python3-boto3: the
# DynamoDB front's boto3 test.
need=()
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
/usr/bin/python3 -c 'import grpc' >/dev/null 2>&1 || need+=(python3-grpcio)
/usr/bin/python3 -c 'import grpc_tools' >/dev/null 2>&1 || need+=(python3-grpc-tools)
[ -x /usr/bin/chromium ] || need+=(chromium)
command -v spin >/dev/null 2>&1 || need+=(spin)
# boto3 for the DynamoDB front's second-language test (any python3 on PATH that has it will do)
{ python3 -c 'import boto3' || /usr/bin/python3 -c 'import boto3'; } >/dev/null 2>&1 || need+=(python3-boto3)
if [ ${#need[@]} -gt 0 ]; then
  if ! is_root; then
    fail "missing Debian packages; install them, then run make test again:
  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}"
  fi
  say "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# --- PostgreSQL --------------------------------------------------------------------------
pg_host=$(url_part "$PG_URL" host 127.0.0.1); pg_port=$(url_part "$PG_URL" port 5432)
pg_user=$(url_part "$PG_URL" user postgres); pg_db=$(url_part "$PG_URL" database decant_test)
pg_password=$(url_part "$PG_URL" password); [ -z "$pg_password" ] || export PGPASSWORD=$pg_password
pg_up() { pg_isready -h "$pg_host" -p "$pg_port" -q; }
if ! pg_up >/dev/null 2>&1; then
  is_loopback "$pg_host" && is_root || fail "PostgreSQL is not answering on $pg_host:$pg_port; start it (or set DECANT_TEST_PG_URL)"
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  wait_for PostgreSQL pg_up
fi
pg_sql() { psql -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 -tAc "$1"; }
if [ "$(pg_sql "SELECT 1 FROM pg_database WHERE datname = '${pg_db//\'/\'\'}'")" != 1 ]; then
  say "creating PostgreSQL database $pg_db"
  pg_sql "CREATE DATABASE \"${pg_db//\"/\"\"}\"" >/dev/null
fi

# --- MariaDB -------------------------------------------------------------------------------
my_host=$(url_part "$MYSQL_URL" host 127.0.0.1); my_port=$(url_part "$MYSQL_URL" port 3306)
my_user=$(url_part "$MYSQL_URL" user root); my_db=$(url_part "$MYSQL_URL" database decant_test)
my_password=$(url_part "$MYSQL_URL" password); [ -z "$my_password" ] || export MYSQL_PWD=$my_password
my_up() { mariadb-admin -h "$my_host" -P "$my_port" -u "$my_user" ping --silent; }
if ! my_up >/dev/null 2>&1; then
  is_loopback "$my_host" && is_root || fail "MariaDB is not answering on $my_host:$my_port; start it (or set DECANT_TEST_MYSQL_URL)"
  say "starting MariaDB"
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  wait_for MariaDB my_up
fi
my_sql() { mariadb -h "$my_host" -P "$my_port" -u "$my_user" -N -B -e "$1"; }
if [ -z "$(my_sql "SHOW DATABASES LIKE '${my_db//\'/\'\'}'")" ]; then
  say "creating MariaDB database $my_db"
  my_sql "CREATE DATABASE IF NOT EXISTS \`${my_db//\`/\`\`}\`"
fi

# --- Redis ---------------------------------------------------------------------------------
rd_host=$(url_part "$REDIS_URL" host 127.0.0.1); rd_port=$(url_part "$REDIS_URL" port 6379)
rd_up() { redis-cli -h "$rd_host" -p "$rd_port" ping | grep -q PONG; }
if ! rd_up >/dev/null 2>&1; then
  is_loopback "$rd_host" && is_root || fail "Redis is not answering on $rd_host:$rd_port; start it (or set DECANT_TEST_REDIS_URL)"
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$rd_port" --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for Redis rd_up
fi

say "test servers ready: PostgreSQL $pg_host:$pg_port/$pg_db, MariaDB $my_host:$my_port/$my_db, Redis $rd_host:$rd_port"
