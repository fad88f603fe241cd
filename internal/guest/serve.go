package guest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/containerd/ttrpc"
)

// ServePort serves srv on the virtio-serial port dev until ctx ends: one
// host connection at a time, for ever. It waits for the host, serves one
// ttrpc connection until the host goes away (EOF), then waits again, so a
// host process started after a restore of the VM is served like the first.
// ready is called once, when the port is open; onSession (if not nil) in a
// goroutine of its own each time a host connects; afterSession (if not
// nil) each time a session has ended, before waiting for the next host.
func ServePort(ctx context.Context, log *slog.Logger, dev string, srv *ttrpc.Server, ready, onSession, afterSession func()) error {
	port, err := openPort(dev)
	if err != nil {
		return err
	}
	if ready != nil {
		ready()
	}
	for session := 1; ctx.Err() == nil; session++ {
		if err := waitForHost(ctx, log, port); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return err
		}
		start := time.Now()
		log.Debug("host connected", "session", session) // the host logs its side
		if onSession != nil {
			go onSession()
		}
		conn := port.session()
		// Serve returns when Accept reports the conn closed: the ttrpc
		// connection closes it on EOF, that is when the host disconnects.
		err := srv.Serve(ctx, newConnListener(conn))
		conn.Close()
		conn.wait()
		log.Info("host disconnected", "session", session, "duration", time.Since(start), "serve", err)
		if afterSession != nil {
			afterSession()
		}
	}
	return ctx.Err()
}

// ConsoleLogger returns a logger writing text lines prefixed with
// "paddock-agent: " to w (the kernel console, /dev/console, in the guest).
func ConsoleLogger(w *os.File, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(prefixWriter{w}, &slog.HandlerOptions{Level: level}))
}

// prefixWriter writes each record (one Write call per line) with a prefix.
type prefixWriter struct{ w *os.File }

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "paddock-agent: %s", b); err != nil {
		return 0, err
	}
	return len(b), nil
}
