package sandbox

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
)

func testManager(t *testing.T) *Manager {
	t.Helper()
	return &Manager{Home: store.Home(t.TempDir())}
}

func TestValidateGathersEveryProblem(t *testing.T) {
	m := testManager(t)
	_, err := m.validate(CreateOptions{Name: "Bad_Name", Workspace: "/does/not/exist", CPUs: 999, Memory: "lots", Accel: "xen", Env: []string{"=x"}})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"invalid name", "does not exist", "--cpus", "--memory", "--accel", "--env"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestValidateDefaults(t *testing.T) {
	m := testManager(t)
	ws := t.TempDir()
	cfg, err := m.validate(CreateOptions{Workspace: ws})
	if err != nil {
		t.Fatal(err)
	}
	if store.ValidateName(cfg.Name) != nil || cfg.Template != "debian" || cfg.MemoryBytes != 2<<30 || cfg.Accel != "auto" || cfg.CPUs < 1 || cfg.CPUs > 2 {
		t.Fatalf("defaults: %+v", cfg)
	}
	if cfg.Workspace != ws || cfg.User.Name != "agent" || len(cfg.MachineID) != 32 {
		t.Fatalf("workspace/user/machine id: %+v", cfg)
	}
}

func TestValidateRefusesDangerousWorkspaces(t *testing.T) {
	m := testManager(t)
	if _, err := m.validate(CreateOptions{Workspace: "/"}); err == nil || !strings.Contains(err.Error(), "root directory") {
		t.Errorf("/ accepted: %v", err)
	}
	parent := filepath.Dir(string(m.Home))
	if _, err := m.validate(CreateOptions{Workspace: parent}); err == nil || !strings.Contains(err.Error(), "paddock's state") {
		t.Errorf("a folder containing PADDOCK_HOME accepted: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	os.WriteFile(f, nil, 0o644)
	if _, err := m.validate(CreateOptions{Workspace: f}); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Errorf("a file accepted as workspace: %v", err)
	}
}

func TestValidateMemoryBounds(t *testing.T) {
	m := testManager(t)
	ws := t.TempDir()
	for _, bad := range []string{"1M", "100T", "0", "-2G"} {
		if _, err := m.validate(CreateOptions{Workspace: ws, Memory: bad}); err == nil {
			t.Errorf("--memory %s accepted", bad)
		}
	}
	cfg, err := m.validate(CreateOptions{Workspace: ws, Memory: "512M"})
	if err != nil || cfg.MemoryBytes != 512<<20 {
		t.Fatalf("512M: %d %v", cfg.MemoryBytes, err)
	}
}

// writeSandbox lays out a sandbox directory with the given facts.
func writeSandbox(t *testing.T, m *Manager, name string, withConfig bool) store.Layout {
	t.Helper()
	l := m.Home.Sandbox(name)
	if err := os.MkdirAll(l.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if withConfig {
		store.WriteJSON(l.Config(), store.SandboxConfig{Name: name, Template: "tiny", CPUs: 1, MemoryBytes: 512 << 20, Created: time.Now()})
	}
	return l
}

func TestStatusIsDerivedFromFacts(t *testing.T) {
	m := testManager(t)
	writeSandbox(t, m, "incomplete", false)
	writeSandbox(t, m, "fresh", true)
	l := writeSandbox(t, m, "stopped", true)
	store.WriteJSON(l.LastExit(), store.ExitRecord{Clean: true, Reason: "stopped"})
	l = writeSandbox(t, m, "crashed", true)
	store.WriteJSON(l.LastExit(), store.ExitRecord{Clean: false, Reason: "qemu exited unexpectedly (signal: killed); see paddock logs crashed"})
	l = writeSandbox(t, m, "killed", true)
	// A supervisor that is gone: a pid file of this boot whose process
	// start time does not match any live process.
	store.WriteJSON(l.SupervisorPid(), store.PidFile{Pid: os.Getpid(), BootID: store.BootID(), StartTime: 1})
	l = writeSandbox(t, m, "rebooted", true)
	store.WriteJSON(l.SupervisorPid(), store.PidFile{Pid: 1, BootID: "another-boot", StartTime: 1})

	// Each fact gives a state of the fixed vocabulary; the sentence is
	// the reason's.
	type want struct {
		state  State
		reason string // a prefix
	}
	wants := map[string]want{
		"incomplete": {StateBroken, "incomplete create"},
		"fresh":      {StateCreated, ""},
		"stopped":    {StateStopped, ""},
		"crashed":    {StateBroken, "qemu exited unexpectedly"},
		"killed":     {StateBroken, "the supervisor died"},
		"rebooted":   {StateStopped, "the host rebooted"},
	}
	list, err := m.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != len(wants) {
		t.Fatalf("listed %d sandboxes, want %d", len(list), len(wants))
	}
	for _, s := range list {
		w := wants[s.Name]
		if s.State != w.state || !strings.HasPrefix(s.Reason, w.reason) || (w.reason == "") != (s.Reason == "") {
			t.Errorf("%s: state %q, reason %q; want %q, reason starting %q", s.Name, s.State, s.Reason, w.state, w.reason)
		}
	}
}

// Every word QEMU's query-status can answer maps into the vocabulary.
func TestStateFromQEMU(t *testing.T) {
	cases := []struct {
		qemu   string
		state  State
		reason string
	}{
		{"running", StateRunning, ""},
		{"paused", StatePaused, ""},
		{"checkpointing", StateCheckpointing, ""},
		{"inmigrate", StateStarting, "QEMU reports inmigrate"},
		{"postmigrate", StatePaused, "QEMU reports postmigrate"},
		{"guest-panicked", StateBroken, "QEMU reports guest-panicked; see paddock logs web"},
		{"io-error", StateBroken, "QEMU reports io-error; see paddock logs web"},
	}
	for _, c := range cases {
		if st, reason := fromQEMU(c.qemu, "web"); st != c.state || reason != c.reason {
			t.Errorf("%s: %q, %q; want %q, %q", c.qemu, st, reason, c.state, c.reason)
		}
	}
}

func TestSummary(t *testing.T) {
	if s := (Info{State: StateRunning}).Summary(); s != "running" {
		t.Errorf("running: %q", s)
	}
	if s := (Info{State: StateBroken, Reason: "the supervisor died"}).Summary(); s != "broken: the supervisor died" {
		t.Errorf("broken: %q", s)
	}
}

func TestRemoveCleansBrokenSandboxes(t *testing.T) {
	m := testManager(t)
	for _, n := range []string{"incomplete", "crashed"} {
		l := writeSandbox(t, m, n, n != "incomplete")
		if err := m.Remove(t.Context(), n, false); err != nil {
			t.Fatalf("rm %s: %v", n, err)
		}
		if _, err := os.Stat(l.Dir); !os.IsNotExist(err) {
			t.Fatalf("%s still exists", l.Dir)
		}
	}
	if err := m.Remove(t.Context(), "nosuch", false); err == nil || !strings.Contains(err.Error(), "no such sandbox") {
		t.Fatalf("rm of a missing sandbox: %v", err)
	}
}

func TestUndoRunsNewestFirstAndJoinsErrors(t *testing.T) {
	var order []int
	var u undo
	u.add(func() error { order = append(order, 1); return nil })
	u.add(func() error { order = append(order, 2); return os.ErrPermission })
	u.add(func() error { order = append(order, 3); return nil })
	err := u.run()
	if len(order) != 3 || order[0] != 3 || order[2] != 1 {
		t.Fatalf("order %v", order)
	}
	if err == nil || !strings.Contains(err.Error(), "permission") {
		t.Fatalf("err %v", err)
	}
}

func TestSupervisorEnv(t *testing.T) {
	got := supervisorEnv([]string{"PATH=/bin", "HOME=/root"})
	if want := []string{"PATH=/bin", "HOME=/root", "GOMAXPROCS=1"}; !slices.Equal(got, want) {
		t.Errorf("supervisorEnv = %q, want %q", got, want)
	}
	mine := []string{"GOMAXPROCS=4", "PATH=/bin"}
	if got := supervisorEnv(mine); !slices.Equal(got, mine) {
		t.Errorf("supervisorEnv changed an environment that sets GOMAXPROCS: got %q", got)
	}
}

// A killed supervisor's threads can hold its run lock a moment after its
// main thread shows as a zombie; reset and rm wait for the lock itself.
func TestKillProcessesWaitsForTheRunLock(t *testing.T) {
	m := testManager(t)
	l := writeSandbox(t, m, "held", true)
	lk, err := store.LockFile(l.RunLock(), false)
	if err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		time.Sleep(100 * time.Millisecond)
		close(released)
		lk.Unlock()
	}()
	if err := killProcesses(t.Context(), l); err != nil {
		t.Fatalf("killProcesses: %v", err)
	}
	select {
	case <-released:
	default:
		t.Fatal("killProcesses returned while the run lock was held")
	}
	if runLockHeld(l) {
		t.Fatal("run lock still held")
	}

	lk, err = store.LockFile(l.RunLock(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := killProcesses(ctx, l); err == nil || !strings.Contains(err.Error(), "run lock") {
		t.Fatalf("killProcesses with the lock never freed: %v", err)
	}
}

func TestParseGuestUsage(t *testing.T) {
	out := "MemTotal:        2017364 kB\nMemFree:         1800000 kB\nMemAvailable:    1900000 kB\nBuffers:            1000 kB\nCached:            50000 kB\n" +
		"Filesystem     1024-blocks    Used Available Capacity Mounted on\n/dev/vda          4062912  812345   3000000      22% /\n"
	var mt Metrics
	parseGuestUsage(out, &mt)
	want := Metrics{MemTotal: 2017364 << 10, MemUsed: (2017364 - 1900000) << 10, MemCache: 50000 << 10, DiskTotal: 4062912 << 10, DiskUsed: 812345 << 10}
	if mt != want {
		t.Fatalf("got %+v, want %+v", mt, want)
	}
}

func TestCPUTicks(t *testing.T) {
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
	}
	n, ok := cpuTicks(os.Getpid())
	if !ok || n <= 0 {
		t.Fatalf("cpuTicks(self) = %d, %v after 50 ms of spinning", n, ok)
	}
	if _, ok := cpuTicks(1 << 30); ok {
		t.Fatal("cpuTicks of a pid that does not exist succeeded")
	}
}

func TestTailLog(t *testing.T) {
	dir := t.TempDir()
	cur := filepath.Join(dir, "x.log")
	os.WriteFile(cur+".1", []byte("a\nb\n"), 0o600)
	os.WriteFile(cur, []byte("c\nd"), 0o600)
	var got []string
	if err := TailLog(context.Background(), []string{cur + ".1", cur}, false, func(l []byte) { got = append(got, string(l)) }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"a\n", "b\n", "c\n", "d"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	// Following: an unfinished line waits for its end; a rotation starts
	// the current file over.
	ctx, cancel := context.WithCancel(context.Background())
	lines := make(chan string, 10)
	done := make(chan error)
	go func() {
		done <- TailLog(ctx, []string{filepath.Join(dir, "none"), cur}, true, func(l []byte) { lines <- string(l) })
	}()
	if l := <-lines; l != "c\n" {
		t.Fatalf("first followed line %q", l)
	}
	f, _ := os.OpenFile(cur, os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString("e\n")
	f.Close()
	if l := <-lines; l != "de\n" {
		t.Fatalf("a finished line: %q", l)
	}
	os.WriteFile(cur, []byte("f\n"), 0o600)
	if l := <-lines; l != "f\n" {
		t.Fatalf("after a rotation: %q", l)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
