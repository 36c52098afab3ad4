# Settings that do nothing are warnings; the file is otherwise valid.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "witness" {
  address             = "192.0.2.13"
  replication_address = "198.51.100.13"
  witness             = true
}

vrrp "VI_1" {
  interface                 = "eth0"
  virtual_router_id         = 51
  version                   = 2
  v3_checksum_pseudo_header = false
  preempt                   = false
  preempt_delay             = "10s"
  priority                  = { alpha = 100 }
  unicast_source            = { alpha = "192.0.2.11" }
  virtual_ips               = ["192.0.2.100/24"]
}

group "g" {
  vrrp            = "VI_1"
  failure_timeout = "10m"
}
