# Misspelled block types get a "did you mean" too.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}

vrp "VI_1" {
  interface = "eth0"
}

vrrp "VI_2" {
  interface         = "eth0"
  virtual_router_id = 52
  priority          = { alpha = 100, bravo = 90 }
  virtual_ips       = ["192.0.2.100/24"]

  chek "ping" {
    exec = ["/usr/bin/true"]
  }
}

group "g" {
  vrrp = "VI_2"
  servce "nginx" {}
  filesystems {}
}
