package supervisor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"time"

	"google.golang.org/grpc"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// fileWindow is how many ReadFile chunks (256 KiB each) the guest may send
// ahead of the client: well under the 64 messages after which ttrpc closes
// a stream whose reader stalls.
const fileWindow = 16

// defaultUser is the user of a call that names none: an imported image's
// User, else the sandbox's user.
func (p *agentProxy) defaultUser() string {
	if img := p.image.get(p.s); img != nil {
		return imageUser(img.User)
	}
	return p.s.cfg.User.Name
}

// ReadFile passes a guest file on to the client, paced by the client: the
// guest sends at most fileWindow chunks that the client has not taken, and
// its stream is released when the client goes away.
func (p *agentProxy) ReadFile(req *agentv1.ReadFileRequest, stream grpc.ServerStreamingServer[agentv1.ReadFileChunk]) error {
	if err := p.ready(); err != nil {
		return err
	}
	if req.User == "" {
		req.User = p.defaultUser()
	}
	ctx := stream.Context()
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return err
	}
	b := make([]byte, 8)
	rand.Read(b)
	req.Id, req.Window = "read-"+hex.EncodeToString(b), fileWindow
	// ttrpc carries no cancel: the guest stream has its own context, and
	// Release ends it in the guest.
	gctx, gcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer gcancel()
	gs, err := agent.ReadFile(gctx, req)
	if err != nil {
		return err
	}
	release := func() {
		actx, cancel := context.WithTimeout(gctx, abandonTimeout)
		defer cancel()
		agent.Release(actx, &agentv1.ReleaseRequest{Id: req.Id})
	}
	passed := uint32(0)
	for {
		m, err := gs.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(m); err != nil {
			go release()
			return err
		}
		if passed++; passed == fileWindow/2 {
			if _, err := agent.AckOutput(gctx, &agentv1.AckOutputRequest{Id: req.Id, Events: passed}); err != nil {
				return err
			}
			passed = 0
		}
	}
}

// WriteFile passes the client's chunks on to the guest, each once the
// previous one is sent. A client that goes away ends the upload: the file
// keeps what was written (as a shell's redirection would).
func (p *agentProxy) WriteFile(stream grpc.ClientStreamingServer[agentv1.WriteFileChunk, agentv1.WriteFileResponse]) error {
	if err := p.ready(); err != nil {
		return err
	}
	ctx := stream.Context()
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.User == "" {
		first.User = p.defaultUser()
	}
	agent, err := p.s.link.agent(ctx)
	if err != nil {
		return err
	}
	gctx, gcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer gcancel()
	gs, err := agent.WriteFile(gctx)
	if err != nil {
		return err
	}
	// finish ends the guest's stream and returns its answer, waiting at
	// most abandonTimeout.
	finish := func() (*agentv1.WriteFileResponse, error) {
		t := time.AfterFunc(abandonTimeout, gcancel)
		defer t.Stop()
		return gs.CloseAndRecv()
	}
	for chunk := first; ; {
		if err := gs.Send(chunk); err != nil {
			_, gerr := finish() // the guest's reason, if it ended first
			if gerr == nil {
				gerr = err
			}
			return gerr
		}
		chunk, err = stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			finish()
			return err
		}
	}
	resp, err := finish()
	if err != nil {
		return err
	}
	return stream.SendAndClose(resp)
}
