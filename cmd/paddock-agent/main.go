// Command paddock-agent is the guest agent of paddock: PID 1 (/init) of a
// sandbox's microVM. It boots the guest and serves the control protocol of
// api/agent/v1 on a virtio-serial port; see internal/guest.
//
// Outside a VM it refuses to run unless -listen names a unix socket to serve
// on, which is for development: it then boots nothing and changes nothing
// system-wide.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/paddock-dev/paddock/internal/guest"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// The file tool, run as a user by the agent's own exec (guest.FilesVerb).
	if filepath.Base(os.Args[0]) == guest.FilesVerb {
		os.Exit(guest.RunFiles(os.Args[1:], os.Stdout, os.Stderr))
	}
	listen := flag.String("listen", "", "serve on this unix socket instead of booting (development; not as PID 1)")
	showVersion := flag.Bool("version", false, "print the version and exit")
	flag.Parse()
	if *showVersion {
		fmt.Println(version)
		return
	}
	if os.Getpid() == 1 {
		guest.RunInit(version) // never returns
	}
	if *listen == "" {
		fmt.Fprintln(os.Stderr, "paddock-agent: not PID 1: this is the init of a paddock guest; use -listen SOCKET to serve on a unix socket for development")
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("prog", "paddock-agent")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Remove(*listen)
	l, err := net.Listen("unix", *listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "paddock-agent: listen %s: %v\n", *listen, err)
		os.Exit(1)
	}
	if err := guest.RunListener(ctx, version, log, l); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "paddock-agent: %v\n", err)
		os.Exit(1)
	}
}
