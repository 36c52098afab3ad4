# Every enum with a value it does not take.
cluster "c" {
  secret_file = "/etc/hactl/secret"
  quorum      = "majorty"
}

node "alpha" {
  address             = "192.0.2.11"
  replication_address = "198.51.100.11"
}

node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
}

node "charlie" {
  address = "192.0.2.13"
  witness = true
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]
}

volume "data" {
  protocol = "D"
  port     = 7788
  disk     = { alpha = "/dev/vg0/data", bravo = "/dev/vg0/data" }
  attach   = "loops"
  split_brain {
    after_0pri = "discard-youngest-primary"
    after_1pri = "discard-primary"
    after_2pri = "consensus"
  }
}

group "g" {
  vrrp            = "VI_1"
  volume          = "data"
  on_stop_failure = "fence"
}
