package store

import (
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ListenUnix listens on the unix socket path (0600 by the umask, see
// Mask) and accepts only connections whose peer, by SO_PEERCRED, runs as
// this process's effective uid, root, or one of also; others are closed
// unanswered.
func ListenUnix(path string, also ...uint32) (net.Listener, error) {
	os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return &peerListener{Listener: l, allowed: append([]uint32{uint32(os.Geteuid()), 0}, also...)}, nil
}

type peerListener struct {
	net.Listener
	allowed []uint32
}

// Accept returns the next connection from an allowed peer.
func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.permitted(c) {
			return c, nil
		}
		c.Close()
	}
}

func (l *peerListener) permitted(c net.Conn) bool {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return false
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) {
		cred, err = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	})
	if err != nil || cred == nil {
		return false
	}
	for _, uid := range l.allowed {
		if cred.Uid == uid {
			return true
		}
	}
	return false
}
