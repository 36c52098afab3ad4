package wire

import (
	"testing"

	"github.com/hactl/hactl/internal/netnstest"
)

// The TCP tests run in a network namespace of their own (see
// internal/netnstest) with testAddr on lo.
const testAddr = "198.51.100.1" // TEST-NET-2, on lo inside the namespace

func TestMain(m *testing.M) { netnstest.Main(m, testAddr+"/32") }
