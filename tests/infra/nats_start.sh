#!/usr/bin/env bash
# tests/infra/nats_start.sh - the NATS image's entry point (infra/nats/
# start.sh) restarts its node when the metadata group's leader does not
# count it as a member, and leaves it alone otherwise. The server is a
# stand-in (a sleep) and the monitoring of "this node" and of "the leader"
# is one small HTTP server answering /jsz with the body a case writes; the
# leader's name is 127.0.0.1, so asking the leader reaches it too. TAP.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
server_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/bin"
printf '#!/bin/sh\nexec sleep 60\n' >"$work/bin/nats-server"
chmod +x "$work/bin/nats-server"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 - "$port" "$work/jsz" <<'PY' &
import http.server, sys
port, body = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            data = open(body, "rb").read()
        except OSError:
            self.send_error(503)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
server_pid=$!

n=0
failed=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed=$((failed + 1)); echo "not ok $n - $1"; }

# run_case NAME BODY WANT: starts the entry point as node n3 with BODY as
# every /jsz answer (none when empty); WANT "restarted" or "left alone".
run_case() {
	local name=$1 body=$2 want=$3 pid got
	if [ -n "$body" ]; then printf '%s' "$body" >"$work/jsz"; else rm -f "$work/jsz"; fi
	PATH="$work/bin:$PATH" SHOP_NATS_NAME=n3 SHOP_NATS_MONITOR_PORT=$port \
		SHOP_NATS_MEMBER_EVERY_S=0.2 SHOP_NATS_MEMBER_MISSES=3 SHOP_NATS_MEMBER_CHECK_S=20 \
		sh "$here/infra/nats/start.sh" 2>"$work/err" &
	pid=$!
	got="left alone"
	for _ in $(seq 1 30); do # 3 s: three misses take 0.6 s
		sleep 0.1
		kill -0 "$pid" 2>/dev/null || {
			got=restarted
			break
		}
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	if [ "$got" = "$want" ] && { [ "$want" != restarted ] || grep -q "not a member" "$work/err"; }; then
		ok "$name: $got"
	else
		not_ok "$name: $got, wanted $want ($(cat "$work/err"))"
	fi
}

for _ in $(seq 1 50); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done
run_case "a node the leader does not list" \
	'{"server_id":"X","meta_cluster":{"name":"shop","leader":"127.0.0.1","peer":"a","cluster_size":2,
	  "replicas":[{"name":"n1","current":true}]}}' restarted
run_case "a node the leader lists" \
	'{"meta_cluster":{"name":"shop","leader":"127.0.0.1","cluster_size":3,
	  "replicas":[{"name":"n1","current":true},{"name": "n3", "current": true}]}}' "left alone"
run_case "the leader itself" '{"meta_cluster":{"name":"shop","leader":"n3","cluster_size":2}}' "left alone"
run_case "no leader yet" '{"meta_cluster":{"name":"shop","cluster_size":3}}' "left alone"
run_case "monitoring that does not answer" "" "left alone"
echo "# nats entry point: $((n - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]
