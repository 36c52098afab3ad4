package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.uber.org/zap"
)

// DefaultSocket is where the agent listens unless told otherwise.
const DefaultSocket = "/run/hactl/hactl.sock"

// ErrNotImplemented answers a request this agent cannot carry out yet.
var ErrNotImplemented = errors.New("not implemented by this agent")

// Backend is what the server needs from the agent. Implementations must be
// safe for concurrent use: every request runs on its own goroutine.
type Backend interface {
	Status() Status
	Failover(ctx context.Context, req FailoverRequest) (Plan, error)
	Standby(ctx context.Context, req StandbyRequest) (Plan, error)
	Volume(ctx context.Context, req VolumeRequest) (Plan, error)
	Cleanup(ctx context.Context, req CleanupRequest) (Plan, error)
}

// CleanupRequest forgets a group's failures on the node and lifts a block.
type CleanupRequest struct {
	Group  string `json:"group"`
	DryRun bool   `json:"dry_run"`
}

// VolumeRequest changes a volume's role on this node.
type VolumeRequest struct {
	Volume string `json:"volume"`
	Action string `json:"action"` // "primary", "secondary", "resolve" or "verify"
	// Force promotes data that is not UpToDate: the first promotion of a
	// fresh volume.
	Force bool `json:"force"`
	// Discard names the node whose changes a split-brain resolution
	// throws away ("resolve").
	Discard string `json:"discard,omitempty"`
}

// FailoverRequest asks to move a group (or every group) away from its
// current node, to a chosen node or the best other one.
type FailoverRequest struct {
	Group  string `json:"group,omitempty"`
	To     string `json:"to,omitempty"`
	DryRun bool   `json:"dry_run"`
	// Wait returns only once another node serves the group.
	Wait bool `json:"wait,omitempty"`
}

// StandbyRequest asks to drain a node (or bring it back with Off).
type StandbyRequest struct {
	Node   string `json:"node"`
	Off    bool   `json:"off"`
	DryRun bool   `json:"dry_run"`
	// Wait returns only once every group stopped on the node.
	Wait bool `json:"wait,omitempty"`
}

// Plan is the ordered list of steps a change runs (or would run).
type Plan struct {
	Steps []string `json:"steps"`
}

// errorBody is every error the API returns.
type errorBody struct {
	Error string `json:"error"`
}

// Server serves the local API.
type Server struct {
	log     *zap.Logger
	backend Backend
	http    *http.Server
}

// NewServer returns a server for backend.
func NewServer(log *zap.Logger, backend Backend) *Server {
	s := &Server{log: log, backend: backend}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.handleStatus)
	mux.HandleFunc("POST /v1/failover", s.handleFailover)
	mux.HandleFunc("POST /v1/standby", s.handleStandby)
	mux.HandleFunc("POST /v1/volume", s.handleVolume)
	mux.HandleFunc("POST /v1/cleanup", s.handleCleanup)
	s.http = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ErrorLog:          zap.NewStdLog(log),
	}
	return s
}

// Serve answers requests on l until Shutdown. It returns nil after a clean
// shutdown.
func (s *Server) Serve(l net.Listener) error {
	if err := s.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops accepting requests and waits (bounded by ctx) for the
// ones in progress.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}

func (s *Server) handleStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.backend.Status())
}

func (s *Server) handleFailover(w http.ResponseWriter, r *http.Request) {
	var req FailoverRequest
	if !readJSON(w, r, &req) {
		return
	}
	plan, err := s.backend.Failover(r.Context(), req)
	s.reply(w, "failover", plan, err)
}

func (s *Server) handleStandby(w http.ResponseWriter, r *http.Request) {
	var req StandbyRequest
	if !readJSON(w, r, &req) {
		return
	}
	plan, err := s.backend.Standby(r.Context(), req)
	s.reply(w, "standby", plan, err)
}

func (s *Server) handleVolume(w http.ResponseWriter, r *http.Request) {
	var req VolumeRequest
	if !readJSON(w, r, &req) {
		return
	}
	plan, err := s.backend.Volume(r.Context(), req)
	s.reply(w, "volume-"+req.Action, plan, err)
}

func (s *Server) handleCleanup(w http.ResponseWriter, r *http.Request) {
	var req CleanupRequest
	if !readJSON(w, r, &req) {
		return
	}
	plan, err := s.backend.Cleanup(r.Context(), req)
	s.reply(w, "cleanup", plan, err)
}

func (s *Server) reply(w http.ResponseWriter, op string, plan Plan, err error) {
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, plan)
	case errors.Is(err, ErrNotImplemented):
		writeJSON(w, http.StatusNotImplemented, errorBody{err.Error()})
	default:
		s.log.Info("request refused", zap.String("event", op), zap.String("reason", err.Error()))
		writeJSON(w, http.StatusConflict, errorBody{err.Error()})
	}
}

// maxRequestBody bounds what a client can make the agent read.
const maxRequestBody = 64 << 10

func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxRequestBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{"bad request body: " + err.Error()})
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code, body = http.StatusInternalServerError, []byte(`{"error":"encoding the reply failed"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// Listener is the agent's socket. Close removes the socket file.
type Listener struct {
	net.Listener
	path string
	once sync.Once
}

// Close stops listening and removes the socket file.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { _ = os.Remove(l.path) })
	return err
}

// Listen creates the agent's unix socket at path with mode 0600. A socket
// left by a crashed agent is replaced; one that a live agent still answers
// on is not.
func Listen(path string) (*Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket; remove it or choose another --socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("another hactl agent is already listening on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	}
	// Bind under a temporary name, restrict it, then rename into place, so
	// the socket is never reachable with a wider mode.
	tmp := fmt.Sprintf("%s.%d.tmp", path, os.Getpid())
	_ = os.Remove(tmp)
	ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}
	ul.SetUnlinkOnClose(false)
	if err := os.Chmod(tmp, 0o600); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("restricting socket mode: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		ul.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("placing socket at %s: %w", path, err)
	}
	return &Listener{Listener: ul, path: path}, nil
}
