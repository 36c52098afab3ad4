package agent

import (
	"os"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/hactl/hactl/internal/logging"
)

// SelfFenceEnv set to "exit" makes a self-fence end the agent process at
// once instead of rebooting the machine: the lab's nodes share one kernel,
// so a real reboot would take every node (and the host) down.
const SelfFenceEnv = "HACTL_SELF_FENCE"

// selfFence is on_stop_failure = "self-fence": a resource may still use the
// volume here and cannot be stopped, so the node goes away for the peer to
// take over safely. Nothing is unmounted or demoted on the way out.
func selfFence(log *zap.Logger) func(reason string) {
	return func(reason string) {
		log.Error("self-fencing this node", zap.String(logging.KeyEvent, "self-fence"), zap.String(logging.KeyReason, reason))
		_ = log.Sync()
		if os.Getenv(SelfFenceEnv) == "exit" {
			os.Exit(70)
		}
		// sysrq 'b': immediate reboot without syncing or unmounting.
		if f, err := os.OpenFile("/proc/sysrq-trigger", os.O_WRONLY, 0); err == nil {
			_, _ = f.WriteString("b")
			f.Close()
		}
		_ = unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
		os.Exit(70)
	}
}
