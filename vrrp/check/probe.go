package check

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/hactl/hactl/cluster/config"
)

// probe runs one probe within ctx, whose deadline is the check's timeout.
// A nil error means the check passed; detail then says what was seen.
// Probes give up as soon as ctx is done.
type probe func(ctx context.Context) (detail string, err error)

// Bounds on what a probe reads from the thing it checks: enough for a
// useful Detail, never enough to matter when it misbehaves.
const (
	maxStderr     = 1 << 10
	maxBody       = 4 << 10
	maxHeader     = 64 << 10
	maxDetailLine = 200
)

func newProbe(c config.Check) probe {
	switch c.Kind {
	case config.CheckExec:
		return execProbe(c.Exec)
	case config.CheckTCP:
		return tcpProbe(c.Address)
	case config.CheckHTTP:
		return httpProbe(c.Address, c.Status)
	case config.CheckDNS:
		return dnsProbe(c.Address, c.Query)
	}
	// The config rejects this; failing loudly beats a check that silently
	// never fails.
	return func(context.Context) (string, error) {
		return "", fmt.Errorf("unknown check kind %q", c.Kind)
	}
}

// tcpProbe passes when a TCP connection to addr (host:port) is accepted.
func tcpProbe(addr string) probe {
	return func(ctx context.Context) (string, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return "", err
		}
		conn.Close()
		return "connected to " + addr, nil
	}
}

// httpProbe passes when a GET of url answers with status want (200 when
// 0). Redirects are not followed: a redirect is what the service answered,
// and following it would check some other service.
func httpProbe(url string, want int) probe {
	if want == 0 {
		want = http.StatusOK
	}
	client := &http.Client{
		Transport: &http.Transport{
			// No Proxy: a health check talks to the service itself,
			// whatever HTTP_PROXY says. No keep-alive: every probe checks
			// that a new connection is accepted, and nothing is left open
			// between probes or after Stop.
			Proxy:                  nil,
			DialContext:            (&net.Dialer{}).DialContext,
			DisableKeepAlives:      true,
			MaxResponseHeaderBytes: maxHeader,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return func(ctx context.Context) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return "", err
		}
		req.Header.Set("User-Agent", "hactl-check")
		resp, err := client.Do(req)
		if err != nil {
			return "", err
		}
		// Read a little so a small response is taken in full, as a
		// browser would, but never a large one.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if resp.StatusCode != want {
			return "", fmt.Errorf("HTTP %d, want %d", resp.StatusCode, want)
		}
		return fmt.Sprintf("HTTP %d", resp.StatusCode), nil
	}
}

// firstLine returns the first non-blank line of b, shortened for a
// Detail.
func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if len(s) > maxDetailLine {
		s = s[:maxDetailLine] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// roundDuration keeps a Detail readable: "12ms", not "12.345678ms".
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Microsecond)
}
