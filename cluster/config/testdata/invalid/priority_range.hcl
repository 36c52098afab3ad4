cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}

node "charlie" {
  address = "192.0.2.13"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 256
  priority          = { alpha = 0, bravo = 256, charlie = 1.5 }
  virtual_ips       = ["192.0.2.100/24"]
}

vrrp "VI_2" {
  interface         = "eth0"
  virtual_router_id = 0
  priority          = {}
  virtual_ips       = []
}
