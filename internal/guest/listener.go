package guest

import (
	"net"
	"sync"
)

// connListener is a net.Listener for one connection that already exists:
// Accept returns it once, then blocks until it is closed (or the listener
// is) and returns net.ErrClosed, which ends ttrpc.Server.Serve. That lets a
// caller serve one virtio-serial session at a time with one ttrpc.Server.
//
// Invariant: done is closed exactly once, when either the conn or the
// listener is closed.
type connListener struct {
	conn     *notifyConn
	mu       sync.Mutex
	accepted bool
}

// newConnListener wraps conn.
func newConnListener(conn net.Conn) *connListener {
	return &connListener{conn: &notifyConn{Conn: conn, done: make(chan struct{})}}
}

func (l *connListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	first := !l.accepted
	l.accepted = true
	l.mu.Unlock()
	if first {
		return l.conn, nil
	}
	<-l.conn.done
	return nil, net.ErrClosed
}

// Close wakes a blocked Accept; it does not close the conn (the server that
// accepted it owns it).
func (l *connListener) Close() error {
	l.conn.signal()
	return nil
}

// Done is closed when the conn or the listener has been closed.
func (l *connListener) Done() <-chan struct{} { return l.conn.done }

func (l *connListener) Addr() net.Addr { return l.conn.LocalAddr() }

// notifyConn closes done when the conn is closed.
type notifyConn struct {
	net.Conn
	once sync.Once
	done chan struct{}
}

func (c *notifyConn) signal() { c.once.Do(func() { close(c.done) }) }

func (c *notifyConn) Close() error {
	err := c.Conn.Close()
	c.signal()
	return err
}
