# PostgreSQL on two data nodes plus a small witness, in a cloud network
# without multicast.
#
#   cluster network  192.0.2.0/24     (eth0)
#   replication      198.51.100.0/24  (eth1)
#   service network  203.0.113.0/24   (eth2; applications use 203.0.113.10:5432)
#
# The witness holds no data and never holds the address; it only votes, so
# the two database nodes never both decide that they are alone.

cluster "pg" {
  secret_file  = "/etc/hactl/secret"
  quorum       = "auto" # three voters: a strict majority (2 of 3)
  startup_wait = "2m"   # after a full outage, wait for the peer before promoting
}

node "pg-a" {
  address             = "192.0.2.31"
  replication_address = "198.51.100.31"
}

node "pg-b" {
  address             = "192.0.2.32"
  replication_address = "198.51.100.32"
}

node "pg-witness" {
  address = "192.0.2.33"
  witness = true
}

vrrp "db" {
  interface         = "eth2"
  virtual_router_id = 31
  version           = 3
  advert_interval   = "200ms"
  priority          = { pg-a = 110, pg-b = 100 }
  preempt           = true
  preempt_delay     = "5m" # let a returning pg-a finish its resync first
  virtual_ips       = ["203.0.113.10/24"]

  # No multicast in this network: send adverts to the other node directly.
  # Each node skips its own address.
  unicast_peers  = ["203.0.113.31", "203.0.113.32"]
  unicast_source = { pg-a = "203.0.113.31", pg-b = "203.0.113.32" }

  garp_refresh = "60s" # some cloud switches forget the MAC after minutes

  check "gateway" {
    exec   = ["/usr/bin/ping", "-c", "1", "-W", "1", "203.0.113.1"]
    weight = -30
  }
}

volume "pgdata" {
  protocol = "C"
  port     = 7789
  disk     = { pg-a = "/dev/nvme1n1", pg-b = "/dev/nvme1n1" }
  # Metadata in files on the root disk, so the data disk keeps its full size.
  meta = {
    pg-a = "/var/lib/hactl/pgdata.meta"
    pg-b = "/var/lib/hactl/pgdata.meta"
  }
  attach = "nbd"

  resync {
    min_rate = "20M"
    max_rate = "1G"
  }

  # split_brain is left at its default: "disconnect" everywhere. hactl
  # status then names the command that resolves it; a database is not data
  # to discard automatically.
}

group "db" {
  vrrp   = "db"
  volume = "pgdata"

  filesystem {
    mountpoint    = "/var/lib/postgresql"
    fstype        = "xfs"
    options       = ["noatime", "nodiratime"]
    monitor_write = true # catch a filesystem gone read-only after I/O errors
    timeout       = "5m" # xfs_repair on a large volume takes a while
  }

  service "postgresql" {
    unit             = "postgresql@16-main.service"
    timeout          = "3m" # a shutdown checkpoint can take long
    monitor_interval = "15s"
    monitor_timeout  = "30s"
  }

  exec "warm-cache" {
    start = ["/usr/local/bin/pg-prewarm", "--database", "shop"]
    environment = {
      PGHOST = "/var/run/postgresql"
      PGUSER = "postgres"
    }
  }

  on_stop_failure     = "self-fence" # a database that will not stop is rebooted
  migration_threshold = 3
  failure_timeout     = "10m"
}
