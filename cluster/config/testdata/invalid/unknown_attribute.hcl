# Misspelled attributes get a "did you mean".
cluster "c" {
  secret_file = "/etc/hactl/secret"
  qorum       = "auto"
}

node "alpha" {
  adress              = "192.0.2.11"
  replication_address = "198.51.100.11"
}

node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
  witnes              = false
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]
  advert_intervall  = "1s"
  check = "ping"
}
