package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/store"
)

// fakeExec is a guest process's event stream as the proxy reads it.
type fakeExec struct {
	ttrpc.ClientStream // not used by the proxy

	events chan *agentv1.ExecEvent

	mu      sync.Mutex
	started bool
	killed  bool
	ended   bool
	eof     bool // Recv returned io.EOF: the stream was read to its end
}

func newFakeExec() *fakeExec { return &fakeExec{events: make(chan *agentv1.ExecEvent, 64)} }

func (e *fakeExec) Recv() (*agentv1.ExecEvent, error) {
	ev, ok := <-e.events
	if !ok {
		e.mu.Lock()
		e.eof = true
		e.mu.Unlock()
		return nil, io.EOF
	}
	return ev, nil
}

func (e *fakeExec) start() {
	e.mu.Lock()
	e.started = true
	e.mu.Unlock()
	e.events <- &agentv1.ExecEvent{Event: &agentv1.ExecEvent_Started{Started: &agentv1.Started{}}}
}

func (e *fakeExec) stdout(s string) {
	e.events <- &agentv1.ExecEvent{Event: &agentv1.ExecEvent_Stdout{Stdout: []byte(s)}}
}

// end ends the stream, once.
func (e *fakeExec) end() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.ended {
		e.ended = true
		close(e.events)
	}
}

// exit sends the last of the output and the exit, then ends the stream.
func (e *fakeExec) exit(code int32) {
	e.stdout("output after the kill\n")
	e.events <- &agentv1.ExecEvent{Event: &agentv1.ExecEvent_Exited{Exited: &agentv1.Exited{ExitCode: code}}}
	e.end()
}

func (e *fakeExec) readToEnd() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.eof
}

func (a *fakeAgent) Exec(ctx context.Context, req *agentv1.ExecRequest) (agentv1.TTRPCAgent_ExecClient, error) {
	if err := a.call("Exec " + req.Id); err != nil {
		return nil, err
	}
	e := newFakeExec()
	a.mu.Lock()
	a.execs[req.Id] = e
	on := a.onExec
	a.mu.Unlock()
	if on != nil {
		on(e)
	}
	return e, nil
}

func (a *fakeAgent) exec(id string) *fakeExec {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.execs[id]
}

// Signal kills a started process (exit 137); a process not started yet
// is not found, and starts right after, as one the kill overtook.
func (a *fakeAgent) Signal(ctx context.Context, req *agentv1.SignalRequest) (*agentv1.SignalResponse, error) {
	a.call(fmt.Sprintf("Signal %s %d", req.Id, req.Signal))
	e := a.exec(req.Id)
	e.mu.Lock()
	started, killed := e.started, e.killed
	e.killed = e.killed || (started && req.Signal == int32(syscall.SIGKILL))
	e.mu.Unlock()
	if !started {
		go e.start()
		return nil, fmt.Errorf("no process %q", req.Id)
	}
	if req.Signal == int32(syscall.SIGKILL) && !killed {
		go e.exit(137)
	}
	return &agentv1.SignalResponse{}, nil
}

// Release ends the stream; the process runs on.
func (a *fakeAgent) Release(ctx context.Context, req *agentv1.ReleaseRequest) (*agentv1.ReleaseResponse, error) {
	a.call("Release " + req.Id)
	a.exec(req.Id).end()
	return &agentv1.ReleaseResponse{}, nil
}

func (a *fakeAgent) AckOutput(ctx context.Context, req *agentv1.AckOutputRequest) (*agentv1.AckOutputResponse, error) {
	a.call(fmt.Sprintf("AckOutput %s %d", req.Id, req.Events))
	return &agentv1.AckOutputResponse{}, nil
}

// clientStream is the host client's end of an Exec: it records what it is
// sent, and goes away as told.
type clientStream struct {
	grpc.ServerStream // not used by the proxy

	ctx context.Context
	// send is called with each event; its error is Send's.
	send func(*agentv1.ExecEvent) error

	mu   sync.Mutex
	sent []*agentv1.ExecEvent
}

func (c *clientStream) Context() context.Context { return c.ctx }

func (c *clientStream) Send(ev *agentv1.ExecEvent) error {
	if err := c.send(ev); err != nil {
		return err
	}
	c.mu.Lock()
	c.sent = append(c.sent, ev)
	c.mu.Unlock()
	return nil
}

// TestExecAbandoned: when the client of an exec goes away, the guest's
// process is killed (or, kept running, released), its remaining output
// is let go (AckOutput of everything), its stream is read to the end and
// the exec ends well before abandonTimeout; nothing more reaches the
// client, and the audit log has the exec with how it ended.
func TestExecAbandoned(t *testing.T) {
	errGone := errors.New("transport is closing")
	for _, tc := range []struct {
		name string
		keep bool // the request's KeepRunning
		// early: the client is gone before the process starts (the
		// first kill finds no process; the one after Started does).
		early    bool
		sendErr  bool // the client goes away as a Send fails, not by cancel
		wantCall string
		wantExit int32
	}{
		{name: "cancelled", wantCall: "Signal x 9", wantExit: 137},
		{name: "send fails", sendErr: true, wantCall: "Signal x 9", wantExit: 137},
		{name: "keep running", keep: true, wantCall: "Release x", wantExit: -1},
		{name: "before start", early: true, wantCall: "Signal x 9", wantExit: 137},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, be, _ := newTestSup(t)
			agent := be.agent
			s.link = &fakeLink{fake: agent}
			audit, err := openAudit(s.layout.ExecLog())
			if err != nil {
				t.Fatal(err)
			}
			p := &agentProxy{s: s, audit: audit}
			agent.onExec = func(e *fakeExec) {
				if !tc.early {
					e.start()
					e.stdout("hello\n")
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.early {
				cancel()
			}
			client := &clientStream{ctx: ctx, send: func(ev *agentv1.ExecEvent) error {
				if ev.GetStdout() == nil {
					return nil
				}
				if tc.sendErr {
					return errGone
				}
				cancel() // gone after the first output
				return nil
			}}
			req := &agentv1.ExecRequest{Id: "x", Argv: []string{"sleep", "600"}, KeepRunning: tc.keep}
			done := make(chan error, 1)
			go func() { done <- p.Exec(req, client) }()
			select {
			case err = <-done:
			case <-time.After(abandonTimeout / 2):
				t.Fatalf("Exec still running %s after its client went away; agent calls %q", abandonTimeout/2, agent.Calls())
			}
			if (err != nil) != tc.sendErr || (tc.sendErr && !errors.Is(err, errGone)) {
				t.Errorf("Exec returned %v; want nil, or the client's error when its Send failed", err)
			}
			if !agent.exec("x").readToEnd() {
				t.Error("the guest stream was not read to its end")
			}
			waitForCall(t, agent, tc.wantCall)
			waitForCall(t, agent, "AckOutput x 1073741824")
			if tc.keep && slices.ContainsFunc(agent.Calls(), func(c string) bool { return strings.HasPrefix(c, "Signal") }) {
				t.Errorf("a process kept running was signalled: %q", agent.Calls())
			}
			for _, ev := range client.sent {
				if strings.Contains(string(ev.GetStdout()), "after the kill") || ev.GetExited() != nil {
					t.Errorf("the client was sent %v after it went away", ev)
				}
			}
			if rec := execRecordIn(t, s.layout.ExecLog()); rec.ExitCode != tc.wantExit || !slices.Equal(rec.Argv, req.Argv) {
				t.Errorf("audit record %+v, want argv %q exit %d", rec, req.Argv, tc.wantExit)
			}
		})
	}
}

// execRecordIn is the one record of the audit log at path.
func execRecordIn(t *testing.T, path string) store.ExecRecord {
	t.Helper()
	var rec store.ExecRecord
	b, _ := os.ReadFile(path)
	if err := json.Unmarshal(bytes.TrimSpace(b), &rec); err != nil {
		t.Fatalf("audit log %q: %v", b, err)
	}
	return rec
}

// waitForCall waits up to a few seconds for the agent to be called so
// (an abandoned exec's acknowledgement may follow its end).
func waitForCall(t *testing.T, a *fakeAgent, call string) {
	t.Helper()
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if slices.Contains(a.Calls(), call) {
			return
		}
	}
	t.Errorf("agent not called %q; calls %q", call, a.Calls())
}
