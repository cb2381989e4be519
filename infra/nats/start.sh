#!/bin/sh
# start.sh - the NATS image's entry point: nats-server with the shop's
# configuration, and for its first minutes a check that this node is a
# member of the cluster's JetStream metadata group.
#
# Why: twice in about thirty fresh starts of the three-node cluster on a
# busy machine, the metadata group settled on two members. The third node
# followed the leader but was not one of its peers, every stream with three
# replicas was refused, and no service became healthy. Restarting that one
# node made the leader add it (docs/runbook.md, "A fresh cluster whose
# JetStream answers nothing"). So a node asks the leader whether it counts
# this node among its peers (the leader's /jsz lists them), and if the
# answer is no SHOP_NATS_MEMBER_MISSES times in a row, it stops its server
# and the restart policy starts it again. The check runs for
# SHOP_NATS_MEMBER_CHECK_S seconds after each start, then ends.
#
# Settings (the image sets them; tests change them):
#   SHOP_NATS_NAME            this node's server name (compose)
#   SHOP_NATS_MEMBER_CHECK_S  how long the check runs after a start (120)
#   SHOP_NATS_MEMBER_EVERY_S  seconds between two questions (2)
#   SHOP_NATS_MEMBER_MISSES   answers of "not a member" in a row that
#                             restart the node (5: ten seconds, longer than
#                             the leader takes to add a node that joined)
#   SHOP_NATS_MONITOR_PORT    the nodes' monitoring port (8222)
#   SHOP_NATS_CONFIG          the configuration file (/etc/nats/shop.conf)
set -eu

# The value of the first "KEY":"value" pair in the JSON on stdin.
json_string() {
	sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" | head -n 1
}

# Prints "member", "left-out" or "unknown" (no leader yet, or the leader
# cannot be asked).
membership() {
	port=${SHOP_NATS_MONITOR_PORT:-8222}
	meta=$(curl -sf --max-time 2 "http://127.0.0.1:$port/jsz" | tr -d '\n ' |
		sed -n 's/.*"meta_cluster":{\([^}]*\).*/\1/p')
	leader=$(printf '%s' "$meta" | json_string leader)
	if [ -z "$leader" ]; then
		echo unknown
	elif [ "$leader" = "$SHOP_NATS_NAME" ]; then
		echo member
	else
		# The leader lists every other member under meta_cluster.replicas.
		peers=$(curl -sf --max-time 2 "http://$leader:$port/jsz" | tr -d '\n ') || {
			echo unknown
			return
		}
		case "$peers" in
		*"\"name\":\"$SHOP_NATS_NAME\""*) echo member ;;
		*"\"leader\":\"$leader\""*)
			# What the leader said, for the log line.
			echo "left-out $leader $(printf '%s' "$peers" |
				sed -n 's/.*"meta_cluster":{\(.*\)}.*/\1/p' | head -c 300)"
			;;
		*) echo unknown ;;
		esac
	fi
}

# Runs beside the server; SERVER is the server's process id.
watch_membership() {
	server=$1
	end=$(($(date +%s) + ${SHOP_NATS_MEMBER_CHECK_S:-120}))
	misses=0
	while [ "$(date +%s)" -lt "$end" ]; do
		sleep "${SHOP_NATS_MEMBER_EVERY_S:-2}"
		answer=$(membership)
		case $answer in
		member) return 0 ;;
		left-out*) misses=$((misses + 1)) ;;
		*) misses=0 ;;
		esac
		if [ "$misses" -ge "${SHOP_NATS_MEMBER_MISSES:-5}" ]; then
			echo "start: $SHOP_NATS_NAME is not a member of the JetStream metadata group" \
				"(leader ${answer#left-out }); stopping the server so that it is" \
				"started again and joins" >&2
			kill -TERM "$server"
			return 0
		fi
	done
}

if [ -n "${SHOP_NATS_NAME:-}" ]; then
	# After exec, this shell's process id is the server's. The check's
	# process then belongs to the server, which does not reap children: it
	# stays a zombie once done, one small entry in the process table.
	watch_membership $$ &
fi
exec nats-server -c "${SHOP_NATS_CONFIG:-/etc/nats/shop.conf}"
