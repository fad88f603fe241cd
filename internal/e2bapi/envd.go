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

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	processpb "github.com/paddock-dev/paddock/api/envd/process"
	"github.com/paddock-dev/paddock/api/envd/process/processpbconnect"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// E2B's SDKs reach a sandbox's own services (envd) at E2B_SANDBOX_URL with
// the headers E2b-Sandbox-Id and X-Access-Token; paddock serve answers
// them itself, over the sandbox's supervisor. Served: process.Start (what
// commands.run uses). The rest answers Unimplemented, saying so.

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
	if info.Status != "running" {
		return sandbox.Info{}, connect.NewError(connect.CodeUnavailable, fmt.Errorf("sandbox %q is %s", id, info.Status))
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

func (p *processService) Start(ctx context.Context, req *connect.Request[processpb.StartRequest], stream *connect.ServerStream[processpb.StartResponse]) error {
	info, err := p.s.sandboxFor(req.Header())
	if err != nil {
		return err
	}
	msg := req.Msg
	if msg.Pty != nil {
		return connect.NewError(connect.CodeUnimplemented, errors.New("paddock serve does not serve PTYs yet"))
	}
	cfg := msg.GetProcess()
	if cfg.GetCmd() == "" {
		return connect.NewError(connect.CodeInvalidArgument, errors.New("process.cmd is required"))
	}
	env := make([]string, 0, len(cfg.GetEnvs()))
	for k, v := range cfg.GetEnvs() {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	c, err := p.s.m.Dial(info.Name)
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the exec: the supervisor kills an abandoned one
	execID := "api-" + newAccessToken()[:12]
	events, err := c.Agent.Exec(ctx, &agentv1.ExecRequest{
		Id:   execID,
		Argv: append([]string{cfg.GetCmd()}, cfg.GetArgs()...),
		Env:  env, Cwd: cfg.GetCwd(), User: execUser(req.Header()), Stdin: msg.GetStdin(),
	})
	if err != nil {
		return connect.NewError(connect.CodeInternal, err)
	}
	// While its stream is open the command can be listed, written to and
	// signalled by pid or tag.
	var pid uint32
	started := func(n uint32) {
		pid = n
		p.s.procs.add(info.Name, &proc{execID: execID, pid: n, tag: msg.GetTag(), config: cfg})
	}
	defer func() {
		if pid != 0 {
			p.s.procs.remove(info.Name, pid)
		}
	}()
	return relay(ctx, events, stream, keepalive(req.Header()), started)
}

// relay sends the agent's exec events as envd's process events, with
// keepalives at the interval asked for, until the process ends; started
// is called with the pid when the process has started.
func relay(ctx context.Context, events agentv1.Agent_ExecClient, stream *connect.ServerStream[processpb.StartResponse], every time.Duration, started func(uint32)) error {
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
	send := func(ev *processpb.ProcessEvent) error {
		return stream.Send(&processpb.StartResponse{Event: ev})
	}
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
					return connect.NewError(connect.CodeInternal, errors.New("the command's stream ended without its exit status"))
				}
				return connect.NewError(connect.CodeInternal, r.err)
			}
			ev, done := processEvent(r.ev)
			if st := r.ev.GetStarted(); st != nil {
				started(uint32(st.GetPid()))
			}
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

// processEvent turns one exec event into envd's, and reports the last.
func processEvent(ev *agentv1.ExecEvent) (*processpb.ProcessEvent, bool) {
	switch e := ev.Event.(type) {
	case *agentv1.ExecEvent_Started:
		return &processpb.ProcessEvent{Event: &processpb.ProcessEvent_Start{Start: &processpb.ProcessEvent_StartEvent{Pid: uint32(e.Started.GetPid())}}}, false
	case *agentv1.ExecEvent_Stdout:
		return &processpb.ProcessEvent{Event: &processpb.ProcessEvent_Data{Data: &processpb.ProcessEvent_DataEvent{Output: &processpb.ProcessEvent_DataEvent_Stdout{Stdout: e.Stdout}}}}, false
	case *agentv1.ExecEvent_Stderr:
		return &processpb.ProcessEvent{Event: &processpb.ProcessEvent_Data{Data: &processpb.ProcessEvent_DataEvent{Output: &processpb.ProcessEvent_DataEvent_Stderr{Stderr: e.Stderr}}}}, false
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
