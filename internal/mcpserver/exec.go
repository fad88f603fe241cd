package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

const (
	// outputCap bounds each of a command's stdout and stderr in a result.
	outputCap = 64 << 10
	// defaultExecTimeout and maxExecTimeout bound a command's run.
	defaultExecTimeout = 120 * time.Second
	maxExecTimeout     = time.Hour
)

type execIn struct {
	Name     string `json:"name" jsonschema:"the sandbox's name"`
	Command  string `json:"command" jsonschema:"one shell command line, run with sh -c as the sandbox's user (pipes, &&, redirections work)"`
	Cwd      string `json:"cwd,omitempty" jsonschema:"the folder to run in (default: the user's home, or the workspace when the sandbox has one)"`
	TimeoutS int    `json:"timeout_s,omitempty" jsonschema:"seconds before the command is killed (default 120, at most 3600)"`
}

type execOut struct {
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
	ExitCode int    `json:"exit_code" jsonschema:"the command's exit status; 128+N when signal N killed it; -1 when it timed out"`
	TimedOut bool   `json:"timed_out,omitempty" jsonschema:"true when timeout_s passed and the command was killed"`
	Note     string `json:"note,omitempty" jsonschema:"what was cut from the output, or why the command ended"`
}

// checkExec checks an exec's arguments, gathering every problem, and
// returns its timeout.
func checkExec(in execIn) (time.Duration, error) {
	var errs []error
	if in.Name == "" {
		errs = append(errs, errNoName)
	}
	if strings.TrimSpace(in.Command) == "" {
		errs = append(errs, errors.New("command is required: one shell command line, e.g. \"ls -la\""))
	}
	timeout := defaultExecTimeout
	switch {
	case in.TimeoutS < 0 || time.Duration(in.TimeoutS)*time.Second > maxExecTimeout:
		errs = append(errs, fmt.Errorf("timeout_s %d: give 1 to %d seconds (run longer work in the background: nohup CMD >log 2>&1 &)", in.TimeoutS, int(maxExecTimeout.Seconds())))
	case in.TimeoutS > 0:
		timeout = time.Duration(in.TimeoutS) * time.Second
	}
	return timeout, errors.Join(errs...)
}

func (t *tools) exec(ctx context.Context, req *mcp.CallToolRequest, in execIn) (*mcp.CallToolResult, execOut, error) {
	timeout, err := checkExec(in)
	if err != nil {
		return nil, execOut{}, err
	}
	info, err := t.running(req.Extra, in.Name)
	if err != nil {
		return nil, execOut{}, err
	}
	c, err := t.m.Dial(info.Name)
	if err != nil {
		return nil, execOut{}, err
	}
	defer c.Close()
	runCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	stdout, stderr := &capped{max: outputCap}, &capped{max: outputCap}
	exit, err := c.Run(runCtx, &agentv1.ExecRequest{Argv: []string{"sh", "-c", in.Command}, Cwd: in.Cwd}, sandbox.Streams{Stdout: stdout, Stderr: stderr}, nil)
	out := execOut{Stdout: stdout.String(), Stderr: stderr.String(), ExitCode: exit.Code}
	var notes []string
	switch {
	case err != nil && ctx.Err() == nil && (runCtx.Err() != nil || status.Code(err) == codes.DeadlineExceeded):
		// The supervisor may end the stream at the deadline it was sent
		// a moment before runCtx's own timer fires.
		out.ExitCode, out.TimedOut = -1, true
		notes = append(notes, fmt.Sprintf("killed after timeout_s %d: raise timeout_s, or run it in the background (nohup CMD >log 2>&1 &) and read the log", int(timeout.Seconds())))
	case err != nil:
		return nil, execOut{}, fmt.Errorf("exec in %q: %w", info.Name, err)
	case exit.Error != "":
		return nil, execOut{}, fmt.Errorf("exec in %q: the command did not start: %s (check cwd)", info.Name, exit.Error)
	}
	notes = append(notes, stdout.note("stdout"), stderr.note("stderr"))
	out.Note = strings.Join(slices.DeleteFunc(notes, func(s string) bool { return s == "" }), "; ")
	return nil, out, nil
}

// capped keeps the first max bytes written to it and counts the rest.
type capped struct {
	strings.Builder
	max     int
	dropped int64
}

func (c *capped) Write(p []byte) (int, error) {
	room := max(c.max-c.Len(), 0)
	keep := min(len(p), room)
	c.Builder.Write(p[:keep])
	c.dropped += int64(len(p) - keep)
	return len(p), nil
}

// String is what was kept, cut back to whole UTF-8 characters when the
// cap split one.
func (c *capped) String() string {
	s := c.Builder.String()
	if c.dropped > 0 {
		for range utf8.UTFMax - 1 {
			if r, size := utf8.DecodeLastRuneInString(s); r != utf8.RuneError || size != 1 {
				break
			}
			s = s[:len(s)-1]
		}
	}
	return s
}

// note says what was cut, or "" when nothing was.
func (c *capped) note(stream string) string {
	if c.dropped == 0 {
		return ""
	}
	return fmt.Sprintf("%s cut at %d KiB (%d more bytes dropped): redirect it to a file and read parts with head, tail or grep", stream, c.max>>10, c.dropped)
}
