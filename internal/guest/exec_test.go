package guest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// testAgent serves an agent whose /etc/passwd has the test's own user as
// "me", over a unix socket, and returns a client.
func testAgent(t *testing.T) (agentv1.TTRPCAgentClient, *Agent, string) {
	t.Helper()
	root := t.TempDir()
	home := filepath.Join(root, "home", "me")
	os.MkdirAll(home, 0o755)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	passwd := fmt.Sprintf("me:x:%d:%d::%s:/bin/sh\n", os.Geteuid(), os.Getegid(), home)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte(passwd), 0o644)
	reaper := NewReaper()
	a := NewAgent("test", slog.New(slog.NewTextHandler(io.Discard, nil)), reaper, NoopSystem{})
	a.Users = Users{Root: root}
	a.Root = root
	a.defaultUser = "me"
	srv := NewServer(a)
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(context.Background(), l)
	t.Cleanup(func() {
		srv.Close()
		reaper.Stop()
	})
	testSock = sock
	return dialAgent(t, sock), a, home
}

// testSock is the socket of the agent testAgent started last.
var testSock string

// dialAgent connects a new client to the agent at sock.
func dialAgent(t *testing.T, sock string) agentv1.TTRPCAgentClient {
	t.Helper()
	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	t.Cleanup(func() { client.Close() })
	return agentv1.NewTTRPCAgentClient(client)
}

type result struct {
	pid            int32
	stdout, stderr string
	exited         *agentv1.Exited
	order          []string
}

func runExec(t *testing.T, c agentv1.TTRPCAgentClient, req *agentv1.ExecRequest) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.Exec(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return collect(t, s)
}

func collect(t *testing.T, s agentv1.TTRPCAgent_ExecClient) result {
	t.Helper()
	var r result
	for {
		ev, err := s.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("exec stream: %v", err)
		}
		switch e := ev.Event.(type) {
		case *agentv1.ExecEvent_Started:
			r.pid = e.Started.Pid
			r.order = append(r.order, "started")
		case *agentv1.ExecEvent_Stdout:
			r.stdout += string(e.Stdout)
			r.order = append(r.order, "out")
		case *agentv1.ExecEvent_Stderr:
			r.stderr += string(e.Stderr)
			r.order = append(r.order, "err")
		case *agentv1.ExecEvent_Exited:
			if r.exited != nil {
				t.Error("two Exited events")
			}
			r.exited = e.Exited
			r.order = append(r.order, "exited")
		}
	}
	if r.exited == nil || r.order[len(r.order)-1] != "exited" {
		t.Fatalf("Exited is not the last event: %v", r.order)
	}
	return r
}

func TestExecPipesAndExitCodes(t *testing.T) {
	c, _, home := testAgent(t)
	r := runExec(t, c, &agentv1.ExecRequest{Id: "a", Argv: []string{"sh", "-c", "echo out; echo err >&2; echo $HOME $USER; pwd; exit 3"}})
	if r.order[0] != "started" || r.pid <= 0 {
		t.Errorf("first event: %v pid %d", r.order, r.pid)
	}
	if r.stdout != "out\n"+home+" me\n"+home+"\n" || r.stderr != "err\n" {
		t.Errorf("stdout %q stderr %q", r.stdout, r.stderr)
	}
	if r.exited.ExitCode != 3 || r.exited.Signal != 0 {
		t.Errorf("exited %v, want 3", r.exited)
	}
	r = runExec(t, c, &agentv1.ExecRequest{Id: "b", Argv: []string{"true"}, Env: []string{"X=1"}})
	if r.exited.ExitCode != 0 || r.exited.Error != "" {
		t.Errorf("true: %v", r.exited)
	}
	r = runExec(t, c, &agentv1.ExecRequest{Id: "c", Argv: []string{"no-such-command-xyz"}})
	if r.exited.ExitCode != 127 || !strings.Contains(r.exited.Error, "command not found") || r.order[0] != "exited" {
		t.Errorf("not found: %v %v", r.exited, r.order)
	}
	r = runExec(t, c, &agentv1.ExecRequest{Id: "d", Argv: []string{"/etc/hostname-not-exec-" + t.Name()}})
	if r.exited.ExitCode != 127 {
		t.Errorf("missing path: %v", r.exited)
	}
	noexec := filepath.Join(home, "script")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	r = runExec(t, c, &agentv1.ExecRequest{Id: "e", Argv: []string{noexec}})
	if r.exited.ExitCode != 126 {
		t.Errorf("not executable: %v", r.exited)
	}
	r = runExec(t, c, &agentv1.ExecRequest{Id: "f", Argv: []string{"true"}, Cwd: "/nonexistent-dir"})
	if r.exited.ExitCode != 126 || r.exited.Error != "cwd /nonexistent-dir does not exist" {
		t.Errorf("bad cwd: %v", r.exited)
	}
	r = runExec(t, c, &agentv1.ExecRequest{Id: "g", Argv: []string{"sh", "-c", "echo $X $PATH"}, Env: []string{"X=over"}})
	if r.stdout != "over "+DefaultPath+"\n" {
		t.Errorf("env: %q", r.stdout)
	}
}

func TestExecLargeOutputInOrder(t *testing.T) {
	c, _, _ := testAgent(t)
	r := runExec(t, c, &agentv1.ExecRequest{Id: "big", Argv: []string{"sh", "-c", "seq 1 100000"}})
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 100000 || lines[0] != "1" || lines[99999] != "100000" {
		t.Errorf("got %d lines", len(lines))
	}
}

func TestExecStdin(t *testing.T) {
	c, _, _ := testAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Stdin is sent first: WriteStdin waits for the exec to register.
	w, err := c.WriteStdin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w.Send(&agentv1.StdinChunk{Id: "cat", Data: []byte("hello ")})
	w.Send(&agentv1.StdinChunk{Data: []byte("world\n"), Close: true})
	s, err := c.Exec(ctx, &agentv1.ExecRequest{Id: "cat", Argv: []string{"cat"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, s)
	if _, err := w.CloseAndRecv(); err != nil {
		t.Errorf("WriteStdin: %v", err)
	}
	if r.stdout != "hello world\n" || r.exited.ExitCode != 0 {
		t.Errorf("cat: %q %v", r.stdout, r.exited)
	}
	// Without stdin=true the input is /dev/null: cat ends at once.
	r = runExec(t, c, &agentv1.ExecRequest{Id: "null", Argv: []string{"cat"}})
	if r.stdout != "" || r.exited.ExitCode != 0 {
		t.Errorf("cat </dev/null: %q %v", r.stdout, r.exited)
	}
}

func TestExecTTY(t *testing.T) {
	c, _, _ := testAgent(t)
	r := runExec(t, c, &agentv1.ExecRequest{Id: "tty", Argv: []string{"sh", "-c", "tty; stty size; echo $TERM; echo e >&2"}, Tty: true, Rows: 33, Cols: 101})
	if !strings.HasPrefix(r.stdout, "/dev/pts/") || !strings.Contains(r.stdout, "33 101\r\n") ||
		!strings.Contains(r.stdout, "xterm-256color\r\n") || !strings.Contains(r.stdout, "e\r\n") || r.stderr != "" {
		t.Errorf("tty output %q stderr %q", r.stdout, r.stderr)
	}
}

func TestExecDrainStopsAfterExit(t *testing.T) {
	c, _, _ := testAgent(t)
	start := time.Now()
	// The background sleep keeps stdout open long after sh exits.
	r := runExec(t, c, &agentv1.ExecRequest{Id: "bg", Argv: []string{"sh", "-c", "sleep 5 & echo started"}})
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("exec took %v: the drain waited for the background child", d)
	}
	if r.stdout != "started\n" || r.exited.ExitCode != 0 {
		t.Errorf("%q %v", r.stdout, r.exited)
	}
}

func TestSignalAndCancel(t *testing.T) {
	c, _, _ := testAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := c.Exec(ctx, &agentv1.ExecRequest{Id: "sleep", Argv: []string{"sleep", "30"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Recv(); err != nil { // Started
		t.Fatal(err)
	}
	if _, err := c.Signal(ctx, &agentv1.SignalRequest{Id: "sleep", Signal: 15}); err != nil {
		t.Fatal(err)
	}
	r := collect(t, s)
	if r.exited.Signal != 15 || r.exited.ExitCode != 143 {
		t.Errorf("signalled: %v", r.exited)
	}
	_, err = c.Signal(ctx, &agentv1.SignalRequest{Id: "sleep", Signal: 15})
	if status.Code(err) != codes.NotFound {
		t.Errorf("signal after exit: %v, want NotFound", err)
	}

	// The host going away (its connection closed) kills the process group.
	conn, err := net.Dial("unix", testSock)
	if err != nil {
		t.Fatal(err)
	}
	client := ttrpc.NewClient(conn)
	s, err = agentv1.NewTTRPCAgentClient(client).Exec(ctx, &agentv1.ExecRequest{Id: "cancel", Argv: []string{"sleep", "30"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	pid := int(ev.GetStarted().GetPid())
	client.Close()
	deadline := time.Now().Add(5 * time.Second)
	for processExists(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d still runs after the host went away", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// processExists reports whether pid is a live (not zombie) process.
func processExists(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

func TestReaperDropsOrphansKeepsRegistered(t *testing.T) {
	r := NewReaper()
	defer r.Stop()
	null, _ := os.Open(os.DevNull)
	defer null.Close()
	files := []*os.File{null, null, null}
	// Many short processes at once: each status must reach its waiter.
	type started struct {
		code int
		ch   <-chan unix.WaitStatus
	}
	var all []started
	for i := 0; i < 20; i++ {
		p, ch, err := r.Start("/bin/sh", []string{"sh", "-c", fmt.Sprintf("exit %d", i)}, &os.ProcAttr{Files: files})
		if err != nil {
			t.Fatal(err)
		}
		p.Release()
		all = append(all, started{i, ch})
	}
	for _, s := range all {
		select {
		case ws := <-s.ch:
			if ws.ExitStatus() != s.code {
				t.Errorf("got %d, want %d", ws.ExitStatus(), s.code)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("status of exit %d never arrived", s.code)
		}
	}
}

func TestConnListener(t *testing.T) {
	a, b := net.Pipe()
	defer b.Close()
	l := newConnListener(a)
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	second := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		second <- err
	}()
	select {
	case err := <-second:
		t.Fatalf("second Accept returned %v before the conn closed", err)
	case <-time.After(50 * time.Millisecond):
	}
	c.Close()
	select {
	case err := <-second:
		if err != net.ErrClosed {
			t.Errorf("second Accept: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("second Accept did not return after the conn closed")
	}
}

func TestOutputWindowWaitsForAcks(t *testing.T) {
	c, _, _ := testAgent(t)
	ctx := context.Background()
	s, err := c.Exec(ctx, &agentv1.ExecRequest{Id: "win", OutputWindow: 2,
		Argv: []string{"sh", "-c", "for i in 1 2 3 4; do echo $i; sleep 0.05; done"}})
	if err != nil {
		t.Fatal(err)
	}
	events := make(chan *agentv1.ExecEvent, 16)
	go func() {
		defer close(events)
		for {
			ev, err := s.Recv()
			if err != nil {
				return
			}
			events <- ev
		}
	}()
	outputs := 0
	next := func(wait time.Duration) *agentv1.ExecEvent {
		select {
		case ev := <-events:
			return ev
		case <-time.After(wait):
			return nil
		}
	}
	for outputs < 2 {
		ev := next(5 * time.Second)
		if ev == nil {
			t.Fatalf("only %d output events arrived within the window of 2", outputs)
		}
		if ev.GetStdout() != nil {
			outputs++
		}
	}
	// The process has printed everything by now; the agent holds it back.
	if ev := next(600 * time.Millisecond); ev != nil {
		t.Fatalf("an event beyond the window arrived before an ack: %v", ev)
	}
	if _, err := c.AckOutput(ctx, &agentv1.AckOutputRequest{Id: "win", Events: 8}); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for {
		ev := next(5 * time.Second)
		if ev == nil {
			t.Fatal("no exit after the ack")
		}
		got.Write(ev.GetStdout())
		if x := ev.GetExited(); x != nil {
			if x.ExitCode != 0 || got.String() != "3\n4\n" {
				t.Fatalf("after the ack: %q, exit %v", got.String(), x)
			}
			return
		}
	}
}

func TestWriteStdinChunk(t *testing.T) {
	c, _, _ := testAgent(t)
	ctx := context.Background()
	s, err := c.Exec(ctx, &agentv1.ExecRequest{Id: "in", Stdin: true, Argv: []string{"wc", "-c"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, chunk := range []*agentv1.StdinChunk{{Id: "in", Data: []byte("hello ")}, {Id: "in", Data: []byte("world"), Close: true}} {
		if _, err := c.WriteStdinChunk(ctx, chunk); err != nil {
			t.Fatal(err)
		}
	}
	r := collect(t, s)
	if strings.TrimSpace(r.stdout) != "11" || r.exited.ExitCode != 0 {
		t.Fatalf("wc -c read %q, exit %v", r.stdout, r.exited)
	}
	if _, err := c.WriteStdinChunk(ctx, &agentv1.StdinChunk{Data: []byte("x")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a chunk without an id: %v, want InvalidArgument", err)
	}
}
