package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"time"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Attach streams a process that the guest keeps (an exec started with
// keep_running, running or ended and not yet collected) to a host client,
// with the same output credit as Exec. When the client goes away the
// stream is released; the process runs on.
func (p *agentProxy) Attach(req *agentv1.AttachRequest, stream agentv1.Agent_AttachServer) error {
	if err := p.ready(); err != nil {
		return err
	}
	ctx := stream.Context()
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return err
	}
	if req.Id == "" {
		b := make([]byte, 8)
		rand.Read(b)
		req.Id = "attach-" + hex.EncodeToString(b)
	}
	req.OutputWindow = outputWindow
	gctx, gcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer gcancel()
	gs, err := agent.Attach(gctx, req)
	if err != nil {
		return err
	}
	released := false
	release := func() {
		if released {
			return
		}
		released = true
		time.AfterFunc(abandonTimeout, gcancel)
		go func() {
			actx, cancel := context.WithTimeout(gctx, abandonTimeout)
			defer cancel()
			agent.Release(actx, &agentv1.ReleaseRequest{Id: req.Id})
		}()
	}
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-ctx.Done():
			time.AfterFunc(abandonTimeout, gcancel)
			actx, cancel := context.WithTimeout(gctx, abandonTimeout)
			defer cancel()
			agent.Release(actx, &agentv1.ReleaseRequest{Id: req.Id})
		case <-finished:
		}
	}()
	var clientErr error
	passed := uint32(0) // output events passed on and not yet acknowledged
	for {
		ev, err := gs.Recv()
		if errors.Is(err, io.EOF) {
			return clientErr
		}
		if err != nil {
			return err
		}
		if clientErr != nil || ctx.Err() != nil {
			release()
			continue
		}
		if err := stream.Send(ev); err != nil {
			clientErr = err
			release()
			continue
		}
		if ev.GetStdout() != nil || ev.GetStderr() != nil {
			if passed++; passed == outputWindow/2 {
				if _, err := agent.AckOutput(gctx, &agentv1.AckOutputRequest{Id: req.Id, Events: passed}); err != nil {
					return err
				}
				passed = 0
			}
		}
	}
}

// Release ends one of the guest's output streams (see the agent's proto).
func (p *agentProxy) Release(ctx context.Context, req *agentv1.ReleaseRequest) (*agentv1.ReleaseResponse, error) {
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return nil, err
	}
	return agent.Release(ctx, req)
}

// ListProcesses lists the processes the guest keeps.
func (p *agentProxy) ListProcesses(ctx context.Context, req *agentv1.ListProcessesRequest) (*agentv1.ListProcessesResponse, error) {
	if err := p.ready(); err != nil {
		return nil, err
	}
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return nil, err
	}
	return agent.ListProcesses(ctx, req)
}

// WriteStdinChunk writes one chunk of input to a process the guest keeps,
// named by exec id, pid or tag.
func (p *agentProxy) WriteStdinChunk(ctx context.Context, chunk *agentv1.StdinChunk) (*agentv1.WriteStdinResponse, error) {
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return nil, err
	}
	return agent.WriteStdinChunk(ctx, chunk)
}
