#!/usr/bin/env bash
# Installs the Debian packages the tests, the lab and the demo use, skipping
# what is already there. Needs root; without it, says what is missing and
# carries on, so the unit tests still run (root-only tests then skip).
set -euo pipefail

# command -> Debian package that provides it
declare -A need=(
	[ip]=iproute2
	[nsenter]=util-linux
	[losetup]=util-linux
	[mkfs.ext4]=e2fsprogs
	[fuser]=psmisc
	[ping]=iputils-ping
	[keepalived]=keepalived
	[nbdinfo]=libnbd-bin
	[nbdcopy]=libnbd-bin
	[fio]=fio
	[nbdkit]=nbdkit
	[fusermount3]=fuse3
	[tcpdump]=tcpdump
	[nft]=nftables
	[arping]=iputils-arping
	[dbus-daemon]=dbus-daemon
)

missing=()
for cmd in "${!need[@]}"; do
	if ! command -v "$cmd" >/dev/null 2>&1 && ! [ -x "/usr/sbin/$cmd" ] && ! [ -x "/sbin/$cmd" ]; then
		missing+=("${need[$cmd]}")
	fi
done
# The lab's web service (scripts/lab-http.py, the demo and the group tests)
# needs a python3 with http.server where the agents look for commands.
if ! PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin python3 -c 'import http.server, http.client' >/dev/null 2>&1; then
	missing+=(python3)
fi
# The replication benchmark serves a file with nbdkit's file plugin;
# Debian's nbdkit package ships it, but say so if it went missing.
check_nbdkit_file() {
	if command -v nbdkit >/dev/null 2>&1 && ! nbdkit file --version >/dev/null 2>&1; then
		echo "install-deps: nbdkit has no file plugin (nbdkit file --version fails); make bench needs it" >&2
	fi
}
if [ ${#missing[@]} -eq 0 ]; then
	check_nbdkit_file
	exit 0
fi
mapfile -t pkgs < <(printf '%s\n' "${missing[@]}" | sort -u)

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: not root, so not installing: ${pkgs[*]}" >&2
	echo "install-deps: root-only tests (network namespaces, loop devices) will be skipped; run 'sudo make test' for the full suite" >&2
	exit 0
fi

echo "install-deps: installing ${pkgs[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# keepalived must not start as a service of its own here: the tests run it.
apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemctl disable --now keepalived >/dev/null 2>&1 || true
fi
check_nbdkit_file
