# References to nodes, instances and volumes that are not declared.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address             = "192.0.2.11"
  replication_address = "198.51.100.11"
}

node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100, bravoo = 90 }
  virtual_ips       = ["192.0.2.100/24"]
  unicast_peers     = ["192.0.2.11", "192.0.2.12"]
  unicast_source    = { alpha = "192.0.2.11", charlie = "192.0.2.13" }
}

volume "data" {
  port = 7788
  disk = { alpha = "/dev/vg0/data", "brav0" = "/dev/vg0/data" }
  meta = { alpha = "/var/lib/hactl/data.meta", delta = "/var/lib/hactl/data.meta" }
  split_brain {
    after_0pri = "discard-node-echo"
  }
}

group "g1" {
  vrrp   = "VI1"
  volume = "dta"
}
