# The file is data: no variables, no functions.
cluster "c" {
  secret_file = var.secret
}

node "alpha" {
  address = upper("192.0.2.11")
}

node "bravo" {
  address = "192.0.2.${12}"
}

vrrp "VI_1" {
  interface         = "eth0"
  virtual_router_id = 50 + 1
  priority          = { alpha = 100, bravo = 90, alpha = 80 }
  virtual_ips       = [for ip in ["192.0.2.100"] : "${ip}/24"]
}

volume "data" {
  port = -7788
  disk = { alpha = "/dev/vg0/${"data"}", bravo = "$${literal}" }
  meta = (null)
  attach = true ? "loop" : "nbd"
}
