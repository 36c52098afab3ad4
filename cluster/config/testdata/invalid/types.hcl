# Values of the wrong shape.
cluster "c" {
  secret_file = ["/etc/hactl/secret"]
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
  priority          = [100, 90]
  virtual_ips       = "192.0.2.100/24"
  preempt           = 1.5
}

volume "data" {
  port = 7788
  disk = "/dev/vg0/data"
  meta = 5
}
