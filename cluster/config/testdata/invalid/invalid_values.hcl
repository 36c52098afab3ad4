# Values that do not parse as their type.
cluster "c" {
  secret_file  = "/etc/hactl/secret"
  startup_wait = "2 minutes"
}

node "alpha" {
  address             = "192.0.2.300"
  replication_address = "198.51.100.0/24"
  witness             = "maybe"
}

node "bravo" {
  address             = "224.0.0.18"
  replication_address = "0.0.0.0"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = "fifty"
  advert_interval   = "5"
  preempt_delay     = "-1s"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.0/33"]
  unicast_peers     = ["2001:db8::1"]
}

volume "data" {
  port = 7788
  disk = { alpha = "/dev/vg0/data", bravo = "/dev/vg0/data" }
  resync {
    rate     = "200MB"
    min_rate = "1.5G"
    max_rate = "lots"
    checksum = "yes please"
  }
}
