package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// The guest end of a virtio-serial port, as measured on Linux 6.1 with
// QEMU 7.2 and a -chardev socket,server=on,wait=off behind it:
//   - While no host process is connected to the socket, poll reports
//     POLLHUP at once, read returns 0 (EOF) and write blocks.
//   - When a host process connects, POLLHUP clears; POLLIN follows as soon
//     as it sends (the host opens every session with a request).
//   - When it disconnects, a blocked read returns 0.
// So: wait for POLLIN without POLLHUP, serve, and on EOF start again.

// portConn is a virtio-serial port device, opened once for the life of
// the agent. The fd is non-blocking and registered with Go's poller.
//
// The port is never closed between host sessions: closing it tells QEMU
// the guest went away, QEMU then stops reading the host's socket, and it
// was seen to resume only when something else woke its main loop - a new
// host's first bytes sat unread for 20 s (until the host's connect timeout
// made it reconnect). Data is not mixed between sessions: QEMU discards
// what the guest sent and the host did not read when the host disconnects,
// and the guest reads the old host's bytes up to EOF before a new session.
type portConn struct {
	f *os.File
}

// openPort opens the port device for reading and writing.
func openPort(dev string) (*portConn, error) {
	fd, err := unix.Open(dev, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open control port %s: %w", dev, err)
	}
	return &portConn{f: os.NewFile(uintptr(fd), dev)}, nil
}

// session returns a net.Conn for one host session on the port.
func (p *portConn) session() *sessionConn {
	p.f.SetDeadline(time.Time{})
	return &sessionConn{f: p.f, closed: make(chan struct{})}
}

// sessionConn is one host session on the port as a net.Conn. Close ends
// the session, not the port: it wakes blocked reads and writes with a past
// deadline and makes later calls fail.
//
// Invariant: after wait returns, no Read or Write of this session is in
// progress or will start, so the next session owns the port alone.
type sessionConn struct {
	f      *os.File
	mu     sync.Mutex
	active sync.WaitGroup // calls in progress, guarded by mu for Add
	once   sync.Once
	closed chan struct{}
}

func (c *sessionConn) begin() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	select {
	case <-c.closed:
		return false
	default:
	}
	c.active.Add(1)
	return true
}

func (c *sessionConn) Read(b []byte) (int, error) {
	if !c.begin() {
		return 0, net.ErrClosed
	}
	defer c.active.Done()
	return c.f.Read(b)
}

func (c *sessionConn) Write(b []byte) (int, error) {
	if !c.begin() {
		return 0, net.ErrClosed
	}
	defer c.active.Done()
	return c.f.Write(b)
}

func (c *sessionConn) Close() error {
	c.once.Do(func() {
		c.mu.Lock()
		close(c.closed)
		c.mu.Unlock()
		c.f.SetDeadline(time.Now())
	})
	return nil
}

// wait blocks until the session is closed and its calls have returned.
func (c *sessionConn) wait() {
	<-c.closed
	c.active.Wait()
}

func (c *sessionConn) LocalAddr() net.Addr                { return portAddr(c.f.Name()) }
func (c *sessionConn) RemoteAddr() net.Addr               { return portAddr("host") }
func (c *sessionConn) SetDeadline(t time.Time) error      { return nil }
func (c *sessionConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *sessionConn) SetWriteDeadline(t time.Time) error { return nil }

// portAddr names a port end.
type portAddr string

func (a portAddr) Network() string { return "virtio-serial" }
func (a portAddr) String() string  { return string(a) }

// waitForHost blocks until the host has connected and sent data: POLLIN
// without POLLHUP. While the host is away poll returns POLLHUP at once, so
// it sleeps between tries, backing off from 1 ms to 5 ms: a restored VM
// sees its new host within a few milliseconds. A VM polls like this only
// while no host is connected (a template VM before its save, a clone in
// the moment after its restore); a running sandbox's supervisor stays
// connected.
func waitForHost(ctx context.Context, log *slog.Logger, c *portConn) error {
	raw, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	const minDelay, maxDelay = time.Millisecond, 5 * time.Millisecond
	delay := minDelay
	attached := false
	for {
		var revents int16
		var perr error
		err := raw.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			_, perr = unix.Poll(fds, 1000)
			revents = fds[0].Revents
		})
		if err != nil {
			return err
		}
		if perr != nil && !errors.Is(perr, unix.EINTR) {
			return fmt.Errorf("poll control port: %w", perr)
		}
		if revents&unix.POLLHUP == 0 && !attached {
			attached = true
			log.Debug("host attached, waiting for its first bytes")
		}
		switch {
		case revents&unix.POLLHUP != 0:
			attached = false
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(delay):
			}
			delay = min(2*delay, maxDelay)
		case revents&unix.POLLIN != 0:
			return nil
		case revents&(unix.POLLERR|unix.POLLNVAL) != 0:
			return fmt.Errorf("control port %s: poll revents %#x", c.f.Name(), revents)
		default:
			// Connected but silent, or a timeout: poll again (it blocks).
			delay = minDelay
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
	}
}
