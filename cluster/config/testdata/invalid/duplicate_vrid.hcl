# One virtual router ID per interface.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]
}

vrrp "VI_2" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 90, bravo = 100 }
  virtual_ips       = ["192.0.2.101/24"]
}

# The same ID on another interface is fine.
vrrp "VI_3" {
  interface         = "eth1"
  virtual_router_id = 51
  priority          = { alpha = 90, bravo = 100 }
  virtual_ips       = ["203.0.113.100/24"]
}
