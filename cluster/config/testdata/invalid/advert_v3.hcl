# VRRPv3 advertises centiseconds in 12 bits: 10ms to 40.95s.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}

vrrp "odd" {
  interface         = "eth0"
  virtual_router_id = 1
  advert_interval   = "105ms"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.101/24"]
}

vrrp "tiny" {
  interface         = "eth0"
  virtual_router_id = 2
  advert_interval   = "5ms"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.102/24"]
}

vrrp "too_long" {
  interface         = "eth0"
  virtual_router_id = 3
  advert_interval   = "41s"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.103/24"]
}

vrrp "max" {
  interface         = "eth0"
  virtual_router_id = 4
  advert_interval   = "40.95s"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.104/24"]
}

vrrp "zero" {
  interface         = "eth0"
  virtual_router_id = 5
  advert_interval   = "0s"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.105/24"]
}
