package e2bapi

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"connectrpc.com/connect"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	processpb "github.com/paddock-dev/paddock/api/envd/process"
)

// proc is a command started through process.Start whose stream is open:
// the calls that address it by pid or tag (input, signals, list) reach it
// by its exec id. It ends with its Start stream.
type proc struct {
	execID string
	pid    uint32
	tag    string
	config *processpb.ProcessConfig
}

// procTable is the running commands of every sandbox. Safe for concurrent
// use.
type procTable struct {
	mu sync.Mutex                  // guards by
	by map[string]map[uint32]*proc // sandbox -> pid -> proc
}

func (t *procTable) add(sandbox string, p *proc) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.by == nil {
		t.by = map[string]map[uint32]*proc{}
	}
	if t.by[sandbox] == nil {
		t.by[sandbox] = map[uint32]*proc{}
	}
	t.by[sandbox][p.pid] = p
}

func (t *procTable) remove(sandbox string, pid uint32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.by[sandbox], pid)
	if len(t.by[sandbox]) == 0 {
		delete(t.by, sandbox)
	}
}

// find returns the command sel names in sandbox.
func (t *procTable) find(sandbox string, sel *processpb.ProcessSelector) (*proc, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range t.by[sandbox] {
		if (sel.GetTag() != "" && p.tag == sel.GetTag()) || (sel.GetTag() == "" && p.pid == sel.GetPid()) {
			return p, nil
		}
	}
	return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("process %s not found (paddock serve reaches commands while their Start stream is open)", selectorString(sel)))
}

func (t *procTable) list(sandbox string) []*processpb.ProcessInfo {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []*processpb.ProcessInfo
	for _, p := range t.by[sandbox] {
		info := &processpb.ProcessInfo{Config: p.config, Pid: p.pid}
		if p.tag != "" {
			info.Tag = &p.tag
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pid < out[j].Pid })
	return out
}

func selectorString(sel *processpb.ProcessSelector) string {
	if sel.GetTag() != "" {
		return "tagged " + sel.GetTag()
	}
	return fmt.Sprintf("with pid %d", sel.GetPid())
}

// target finds the command a request addresses, in the sandbox it names.
func (p *processService) target(h requestHeader, sel *processpb.ProcessSelector) (string, *proc, error) {
	info, err := p.s.sandboxFor(h.Header())
	if err != nil {
		return "", nil, err
	}
	pr, err := p.s.procs.find(info.Name, sel)
	return info.Name, pr, err
}

// writeStdin sends data (and then, if close, the end of input) to a
// command's stdin.
func (p *processService) writeStdin(ctx context.Context, sandboxName string, pr *proc, data []byte, closeIt bool) error {
	c, err := p.s.m.Dial(sandboxName)
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, err)
	}
	defer c.Close()
	ws, err := c.Agent.WriteStdin(ctx)
	if err == nil {
		err = ws.Send(&agentv1.StdinChunk{Id: pr.execID, Data: data, Close: closeIt})
	}
	if err == nil {
		_, err = ws.CloseAndRecv()
	}
	if err != nil {
		return connect.NewError(connect.CodeFailedPrecondition, err)
	}
	return nil
}

func (p *processService) List(ctx context.Context, req *connect.Request[processpb.ListRequest]) (*connect.Response[processpb.ListResponse], error) {
	info, err := p.s.sandboxFor(req.Header())
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&processpb.ListResponse{Processes: p.s.procs.list(info.Name)}), nil
}

func (p *processService) SendInput(ctx context.Context, req *connect.Request[processpb.SendInputRequest]) (*connect.Response[processpb.SendInputResponse], error) {
	name, pr, err := p.target(req, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if req.Msg.GetInput().GetPty() != nil {
		return nil, connect.NewError(connect.CodeUnimplemented, errors.New("paddock serve does not serve PTYs yet"))
	}
	if err := p.writeStdin(ctx, name, pr, req.Msg.GetInput().GetStdin(), false); err != nil {
		return nil, err
	}
	return connect.NewResponse(&processpb.SendInputResponse{}), nil
}

func (p *processService) CloseStdin(ctx context.Context, req *connect.Request[processpb.CloseStdinRequest]) (*connect.Response[processpb.CloseStdinResponse], error) {
	name, pr, err := p.target(req, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	if err := p.writeStdin(ctx, name, pr, nil, true); err != nil {
		return nil, err
	}
	return connect.NewResponse(&processpb.CloseStdinResponse{}), nil
}

func (p *processService) SendSignal(ctx context.Context, req *connect.Request[processpb.SendSignalRequest]) (*connect.Response[processpb.SendSignalResponse], error) {
	name, pr, err := p.target(req, req.Msg.GetProcess())
	if err != nil {
		return nil, err
	}
	sig := int32(req.Msg.GetSignal())
	if sig != 9 && sig != 15 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("signal %d: SIGTERM or SIGKILL", sig))
	}
	c, err := p.s.m.Dial(name)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	defer c.Close()
	if _, err := c.Agent.Signal(ctx, &agentv1.SignalRequest{Id: pr.execID, Signal: sig}); err != nil {
		return nil, connect.NewError(connect.CodeFailedPrecondition, err)
	}
	return connect.NewResponse(&processpb.SendSignalResponse{}), nil
}
