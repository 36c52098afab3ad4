cluster "c" {
  secret_file = "/etc/hactl/secret"
}

# HCL allows one argument in a single-line block.
node "alpha" { address = "192.0.2.11"  replication_address = "198.51.100.11" }
