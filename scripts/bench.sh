#!/usr/bin/env bash
# make bench: measures VIP failover for hactl and keepalived with the same
# settings in one run, then the replicated volume's write throughput, its
# resync rate and the group's failover and switchover times, and writes
# BENCHMARKS.md. Needs root (it builds labs in network namespaces).
#
# BENCH=failover|replication|resync|group|all (default all) runs one part only;
# the other parts' sections of an existing BENCHMARKS.md are kept as they
# are.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "bench: needs root (network namespaces); run 'sudo make bench'" >&2
	exit 1
fi
BENCH=${BENCH:-all}
case "$BENCH" in
failover | replication | resync | group | all) ;;
*)
	echo "bench: BENCH=$BENCH: want failover, replication, resync, group or all" >&2
	exit 2
	;;
esac
repl_heading="## Replicated volume throughput"
resync_heading="## Resync"
group_heading="## Group failover"
# What the title says when a partial run keeps other sections' figures.
later_dates="the replicated volume, resync and group failover sections keep the dates of their own runs."
table=$(mktemp)
repl=$(mktemp)
resync=$(mktemp)
group=$(mktemp)
old=$(mktemp)
new=$(mktemp)
trap 'rm -f "$table" "$repl" "$resync" "$group" "$old" "$new"' EXIT
if [ -f BENCHMARKS.md ]; then
	cp BENCHMARKS.md "$old"
fi

if [ "$BENCH" = all ] || [ "$BENCH" = failover ]; then
	HACTL_BENCH_OUT="$table" go test -count=1 -timeout 60m -run '^TestFailoverBenchmark$' -v ./cmd/hactl/ |
		grep -E '^\s+bench_failover_test.go|^(---|ok|FAIL|PASS)' || true
	if [ ! -s "$table" ]; then
		echo "bench: the failover benchmark wrote no figures" >&2
		exit 1
	fi
fi
if [ "$BENCH" = all ] || [ "$BENCH" = replication ]; then
	HACTL_BENCH_REPL_OUT="$repl" go test -count=1 -timeout 60m -run '^TestReplicationBenchmark$' -v ./cmd/hactl/ |
		grep -E '^\s+bench_replication_test.go|^(---|ok|FAIL|PASS)' || true
	if [ ! -s "$repl" ]; then
		echo "bench: the replication benchmark wrote no figures" >&2
		exit 1
	fi
fi
if [ "$BENCH" = all ] || [ "$BENCH" = resync ]; then
	HACTL_BENCH_RESYNC_OUT="$resync" go test -count=1 -timeout 30m -run '^TestResyncBenchmark$' -v ./cmd/hactl/ |
		grep -E '^\s+bench_resync_test.go|^(---|ok|FAIL|PASS)' || true
	if [ ! -s "$resync" ]; then
		echo "bench: the resync benchmark wrote no figures" >&2
		exit 1
	fi
fi
if [ "$BENCH" = all ] || [ "$BENCH" = group ]; then
	HACTL_BENCH_GROUP_OUT="$group" go test -count=1 -timeout 30m -run '^TestGroupFailoverBenchmark$' -v ./cmd/hactl/ |
		grep -E '^\s+bench_group_test.go|^(---|ok|FAIL|PASS)' || true
	if [ ! -s "$group" ]; then
		echo "bench: the group failover benchmark wrote no figures" >&2
		exit 1
	fi
fi

# failover_part writes the title and the VIP failover section.
failover_part() {
	echo "# Benchmarks"
	echo
	case "$1" in
	all) echo "Written by \`make bench\` on $(date -u +%Y-%m-%d) — every figure below comes from that one run." ;;
	*) echo "Written by \`make bench\` (BENCH=failover) on $(date -u +%Y-%m-%d); $later_dates" ;;
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

# resync_part writes the resync section.
resync_part() {
	echo "$resync_heading"
	echo
	echo "Measured on $(date -u +%Y-%m-%d), Linux $(uname -r), $(nproc) cores."
	echo
	cat "$resync"
}

# group_part writes the group failover section.
group_part() {
	echo "$group_heading"
	echo
	echo "Measured on $(date -u +%Y-%m-%d), Linux $(uname -r), $(nproc) cores."
	echo
	cat "$group"
}

# trim drops trailing blank lines.
trim() { sed -e :a -e '/^\n*$/{$d;N;ba' -e '}'; }
# old_head is the old BENCHMARKS.md above its replication, resync and
# group failover sections: the title and the VIP failover section.
old_head() { awk -v a="$repl_heading" -v b="$resync_heading" -v c="$group_heading" '$0 == a || $0 == b || $0 == c { exit } { print }' "$old" | trim; }
# old_section prints the old section with the given heading, up to the
# next "## " heading or the end.
old_section() { awk -v h="$1" '$0 == h { found = 1; print; next } found && /^## / { exit } found { print }' "$old" | trim; }

# title_part writes the title for a partial run of the later sections: the old
# one, whose figures no longer all come from one run, or a new one.
title_part() {
	if [ -s "$old" ] && [ -n "$(old_head)" ]; then
		old_head | sed -e "s/ — every figure below comes from that one run\.\$/; $later_dates/" \
			-e "s/; the replicated volume section keeps the date of its own run\.\$/; $later_dates/" \
			-e "s/; the replicated volume and resync sections keep the dates of their own runs\.\$/; $later_dates/"
	else
		echo "# Benchmarks"
		echo
		echo "Written by \`make bench\` (BENCH=$BENCH)."
	fi
}

# kept prints an old section, after a blank line, if there is one.
kept() {
	local s
	s=$(old_section "$1")
	if [ -n "$s" ]; then
		echo
		echo "$s"
	fi
}

case "$BENCH" in
all)
	{
		failover_part all
		echo
		replication_part
		echo
		resync_part
		echo
		group_part
	} >"$new"
	;;
failover)
	{
		failover_part failover
		kept "$repl_heading"
		kept "$resync_heading"
		kept "$group_heading"
	} >"$new"
	;;
replication)
	{
		title_part
		echo
		replication_part
		kept "$resync_heading"
		kept "$group_heading"
	} >"$new"
	;;
resync)
	{
		title_part
		kept "$repl_heading"
		echo
		resync_part
		kept "$group_heading"
	} >"$new"
	;;
group)
	{
		title_part
		kept "$repl_heading"
		kept "$resync_heading"
		echo
		group_part
	} >"$new"
	;;
esac
cat "$new" >BENCHMARKS.md
echo "bench: wrote BENCHMARKS.md"
