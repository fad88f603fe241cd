package supervisor

import (
	"context"
	"os"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/vm/vmtest"
)

// runningForCheckpoint is a booted sandbox as a checkpoint finds it: a
// running fake VM, the agent linked, a disk and a sync record in its
// folder, its config written; and the layout of checkpoint "c1".
func runningForCheckpoint(t *testing.T) (*sup, *fakeAgent, *vmtest.Monitor, store.CheckpointLayout) {
	s, be, _ := newTestSup(t)
	proc := vmtest.NewProcess(os.Getpid())
	mon := vmtest.NewMonitor(proc, "running")
	s.qemu, s.monitor = proc, mon
	s.link = &fakeLink{fake: be.agent}
	s.console = newConsoleWatch(new(syncBuffer))
	be.agent.setConsole(s.console)
	for _, p := range []string{s.layout.Disk(), s.layout.SyncState()} {
		if err := os.WriteFile(p, []byte("data"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.WriteJSON(s.layout.Config(), s.cfg); err != nil {
		t.Fatal(err)
	}
	return s, be.agent, mon, s.opts.Home.Checkpoint("c1")
}

// TestCheckpoint: the guest is quiesced and detached, QEMU saves the
// whole state (shared RAM included) into the checkpoint with the machine
// record, the disk and the sync record, and checkpoint.json names the
// sandbox and its settings; then the VM runs on and the guest is
// configured again.
func TestCheckpoint(t *testing.T) {
	s, agent, mon, ck := runningForCheckpoint(t)
	resp, err := (&api{s: s}).Checkpoint(context.Background(), &supervisorv1.CheckpointRequest{Name: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{ck.Memory(), ck.Machine(), ck.Disk(), ck.SyncState()} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("checkpoint file: %v", err)
		}
	}
	if resp.MemoryBytes == 0 {
		t.Error("memory size 0")
	}
	var meta store.CheckpointMeta
	if err := store.ReadJSON(ck.Meta(), &meta); err != nil {
		t.Fatal(err)
	}
	if meta.Name != "c1" || meta.Sandbox != "t" || meta.Config.Template != "tiny" || meta.MemoryBytes != resp.MemoryBytes || meta.Policy == "" {
		t.Errorf("checkpoint.json: %+v", meta)
	}
	if info, err := os.Stat(ck.Dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("checkpoint folder: %v %v", info.Mode(), err)
	}
	if got, want := mon.Calls(), []string{"migrate-set-capabilities", "stop", "migrate", "cont"}; !slices.Equal(got, want) {
		t.Errorf("monitor calls %q, want %q", got, want)
	}
	if got, want := agent.Calls(), []string{"Quiesce", "Detach", "Configure t"}; !slices.Equal(got, want) {
		t.Errorf("agent calls %q, want %q", got, want)
	}
	if st, _ := mon.Status(); st != "running" || s.checkpointing {
		t.Errorf("after the checkpoint: vm %s, checkpointing %v", st, s.checkpointing)
	}
}

// TestCheckpointFails: a checkpoint that fails says what failed, leaves
// the sandbox running and out of its checkpointing state (an exec is
// accepted), and leaves no checkpoint folder (an existing one, untouched).
func TestCheckpointFails(t *testing.T) {
	for _, tc := range []struct {
		name    string
		breakIt func(s *sup, agent *fakeAgent, mon *vmtest.Monitor)
		code    codes.Code
		msg     []string // what the error says
		saved   bool     // QEMU was asked to save
	}{
		{
			name:    "save fails",
			breakIt: func(s *sup, _ *fakeAgent, mon *vmtest.Monitor) { mon.FailOn("migrate", errTest) },
			code:    codes.Internal,
			msg:     []string{"checkpoint: qmp migrate: injected failure", "the sandbox runs on"},
			saved:   true,
		},
		{
			name:    "disk copy fails",
			breakIt: func(s *sup, _ *fakeAgent, _ *vmtest.Monitor) { os.Remove(s.layout.Disk()) },
			code:    codes.Internal,
			msg:     []string{"checkpoint:", store.DiskName, "the sandbox runs on"},
			saved:   true,
		},
		{
			name:    "quiesce fails",
			breakIt: func(s *sup, agent *fakeAgent, _ *vmtest.Monitor) { agent.failOn("Quiesce", errTest) },
			code:    codes.Unknown,
			msg:     []string{"injected failure"},
		},
		{
			name:    "exists",
			breakIt: func(s *sup, _ *fakeAgent, _ *vmtest.Monitor) { os.MkdirAll(s.opts.Home.Checkpoint("c1").Meta(), 0o700) },
			code:    codes.AlreadyExists,
			msg:     []string{`checkpoint "c1" already exists`},
		},
		{
			name:    "paused",
			breakIt: func(s *sup, _ *fakeAgent, _ *vmtest.Monitor) { s.paused = true },
			code:    codes.FailedPrecondition,
			msg:     []string{`sandbox "t" is paused: resume it before a checkpoint`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, agent, mon, ck := runningForCheckpoint(t)
			tc.breakIt(s, agent, mon)
			_, err := (&api{s: s}).Checkpoint(context.Background(), &supervisorv1.CheckpointRequest{Name: "c1"})
			if err == nil {
				t.Fatal("the checkpoint succeeded")
			}
			if st, _ := status.FromError(err); st.Code() != tc.code {
				t.Errorf("code %v, want %v (%v)", st.Code(), tc.code, err)
			}
			mustContain(t, "error", err.Error(), tc.msg...)
			if got := slices.Contains(mon.Calls(), "migrate"); got != tc.saved {
				t.Errorf("save asked for: %v, want %v", got, tc.saved)
			}
			if st, _ := mon.Status(); st != "running" {
				t.Errorf("vm %s after the failed checkpoint, want running", st)
			}
			if tc.saved && !slices.Contains(agent.Calls(), "Configure t") {
				t.Errorf("the guest was not configured again: %q", agent.Calls())
			}
			s.paused = false
			if err := (&agentProxy{s: s}).ready(); err != nil {
				t.Errorf("an exec after the failed checkpoint: %v", err)
			}
			left, _ := os.ReadDir(ck.Dir)
			if tc.code == codes.AlreadyExists {
				if len(left) != 1 {
					t.Errorf("the existing checkpoint's folder holds %v, want it untouched", left)
				}
			} else if left != nil {
				t.Errorf("a checkpoint folder is left, with %v", left)
			}
		})
	}
}

// TestCheckpointBadName: a name that is not a valid name is refused
// before anything is made.
func TestCheckpointBadName(t *testing.T) {
	s, _, mon, _ := runningForCheckpoint(t)
	for _, name := range []string{"", "../x", "a/b", "-x"} {
		_, err := (&api{s: s}).Checkpoint(context.Background(), &supervisorv1.CheckpointRequest{Name: name})
		if st, _ := status.FromError(err); st.Code() != codes.InvalidArgument {
			t.Errorf("name %q: %v, want InvalidArgument", name, err)
		}
	}
	if calls := mon.Calls(); len(calls) != 0 {
		t.Errorf("monitor calls %q, want none", calls)
	}
	if _, err := os.Stat(s.opts.Home.CheckpointsDir()); !os.IsNotExist(err) {
		t.Errorf("checkpoints folder made: %v", err)
	}
}
