package supervisor

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/containerd/ttrpc"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// agentLink is the supervisor's connection to the guest agent: guestLink,
// or a fake in tests (backend.go).
type agentLink interface {
	// agent returns a client on the current connection, connecting first
	// when there is none.
	agent(ctx context.Context) (agentv1.TTRPCAgentClient, error)
	// drop closes the current connection without waiting, reporting
	// whether there was one.
	drop() bool
	// waitAgent pings the agent until it answers or ctx ends.
	waitAgent(ctx context.Context) (*agentv1.PingResponse, error)
}

// guestLink is the supervisor's ttrpc connection to the guest agent on the
// control socket. It dials on first use and again after the connection
// broke or was hung up. A VM must be saved with no host session open: a
// restored agent in the middle of an old session would read the next
// host's bytes as part of it.
type guestLink struct {
	path string // the control socket

	mu     sync.Mutex // guards client
	client *ttrpc.Client
}

func newGuestLink(path string) *guestLink { return &guestLink{path: path} }

// agent returns a client on the current connection, dialing one if there
// is none.
func (l *guestLink) agent(ctx context.Context) (agentv1.TTRPCAgentClient, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client == nil {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", l.path)
		if err != nil {
			return nil, fmt.Errorf("connect to the guest agent: %w", err)
		}
		var client *ttrpc.Client
		// When the connection closes, the next call dials again. The
		// callback takes l.mu, so it reads client only after this
		// function has set it.
		client = ttrpc.NewClient(c, ttrpc.WithOnClose(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.client == client {
				l.client = nil
			}
		}))
		l.client = client
	}
	return agentv1.NewTTRPCAgentClient(l.client), nil
}

// drop closes the current connection without waiting, reporting whether
// there was one.
func (l *guestLink) drop() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	client := l.client
	l.client = nil
	l.mu.Unlock()
	if client == nil {
		return false
	}
	client.Close()
	return true
}

// waitAgent pings the agent until it answers or ctx ends. Each try has
// its own deadline and connection: bytes sent before the guest opened its
// port can sit unread (see internal/guest/port.go), and a new connection
// starts both ends afresh.
func (l *guestLink) waitAgent(ctx context.Context) (*agentv1.PingResponse, error) {
	var lastErr error
	for try := time.Second; ; try = min(2*try, 5*time.Second) {
		resp, err := l.pingOnce(ctx, try)
		if err == nil {
			return resp, nil
		}
		lastErr = err
		l.drop()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last try: %v)", ctx.Err(), lastErr)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (l *guestLink) pingOnce(ctx context.Context, d time.Duration) (*agentv1.PingResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	a, err := l.agent(ctx)
	if err != nil {
		return nil, err
	}
	return a.Ping(ctx, &agentv1.PingRequest{})
}
