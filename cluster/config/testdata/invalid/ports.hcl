cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha" {
  address             = "192.0.2.11"
  replication_address = "198.51.100.11"
}

node "bravo" {
  address             = "192.0.2.12"
  replication_address = "198.51.100.12"
}

volume "zero" {
  port = 0
  disk = { alpha = "/dev/vg0/a", bravo = "/dev/vg0/a" }
}

volume "big" {
  port = 70000
  disk = { alpha = "/dev/vg0/b", bravo = "/dev/vg0/b" }
}

volume "first" {
  port = 7788
  disk = { alpha = "/dev/vg0/c", bravo = "/dev/vg0/c" }
}

volume "second" {
  port = 7788
  disk = { alpha = "/dev/vg0/d", bravo = "/dev/vg0/d" }
}
