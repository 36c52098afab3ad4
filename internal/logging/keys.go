package logging

// Field keys shared by every subsystem, so that one query finds a volume's or
// a VRRP instance's history across the whole agent (in journald they become
// EVENT=, VRID=, VOLUME= ...).
const (
	// KeyEvent names what happened, e.g. "transition", "advert_timeout".
	KeyEvent = "event"
	// KeyReason carries the reason behind a decision.
	KeyReason = "reason"
	// KeyInstance is a VRRP instance name.
	KeyInstance = "instance"
	// KeyVRID is a VRRP virtual router ID.
	KeyVRID = "vrid"
	// KeyVolume is a replicated volume name.
	KeyVolume = "volume"
	// KeyGroup is a resource group name.
	KeyGroup = "group"
	// KeyNode is a cluster node name.
	KeyNode = "node"
	// KeyFrom is the state before a transition.
	KeyFrom = "from"
	// KeyTo is the state after a transition.
	KeyTo = "to"
)
