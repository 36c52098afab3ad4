// Package txlog holds two pieces of the Primary's write path that need no
// I/O: InFlight, which serialises overlapping writes so that both replicas
// apply them in the same order, and TransferLog, which remembers what was
// sent to the peer, grouped into epochs, until a barrier ack says the peer
// has it on stable storage (or a disconnect says it never will).
//
// The engine owns the rest: it activates AL extents before a write and
// releases them for the writes BarrierAck returns, sends the Barrier
// messages the log asks for, and sets bitmap bits for the ranges Fail and
// NegAck report. The design follows DRBD 8.4 (drbd_req.c, tl_release in
// drbd_main.c, receive_Barrier in drbd_receiver.c).
package txlog
