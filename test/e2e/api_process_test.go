package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	processpb "github.com/paddock-dev/paddock/api/envd/process"
	"github.com/paddock-dev/paddock/api/envd/process/processpbconnect"
)

// envdHeaders sets what the E2B SDKs send to a sandbox's envd.
func envdHeaders(h http.Header, id, token string) {
	h.Set("E2b-Sandbox-Id", id)
	h.Set("X-Access-Token", token)
}

// A command started through the API outlives its Start stream and a
// restart of paddock serve: it is listed, reattached by tag (with the
// output it made while nobody listened), and killed by tag.
func TestAPIProcessSurvivesServeRestart(t *testing.T) {
	e := newEnv(t, "tiny")
	key := strings.TrimSpace(e.ok("apikey", "create", "procs"))
	base, stop := e.serve(t)
	code, body := call(t, "POST", base+"/sandboxes", key, []byte(`{"templateID":"tiny","timeout":300}`))
	if code != 201 {
		t.Fatalf("create: %d %v", code, body)
	}
	id, token := fmt.Sprint(body["sandboxID"]), fmt.Sprint(body["envdAccessToken"])
	t.Cleanup(func() { e.run("rm", "-f", id) })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	client := processpbconnect.NewProcessClient(http.DefaultClient, base)
	pid := startSurvivor(ctx, t, client, id, token)

	// serve restarts; meanwhile the command goes on printing.
	stop()
	if out := e.ok("exec", id, "--", "touch", "/tmp/go"); out != "" {
		t.Fatalf("touch: %q", out)
	}
	base, _ = e.serve(t)
	client = processpbconnect.NewProcessClient(http.DefaultClient, base)

	checkListed(ctx, t, client, id, token, pid)

	conn := connect.NewRequest(&processpb.ConnectRequest{Process: &processpb.ProcessSelector{Selector: &processpb.ProcessSelector_Tag{Tag: "survivor"}}})
	envdHeaders(conn.Header(), id, token)
	cs, err := client.Connect(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if !cs.Receive() || cs.Msg().GetEvent().GetStart().GetPid() != pid {
		t.Fatalf("connect by tag: first event %v, %v", cs.Msg(), cs.Err())
	}
	var out strings.Builder
	for !strings.Contains(out.String(), "after\n") && cs.Receive() {
		out.Write(cs.Msg().GetEvent().GetData().GetStdout())
	}
	if out.String() != "after\n" {
		t.Fatalf("output made while nobody listened: %q (%v)", out.String(), cs.Err())
	}

	kill := connect.NewRequest(&processpb.SendSignalRequest{Signal: processpb.Signal_SIGNAL_SIGKILL,
		Process: &processpb.ProcessSelector{Selector: &processpb.ProcessSelector_Tag{Tag: "survivor"}}})
	envdHeaders(kill.Header(), id, token)
	if _, err := client.SendSignal(ctx, kill); err != nil {
		t.Fatal(err)
	}
	var end *processpb.ProcessEvent_EndEvent
	for end == nil && cs.Receive() {
		end = cs.Msg().GetEvent().GetEnd()
	}
	if end == nil || end.GetExitCode() != 137 || end.GetExited() {
		t.Fatalf("end after a kill by tag: %v (%v)", end, cs.Err())
	}
	if _, err := client.SendSignal(ctx, kill); connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("kill of an ended command: %v, want not found", err)
	}
}

// startSurvivor starts, tagged survivor, a command that prints "before",
// waits for /tmp/go, then prints "after"; it reads up to "before" and
// goes away, and returns the command's pid.
func startSurvivor(ctx context.Context, t *testing.T, client processpbconnect.ProcessClient, id, token string) uint32 {
	script := "echo before; while [ ! -e /tmp/go ]; do sleep 1; done; echo after; sleep 300"
	start := connect.NewRequest(&processpb.StartRequest{Tag: proto("survivor"),
		Process: &processpb.ProcessConfig{Cmd: "/bin/sh", Args: []string{"-c", script}, Envs: map[string]string{"K": "v"}}})
	envdHeaders(start.Header(), id, token)
	sctx, scancel := context.WithCancel(ctx)
	s, err := client.Start(sctx, start)
	if err != nil {
		t.Fatal(err)
	}
	var pid uint32
	for pid == 0 && s.Receive() {
		pid = s.Msg().GetEvent().GetStart().GetPid()
	}
	if pid == 0 {
		t.Fatalf("no start event: %v", s.Err())
	}
	for s.Receive() && !strings.Contains(string(s.Msg().GetEvent().GetData().GetStdout()), "before") {
	}
	scancel() // the client goes away
	s.Close()
	return pid
}

// checkListed: the command pid is listed with its tag, command and env.
func checkListed(ctx context.Context, t *testing.T, client processpbconnect.ProcessClient, id, token string, pid uint32) {
	list := connect.NewRequest(&processpb.ListRequest{})
	envdHeaders(list.Header(), id, token)
	lr, err := client.List(ctx, list)
	if err != nil {
		t.Fatal(err)
	}
	var found *processpb.ProcessInfo
	for _, p := range lr.Msg.GetProcesses() {
		if p.GetPid() == pid {
			found = p
		}
	}
	if found == nil || found.GetTag() != "survivor" || found.GetConfig().GetCmd() != "/bin/sh" || found.GetConfig().GetEnvs()["K"] != "v" {
		t.Fatalf("after a restart of serve, pid %d is not listed as started: %v", pid, lr.Msg.GetProcesses())
	}
}

func proto(s string) *string { return &s }
