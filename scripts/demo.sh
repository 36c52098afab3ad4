#!/usr/bin/env bash
# The hactl demo: builds a lab cluster in network namespaces, shows the
# nodes reaching each other on both networks, runs the agent on a node and
# asks it for status, then tears everything down — also on failure or ^C.
#
# Usage: scripts/demo.sh [path/to/hactl]
set -euo pipefail

hactl=$(realpath "${1:-bin/hactl}")
if [ "$(id -u)" -ne 0 ]; then
	echo "make demo needs root: it creates network namespaces, bridges and loop devices (try: sudo make demo)" >&2
	exit 1
fi
[ -x "$hactl" ] || { echo "no hactl binary at $hactl (run make build)" >&2; exit 1; }

lab="demo$(printf '%04x' $((RANDOM % 65536)))"
cleanup() {
	echo
	echo "== tearing the lab down"
	"$hactl" lab down --name "$lab" || true
}
trap cleanup EXIT INT TERM

step() { printf '\n== %s\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "a lab with two data nodes, a witness and a client"
run "$hactl" lab up --name "$lab" --nodes 2 --witness

step "what exists"
run "$hactl" lab status --name "$lab"

step "the client reaches every node on the service network (192.0.2.0/24)"
for ip in 192.0.2.11 192.0.2.12 192.0.2.13; do
	run "$hactl" lab exec --name "$lab" client -- ping -c1 -W2 -q "$ip"
done

step "the data nodes reach each other on the service and the replication network"
run "$hactl" lab exec --name "$lab" alpha -- ping -c1 -W2 -q 192.0.2.12
run "$hactl" lab exec --name "$lab" alpha -- ping -c1 -W2 -q 198.51.100.12
run "$hactl" lab exec --name "$lab" bravo -- ping -c1 -W2 -q 198.51.100.11

step "the cluster file the lab generated validates"
run "$hactl" lab exec --name "$lab" alpha -- "$hactl" validate /etc/hactl/cluster.hcl

step "hactl agent on alpha, and its status"
"$hactl" lab exec --name "$lab" alpha -- sh -c "'$hactl' agent --log-format console >/var/lib/hactl/agent.log 2>&1 &"
for _ in $(seq 1 50); do
	"$hactl" lab exec --name "$lab" alpha -- test -S /run/hactl/hactl.sock && break
	sleep 0.1
done
run "$hactl" lab exec --name "$lab" alpha -- "$hactl" status
run "$hactl" lab exec --name "$lab" alpha -- "$hactl" status --json

step "bravo runs no agent yet, and says so"
set +e
"$hactl" lab exec --name "$lab" bravo -- "$hactl" status
rc=$?
set -e
echo "(exit code $rc)"
[ "$rc" -eq 3 ] || { echo "expected exit 3 from status without an agent" >&2; exit 1; }

step "done: failover, volumes and services arrive with the orchestration work"
