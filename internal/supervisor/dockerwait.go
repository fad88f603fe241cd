package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"time"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// dockerReadyTimeout bounds the wait for dockerd in a template VM.
const dockerReadyTimeout = 90 * time.Second

// waitDocker waits, in a template VM about to be saved, until the dockerd
// the guest agent starts at boot answers (internal/guest/docker.go), so
// every clone restores a daemon that is ready instead of finishing its
// start (about 10 s under TCG) itself. It runs the template's docker
// client wrapper, which waits for the socket; a template without Docker
// answers "not found" at once. A failure only costs the clones that wait.
func waitDocker(ctx context.Context, c agentv1.TTRPCAgentClient, log *slog.Logger) {
	const wrapper = "/usr/local/bin/docker"
	ctx, cancel := context.WithTimeout(ctx, dockerReadyTimeout)
	defer cancel()
	id := make([]byte, 8)
	rand.Read(id)
	t0 := time.Now()
	stream, err := c.Exec(ctx, &agentv1.ExecRequest{
		Id: hex.EncodeToString(id), Argv: []string{wrapper, "version", "--format", "{{.Server.Version}}"}, User: "0", Cwd: "/",
	})
	if err != nil {
		log.Warn("template vm: could not ask for dockerd", "err", err)
		return
	}
	for {
		ev, err := stream.Recv()
		if err != nil {
			log.Warn("template vm: waiting for dockerd", "err", err)
			return
		}
		if x := ev.GetExited(); x != nil {
			for {
				// Read the stream to its end, so the reply that closes
				// it does not arrive after we have left.
				if _, err := stream.Recv(); err != nil {
					break
				}
			}
			if x.ExitCode == 0 {
				log.Info("template vm: dockerd ready", "duration", time.Since(t0).Round(time.Millisecond))
			} else if x.ExitCode != 127 {
				log.Warn("template vm: dockerd not ready", "exit", x.ExitCode, "error", x.Error)
			}
			return
		}
	}
}
