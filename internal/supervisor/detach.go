package supervisor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"sync"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// detachedLine starts the console line with which the agent confirms a
// Detach (guest.DetachedLine).
const detachedLine = "paddock-agent: detached"

// consoleWatch passes QEMU's serial console through to w and reports when
// a line it was told to expect has gone by.
type consoleWatch struct {
	w io.Writer

	mu   sync.Mutex
	want []byte // guarded by mu; nil when nothing is expected
	seen chan struct{}
	tail []byte // the end of the output so far, for a match across writes
}

func newConsoleWatch(w io.Writer) *consoleWatch { return &consoleWatch{w: w} }

func (c *consoleWatch) Write(b []byte) (int, error) {
	c.mu.Lock()
	if c.want != nil {
		buf := append(c.tail, b...)
		if bytes.Contains(buf, c.want) {
			close(c.seen)
			c.want, c.tail = nil, nil
		} else {
			c.tail = append(c.tail[:0], buf[max(0, len(buf)-len(c.want)):]...)
		}
	}
	c.mu.Unlock()
	return c.w.Write(b)
}

// expect returns a channel closed once s has been written.
func (c *consoleWatch) expect(s string) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.want, c.tail, c.seen = []byte(s), nil, make(chan struct{})
	return c.seen
}

// detach ends the host session with the agent and waits until the agent
// confirms on the console that it is between sessions: only then may the
// VM be saved (a restored agent in the middle of an old session would
// read the next host's bytes as part of it). No fixed wait: on a loaded
// host it takes as long as it takes, up to ctx.
func detach(ctx context.Context, link agentLink, console *consoleWatch) error {
	b := make([]byte, 12)
	rand.Read(b)
	token := hex.EncodeToString(b)
	seen := console.expect(detachedLine + " " + token)
	agent, err := link.agent(ctx)
	if err != nil {
		return err
	}
	if _, err := agent.Detach(ctx, &agentv1.DetachRequest{Token: token}); err != nil {
		return fmt.Errorf("detach from the guest agent: %w", err)
	}
	link.drop()
	select {
	case <-seen:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the guest agent did not confirm that it left the host session: %w", ctx.Err())
	}
}
