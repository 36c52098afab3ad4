cluster "c" {
  secret_file = "/etc/hactl/secret"
}

node "alpha node" {
  address = "192.0.2.11"
}

node "-bravo" {
  address = "192.0.2.12"
}

node {
  address = "192.0.2.13"
}

node "delta" "extra" {
  address = "192.0.2.14"
}
