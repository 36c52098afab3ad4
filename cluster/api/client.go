package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"
)

// ErrAgentNotRunning means nothing answers on the socket: it is missing,
// or left behind by an agent that is no longer running.
var ErrAgentNotRunning = errors.New("hactl agent is not running on this node")

// Client talks to the local agent.
type Client struct {
	Socket string
	http   *http.Client
}

// NewClient returns a client for the agent listening on socket.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	return &Client{Socket: socket, http: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

// Status fetches the agent's view of the cluster.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var st Status
	err := c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
	if err == nil && st.Schema != Schema {
		err = fmt.Errorf("agent speaks status schema %d, this hactl reads schema %d: run the same hactl version on both", st.Schema, Schema)
	}
	return st, err
}

// Failover asks the agent to move a group.
func (c *Client) Failover(ctx context.Context, req FailoverRequest) (Plan, error) {
	var p Plan
	return p, c.do(ctx, http.MethodPost, "/v1/failover", req, &p)
}

// Standby asks the agent to drain (or undrain) a node.
func (c *Client) Standby(ctx context.Context, req StandbyRequest) (Plan, error) {
	var p Plan
	return p, c.do(ctx, http.MethodPost, "/v1/standby", req, &p)
}

// Volume asks the agent to change a volume's role on its node.
func (c *Client) Volume(ctx context.Context, req VolumeRequest) (Plan, error) {
	var p Plan
	return p, c.do(ctx, http.MethodPost, "/v1/volume", req, &p)
}

// Cleanup asks the agent to forget a group's failures and lift a block.
func (c *Client) Cleanup(ctx context.Context, req CleanupRequest) (Plan, error) {
	var p Plan
	return p, c.do(ctx, http.MethodPost, "/v1/cleanup", req, &p)
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://hactl"+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if isNoListener(err) {
			return fmt.Errorf("%w (socket %s)", ErrAgentNotRunning, c.Socket)
		}
		return fmt.Errorf("talking to the agent on %s: %w", c.Socket, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("reading the agent's reply: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
			if resp.StatusCode == http.StatusNotImplemented {
				return notImplementedError(eb.Error)
			}
			return errors.New(eb.Error)
		}
		return fmt.Errorf("agent answered %s", resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decoding the agent's reply: %w", err)
	}
	return nil
}

// isNoListener tells a missing or dead socket from other failures.
func isNoListener(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOTSOCK)
}

// notImplementedError carries the agent's message as is, and still matches
// ErrNotImplemented for callers that branch on it.
type notImplementedError string

func (e notImplementedError) Error() string        { return string(e) }
func (e notImplementedError) Is(target error) bool { return target == ErrNotImplemented }
