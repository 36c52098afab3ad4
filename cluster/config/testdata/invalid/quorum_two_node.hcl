cluster "c" {
  secret_file = "/etc/hactl/secret"
  quorum      = "two_node"
}

node "alpha" {
  address = "192.0.2.11"
}

node "bravo" {
  address = "192.0.2.12"
}

node "witness" {
  address = "192.0.2.13"
  witness = true
}
