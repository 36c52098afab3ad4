// Package vrrpnet is the thin Linux adapter under the VRRP runner: a raw
// IPv4 socket for protocol 112, address management and gratuitous ARP on an
// interface, interface state tracking and the optional virtual MAC
// (macvlan) interface.
//
// # Network namespaces
//
// Every object binds to the network namespace that is current for the
// calling OS thread when it is opened: the sockets are created there, and
// the netlink handle is created at open time, so later calls act in that
// namespace from any goroutine. The hactl agent runs inside the node's
// namespace, so this is simply "the node". Tests enter a namespace with
// runtime.LockOSThread and netns.Set around the Open calls.
//
// Package-level functions (AddVMAC, RemoveVMAC, WatchLinks) act in the
// calling thread's namespace at the time of the call.
package vrrpnet
