package supervisor

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
)

// guestLink dials the guest agent's control socket for the gRPC client
// and can hang the current connection up. A VM must be saved with no host
// session open: a restored agent in the middle of an old session would
// read the next host's bytes as part of it.
type guestLink struct {
	mu  sync.Mutex // guards cur
	cur net.Conn
}

func (l *guestLink) dial(ctx context.Context, _ string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", store.ControlSocketName)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.cur = c
	l.mu.Unlock()
	return c, nil
}

// hangupSettle is how long the agent gets to see a hang-up and go back to
// waiting for a host (it sees EOF at once; this is slack for a loaded host).
const hangupSettle = 200 * time.Millisecond

// hangup closes the current connection and waits until the agent has
// noticed. gRPC dials again on the next call.
func (l *guestLink) hangup() {
	l.mu.Lock()
	c := l.cur
	l.cur = nil
	l.mu.Unlock()
	if c != nil {
		c.Close()
		time.Sleep(hangupSettle)
	}
}
