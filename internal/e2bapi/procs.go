package e2bapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	processpb "github.com/paddock-dev/paddock/api/envd/process"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// The calls that address a command by pid or tag go to the guest agent,
// which keeps the processes (internal/guest): they reach a command whether
// or not a stream of it is open, and across restarts of paddock serve.

// agentSelector is the agent's name for the process sel names.
func agentSelector(sel *processpb.ProcessSelector) (*agentv1.ProcessSelector, error) {
	switch {
	case sel.GetTag() != "":
		return &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Tag{Tag: sel.GetTag()}}, nil
	case sel.GetPid() != 0:
		return &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Pid{Pid: int32(sel.GetPid())}}, nil
	}
	return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("process: a pid or a tag is required"))
}

func selectorString(sel *processpb.ProcessSelector) string {
	if sel.GetTag() != "" {
		return "tagged " + sel.GetTag()
	}
	return fmt.Sprintf("with pid %d", sel.GetPid())
}

// agentError turns an error of the agent (through the supervisor) into
// envd's: a process that is not there is NotFound, which the SDKs read as
// "no such process" (kill answers false).
func agentError(err error, sel *processpb.ProcessSelector) error {
	st := status.Convert(err)
	switch st.Code() {
	case codes.NotFound:
		if sel != nil {
			return connect.NewError(connect.CodeNotFound, fmt.Errorf("process %s not found", selectorString(sel)))
		}
	case codes.OK, codes.Unknown:
		return connect.NewError(connect.CodeInternal, err)
	}
	// gRPC's codes and Connect's are the same numbers.
	return connect.NewError(connect.Code(st.Code()), errors.New(st.Message()))
}

// dial connects to the supervisor of the sandbox a request addresses.
func (p *processService) dial(h requestHeader) (*sandbox.Client, error) {
	info, err := p.s.sandboxFor(h.Header())
	if err != nil {
		return nil, err
	}
	c, err := p.s.m.Dial(info.Name)
	if err != nil {
		return nil, connect.NewError(connect.CodeUnavailable, err)
	}
	return c, nil
}

// writeStdin sends data (and then, if close, the end of input) to the
// input of the command sel names: its stdin, or its terminal.
func (p *processService) writeStdin(ctx context.Context, h requestHeader, sel *processpb.ProcessSelector, data []byte, closeIt bool) error {
	target, err := agentSelector(sel)
	if err != nil {
		return err
	}
	c, err := p.dial(h)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.Agent.WriteStdinChunk(ctx, &agentv1.StdinChunk{Process: target, Data: data, Close: closeIt}); err != nil {
		return agentError(err, sel)
	}
	return nil
}

// List answers with the running commands the guest keeps, with the
// configuration they were started with.
func (p *processService) List(ctx context.Context, req *connect.Request[processpb.ListRequest]) (*connect.Response[processpb.ListResponse], error) {
	c, err := p.dial(req)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	r, err := c.Agent.ListProcesses(ctx, &agentv1.ListProcessesRequest{})
	if err != nil {
		return nil, agentError(err, nil)
	}
	out := &processpb.ListResponse{}
	for _, pr := range r.GetProcesses() {
		if pr.GetExited() != nil {
			continue
		}
		out.Processes = append(out.Processes, processInfo(pr))
	}
	return connect.NewResponse(out), nil
}

// processInfo is envd's view of a process the agent keeps: the
// configuration it was started with through the API (its annotation), or
// its argv.
func processInfo(pr *agentv1.ProcessInfo) *processpb.ProcessInfo {
	cfg := &processpb.ProcessConfig{}
	if proto.Unmarshal(pr.GetAnnotation(), cfg) != nil || cfg.GetCmd() == "" {
		cfg = &processpb.ProcessConfig{Cmd: pr.GetArgv()[0], Args: pr.GetArgv()[1:]}
		if pr.GetCwd() != "" {
			cfg.Cwd = proto.String(pr.GetCwd())
		}
	}
	info := &processpb.ProcessInfo{Config: cfg, Pid: uint32(pr.GetPid())}
	if pr.GetTag() != "" {
		info.Tag = proto.String(pr.GetTag())
	}
	return info
}

func (p *processService) SendInput(ctx context.Context, req *connect.Request[processpb.SendInputRequest]) (*connect.Response[processpb.SendInputResponse], error) {
	in := req.Msg.GetInput()
	data := in.GetStdin()
	if in.GetPty() != nil {
		data = in.GetPty()
	}
	if err := p.writeStdin(ctx, req, req.Msg.GetProcess(), data, false); err != nil {
		return nil, err
	}
	return connect.NewResponse(&processpb.SendInputResponse{}), nil
}

// StreamInput writes a client stream of input to one command: a start
// event names it, data events follow.
func (p *processService) StreamInput(ctx context.Context, stream *connect.ClientStream[processpb.StreamInputRequest]) (*connect.Response[processpb.StreamInputResponse], error) {
	h := headerOf{stream.RequestHeader()}
	var sel *processpb.ProcessSelector
	for stream.Receive() {
		msg := stream.Msg()
		switch ev := msg.GetEvent().(type) {
		case *processpb.StreamInputRequest_Start:
			sel = ev.Start.GetProcess()
		case *processpb.StreamInputRequest_Data:
			if sel == nil {
				return nil, connect.NewError(connect.CodeInvalidArgument, errors.New("input before the start event that names the process"))
			}
			in := ev.Data.GetInput()
			data := in.GetStdin()
			if in.GetPty() != nil {
				data = in.GetPty()
			}
			if err := p.writeStdin(ctx, h, sel, data, false); err != nil {
				return nil, err
			}
		}
	}
	if err := stream.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return connect.NewResponse(&processpb.StreamInputResponse{}), nil
}

// headerOf gives a client stream's request headers the shape of a
// request's.
type headerOf struct{ h http.Header }

func (h headerOf) Header() http.Header { return h.h }

func (p *processService) CloseStdin(ctx context.Context, req *connect.Request[processpb.CloseStdinRequest]) (*connect.Response[processpb.CloseStdinResponse], error) {
	if err := p.writeStdin(ctx, req, req.Msg.GetProcess(), nil, true); err != nil {
		return nil, err
	}
	return connect.NewResponse(&processpb.CloseStdinResponse{}), nil
}

func (p *processService) SendSignal(ctx context.Context, req *connect.Request[processpb.SendSignalRequest]) (*connect.Response[processpb.SendSignalResponse], error) {
	sel := req.Msg.GetProcess()
	target, err := agentSelector(sel)
	if err != nil {
		return nil, err
	}
	sig := int32(req.Msg.GetSignal())
	if sig != 9 && sig != 15 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("signal %d: SIGTERM or SIGKILL", sig))
	}
	c, err := p.dial(req)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Agent.Signal(ctx, &agentv1.SignalRequest{Process: target, Signal: sig}); err != nil {
		return nil, agentError(err, sel)
	}
	return connect.NewResponse(&processpb.SendSignalResponse{}), nil
}

// Update resizes a command's terminal.
func (p *processService) Update(ctx context.Context, req *connect.Request[processpb.UpdateRequest]) (*connect.Response[processpb.UpdateResponse], error) {
	sel := req.Msg.GetProcess()
	target, err := agentSelector(sel)
	if err != nil {
		return nil, err
	}
	size := req.Msg.GetPty().GetSize()
	if size == nil {
		return connect.NewResponse(&processpb.UpdateResponse{}), nil
	}
	if size.GetRows() == 0 || size.GetCols() == 0 || size.GetRows() > 65535 || size.GetCols() > 65535 {
		return nil, connect.NewError(connect.CodeInvalidArgument, fmt.Errorf("pty size %dx%d: columns and rows must be 1 to 65535", size.GetCols(), size.GetRows()))
	}
	c, err := p.dial(req)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Agent.Resize(ctx, &agentv1.ResizeRequest{Process: target, Rows: size.GetRows(), Cols: size.GetCols()}); err != nil {
		return nil, agentError(err, sel)
	}
	return connect.NewResponse(&processpb.UpdateResponse{}), nil
}

// Connect streams a command the guest keeps, found by pid or tag: the
// start event, the output it made while nobody listened (kept up to 1 MiB;
// a note on stderr, or on the terminal, says how much was dropped), live
// output, and its end.
func (p *processService) Connect(ctx context.Context, req *connect.Request[processpb.ConnectRequest], stream *connect.ServerStream[processpb.ConnectResponse]) error {
	sel := req.Msg.GetProcess()
	target, err := agentSelector(sel)
	if err != nil {
		return err
	}
	c, err := p.dial(req)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // the supervisor releases the stream; the process runs on
	events, err := c.Agent.Attach(ctx, &agentv1.AttachRequest{Id: "api-" + newAccessToken()[:12], Process: target})
	if err != nil {
		return agentError(err, sel)
	}
	send := func(ev *processpb.ProcessEvent) error {
		return stream.Send(&processpb.ConnectResponse{Event: ev})
	}
	return relay(ctx, events, send, keepalive(req.Header()), sel)
}
