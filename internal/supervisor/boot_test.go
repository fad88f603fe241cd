package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/vm/vmtest"
)

// bootForTest runs the boot steps after the template's (bootVM) with spec
// made from rootfs, and stops the API server it starts.
func bootForTest(t *testing.T, s *sup, rootfs string) error {
	t.Helper()
	b := s.newBoot(context.Background())
	b.rootfs = rootfs
	b.spec = testSpec(rootfs)
	srv, err := s.bootVM(b)
	if srv != nil {
		t.Cleanup(srv.Stop)
	}
	return err
}

func testSpec(rootfs string) stateSpec {
	return stateSpec{Template: "tiny", TemplateHash: "h@1", Rootfs: rootfs, Kernel: "/k", Initrd: "/i",
		Accel: "tcg", CPUs: 1, MemoryMiB: 256, QEMU: "fake", CPU: "max", Format: stateFormat}
}

// makeTestState writes a complete saved state for spec, its device state
// devState's bytes (nil: one the fake monitor loads).
func makeTestState(t *testing.T, s *sup, spec stateSpec, devState []byte) savedState {
	t.Helper()
	st := stateFor(s.opts.Home, spec)
	if err := os.MkdirAll(st.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{st.RAM(), st.Disk(), st.Clone()} {
		if err := os.WriteFile(p, []byte(filepath.Base(p)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	err := vmtest.WriteState(st.DevState())
	if devState != nil {
		err = os.WriteFile(st.DevState(), devState, 0o600)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := store.WriteJSON(st.Meta(), spec); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestBootCold: a sandbox made with --cold gets a new overlay on the
// template's root image and a QEMU that boots (not one waiting for a
// state); the disk is grown to the sandbox's size, the agent is waited
// for and configured with the sandbox's name, and the API is served.
func TestBootCold(t *testing.T) {
	s, be, logs := newTestSup(t)
	s.cfg.Cold = true
	rootfs := testRootfs(t)
	if err := bootForTest(t, s, rootfs); err != nil {
		t.Fatalf("boot: %v\n%s", err, logs)
	}
	if s.mode != "cold" {
		t.Errorf("mode %q, want cold", s.mode)
	}
	if !slices.Equal(be.disks, []string{rootfs}) {
		t.Errorf("disks made on %q, want one on %s", be.disks, rootfs)
	}
	if !slices.Equal(be.incoming, []bool{false}) {
		t.Errorf("starts (incoming) %v, want one cold start", be.incoming)
	}
	if got := be.mons[0].Calls(); !slices.Equal(got, []string{"block_resize"}) {
		t.Errorf("monitor calls %q, want only the disk grown", got)
	}
	if got := be.agent.Calls(); !slices.Equal(got, []string{"Ping", "Configure t"}) {
		t.Errorf("agent calls %q, want Ping then Configure", got)
	}
	if _, err := os.Stat(s.layout.Socket()); err != nil {
		t.Errorf("API socket: %v", err)
	}
	if _, err := os.Stat(s.layout.QEMUPid()); err != nil {
		t.Errorf("qemu.pid: %v", err)
	}
	for _, step := range []string{"saved vm state", "create disk", "start qemu", "connect monitor", "grow disk", "wait for agent", "configure guest", "serve api"} {
		mustContain(t, "supervisor log", logs.String(), "step="+strconv.Quote(step))
	}
}

// TestBootRestore: a new sandbox gets its own link to the saved state's
// disk and a copy of its clone disk, a QEMU that waits for the state, the
// state loaded and the VM continued; the restored agent is not pinged
// (Configure is the handshake), and the console log says why it shows no
// boot.
func TestBootRestore(t *testing.T) {
	s, be, logs := newTestSup(t)
	rootfs := testRootfs(t)
	makeTestState(t, s, testSpec(rootfs), nil)
	if err := bootForTest(t, s, rootfs); err != nil {
		t.Fatalf("boot: %v\n%s", err, logs)
	}
	if s.mode != "restore" {
		t.Errorf("mode %q, want restore", s.mode)
	}
	if len(be.disks) != 0 {
		t.Errorf("disks made on %q, want none (the state's clone disk is copied)", be.disks)
	}
	if b, _ := os.ReadFile(s.layout.Disk()); string(b) != "clone.qcow2" {
		t.Errorf("disk.qcow2 holds %q, want the state's clone disk", b)
	}
	if b, _ := os.ReadFile(s.layout.BaseDisk()); string(b) != "disk.qcow2" {
		t.Errorf("base.qcow2 holds %q, want the state's disk", b)
	}
	if !slices.Equal(be.incoming, []bool{true}) {
		t.Errorf("starts (incoming) %v, want one waiting for the state", be.incoming)
	}
	if got, want := be.mons[0].Calls(), []string{"migrate-set-capabilities", "migrate-incoming", "cont", "block_resize"}; !slices.Equal(got, want) {
		t.Errorf("monitor calls %q, want %q", got, want)
	}
	if got := be.agent.Calls(); !slices.Equal(got, []string{"Configure t"}) {
		t.Errorf("agent calls %q, want only Configure", got)
	}
	b, _ := os.ReadFile(s.layout.ConsoleLog())
	mustContain(t, "console log", string(b), "restored from template tiny's saved VM")
}

// TestBootRestoreFallsBackToColdBoot: a saved state QEMU does not load
// (its stream corrupt, or made for another device set) costs a cold boot,
// not the sandbox: the waiting QEMU is killed and its monitor closed, the
// disk made for the state is replaced by a new overlay on the template's
// root image, a second QEMU boots cold, and the log says what happened.
func TestBootRestoreFallsBackToColdBoot(t *testing.T) {
	for _, tc := range []struct {
		name        string
		devState    []byte
		failRestore error
	}{
		{name: "corrupt", devState: []byte("QEVM\x00\x00\x00\x03 truncated")},
		{name: "mismatched", failRestore: errors.New("Unknown savevm section or instance 'virtio-net' 0")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, be, logs := newTestSup(t)
			be.failRestore = tc.failRestore
			rootfs := testRootfs(t)
			makeTestState(t, s, testSpec(rootfs), tc.devState)
			if err := bootForTest(t, s, rootfs); err != nil {
				t.Fatalf("boot: %v\n%s", err, logs)
			}
			if s.mode != "cold" {
				t.Errorf("mode %q, want cold", s.mode)
			}
			if !slices.Equal(be.incoming, []bool{true, false}) {
				t.Fatalf("starts (incoming) %v, want a restore then a cold boot", be.incoming)
			}
			if !be.procs[0].Killed() || !be.mons[0].Closed() {
				t.Errorf("the first QEMU: killed %v, monitor closed %v; want both", be.procs[0].Killed(), be.mons[0].Closed())
			}
			if be.procs[1].Killed() {
				t.Error("the cold boot's QEMU was killed")
			}
			if got := be.mons[1].Calls(); !slices.Equal(got, []string{"block_resize"}) {
				t.Errorf("second monitor calls %q, want only the disk grown", got)
			}
			if !slices.Equal(be.disks, []string{rootfs}) {
				t.Errorf("disks made on %q, want one on the template's root image", be.disks)
			}
			if b, _ := os.ReadFile(s.layout.Disk()); string(b) != "fake overlay on "+rootfs {
				t.Errorf("disk.qcow2 holds %q, want a new overlay", b)
			}
			if _, err := os.Stat(s.layout.BaseDisk()); !os.IsNotExist(err) {
				t.Errorf("base.qcow2 is still there (%v)", err)
			}
			if got := be.agent.Calls(); !slices.Equal(got, []string{"Ping", "Configure t"}) {
				t.Errorf("agent calls %q, want a cold boot's Ping then Configure", got)
			}
			mustContain(t, "supervisor log", logs.String(), "restore failed, falling back to a cold boot")
		})
	}
}

// TestBootFromMissingCheckpointFails: a fork whose checkpoint is gone
// fails at its disk, naming the checkpoint; it starts no QEMU.
func TestBootFromMissingCheckpointFails(t *testing.T) {
	s, be, _ := newTestSup(t)
	s.cfg.From = "gone"
	err := bootForTest(t, s, testRootfs(t))
	if err == nil {
		t.Fatal("boot from a missing checkpoint succeeded")
	}
	mustContain(t, "error", err.Error(), "create disk", `checkpoint "gone"`)
	if len(be.procs) != 0 {
		t.Errorf("%d QEMUs started", len(be.procs))
	}
}
