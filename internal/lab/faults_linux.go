package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// SetClusterFile replaces the cluster file every node sees as
// /etc/hactl/cluster.hcl (and the lab's own copy).
func (l *Lab) SetClusterFile(hcl string) error {
	if err := os.WriteFile(l.ClusterFile, []byte(hcl), 0o644); err != nil {
		return fmt.Errorf("lab %s: %w", l.Name, err)
	}
	for _, n := range l.Nodes {
		if err := os.WriteFile(filepath.Join(n.EtcDir, "cluster.hcl"), []byte(hcl), 0o644); err != nil {
			return fmt.Errorf("lab %s: node %s: %w", l.Name, n.Name, err)
		}
	}
	return nil
}

// switchPort is the switch-side end of node's link on network.
func (l *Lab) switchPort(node, network string) (string, error) {
	n, ok := l.Node(node)
	if !ok {
		return "", fmt.Errorf("lab %s has no node %q", l.Name, node)
	}
	for _, ln := range n.Links {
		if ln.Network == network {
			return ln.SwitchEnd, nil
		}
	}
	return "", fmt.Errorf("lab %s: node %s is not on the %s network", l.Name, node, network)
}

// Isolate cuts node off network silently: its bridge port stops
// forwarding, while both ends of the cable keep their carrier, so the node
// notices nothing but silence (a dead switch port, a hung peer).
func (l *Lab) Isolate(node, network string) error {
	return l.setPortState(node, network, "disabled")
}

// Rejoin undoes Isolate.
func (l *Lab) Rejoin(node, network string) error {
	return l.setPortState(node, network, "forwarding")
}

// portStates are the bridge port states by name (include/uapi/linux/if_bridge.h).
var portStates = map[string]string{"disabled": "0", "forwarding": "3"}

func (l *Lab) setPortState(node, network, state string) error {
	port, err := l.switchPort(node, network)
	if err != nil {
		return err
	}
	// The netlink library has no call for the port state, and `ip link set
	// type bridge_slave state` is silently ignored; bridge(8) works.
	cmd := exec.Command("nsenter", "--net="+netnsPath(l.Switch), "--", "bridge", "link", "set", "dev", port, "state", portStates[state])
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("lab %s: port %s of node %s %s: %v: %s", l.Name, port, node, state, err, out)
	}
	return nil
}

// SetCable plugs (up) or pulls (down) node's cable on network: the switch
// end goes down, so the node's interface loses its carrier.
func (l *Lab) SetCable(node, network string, up bool) error {
	port, err := l.switchPort(node, network)
	if err != nil {
		return err
	}
	h, err := handleAt(l.Switch)
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(port)
	if err == nil {
		if up {
			err = h.LinkSetUp(link)
		} else {
			err = h.LinkSetDown(link)
		}
	}
	if err != nil {
		return fmt.Errorf("lab %s: cable of node %s on %s: %w", l.Name, node, network, err)
	}
	return nil
}

// SwitchCommand runs argv in the switch namespace, where the bridges are
// (for nft rules on the bridge, bridge port settings, captures).
func (l *Lab) SwitchCommand(ctx context.Context, argv ...string) *exec.Cmd {
	args := append([]string{"--net=" + netnsPath(l.Switch), "--"}, argv...)
	cmd := exec.CommandContext(ctx, "nsenter", args...)
	cmd.WaitDelay = execWaitDelay
	return cmd
}
