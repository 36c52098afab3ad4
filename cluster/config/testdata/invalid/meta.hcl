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

node "charlie" {
  address             = "192.0.2.13"
  replication_address = "198.51.100.13"
}

volume "external" {
  port = 7788
  disk = { alpha = "/dev/vg0/a", bravo = "/dev/vg0/a" }
  meta = "external"
}

volume "partial" {
  port = 7789
  disk = { alpha = "/dev/vg0/b", bravo = "/dev/vg0/b" }
  meta = { alpha = "/var/lib/hactl/b.meta", charlie = "/var/lib/hactl/b.meta" }
}

volume "same" {
  port = 7790
  disk = { alpha = "/dev/vg0/c", bravo = "/dev/vg0/c" }
  meta = { alpha = "/dev/vg0/c", bravo = "var/lib/hactl/c.meta" }
}
