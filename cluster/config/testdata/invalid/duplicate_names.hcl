# Names are unique per block type (and checks per instance, resources per group).
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "alpha" {
  address = "192.0.2.12"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 51
  priority          = { alpha = 100 }
  virtual_ips       = ["192.0.2.100/24"]
  check "ping" {
    exec = ["/usr/bin/true"]
  }
  check "ping" {
    tcp = "127.0.0.1:22"
  }
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 52
  priority          = { alpha = 100 }
  virtual_ips       = ["192.0.2.101/24"]
}

group "web" {
  vrrp = "VI_1"
  service "nginx" {}
  exec "nginx" {
    start = ["/usr/sbin/nginx"]
  }
}

group "web" {
  vrrp = "VI_1"
}

# A vrrp instance and a group may share a name: names are per block type.
group "VI_1" {
  vrrp = "VI_1"
}
