package guest

import (
	"context"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// DetachedLine starts the console line that confirms a Detach: the agent
// has ended the host session and waits for the next host, so the VM may
// be saved. The token follows it.
const DetachedLine = "paddock-agent: detached"

// Detach arms the confirmation of the current host session's end (see
// the Detach call in agent.proto).
func (a *Agent) Detach(_ context.Context, req *agentv1.DetachRequest) (*agentv1.DetachResponse, error) {
	a.mu.Lock()
	a.detachToken = req.GetToken()
	a.mu.Unlock()
	return &agentv1.DetachResponse{}, nil
}

// takeDetach returns and clears the token of a pending Detach ("" if none).
func (a *Agent) takeDetach() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.detachToken
	a.detachToken = ""
	return t
}
