package e2bapi

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	processpb "github.com/paddock-dev/paddock/api/envd/process"
	"github.com/paddock-dev/paddock/api/envd/process/processpbconnect"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// E2B's SDKs reach a sandbox's own services (envd) at E2B_SANDBOX_URL with
// the headers E2b-Sandbox-Id and X-Access-Token; paddock serve answers
// them itself, over the sandbox's supervisor: the process service here and
// in procs.go, the filesystem service and /files in their own files.

// newAccessToken is a sandbox's envd access token.
func newAccessToken() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// processService serves process.Process.
type processService struct {
	processpbconnect.UnimplementedProcessHandler
	s *Server
}

// sandboxFor returns the sandbox a request addresses, checking its access
// token.
func (s *Server) sandboxFor(h http.Header) (sandbox.Info, error) {
	id := h.Get("E2b-Sandbox-Id")
	if id == "" {
		return sandbox.Info{}, connect.NewError(connect.CodeInvalidArgument, errors.New("no E2b-Sandbox-Id header: set E2B_SANDBOX_URL to paddock serve's address"))
	}
	info, err := s.m.Inspect(id)
	token := h.Get("X-Access-Token")
	if err != nil || info.AccessToken == "" || subtle.ConstantTimeCompare([]byte(token), []byte(info.AccessToken)) != 1 {
		return sandbox.Info{}, connect.NewError(connect.CodeNotFound, fmt.Errorf("sandbox %q not found", id))
	}
	// A supervisor too busy to answer its status in time (a loaded host)
	// is given the call: the command's own stream says if it cannot run.
	if info.State != sandbox.StateRunning && info.State != sandbox.StateUnresponsive {
		return sandbox.Info{}, connect.NewError(connect.CodeUnavailable, fmt.Errorf("sandbox %q is %s", id, info.Summary()))
	}
	return info, nil
}

// execUser is the guest user of an envd request: E2B names it in HTTP
// basic auth; its default, "user", is the sandbox's default user.
func execUser(h http.Header) string {
	auth, ok := strings.CutPrefix(h.Get("Authorization"), "Basic ")
	if !ok {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(auth)
	if err != nil {
		return ""
	}
	name, _, _ := strings.Cut(string(b), ":")
	if name == "user" {
		return ""
	}
	return name
}

// keepalive is the interval the client asks for (seconds), or 0.
func keepalive(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Keepalive-Ping-Interval"))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// Start runs a command that outlives its stream (the agent's keep_running):
// when the client goes away the command runs on, and Connect, List and the
// calls by pid or tag reach it in the guest.
func (p *processService) Start(ctx context.Context, req *connect.Request[processpb.StartRequest], stream *connect.ServerStream[processpb.StartResponse]) error {
	msg := req.Msg
	cfg := msg.GetProcess()
	if cfg.GetCmd() == "" {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("process.cmd is required"))
	}
	size := msg.GetPty().GetSize()
	if msg.Pty != nil && (size.GetRows() == 0 || size.GetCols() == 0 || size.GetRows() > 65535 || size.GetCols() > 65535) {
		return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("pty size %dx%d: columns and rows must be 1 to 65535", size.GetCols(), size.GetRows()))
	}
	env := make([]string, 0, len(cfg.GetEnvs()))
	for k, v := range cfg.GetEnvs() {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	annotation, err := proto.Marshal(cfg)
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	c, err := p.dial(req)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream: the supervisor releases it, the command runs on
	events, err := c.Agent.Exec(ctx, &agentv1.ExecRequest{
		Id:   "api-" + newAccessToken()[:12],
		Argv: append([]string{cfg.GetCmd()}, cfg.GetArgs()...),
		Env:  env, Cwd: cfg.GetCwd(), User: execUser(req.Header()), Stdin: msg.GetStdin(),
		Tty: msg.Pty != nil, Rows: size.GetRows(), Cols: size.GetCols(),
		KeepRunning: true, Tag: msg.GetTag(), Annotation: annotation,
	})
	if err != nil {
		return agentError(err, nil)
	}
	send := func(ev *processpb.ProcessEvent) error {
		return stream.Send(&processpb.StartResponse{Event: ev})
	}
	return relay(ctx, events, send, keepalive(req.Header()), nil)
}

// agentStream is the part of the agent's Exec and Attach streams relay
// reads.
type agentStream interface {
	Recv() (*agentv1.ExecEvent, error)
}

// relay sends the agent's events of one process as envd's process events,
// with keepalives at the interval asked for, until the process ends (or
// the stream does); sel names the process in errors (nil for Start).
func relay(ctx context.Context, events agentStream, send func(*processpb.ProcessEvent) error, every time.Duration, sel *processpb.ProcessSelector) error {
	type result struct {
		ev  *agentv1.ExecEvent
		err error
	}
	next := make(chan result)
	go func() {
		for {
			ev, err := events.Recv()
			select {
			case next <- result{ev, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	var tick <-chan time.Time
	if every > 0 {
		t := time.NewTicker(every)
		defer t.Stop()
		tick = t.C
	}
	tty := false
	for {
		select {
		case <-tick:
			if err := send(&processpb.ProcessEvent{Event: &processpb.ProcessEvent_Keepalive{Keepalive: &processpb.ProcessEvent_KeepAlive{}}}); err != nil {
				return err
			}
			continue
		case r := <-next:
			if r.err != nil {
				if errors.Is(r.err, io.EOF) {
					return connect.NewError(connect.CodeUnavailable, errors.New("the command's stream ended without its exit status"))
				}
				return agentError(r.err, sel)
			}
			if st := r.ev.GetStarted(); st != nil {
				tty = st.GetTty()
			}
			ev, done := processEvent(r.ev, tty)
			if ev != nil {
				if err := send(ev); err != nil {
					return err
				}
			}
			if done {
				return nil
			}
		}
	}
}

// processEvent turns one exec event into envd's, and reports the last. A
// terminal's output is envd's pty data; output dropped while nobody listened
// becomes a note on stderr (or the terminal), as envd has no event for it.
func processEvent(ev *agentv1.ExecEvent, tty bool) (*processpb.ProcessEvent, bool) {
	data := func(b []byte, stderr bool) *processpb.ProcessEvent {
		d := &processpb.ProcessEvent_DataEvent{Output: &processpb.ProcessEvent_DataEvent_Stdout{Stdout: b}}
		switch {
		case tty:
			d.Output = &processpb.ProcessEvent_DataEvent_Pty{Pty: b}
		case stderr:
			d.Output = &processpb.ProcessEvent_DataEvent_Stderr{Stderr: b}
		}
		return &processpb.ProcessEvent{Event: &processpb.ProcessEvent_Data{Data: d}}
	}
	switch e := ev.Event.(type) {
	case *agentv1.ExecEvent_Dropped:
		return data([]byte(fmt.Sprintf("\r\n[paddock: %d bytes of output were dropped while nobody was connected]\r\n", e.Dropped)), true), false
	case *agentv1.ExecEvent_Started:
		return &processpb.ProcessEvent{Event: &processpb.ProcessEvent_Start{Start: &processpb.ProcessEvent_StartEvent{Pid: uint32(e.Started.GetPid())}}}, false
	case *agentv1.ExecEvent_Stdout:
		return data(e.Stdout, false), false
	case *agentv1.ExecEvent_Stderr:
		return data(e.Stderr, true), false
	case *agentv1.ExecEvent_Exited:
		x := e.Exited
		end := &processpb.ProcessEvent_EndEvent{ExitCode: x.GetExitCode(), Exited: x.GetSignal() == 0, Status: "exit status " + strconv.Itoa(int(x.GetExitCode()))}
		if x.GetSignal() != 0 {
			end.Status = "signal: " + strconv.Itoa(int(x.GetSignal()))
		}
		if x.GetError() != "" {
			msg := x.GetError()
			end.Error = &msg
		}
		return &processpb.ProcessEvent{Event: &processpb.ProcessEvent_End{End: end}}, true
	}
	return nil, false
}
