package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/paddock-dev/paddock/internal/store"
)

type checkpointIn struct {
	Name       string `json:"name" jsonschema:"the running sandbox to checkpoint; it keeps running"`
	Checkpoint string `json:"checkpoint,omitempty" jsonschema:"the checkpoint's name (1-63 of a-z, 0-9 and '-'); generated when absent"`
}

type checkpointOut struct {
	Checkpoint string    `json:"checkpoint" jsonschema:"give it to sandbox_fork to start a copy of the sandbox as it is now"`
	Sandbox    string    `json:"sandbox"`
	Created    time.Time `json:"created"`
}

func (t *tools) checkpoint(ctx context.Context, req *mcp.CallToolRequest, in checkpointIn) (*mcp.CallToolResult, checkpointOut, error) {
	info, err := t.running(req.Extra, in.Name)
	if err != nil {
		return nil, checkpointOut{}, err
	}
	ck := in.Checkpoint
	if ck == "" {
		ck = in.Name + "-" + time.Now().UTC().Format("20060102-150405")
		if len(ck) > 63 {
			ck = store.GenerateName()
		}
	}
	meta, err := t.m.Checkpoint(ctx, info.Name, ck)
	if err != nil {
		return nil, checkpointOut{}, err
	}
	return nil, checkpointOut{Checkpoint: meta.Name, Sandbox: meta.Sandbox, Created: meta.Created}, nil
}

type forkIn struct {
	Name       string `json:"name,omitempty" jsonschema:"the new sandbox's name; generated when absent"`
	Checkpoint string `json:"checkpoint,omitempty" jsonschema:"the checkpoint to start from (sandbox_checkpoint made it)"`
	Source     string `json:"source,omitempty" jsonschema:"instead of checkpoint: a running sandbox to copy as it is now (checkpointed on the fly, the checkpoint removed afterwards)"`
	TTLSeconds int    `json:"ttl_s,omitempty" jsonschema:"seconds the new sandbox lives before it is removed; 0: until sandbox_remove"`
}

// fork starts a sandbox from a checkpoint, or from a running sandbox as it
// is now: its processes, memory and disk continue in the new one.
func (t *tools) fork(ctx context.Context, req *mcp.CallToolRequest, in forkIn) (*mcp.CallToolResult, sandboxOut, error) {
	owner, err := t.caller(req.Extra)
	if err != nil {
		return nil, sandboxOut{}, err
	}
	if (in.Checkpoint == "") == (in.Source == "") {
		return nil, sandboxOut{}, errors.New("give either checkpoint (from sandbox_checkpoint) or source (a running sandbox), not both or neither")
	}
	o, err := t.createOptions(createIn{Name: in.Name, TTLSeconds: in.TTLSeconds}, owner)
	if err != nil {
		return nil, sandboxOut{}, err
	}
	o.From = in.Checkpoint
	if in.Source != "" {
		_, cp, err := t.checkpoint(ctx, req, checkpointIn{Name: in.Source, Checkpoint: "fork-" + store.GenerateName()})
		if err != nil {
			return nil, sandboxOut{}, err
		}
		defer t.m.RemoveCheckpoint(cp.Checkpoint)
		o.From = cp.Checkpoint
	} else if err := t.ownCheckpoint(owner, in.Checkpoint); err != nil {
		return nil, sandboxOut{}, err
	}
	return t.start(ctx, owner, o)
}

// ownCheckpoint checks that the caller may fork checkpoint ck: with keys,
// only a checkpoint of one of the key's sandboxes.
func (t *tools) ownCheckpoint(owner, ck string) error {
	if err := store.ValidateName(ck); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	var meta store.CheckpointMeta
	err := store.ReadJSON(t.m.Home.Checkpoint(ck).Meta(), &meta)
	if err != nil || (t.cfg.PerKey && meta.Config.Owner != owner) {
		return fmt.Errorf("no checkpoint %q: make one with sandbox_checkpoint", ck)
	}
	return nil
}
