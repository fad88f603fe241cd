package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"strings"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Streams are a command's standard streams on the caller's side.
type Streams struct {
	Stdin  io.Reader // nil: the command's stdin is /dev/null
	Stdout io.Writer
	Stderr io.Writer // for a terminal's command, unused: stdout has it all
}

// Exit is how a command ended: its exit status (128+N when signal N
// killed it, as a shell reports it) and, when it could not start, why.
type Exit struct {
	Code  int
	Error string
}

// NewExecID is a fresh exec id.
func NewExecID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Run runs req's command (req.Id is filled in when empty), its output to
// s and s.Stdin to its input, and returns how it ended. started, when not
// nil, is called once the command runs: from then signals and resizes may
// go to req.Id.
func (c *Client) Run(ctx context.Context, req *agentv1.ExecRequest, s Streams, started func()) (Exit, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if req.Id == "" {
		req.Id = NewExecID()
	}
	req.Stdin = s.Stdin != nil
	stream, err := c.Agent.Exec(ctx, req)
	if err != nil {
		return Exit{}, err
	}
	// Input, resizes and signals wait for Started.
	first, err := stream.Recv()
	if err != nil {
		return Exit{}, err
	}
	if x := first.GetExited(); x != nil {
		return exitOf(x), nil
	}
	if started != nil {
		started()
	}
	if s.Stdin != nil {
		go c.SendStdin(ctx, req.Id, s.Stdin)
	}
	for {
		ev, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return Exit{}, errors.New("the sandbox ended the command without an exit status")
		}
		if err != nil {
			return Exit{}, err
		}
		switch e := ev.Event.(type) {
		case *agentv1.ExecEvent_Stdout:
			s.Stdout.Write(e.Stdout)
		case *agentv1.ExecEvent_Stderr:
			s.Stderr.Write(e.Stderr)
		case *agentv1.ExecEvent_Exited:
			return exitOf(e.Exited), nil
		}
	}
}

func exitOf(x *agentv1.Exited) Exit {
	return Exit{Code: int(x.GetExitCode()), Error: x.GetError()}
}

// Output runs argv in sandbox name as user ("" for the sandbox's default
// user) and returns what it printed and how it ended.
func (m *Manager) Output(ctx context.Context, name, user string, argv ...string) (stdout, stderr string, exit Exit, err error) {
	c, err := m.Dial(name)
	if err != nil {
		return "", "", Exit{}, err
	}
	defer c.Close()
	var out, errb strings.Builder
	exit, err = c.Run(ctx, &agentv1.ExecRequest{Argv: argv, User: user}, Streams{Stdout: &out, Stderr: &errb}, nil)
	return out.String(), errb.String(), exit, err
}
