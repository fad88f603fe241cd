package guest

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

func TestOutputBufferDropsOldest(t *testing.T) {
	var b outputBuffer
	b.append([]byte("aaaa"), false)
	b.append([]byte("bb"), true)
	b.append([]byte("cccc"), false)
	if b.size() != 10 {
		t.Fatalf("size %d", b.size())
	}
	if n := b.dropOldest(5); n != 5 || b.base != 5 || b.size() != 5 {
		t.Fatalf("dropOldest(5) dropped %d, base %d size %d", n, b.base, b.size())
	}
	// What is left is the end of "bb" then "cccc", from their own streams.
	data, stderr, next := b.read(5, 100)
	if string(data) != "b" || !stderr || next != 6 {
		t.Fatalf("read(5): %q %v %d", data, stderr, next)
	}
	data, stderr, next = b.read(next, 3)
	if string(data) != "ccc" || stderr || next != 9 {
		t.Fatalf("read(6, 3): %q %v %d", data, stderr, next)
	}
	if data, _, _ := b.read(2, 10); data != nil {
		t.Fatalf("a dropped offset read %q", data)
	}
	if n := b.dropOldest(5); n != 0 {
		t.Fatalf("a buffer within its limit dropped %d", n)
	}
	b.trim(9)
	if data, _, next := b.read(9, 10); string(data) != "c" || next != 10 {
		t.Fatalf("after trim(9): %q %d", data, next)
	}
	// Appends of one stream merge up to outputChunk.
	var m outputBuffer
	for range 100 {
		m.append([]byte("x"), false)
	}
	if len(m.chunks) != 1 || m.size() != 100 {
		t.Fatalf("100 one-byte appends: %d chunks, %d bytes", len(m.chunks), m.size())
	}
}

// newClient connects a client of its own to the agent at testSock, which
// the test can close as a host going away.
func newClient(t *testing.T) (agentv1.TTRPCAgentClient, func()) {
	t.Helper()
	conn, err := net.Dial("unix", testSock)
	if err != nil {
		t.Fatal(err)
	}
	c := ttrpc.NewClient(conn)
	t.Cleanup(func() { c.Close() })
	return agentv1.NewTTRPCAgentClient(c), func() { c.Close() }
}

func listed(t *testing.T, c agentv1.TTRPCAgentClient) []*agentv1.ProcessInfo {
	t.Helper()
	r, err := c.ListProcesses(context.Background(), &agentv1.ListProcessesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return r.Processes
}

// waitEnded waits until the table says the process with id has ended.
func waitEnded(t *testing.T, c agentv1.TTRPCAgentClient, id string) *agentv1.ProcessInfo {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range listed(t, c) {
			if p.Id == id && p.Exited != nil {
				return p
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s did not end in the table: %v", id, listed(t, c))
	return nil
}

func TestKeepRunningOutlivesItsHostAndReattaches(t *testing.T) {
	c, _, _ := testAgent(t)
	first, hangUp := newClient(t)
	ctx := context.Background()
	s, err := first.Exec(ctx, &agentv1.ExecRequest{Id: "bg", Tag: "job", KeepRunning: true, Annotation: []byte("note"),
		Argv: []string{"sh", "-c", "echo before; sleep 0.5; echo after; echo oops >&2; exit 3"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Recv()
	if err != nil || ev.GetStarted() == nil {
		t.Fatalf("first event %v %v", ev, err)
	}
	pid := ev.GetStarted().GetPid()
	if ev, err = s.Recv(); err != nil || string(ev.GetStdout()) != "before\n" {
		t.Fatalf("second event %v %v", ev, err)
	}
	hangUp() // the host goes away; the process runs on

	p := waitEnded(t, c, "bg")
	if p.Pid != pid || p.Tag != "job" || string(p.Annotation) != "note" || !p.KeepRunning || p.Exited.ExitCode != 3 || p.Buffered != uint64(len("after\noops\n")) {
		t.Fatalf("listed %v", p)
	}
	// Reattach by tag: what was printed while nobody listened, then the exit.
	a, err := c.Attach(ctx, &agentv1.AttachRequest{Id: "again", Process: &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Tag{Tag: "job"}}})
	if err != nil {
		t.Fatal(err)
	}
	r := collect(t, a)
	if r.pid != pid || r.stdout != "after\n" || r.stderr != "oops\n" || r.exited.ExitCode != 3 {
		t.Fatalf("reattached: %+v", r)
	}
	// Its exit status delivered, the process leaves the table.
	if ps := listed(t, c); len(ps) != 0 {
		t.Fatalf("still listed after its exit was streamed: %v", ps)
	}
	late, err := c.Attach(ctx, &agentv1.AttachRequest{Id: "late", Process: &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Pid{Pid: pid}}})
	if err == nil {
		_, err = late.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Fatalf("attach to a collected process: %v, want NotFound", err)
	}
}

func TestDetachedOutputKeepsTheNewestMiB(t *testing.T) {
	c, _, _ := testAgent(t)
	ctx := context.Background()
	// 3 MiB of 'a', then a marker, written while nobody listens.
	s, err := c.Exec(ctx, &agentv1.ExecRequest{Id: "loud", KeepRunning: true,
		Argv: []string{"sh", "-c", "read go; head -c 3145728 /dev/zero | tr '\\0' a; echo END"}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Recv(); err != nil || ev.GetStarted() == nil {
		t.Fatalf("%v %v", ev, err)
	}
	if _, err := c.Release(ctx, &agentv1.ReleaseRequest{Id: "loud"}); err != nil {
		t.Fatal(err)
	}
	if ev, err := s.Recv(); err != io.EOF {
		t.Fatalf("a released stream sent %v %v", ev, err)
	}
	// Input by selector still reaches it after the release.
	if _, err := c.WriteStdinChunk(ctx, &agentv1.StdinChunk{Process: &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Id{Id: "loud"}}, Data: []byte("go\n")}); err != nil {
		t.Fatal(err)
	}
	waitEnded(t, c, "loud")
	a, err := c.Attach(ctx, &agentv1.AttachRequest{Id: "reader", OutputWindow: 4, Process: &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Id{Id: "loud"}}})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var dropped uint64
	events := 0
	for {
		ev, err := a.Recv()
		if err != nil {
			t.Fatalf("attach stream: %v", err)
		}
		if d := ev.GetDropped(); d != 0 {
			if out.Len() > 0 {
				t.Fatal("Dropped came after output")
			}
			dropped += d
		}
		if ev.GetStdout() != nil {
			out.Write(ev.GetStdout())
			if events++; events%4 == 0 {
				c.AckOutput(ctx, &agentv1.AckOutputRequest{Id: "reader", Events: 4})
			}
		}
		if x := ev.GetExited(); x != nil {
			if x.ExitCode != 0 {
				t.Fatalf("exit %v", x)
			}
			break
		}
	}
	total := uint64(3<<20 + len("END\n"))
	if out.Len() != outputLimit || dropped != total-outputLimit || !strings.HasSuffix(out.String(), "aaaEND\n") {
		t.Fatalf("kept %d bytes (ends %q), dropped %d; want %d and %d", out.Len(), out.String()[max(0, out.Len()-10):], dropped, outputLimit, total-outputLimit)
	}
}

func TestCallsByPidAndTag(t *testing.T) {
	c, _, _ := testAgent(t)
	ctx := context.Background()
	s, err := c.Exec(ctx, &agentv1.ExecRequest{Id: "term", Tag: "shell", KeepRunning: true, Tty: true, Rows: 10, Cols: 20,
		Argv: []string{"sh", "-c", "read x; stty size; echo got $x; sleep 30"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Recv()
	if err != nil || !ev.GetStarted().GetTty() {
		t.Fatalf("%v %v", ev, err)
	}
	pid := ev.GetStarted().GetPid()
	byPid := &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Pid{Pid: pid}}
	byTag := &agentv1.ProcessSelector{Selector: &agentv1.ProcessSelector_Tag{Tag: "shell"}}
	if _, err := c.Resize(ctx, &agentv1.ResizeRequest{Process: byPid, Rows: 31, Cols: 97}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteStdinChunk(ctx, &agentv1.StdinChunk{Process: byTag, Data: []byte("hi\n")}); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	for !strings.Contains(out.String(), "got hi") {
		ev, err := s.Recv()
		if err != nil {
			t.Fatalf("%v after %q", err, out.String())
		}
		out.Write(ev.GetStdout())
	}
	if !strings.Contains(out.String(), "31 97\r\n") {
		t.Fatalf("stty size after a resize by pid: %q", out.String())
	}
	if _, err := c.Signal(ctx, &agentv1.SignalRequest{Process: byTag, Signal: 9}); err != nil {
		t.Fatal(err)
	}
	r := collect(t, s)
	if r.exited.Signal != 9 || r.exited.ExitCode != 137 {
		t.Fatalf("killed by tag: %v", r.exited)
	}
	if _, err := c.Signal(ctx, &agentv1.SignalRequest{Process: byPid, Signal: 9}); status.Code(err) != codes.NotFound {
		t.Fatalf("signal to an ended pid: %v, want NotFound", err)
	}
	if _, err := c.Signal(ctx, &agentv1.SignalRequest{Signal: 9}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("signal without a target: %v, want InvalidArgument", err)
	}
}

func TestReleaseKillsAProcessNotKeptRunning(t *testing.T) {
	c, _, _ := testAgent(t)
	ctx := context.Background()
	s, err := c.Exec(ctx, &agentv1.ExecRequest{Id: "fg", Argv: []string{"sleep", "30"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	c.Release(ctx, &agentv1.ReleaseRequest{Id: "fg"})
	pid := int(ev.GetStarted().GetPid())
	deadline := time.Now().Add(5 * time.Second)
	for processExists(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d runs on after its stream was released", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for time.Now().Before(deadline) && len(listed(t, c)) > 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if ps := listed(t, c); len(ps) != 0 {
		t.Fatalf("a killed exec is still listed: %v", ps)
	}
}
