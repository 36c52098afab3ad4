# Every required attribute left out, reported at its block.
cluster "c" {
  quorum = "auto"
}

node "alpha" {
  replication_address = "198.51.100.11"
}

node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
}

vrrp "VI_1" {
  version = 3
}

volume "data" {
  protocol = "C"
}

group "g" {
  filesystem {
    options = ["noatime"]
  }
  exec "warm" {
    stop = ["/usr/bin/true"]
  }
  ocf "cache" {
    params = { config = "/etc/varnish/default.vcl" }
  }
}
