#!/usr/bin/env bash
# Make sure PostgreSQL (and Redis, when asked with --redis) answer on 127.0.0.1.
# Starts an installed server that is down; on Debian/Ubuntu as root, installs a missing one.
set -euo pipefail

want_redis=0
[[ "${1:-}" == "--redis" ]] && want_redis=1

pg_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi; }

wait_for() {
  for _ in $(seq 1 60); do "$1" && return 0; sleep 0.5; done
  return 1
}

if ! pg_up; then
  if ! command -v pg_ctlcluster >/dev/null; then
    echo "PostgreSQL is not installed: installing it from the distribution's packages" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  conf=/etc/postgresql/$version/main/pg_hba.conf
  # Tests connect as postgres over TCP without a password (trust on loopback only).
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$conf"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  wait_for pg_up || { echo "PostgreSQL did not start" >&2; exit 1; }
fi
echo "PostgreSQL is up on 127.0.0.1:5432"

if [[ $want_redis -eq 1 ]] && ! redis_up; then
  if ! command -v redis-server >/dev/null; then
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
  fi
  as_root mkdir -p /var/lib/redis /var/log/redis
  as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for redis_up || { echo "Redis did not start" >&2; exit 1; }
  echo "Redis is up on 127.0.0.1:6379"
fi
