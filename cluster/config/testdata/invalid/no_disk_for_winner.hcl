# charlie can become Master of VI_1 but has no disk for the group's volume.
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

node "charlie" {
  address = "192.0.2.13"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100, bravo = 90, charlie = 80 }
  virtual_ips       = ["192.0.2.100/24"]
}

volume "data" {
  port = 7788
  disk = { alpha = "/dev/vg0/data", bravo = "/dev/vg0/data" }
}

group "db" {
  vrrp   = "VI_1"
  volume = "data"
}
