# PASS authentication exists only in VRRPv2 and holds 8 bytes.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}

vrrp "v3" {
  interface         = "eth0"
  virtual_router_id = 1
  auth_pass         = "secret"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.101/24"]
}

vrrp "long" {
  interface         = "eth0"
  virtual_router_id = 2
  version           = 2
  auth_pass         = "much-too-long"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.102/24"]
}

vrrp "fine" {
  interface         = "eth0"
  virtual_router_id = 3
  version           = 2
  auth_pass         = "12345678"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.103/24"]
}
