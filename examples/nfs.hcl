# An NFS server on two nodes: the classic keepalived + DRBD setup in one file.
#
#   cluster network  192.0.2.0/24     (eth0; clients mount 192.0.2.20:/srv/nfs)
#   replication      198.51.100.0/24  (eth1, a direct cable between the nodes)
#
# Copy this file and /etc/hactl/secret to both nodes, then run
# "hactl validate" and "systemctl enable --now hactl" on each.

cluster "nfs" {
  secret_file = "/etc/hactl/secret"
  # Two nodes and no witness: a node may act alone when its peer is silent
  # on every path (VRRP, replication link, cluster gossip). Add a witness
  # node to get a strict majority instead.
  quorum = "two_node"
}

node "nfs1" {
  address             = "192.0.2.21"
  replication_address = "198.51.100.21"
}

node "nfs2" {
  address             = "192.0.2.22"
  replication_address = "198.51.100.22"
}

vrrp "nfs" {
  interface         = "eth0"
  virtual_router_id = 20
  advert_interval   = "100ms" # VRRPv3: failover in about a third of a second
  priority          = { nfs1 = 100, nfs2 = 90 }
  # Do not move the export back when nfs1 returns: every move interrupts
  # the clients for a few seconds. Use "hactl failover" at a quiet time.
  preempt     = false
  virtual_ips = ["192.0.2.20/24"]

  track_interface = ["eth0", "eth1"]

  # The gateway must answer, or this node is a poor place for the export.
  check "gateway" {
    exec     = ["/usr/bin/ping", "-c", "1", "-W", "1", "192.0.2.1"]
    interval = "2s"
    fall     = 3
    rise     = 2
    weight   = -20
  }
}

volume "export" {
  protocol = "C" # a write completes only once both disks have it
  port     = 7788
  disk     = { nfs1 = "/dev/vg0/export", nfs2 = "/dev/vg0/export" }
  meta     = "internal"

  resync {
    max_rate = "400M" # leave headroom on the 10G link for replication itself
    checksum = true   # after a short outage most blocks are already equal
  }

  split_brain {
    # Nobody is primary: throw away a side that wrote nothing.
    after_0pri = "discard-zero-changes"
    # One is primary: the secondary's divergent writes go.
    after_1pri = "discard-secondary"
    after_2pri = "disconnect"
  }
}

group "nfs" {
  vrrp   = "nfs"
  volume = "export"

  filesystem {
    mountpoint = "/srv/nfs"
    fstype     = "ext4"
    options    = ["noatime"]
  }

  # The NFS state (locks, client list) lives on the volume too, so clients
  # reclaim their locks after a failover.
  exec "nfs-state" {
    start   = ["/usr/bin/mount", "--bind", "/srv/nfs/.state", "/var/lib/nfs"]
    stop    = ["/usr/bin/umount", "/var/lib/nfs"]
    monitor = ["/usr/bin/mountpoint", "-q", "/var/lib/nfs"]
  }

  service "nfs-server" {
    timeout = "90s" # the NFSv4 grace period can slow the stop
  }

  on_stop_failure = "block"
}
