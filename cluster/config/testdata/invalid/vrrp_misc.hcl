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
  interface         = "a-very-long-interface-name"
  virtual_router_id = 51
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]
  preempt_delay     = "20m"
  garp_count        = 300
  track_interface   = ["eth0", "eth/1"]
  unicast_peers     = ["192.0.2.11", "192.0.2.12", "192.0.2.11"]
}
