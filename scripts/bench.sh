#!/usr/bin/env bash
# make bench: measures VIP failover for hactl and keepalived with the same
# settings in one run and writes BENCHMARKS.md. Needs root (it builds labs
# in network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (network namespaces); run 'sudo make bench'" >&2
	exit 1
fi
table=$(mktemp)
trap 'rm -f "$table"' EXIT
HACTL_BENCH_OUT="$table" go test -count=1 -timeout 60m -run '^TestFailoverBenchmark$' -v ./cmd/hactl/ |
	grep -E '^\s+bench_failover_test.go|^(---|ok|FAIL|PASS)' || true
if [ ! -s "$table" ]; then
	echo "bench: the failover benchmark wrote no figures" >&2
	exit 1
fi

{
	echo "# Benchmarks"
	echo
	echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) — every figure below comes from that one run."
	echo
	echo "Machine: $(nproc) cores, Linux $(uname -r); $(go version | cut -d' ' -f3); $(keepalived --version 2>&1 | head -1)."
	echo
	echo "## VIP failover"
	echo
	echo "Two nodes and a client in network namespaces on one bridge (\`internal/lab\`). alpha (priority 150)"
	echo "is master, bravo (100) backup; the client pings the VIP every 10 ms (\`ping -D -i 0.01\`) and the"
	echo "outage is the longest gap between two replies. *Silently cut off*: alpha's bridge port stops"
	echo "forwarding while its carrier stays up, just after the client saw one of alpha's adverts (the same"
	echo "phase of the advert cycle in every run, so the figure is Master_Down plus the time to reach the new"
	echo "master, not a random share of one interval). *Stops gracefully*: SIGTERM (both send a priority-0 advert)."
	echo "*Takeover → client ARP entry*: from the new master's first advert, as the client captured it, to the"
	echo "client's neighbour entry for the VIP changing to the new master's MAC (\`ip -ts monitor neigh\`)."
	echo "Each cell is the median with min–max over the repetitions; a ratio below 1 means hactl is faster."
	echo
	cat "$table"
} >BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md"
