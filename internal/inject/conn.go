package inject

import (
	"context"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// guestConn is the guest's connection with its first bytes (read by the
// forwarder) put back in front, counting the bytes each way; closed is
// closed with it.
type guestConn struct {
	net.Conn
	head     []byte
	sent     atomic.Int64 // read from the guest
	received atomic.Int64 // written to the guest
	once     sync.Once
	closed   chan struct{}
}

func newGuestConn(c net.Conn, head []byte) *guestConn {
	g := &guestConn{Conn: c, head: head, closed: make(chan struct{})}
	g.sent.Add(int64(len(head)))
	return g
}

func (g *guestConn) Read(b []byte) (int, error) {
	if len(g.head) > 0 {
		k := copy(b, g.head)
		g.head = g.head[k:]
		return k, nil
	}
	k, err := g.Conn.Read(b)
	g.sent.Add(int64(k))
	return k, err
}

func (g *guestConn) Write(b []byte) (int, error) {
	k, err := g.Conn.Write(b)
	g.received.Add(int64(k))
	return k, err
}

func (g *guestConn) Close() error {
	err := net.ErrClosed
	g.once.Do(func() {
		err = g.Conn.Close()
		close(g.closed)
	})
	return err
}

// CloseWrite half-closes the guest's connection when it can be.
func (g *guestConn) CloseWrite() error {
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (g *guestConn) counts() (sent, received int64) { return g.sent.Load(), g.received.Load() }

// oneConn is a listener that accepts conn once, then waits until done (the
// connection's end) or Close.
type oneConn struct {
	conn     net.Conn
	ctx      context.Context // the base of the connection's requests' contexts
	accepted bool            // only the server's accept loop reads and writes it
	done     <-chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
}

func (l *oneConn) Accept() (net.Conn, error) {
	if !l.accepted {
		l.accepted = true
		return l.conn, nil
	}
	select {
	case <-l.done:
	case <-l.stop:
	}
	return nil, net.ErrClosed
}

func (l *oneConn) Close() error {
	l.stopOnce.Do(func() { close(l.stop) })
	return nil
}

func (l *oneConn) Addr() net.Addr { return l.conn.LocalAddr() }

// relay joins the guest to a connection dial opens, unread, until both
// directions end.
func relay(ctx context.Context, guest *guestConn, dial func(context.Context) (net.Conn, error)) {
	defer guest.Close()
	up, err := dial(ctx)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(guest, up)
		guest.CloseWrite()
	}()
	io.Copy(up, guest)
	if cw, ok := up.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	<-done
}
