# Data nodes replicate over replication_address.
cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
}

volume "data" {
  port = 7788
  disk = { alpha = "/dev/vg0/data", bravo = "/dev/vg0/data" }
}

volume "logs" {
  port = 7789
  disk = { alpha = "/dev/vg0/logs", bravo = "/dev/vg0/logs" }
}
