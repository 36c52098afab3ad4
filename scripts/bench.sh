#!/usr/bin/env bash
# make bench: measures VIP failover for hactl and keepalived with the same
# settings in one run, then the replicated volume's write throughput, and
# writes BENCHMARKS.md. Needs root (it builds labs in network namespaces).
#
# BENCH=failover|replication|all (default all) runs one part only; the
# other part's section of an existing BENCHMARKS.md is kept as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (network namespaces); run 'sudo make bench'" >&2
	exit 1
fi
BENCH=${BENCH:-all}
case "$BENCH" in
failover | replication | all) ;;
*)
	echo "bench: BENCH=$BENCH: want failover, replication or all" >&2
	exit 2
	;;
esac
repl_heading="## Replicated volume throughput"
table=$(mktemp)
repl=$(mktemp)
old=$(mktemp)
new=$(mktemp)
trap 'rm -f "$table" "$repl" "$old" "$new"' EXIT
if [ -f BENCHMARKS.md ]; then
	cp BENCHMARKS.md "$old"
fi

if [ "$BENCH" != replication ]; then
	HACTL_BENCH_OUT="$table" go test -count=1 -timeout 60m -run '^TestFailoverBenchmark$' -v ./cmd/hactl/ |
		grep -E '^\s+bench_failover_test.go|^(---|ok|FAIL|PASS)' || true
	if [ ! -s "$table" ]; then
		echo "bench: the failover benchmark wrote no figures" >&2
		exit 1
	fi
fi
if [ "$BENCH" != failover ]; then
	HACTL_BENCH_REPL_OUT="$repl" go test -count=1 -timeout 60m -run '^TestReplicationBenchmark$' -v ./cmd/hactl/ |
		grep -E '^\s+bench_replication_test.go|^(---|ok|FAIL|PASS)' || true
	if [ ! -s "$repl" ]; then
		echo "bench: the replication benchmark wrote no figures" >&2
		exit 1
	fi
fi

# failover_part writes the title and the VIP failover section.
failover_part() {
	echo "# Benchmarks"
	echo
	case "$1" in
	all) echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) — every figure below comes from that one run." ;;
	*) echo "Written by \`make bench\` (BENCH=failover) on $(date -u +%Y-%m-%d); the replicated volume section keeps the date of its own run." ;;
	esac
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
}

# replication_part writes the replicated volume section.
replication_part() {
	echo "$repl_heading"
	echo
	echo "Measured on $(date -u +%Y-%m-%d), Linux $(uname -r), $(nproc) cores."
	echo
	cat "$repl"
}

# before_repl is the old BENCHMARKS.md up to its replication section;
# from_repl is that section to the end.
before_repl() { awk -v h="$repl_heading" '$0 == h { exit } { print }' "$old"; }
from_repl() { awk -v h="$repl_heading" '$0 == h { found = 1 } found { print }' "$old"; }

case "$BENCH" in
all)
	{
		failover_part all
		echo
		replication_part
	} >"$new"
	;;
failover)
	{
		failover_part failover
		if [ -n "$(from_repl)" ]; then
			echo
			from_repl
		fi
	} >"$new"
	;;
replication)
	{
		if [ -s "$old" ]; then
			# Keep everything above the section, without trailing blank
			# lines; its figures no longer all come from one run.
			before_repl | sed -e :a -e '/^\n*$/{$d;N;ba' -e '}' |
				sed -e 's/ — every figure below comes from that one run\.$/; the replicated volume section keeps the date of its own run./'
		else
			echo "# Benchmarks"
			echo
			echo "Written by \`make bench\` (BENCH=replication)."
		fi
		echo
		replication_part
	} >"$new"
	;;
esac
cat "$new" >BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md"
