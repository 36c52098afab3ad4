# VRRPv2 advertises whole seconds, at most 255.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}

vrrp "sub_second" {
  interface         = "eth0"
  virtual_router_id = 1
  version           = 2
  advert_interval   = "100ms"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.101/24"]
}

vrrp "fraction" {
  interface         = "eth0"
  virtual_router_id = 2
  version           = 2
  advert_interval   = "1500ms"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.102/24"]
}

vrrp "too_long" {
  interface         = "eth0"
  virtual_router_id = 3
  version           = 2
  advert_interval   = "5m"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.103/24"]
}

vrrp "fine" {
  interface         = "eth0"
  virtual_router_id = 4
  version           = 2
  advert_interval   = "3s"
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.104/24"]
}

vrrp "bad_version" {
  interface         = "eth0"
  virtual_router_id = 5
  version           = 4
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.105/24"]
}
