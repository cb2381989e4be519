#!/usr/bin/env bash
# nats-env.sh - the NATS passwords of the compose deployment, for the host
# scripts that start their own clients (the system tests, the load test):
# one SHOP_NATS_PASSWORD_<USER>=... line per user, as `docker compose config`
# resolves them (the development defaults of docker-compose.yml, or what a
# .env file or the environment sets). Usage: eval "$(tools/nats-env.sh)".
# Needs only Docker with Compose v2 (docs/security.md).
set -uo pipefail
cd "$(dirname "$0")/.."
docker compose -f docker-compose.yml config 2>/dev/null |
	sed -n 's/^ *\(SHOP_NATS_PASSWORD_[A-Z]*\): *"\{0,1\}\([A-Za-z0-9_-]*\)"\{0,1\} *$/export \1=\2/p' | sort -u
