package membership

import (
	"testing"

	"github.com/hactl/hactl/internal/netnstest"
)

// TestMain moves the tests into a private network namespace (as root), so
// the bridge and veths of the cluster test never touch the host's network.
func TestMain(m *testing.M) { netnstest.Main(m) }
