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

# start_agent NODE: hactl agent in the background inside NODE, its pid in
# the node's own /run/hactl (every node has its own).
start_agent() {
	"$hactl" lab exec --name "$lab" "$1" -- sh -c \
		"'$hactl' agent --log-format console >/var/lib/hactl/agent.log 2>&1 & echo \$! >/run/hactl/agent.pid"
}
# state NODE: the VRRP state NODE's agent reports for VI_1.
state() {
	"$hactl" lab exec --name "$lab" "$1" -- "$hactl" status --json 2>/dev/null |
		sed -n 's/.*"state": *"\([a-z-]*\)".*/\1/p' | head -1
}
# wait_state NODE STATE: at most 20 s.
wait_state() {
	for _ in $(seq 1 200); do
		[ "$(state "$1")" = "$2" ] && { echo "$1 is $2"; return 0; }
		sleep 0.1
	done
	echo "$1 did not become $2; its log:" >&2
	"$hactl" lab exec --name "$lab" "$1" -- cat /var/lib/hactl/agent.log >&2
	exit 1
}
vip_from_client() {
	run "$hactl" lab exec --name "$lab" client -- ping -c3 -i 0.2 -W1 -q 192.0.2.100
	run "$hactl" lab exec --name "$lab" client -- ip neigh show 192.0.2.100
}
mac() { "$hactl" lab exec --name "$lab" "$1" -- cat /sys/class/net/eth0/address; }

step "hactl agent on alpha and bravo: VRRP elects alpha (priority 100 over 90)"
start_agent alpha
start_agent bravo
wait_state alpha master
wait_state bravo backup
run "$hactl" lab exec --name "$lab" alpha -- "$hactl" status

step "the client reaches the virtual IP on alpha ($(mac alpha))"
vip_from_client

step "alpha is cut off silently (its switch port stops forwarding; no carrier loss)"
run "$hactl" lab isolate --name "$lab" alpha
wait_state bravo master
run "$hactl" lab exec --name "$lab" bravo -- "$hactl" status

step "the client reaches the virtual IP on bravo ($(mac bravo)): gratuitous ARP moved it"
vip_from_client

step "alpha comes back: it has the higher priority and takes the VIP back"
run "$hactl" lab rejoin --name "$lab" alpha
wait_state bravo backup
wait_state alpha master
vip_from_client

step "alpha stops gracefully (SIGTERM): a priority-0 advert hands over at once"
run "$hactl" lab exec --name "$lab" alpha -- sh -c 'kill -TERM "$(cat /run/hactl/agent.pid)"'
wait_state bravo master
vip_from_client

step "alpha runs no agent now, and says so"
set +e
"$hactl" lab exec --name "$lab" alpha -- "$hactl" status
rc=$?
set -e
echo "(exit code $rc)"
[ "$rc" -eq 3 ] || { echo "expected exit 3 from status without an agent" >&2; exit 1; }

step "done: volumes, filesystems and services follow the VIP once replication and orchestration land"
