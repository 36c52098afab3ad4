# Virtual IPs: format, family, subnet agreement per interface, duplicates.
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
  virtual_ips = [
    "192.0.2.100/24",
    "198.51.100.7/24",  # another subnet on eth0
    "192.0.2.101/25",   # eth0's subnet with another length
    "192.0.2.0/24",     # network address
    "192.0.2.255/24",   # broadcast address
    "192.0.2.102",      # no length
    "2001:db8::1/64",   # IPv6
    "203.0.113.9/32",   # a host route may sit anywhere
  ]
}

vrrp "VI_2" {
  interface         = "eth0"
  virtual_router_id = 52
  priority          = { alpha = 90, bravo = 100 }
  virtual_ips       = ["192.0.2.100/24", "203.0.113.5/24"]
}
