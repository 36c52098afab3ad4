#!/usr/bin/env bash
# The hactl demo, end to end, in a lab on this host (network namespaces):
#
#   1. a lab: data nodes alpha and bravo, a witness and a client;
#   2. the replicated volume "data" is prepared (metadata, a forced first
#      promotion on alpha, ext4, the initial sync), then the agents get the
#      group "app" (volume → ext4 on /srv/data → the HTTP service "web" →
#      VIP 192.0.2.100) and alpha runs it;
#   3. the client writes files through the VIP;
#   4. alpha crashes (its agent is killed with -9, its cables are pulled):
#      bravo takes the volume, the mount, the service and the VIP, and the
#      client reads everything back;
#   5. alpha comes back: it cleans up its stale mount, resyncs what changed
#      as Secondary, and "hactl failover app --wait" moves the group back;
#   6. a timeline of the phases; the lab is torn down at the end, on ^C and
#      on any failure (with the last lines of every agent's log).
#
# Usage: scripts/demo.sh [path/to/hactl]
set -euo pipefail

hactl=$(realpath "${1:-bin/hactl}")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
web=$here/lab-http.py
if [ "$(id -u)" -ne 0 ]; then
	echo "make demo needs root: it creates network namespaces, bridges and loop devices (try: sudo make demo)" >&2
	exit 1
fi
[ -x "$hactl" ] || { echo "no hactl binary at $hactl (run make build)" >&2; exit 1; }
[ -r "$web" ] || { echo "no $web" >&2; exit 1; }
for tool in python3 ip nsenter bridge losetup mkfs.ext4; do
	command -v "$tool" >/dev/null || { echo "the demo needs $tool (make demo installs it: scripts/install-deps.sh)" >&2; exit 1; }
done
[ -e /dev/fuse ] || { echo "the demo needs /dev/fuse (volumes attach through FUSE + loop)" >&2; exit 1; }

lab="demo$(printf '%04x' $((RANDOM % 65536)))"
vip=192.0.2.100
port=8080
disk=256M
tmp=$(mktemp -d /tmp/hactl-demo.XXXXXX)
loops=()      # loop devices the volume was attached as, checked after teardown
lab_up=false
interrupted=false

# ---------------------------------------------------------------- helpers

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
# show prints a command the way it is run, hactl's path shortened.
show() { local s="$*"; printf '\033[2m%s\033[0m\n' "${s//$hactl/hactl}"; }
# run CMD...: show it, run it on the host.
run() { show "\$ $*"; "$@"; }
# inside NODE CMD...: run CMD inside the node (hactl lab exec), quietly.
inside() { local n=$1; shift; "$hactl" lab exec --name "$lab" "$n" -- "$@"; }
# on NODE CMD...: show and run CMD inside the node.
on() { local n=$1; shift; show "[$n]\$ $*"; inside "$n" "$@"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

die() { printf '\n\033[1;31mdemo failed: %s\033[0m\n' "$*" >&2; exit 1; }

# check NODE PYEXPR: true when PYEXPR holds for the node's status (s; v is
# its volume, g its group, r its VRRP instance).
check() {
	inside "$1" "$hactl" status --json 2>/dev/null | python3 -c '
import json, sys
try:
    s = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
v = (s.get("volumes") or [{}])[0]
g = (s.get("groups") or [{}])[0]
r = (s.get("vrrp") or [{}])[0]
sys.exit(0 if eval(sys.argv[1]) else 1)' "$2"
}
# field NODE PYEXPR: prints PYEXPR evaluated on the node's status.
field() {
	inside "$1" "$hactl" status --json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)
v = (s.get("volumes") or [{}])[0]
g = (s.get("groups") or [{}])[0]
r = (s.get("vrrp") or [{}])[0]
print(eval(sys.argv[1]))' "$2"
}
# wait_for WHAT SECONDS CMD...: retries CMD every 0.2 s until it succeeds;
# fails the demo after SECONDS.
wait_for() {
	local what=$1 limit=$2 start
	shift 2
	start=$(now)
	local deadline=$(($(date +%s) + limit))
	until "$@" >/dev/null 2>&1; do
		if [ "$(date +%s)" -ge "$deadline" ]; then
			die "timed out after ${limit}s waiting for: $what"
		fi
		sleep 0.2
	done
	note "✓ $what ($(secs "$start" "$(now)") s)"
}

# watch_sync NODE WHAT SECONDS DONE: polls NODE's volume (v in DONE, a
# Python expression) until DONE holds, printing the sync's progress as it
# goes (each new state once; a fast sync may be over before the first look).
watch_sync() {
	local node=$1 what=$2 limit=$3 done=$4 state key last="" shown=0 start
	start=$(now)
	local deadline=$(($(date +%s) + limit))
	while :; do
		state=$({ inside "$node" "$hactl" status --json 2>/dev/null || true; } | python3 -c '
import json, sys
node, done = sys.argv[1:]
try:
    v = (json.load(sys.stdin).get("volumes") or [{}])[0]
except ValueError:
    print("wait"); sys.exit()
if eval(done):
    print("done")
elif v.get("resync"):
    r = v["resync"]
    print("%s: %s/%s %s, resync %.0f%% of %d MiB at %.1f MiB/s, eta %s" % (node, v.get("disk_state"), v.get("peer_disk_state", "-"),
        v["connection"], r["percent"], r["total_bytes"] >> 20, r["rate_bytes_per_second"] / 2**20, r.get("eta") or "-"))
elif v.get("connection"):
    print("%s: %s %s/%s %s, %d KiB out of sync" % (node, v.get("role"), v.get("disk_state"), v.get("peer_disk_state", "-"),
        v["connection"], v.get("out_of_sync_bytes", 0) >> 10))
else:
    print("wait")' "$node" "$done" || true)
		[ "$state" != done ] || break
		[ "$(date +%s)" -lt "$deadline" ] || die "timed out after ${limit}s waiting for: $what"
		# Each new state once (the percentage in tens), at most 12 lines.
		key=$(echo "$state" | sed 's/\([0-9]\)[0-9]%/\1x%/; s/ at .*//; s/, [0-9]* KiB/, n KiB/')
		if [ "$state" != wait ] && [ "$key" != "$last" ] && [ "$shown" -lt 12 ]; then
			note "$state"
			shown=$((shown + 1))
			last=$key
		fi
		sleep 0.1
	done
	note "✓ $what ($(secs "$start" "$(now)") s)"
}

# start_agent NODE: hactl agent in the background inside NODE, logging to
# the node's /var/lib/hactl/agent.log, its pid in the node's /run/hactl;
# in a session of its own, so that ^C stops the demo, not the agents
# (the teardown stops them).
start_agent() {
	show "[$1]\$ hactl agent >>/var/lib/hactl/agent.log 2>&1 &"
	inside "$1" sh -c "setsid '$hactl' agent --log-format console >>/var/lib/hactl/agent.log 2>&1 & echo \$! >/run/hactl/agent.pid"
}
# signal_agent NODE SIG
signal_agent() {
	on "$1" sh -c "kill -$2 \$(cat /run/hactl/agent.pid)"
}

# The client's side of the story: files through the VIP.
put() { # put NAME FILE
	show "[client]\$ python3 lab-http.py put $vip $port $1 <$(basename "$2")"
	inside client python3 "$web" put "$vip" "$port" "$1" <"$2"
}
answers() { inside client python3 "$web" get "$vip" "$port" healthz; }
# read_back NAME...: every file read through the VIP equals what was written.
read_back() {
	local name
	for name in "$@"; do
		inside client python3 "$web" get "$vip" "$port" "$name" >"$tmp/got" ||
			die "reading $name through the VIP failed"
		cmp -s "$tmp/got" "$tmp/files/$name" || die "$name read back differs from what was written"
	done
	show "[client]\$ python3 lab-http.py get $vip $port NAME   # for ${#}: $*"
	note "✓ all ${#} files read back through $vip equal what was written"
}
holder() { # prints the nodes that have the VIP on eth0
	local n out=""
	for n in alpha bravo; do
		if inside "$n" ip -br addr show dev eth0 | grep -qw "$vip/24"; then
			if [ "$(inside "$n" cat /sys/class/net/eth0/carrier 2>/dev/null)" = 1 ]; then
				out+=" $n"
			else
				out+=" $n (stale: its dead agent left it, but the cable is pulled)"
			fi
		fi
	done
	echo "${out# }"
}
mounted() { inside "$1" grep -q " /srv/data " /proc/self/mountinfo; }
# remember_loop NODE: the loop device the node's volume is attached as,
# with its disk sequence number (loop numbers are reused by other labs;
# the kernel gives every attachment a new diskseq).
remember_loop() {
	local dev
	dev=$(field "$1" 'v.get("device", "")' 2>/dev/null || true)
	case $dev in /dev/loop*) loops+=("$dev $(cat "/sys/block/${dev#/dev/}/diskseq" 2>/dev/null)") ;; esac
}

on_exit() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [ "$rc" -ne 0 ] && $lab_up && ! $interrupted; then
		printf '\n== what the nodes saw (exit %d)\n' "$rc"
		for n in alpha bravo witness; do
			echo "--- $n: hactl status"
			inside "$n" "$hactl" status 2>&1 | head -60
			echo "--- $n: the last lines of /var/lib/hactl/agent.log"
			inside "$n" tail -n 30 /var/lib/hactl/agent.log 2>&1
		done
	fi
	if $lab_up; then
		step "tearing the lab down"
		run "$hactl" lab down --name "$lab"
		local left=""
		ip netns list | grep -q "hactl-$lab-" && left+=" network namespaces ($(ip netns list | grep "hactl-$lab-" | cut -d' ' -f1 | tr '\n' ' '))"
		grep -q "/hactl-lab/$lab" /proc/mounts && left+=" mounts ($(grep "/hactl-lab/$lab" /proc/mounts | cut -d' ' -f2 | tr '\n' ' '))"
		local l d
		while read -r d l; do
			[ -n "$d" ] || continue
			[ -e "/sys/block/${d#/dev/}/loop/backing_file" ] &&
				[ "$(cat "/sys/block/${d#/dev/}/diskseq" 2>/dev/null)" = "$l" ] &&
				left+=" loop device $d (diskseq $l, $(cat "/sys/block/${d#/dev/}/loop/backing_file"))"
		done < <(printf '%s\n' "${loops[@]}" | sort -u)
		if [ -n "$left" ]; then
			echo "left behind:$left" >&2
			[ "$rc" -ne 0 ] || rc=1
		else
			note "✓ nothing left: no namespace of $lab in 'ip netns list', no mount of it in /proc/mounts, the volume's loop devices ($(printf '%s\n' "${loops[@]}" | cut -d' ' -f1 | sort -u | paste -sd' ')) detached"
		fi
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap on_exit EXIT
trap 'echo; echo "interrupted"; interrupted=true; exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- the demo

step "1. a lab: data nodes alpha and bravo, a witness and a client, in network namespaces"
lab_up=true
run "$hactl" lab up --name "$lab" --nodes 2 --witness --disk-size "$disk"

step "2. the replicated volume: a cluster file without the group first"
mkdir -p "$tmp/files"
inside alpha cat /etc/hactl/cluster.hcl >"$tmp/generated.hcl"
python3 - "$tmp" "$web" "$port" <<'EOF'
import sys
tmp, web, port = sys.argv[1:]
text = open(tmp + "/generated.hcl").read()
# Failing back is the operator's decision (hactl failover), not automatic.
text = text.replace('  advert_interval   = "100ms"\n', '  advert_interval   = "100ms"\n  preempt           = false\n', 1)
assert "preempt" in text
# A resync slow enough to watch.
text = text.replace('  attach   = "loop"\n', '  attach   = "loop"\n\n  resync {\n    max_rate = "40M" # slow enough to watch the sync in hactl status\n  }\n', 1)
assert "max_rate" in text
i = text.index("\ngroup ")
open(tmp + "/setup.hcl", "w").write(text[:i + 1])
end = text.rindex("}")
service = f'''
  exec "web" {{
    start            = ["python3", "{web}", "start", "/srv/data", "0.0.0.0", "{port}", "/run/hactl/web.pid"]
    stop             = ["python3", "{web}", "stop", "/run/hactl/web.pid"]
    monitor          = ["python3", "{web}", "monitor", "/run/hactl/web.pid", "127.0.0.1", "{port}"]
    monitor_interval = "1s"
    timeout          = "20s"
  }}
'''
open(tmp + "/full.hcl", "w").write(text[:end] + service + text[end:])
EOF
# install FILE: every node's /etc/hactl/cluster.hcl, and the lab's own copy.
install_cluster_file() {
	local n
	for n in alpha bravo witness client; do
		inside "$n" sh -c 'cat >/etc/hactl/cluster.hcl' <"$1"
	done
	cp "$1" "$(python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["cluster_file"])' \
		< <("$hactl" lab status --name "$lab" --json))"
}
install_cluster_file "$tmp/setup.hcl"
note "the lab's generated file, with preempt = false (after a crash, failing back is the operator's"
note "decision: hactl failover) and a resync slow enough to watch; the group block comes later."
show "\$ sed -n '/^vrrp/,\$p' /etc/hactl/cluster.hcl"
sed -n '/^vrrp/,$p' "$tmp/setup.hcl"

step "   metadata on both data nodes, then the agents (alpha, bravo and the witness)"
on alpha "$hactl" volume create-md data
on bravo "$hactl" volume create-md data
for n in alpha bravo witness; do start_agent "$n"; done
both_connected() { check alpha 'v.get("connection") == "Connected"' && check bravo 'v.get("connection") == "Connected"'; }
wait_for "alpha's and bravo's volume connected" 60 both_connected

step "   the first promotion (--force: alpha's data becomes the reference), ext4, the initial sync"
t=$(now)
on alpha "$hactl" volume primary data --force
wait_for "alpha attached the volume" 60 check alpha 'v.get("device")'
dev=$(field alpha 'v["device"]')
remember_loop alpha
on alpha mkfs.ext4 -q -F "$dev"
on bravo "$hactl" status | sed -n '/^VOLUMES/,/^$/p'
watch_sync bravo "bravo UpToDate, nothing out of sync" 120 \
	'v.get("connection") == "Connected" and v.get("disk_state") == "UpToDate" and v.get("out_of_sync_bytes") == 0'
initial_sync=$(secs "$t" "$(now)")
on alpha "$hactl" volume secondary data

step "   the group: the agents get the cluster file with it (SIGHUP) and alpha, the VRRP master, runs it"
install_cluster_file "$tmp/full.hcl"
show "\$ sed -n '/^group/,\$p' /etc/hactl/cluster.hcl"
sed -n '/^group/,$p' "$tmp/full.hcl"
for n in alpha bravo witness; do signal_agent "$n" HUP; done
t=$(now)
# The VRRP master takes the group; without preemption that is whoever won
# the first election, so move it to alpha if bravo did.
some_owner() { check alpha 'g.get("state") == "started"' || check bravo 'g.get("state") == "started"'; }
wait_for "a node runs group app" 90 some_owner
if check bravo 'g.get("state") == "started"'; then
	note "bravo won the first election: hactl failover moves the group to alpha"
	on bravo "$hactl" failover app --wait
fi
wait_for "alpha runs group app" 90 check alpha 'g.get("state") == "started"'
wait_for "the service answers at $vip" 60 answers
first_start=$(secs "$t" "$(now)")
remember_loop alpha
note "the VIP is on: $(holder)"

step "3. the client writes files through the VIP"
for i in 1 2 3 4 5; do
	printf 'note %d, written through %s at %s\n' "$i" "$vip" "$(date +%T.%N)" >"$tmp/files/note-$i"
	put "note-$i" "$tmp/files/note-$i"
done
read_back note-1 note-2 note-3 note-4 note-5
on alpha "$hactl" status

step "4. alpha crashes: its agent dies (kill -9) and its cables are pulled"
t_crash=$(now)
signal_agent alpha 9
run "$hactl" lab cable --name "$lab" alpha service down
run "$hactl" lab cable --name "$lab" alpha replication down
wait_for "the service answers at $vip again" 120 answers
t_served=$(now)
wait_for "bravo runs group app" 60 check bravo 'g.get("state") == "started"'
note "the VIP is on: $(holder)"
remember_loop bravo
on bravo "$hactl" status
on bravo grep " /srv/data " /proc/self/mountinfo
read_back note-1 note-2 note-3 note-4 note-5

step "   bravo serves the writes now: a few notes and a 32 MiB file (alpha will have to resync them)"
for i in 6 7 8; do
	printf 'note %d, written through %s at %s\n' "$i" "$vip" "$(date +%T.%N)" >"$tmp/files/note-$i"
	put "note-$i" "$tmp/files/note-$i"
done
head -c 32M /dev/urandom >"$tmp/files/blob"
put blob "$tmp/files/blob"
read_back note-6 note-7 note-8 blob

step "5. alpha comes back: cables plugged in, agent restarted"
note "alpha still has the stale mount its dead agent left behind:"
on alpha grep " /srv/data " /proc/self/mountinfo || true
t_back=$(now)
run "$hactl" lab cable --name "$lab" alpha service up
run "$hactl" lab cable --name "$lab" alpha replication up
start_agent alpha
watch_sync alpha "alpha resynced and Secondary" 120 \
	'v.get("role") == "Secondary" and v.get("disk_state") == "UpToDate" and v.get("connection") == "Connected" and v.get("out_of_sync_bytes") == 0'
t_synced=$(now)
note "alpha came back $(secs "$t_back" "$t_synced") s ago; what its agent did:"
show "[alpha]\$ grep -E 'stale|signalled|unmounted|not shut down|decision|resync (started|finished)' /var/lib/hactl/agent.log | tail -n 8"
inside alpha grep -E "stale|signalled a process|unmounted|not shut down cleanly|connect-time decision|resync (started|finished)" /var/lib/hactl/agent.log | tail -n 8
on alpha "$hactl" status
if mounted alpha; then die "alpha still has /srv/data mounted after its restart"; fi
note "✓ alpha's stale mount is gone"
read_back note-1 note-2 note-3 note-4 note-5 note-6 note-7 note-8 blob

step "   the planned switchover back to alpha"
t_switch=$(now)
on bravo "$hactl" failover app --wait
t_switched=$(now)
wait_for "the service answers at $vip" 60 answers
t_switch_served=$(now)
wait_for "alpha runs group app" 60 check alpha 'g.get("state") == "started"'
remember_loop alpha
note "the VIP is on: $(holder)"
on alpha "$hactl" status
read_back note-1 note-2 note-3 note-4 note-5 note-6 note-7 note-8 blob

step "6. timeline"
tl() { printf '   %6s s  %s\n' "$1" "$2"; }
tl "$initial_sync" "forced first promotion, mkfs.ext4 → bravo UpToDate (the initial sync of the $disk volume)"
tl "$first_start" "first start of group app on alpha (SIGHUP → the service answers at $vip)"
tl "$(secs "$t_crash" "$t_served")" "alpha crashes → bravo detects it, takes the group, the service answers at $vip"
tl "$(secs "$t_back" "$t_synced")" "alpha back → stale mount cleaned up, resynced, Secondary"
tl "$(secs "$t_switch" "$t_switched")" "switchover: hactl failover app --wait on bravo returns"
tl "$(secs "$t_switch" "$t_switch_served")" "switchover: → the service answers at $vip on alpha"
step "done"
