#!/usr/bin/env bash
# Make sure PostgreSQL runs on this machine and holds the test role and database the tests use
# (JIFANG_TEST_PG_URL, default postgresql+psycopg2://jifang:jifang@127.0.0.1:5432/jifang_test).
set -euo pipefail
if ! pg_lsclusters -h 2>/dev/null | grep -q online; then
  cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1, $2}')
  if [ -z "$cluster" ]; then
    version=$(ls /usr/lib/postgresql | sort -n | tail -1)
    pg_createcluster "$version" main
    cluster="$version main"
  fi
  pg_ctlcluster $cluster start
fi
as_postgres() { if [ "$(id -u)" = 0 ]; then su postgres -c "$1"; else sudo -u postgres sh -c "$1"; fi; }
as_postgres "psql -tAc \"SELECT 1 FROM pg_roles WHERE rolname='jifang'\"" | grep -q 1 \
  || as_postgres "psql -c \"CREATE ROLE jifang LOGIN PASSWORD 'jifang'\""
as_postgres "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='jifang_test'\"" | grep -q 1 \
  || as_postgres "psql -c 'CREATE DATABASE jifang_test OWNER jifang'"
echo "postgresql: jifang_test ready"
