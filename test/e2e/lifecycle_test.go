package e2e

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// One sandbox, many checks: a cold boot costs seconds under TCG.
func TestExecAndWorkspace(t *testing.T) {
	e := newEnv(t, "tiny")
	os.WriteFile(filepath.Join(e.ws, "from-host.txt"), []byte("host says hi\n"), 0o644)
	outside := filepath.Join(e.home, "outside")
	os.Mkdir(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o644)
	e.create("box", "-e", "GREETING=hello")

	sb := &execBox{e: e, outside: outside}
	t.Run("stdout stderr and exit status stay separate", sb.streams)
	t.Run("stdin streams with -i", sb.stdin)
	t.Run("output waits for a reader that stalls", sb.slowReader)
	t.Run("input waits for a process that does not read yet", sb.slowProcess)
	t.Run("an interrupted exec ends its process", sb.interrupt)
	t.Run("without -i stdin is empty", sb.noStdin)
	t.Run("-t gives a pty", sb.pty)
	t.Run("default user agent in the workspace", sb.defaultUser)
	t.Run("-u root -w -e", sb.rootWorkdirEnv)
	t.Run("workspace both ways at the same path", sb.workspaceBothWays)
	t.Run("nothing outside the workspace is visible", sb.nothingOutside)
	t.Run("missing command is 127 with a message", sb.missingCommand)
	t.Run("signals reach the command", sb.signals)
	t.Run("hostname is the sandbox name", sb.hostname)
	t.Run("exec audit log", sb.auditLog)
	t.Run("ls and inspect", sb.lsInspect)
}

// execBox is TestExecAndWorkspace's sandbox, which every subtest uses.
type execBox struct {
	e       *env
	outside string
}

func (sb *execBox) streams(t *testing.T) {
	e := sb.e.with(t)
	out, errs, code := e.run("exec", "box", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
	if out != "out\n" || errs != "err\n" || code != 3 {
		t.Fatalf("got stdout %q stderr %q code %d; want out, err, 3", out, errs, code)
	}
}

func (sb *execBox) stdin(t *testing.T) {
	e := sb.e.with(t)
	out, errs, code := e.runIn("line one\nline two\n", "exec", "-i", "box", "--", "sh", "-c", "tr a-z A-Z; echo done")
	if out != "LINE ONE\nLINE TWO\ndone\n" || code != 0 {
		t.Fatalf("got %q (stderr %q, code %d)", out, errs, code)
	}
}

func (sb *execBox) slowReader(t *testing.T) {
	e := sb.e
	cmd := exec.Command(e.bin, "exec", "box", "--", "head", "-c", "5000000", "/dev/zero")
	cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
	cmd.Dir = e.ws
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // far longer than any transport would buffer unread
	n, err := io.Copy(io.Discard, stdout)
	if werr := cmd.Wait(); err != nil || werr != nil || n != 5000000 {
		t.Fatalf("read %d bytes of 5000000 (read error %v, exit %v)", n, err, werr)
	}
}

func (sb *execBox) slowProcess(t *testing.T) {
	e := sb.e.with(t)
	out, errs, code := e.runIn(strings.Repeat("x", 3000000), "exec", "-i", "box", "--", "sh", "-c", "sleep 3; wc -c")
	if strings.TrimSpace(out) != "3000000" || code != 0 {
		t.Fatalf("got %q (stderr %q, code %d), want 3000000", out, errs, code)
	}
}

func (sb *execBox) interrupt(t *testing.T) {
	e := sb.e
	// A silent process, and one whose output the client leaves unread.
	for _, prog := range []string{"sleep 300", "yes"} {
		e := e.with(t)
		name := strings.Fields(prog)[0]
		cmd := exec.Command(e.bin, "exec", "box", "--", "sh", "-c", "echo started; exec "+prog)
		cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
		cmd.Dir = e.ws
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line := make([]byte, 8)
		io.ReadFull(stdout, line)
		// Exit 0 while a process of that name runs (tiny has no pgrep).
		running := []string{"exec", "box", "--", "sh", "-c", `for p in /proc/[0-9]*; do [ "$(cat $p/comm 2>/dev/null)" = ` + name + ` ] && exit 0; done; exit 1`}
		if _, errs, code := e.run(running...); code != 0 {
			t.Fatalf("the probe does not see the running %s (code %d, %q)", name, code, errs)
		}
		cmd.Process.Kill()
		cmd.Wait()
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, _, code := e.run(running...)
			if code == 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the %s of an exec whose client was killed still runs", name)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

func (sb *execBox) noStdin(t *testing.T) {
	e := sb.e.with(t)
	out, _, code := e.runIn("ignored\n", "exec", "box", "--", "sh", "-c", "cat; echo end")
	if out != "end\n" || code != 0 {
		t.Fatalf("got %q code %d", out, code)
	}
}

func (sb *execBox) pty(t *testing.T) {
	e := sb.e.with(t)
	out, _, code := e.run("exec", "-t", "box", "--", "tty")
	if !regexp.MustCompile(`^/dev/pts/\d+\r?\n$`).MatchString(out) || code != 0 {
		t.Fatalf("tty printed %q code %d", out, code)
	}
}

func (sb *execBox) defaultUser(t *testing.T) {
	e := sb.e.with(t)
	out := e.ok("exec", "box", "--", "sh", "-c", "id -un; pwd; echo $HOME; echo $GREETING")
	want := "agent\n" + e.ws + "\n/home/agent\nhello\n"
	if out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}

func (sb *execBox) rootWorkdirEnv(t *testing.T) {
	e := sb.e.with(t)
	out := e.ok("exec", "-u", "root", "-w", "/tmp", "-e", "X=1", "box", "--", "sh", "-c", "id -u; pwd; echo $X")
	if out != "0\n/tmp\n1\n" {
		t.Fatalf("got %q", out)
	}
}

func (sb *execBox) workspaceBothWays(t *testing.T) {
	e := sb.e.with(t)
	if out := e.ok("exec", "box", "--", "cat", filepath.Join(e.ws, "from-host.txt")); out != "host says hi\n" {
		t.Fatalf("guest read %q", out)
	}
	e.ok("exec", "box", "--", "sh", "-c", "echo guest says hi > from-guest.txt")
	b, err := os.ReadFile(filepath.Join(e.ws, "from-guest.txt"))
	if err != nil || string(b) != "guest says hi\n" {
		t.Fatalf("host read %q, %v", b, err)
	}
	var st syscall.Stat_t
	syscall.Stat(filepath.Join(e.ws, "from-guest.txt"), &st)
	var ws syscall.Stat_t
	syscall.Stat(e.ws, &ws)
	wantUID := ws.Uid
	if wantUID == 0 {
		wantUID = 1000
	}
	if st.Uid != wantUID {
		t.Errorf("file made by agent is owned by uid %d on the host, want %d", st.Uid, wantUID)
	}
}

func (sb *execBox) nothingOutside(t *testing.T) {
	e := sb.e.with(t)
	_, _, code := e.run("exec", "box", "--", "cat", filepath.Join(sb.outside, "secret.txt"))
	if code == 0 {
		t.Fatal("guest read a host file outside the workspace")
	}
	// The workspace is a copy on the guest's disk: no host folder
	// is mounted in the guest, the workspace's path included.
	mounts := e.ok("exec", "box", "--", "cat", "/proc/mounts")
	if strings.Contains(mounts, " 9p ") || strings.Contains(mounts, " "+e.ws+" ") {
		t.Fatalf("want no host share mounted (the workspace is a copy), mounts:\n%s", mounts)
	}
}

func (sb *execBox) missingCommand(t *testing.T) {
	e := sb.e.with(t)
	_, errs, code := e.run("exec", "box", "--", "no-such-command")
	if code != 127 || !strings.Contains(errs, "no-such-command") {
		t.Fatalf("code %d stderr %q", code, errs)
	}
}

func (sb *execBox) signals(t *testing.T) {
	e := sb.e.with(t)
	cmd := exec.Command(e.bin, "exec", "box", "--", "sh", "-c", "trap 'echo got INT; exit 42' INT; echo ready; while true; do sleep 0.1; done")
	cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(stdout)
	line, _ := r.ReadString('\n')
	if line != "ready\n" {
		t.Fatalf("got %q before signalling", line)
	}
	cmd.Process.Signal(syscall.SIGINT)
	rest, _ := r.ReadString('\n')
	err := cmd.Wait()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if rest != "got INT\n" || code != 42 {
		t.Fatalf("after SIGINT: output %q exit %d; want got INT, 42", rest, code)
	}
}

func (sb *execBox) hostname(t *testing.T) {
	e := sb.e.with(t)
	if out := e.ok("exec", "box", "--", "hostname"); out != "box\n" {
		t.Fatalf("hostname %q", out)
	}
}

func (sb *execBox) auditLog(t *testing.T) {
	e := sb.e.with(t)
	out := e.ok("logs", "--kind", "exec", "box")
	found := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var rec struct {
			User     string   `json:"user"`
			Argv     []string `json:"argv"`
			Cwd      string   `json:"cwd"`
			ExitCode int      `json:"exit_code"`
			Time     string   `json:"time"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line %q: %v", line, err)
		}
		if len(rec.Argv) == 3 && rec.Argv[2] == "echo out; echo err >&2; exit 3" {
			found = rec.ExitCode == 3 && rec.User == "agent" && rec.Cwd == e.ws && rec.Time != ""
		}
	}
	if !found {
		t.Fatalf("exec log lacks the exit-3 command with user, cwd, code:\n%s", out)
	}
	// A restored guest writes nothing to its slow serial console on
	// the way back: the console log says where the VM came from, and
	// the supervisor's log has the guest's Configure steps and the
	// workspace's first sync.
	if console := e.ok("logs", "box"); !strings.Contains(console, "restored from template tiny's saved VM") {
		t.Errorf("console log does not say the VM was restored:\n%s", tail(console, 500))
	}
	if sv := e.ok("logs", "--kind", "supervisor", "box"); !strings.Contains(sv, "guest configured") || !strings.Contains(sv, `step="sync workspace"`) {
		t.Errorf("supervisor log lacks the guest's configure steps:\n%s", tail(sv, 800))
	}
}

func (sb *execBox) lsInspect(t *testing.T) {
	e := sb.e.with(t)
	ls := e.ok("ls")
	if !regexp.MustCompile(`(?m)^box\s+running\s+tiny\s`).MatchString(ls) {
		t.Fatalf("ls:\n%s", ls)
	}
	info := e.inspect("box")
	if info.State != "running" || info.CPUs != 1 || info.MemoryBytes != 512<<20 || !processAlive(info.QEMUPid) || !processAlive(info.SupervisorPid) || info.Accel == "" {
		t.Fatalf("inspect: %+v", info)
	}
}

func TestStopStartKeepsRootFilesystem(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("keep")
	e.ok("exec", "-u", "root", "keep", "--", "sh", "-c", "echo persisted > /root/marker")
	e.ok("stop", "keep")
	if st := e.inspect("keep").State; st != "stopped" {
		t.Fatalf("status after stop %q", st)
	}
	if _, errs, code := e.run("exec", "keep", "--", "true"); code == 0 || !strings.Contains(errs, "not running") {
		t.Fatalf("exec on a stopped sandbox: code %d, %q", code, errs)
	}
	e.ok("start", "keep")
	if out := e.ok("exec", "-u", "root", "keep", "--", "cat", "/root/marker"); out != "persisted\n" {
		t.Fatalf("marker after restart: %q", out)
	}
}

func TestRemoveLeavesNothing(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("gone")
	info := e.inspect("gone")
	if _, errs, code := e.run("rm", "gone"); code == 0 || !strings.Contains(errs, "running") {
		t.Fatalf("rm without -f of a running sandbox: code %d %q", code, errs)
	}
	e.ok("rm", "-f", "gone")
	if processAlive(info.QEMUPid) || processAlive(info.SupervisorPid) {
		t.Fatalf("processes survive rm: qemu %d supervisor %d", info.QEMUPid, info.SupervisorPid)
	}
	if _, err := os.Stat(info.Dir); !os.IsNotExist(err) {
		t.Fatalf("%s still exists", info.Dir)
	}
	if out := e.ok("ls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("ls after rm: %s", out)
	}
}

func TestKilledSupervisorIsExplainedAndRemovable(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("victim")
	info := e.inspect("victim")
	syscall.Kill(info.SupervisorPid, syscall.SIGKILL)
	waitFor(t, "qemu to die with its supervisor", 10*time.Second, func() bool { return !processAlive(info.QEMUPid) })
	ls := e.ok("ls")
	if !regexp.MustCompile(`(?m)^victim\s+broken\s`).MatchString(ls) || !regexp.MustCompile(`(?m)^victim: the supervisor died`).MatchString(ls) {
		t.Fatalf("ls does not explain the dead supervisor:\n%s", ls)
	}
	e.ok("rm", "victim")
	if _, err := os.Stat(info.Dir); !os.IsNotExist(err) {
		t.Fatal("directory left after rm")
	}
}

func TestKilledQEMUIsExplained(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("crash")
	info := e.inspect("crash")
	syscall.Kill(info.QEMUPid, syscall.SIGKILL)
	waitFor(t, "the supervisor to notice", 10*time.Second, func() bool { return !processAlive(info.SupervisorPid) })
	info = e.inspect("crash")
	if info.State != "broken" || !strings.HasPrefix(info.Reason, "qemu exited") || !strings.Contains(info.Reason, "paddock logs crash") {
		t.Fatalf("state %q, reason %q", info.State, info.Reason)
	}
	// ls keeps the word in its table and puts the sentence under it.
	if ls := e.ok("ls"); !regexp.MustCompile(`(?m)^crash\s+broken\s+tiny\s`).MatchString(ls) || !strings.Contains(ls, "\ncrash: qemu exited") {
		t.Errorf("ls:\n%s", ls)
	}
	e.ok("rm", "crash")
}

func TestBadInputChangesNothing(t *testing.T) {
	e := newEnv(t, "tiny")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--name", "Bad_Name"}, "invalid name"},
		{[]string{"--name", "-x"}, "invalid name"},
		{[]string{"--name", "ok1", "--workspace", "/does/not/exist"}, "does not exist"},
		{[]string{"--name", "ok2", "--memory", "100T"}, "--memory"},
		{[]string{"--name", "ok3", "--memory", "lots"}, "invalid size"},
		{[]string{"--name", "ok4", "--memory", "1M"}, "at least"},
		{[]string{"--name", "ok5", "--cpus", "999"}, "--cpus"},
		{[]string{"--name", "ok6", "--template", "nope"}, "nope"},
		{[]string{"--name", "ok7", "--accel", "xen"}, "--accel"},
		{[]string{"--name", "ok8", "--workspace", "/"}, "root directory"},
	}
	for _, c := range cases {
		args := append([]string{"create", "--template", "tiny"}, c.args...)
		out, errs, code := e.run(args...)
		if code == 0 || !strings.Contains(errs, c.want) {
			t.Errorf("paddock %v: code %d stdout %q stderr %q; want an error mentioning %q", args, code, out, errs, c.want)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(e.home, "sandboxes"))
	if len(entries) != 0 {
		t.Fatalf("bad input left %d sandbox directories", len(entries))
	}
	for _, args := range [][]string{{"exec", "nosuch", "--", "true"}, {"stop", "nosuch"}, {"rm", "nosuch"}, {"inspect", "nosuch"}, {"start", "BAD"}} {
		_, errs, code := e.run(args...)
		if code == 0 || errs == "" {
			t.Errorf("paddock %v: code %d stderr %q", args, code, errs)
		}
	}
}

// A PADDOCK_HOME so deep that one of a sandbox's sockets (ctl.sock, one
// byte longer than sv.sock) would not fit in a socket address is refused
// at create, and nothing is made.
func TestTooDeepHomeIsRefused(t *testing.T) {
	e := newEnv(t, "tiny")
	const name = "deep"
	// len(home + "/sandboxes/deep/ctl.sock") is 108: sv.sock's is 107.
	deep := e.home + "/" + strings.Repeat("d", 108-len("/sandboxes/"+name+"/ctl.sock")-len(e.home)-1)
	if err := os.Mkdir(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"templates", "cache"} {
		if err := os.Symlink(filepath.Join(e.home, d), filepath.Join(deep, d)); err != nil {
			t.Fatal(err)
		}
	}
	_, errs, code := e.runWithEnv([]string{"PADDOCK_HOME=" + deep}, "create", "--name", name, "--template", "tiny", "--workspace", e.ws)
	if code == 0 || !strings.Contains(errs, "too deep for unix sockets") {
		t.Fatalf("create in a too deep home: exit %d, %s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(deep, "sandboxes", name)); !os.IsNotExist(err) {
		t.Fatalf("the refused create left its folder: %v", err)
	}
}

func TestConcurrentCreateOfOneNameHasOneWinner(t *testing.T) {
	e := newEnv(t, "tiny")
	var wg sync.WaitGroup
	codes := make([]int, 2)
	errs := make([]string, 2)
	for i := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i], codes[i] = e.run("create", "--name", "dup", "--template", "tiny", "--memory", "256M", "--cpus", "1", "--workspace", e.ws)
		}()
	}
	wg.Wait()
	wins := 0
	for i, c := range codes {
		if c == 0 {
			wins++
		} else if !strings.Contains(errs[i], "already exists") {
			t.Errorf("loser's error %q", errs[i])
		}
	}
	if wins != 1 {
		t.Fatalf("%d creates won (codes %v, errors %q)", wins, codes, errs)
	}
	if out := e.ok("exec", "dup", "--", "echo", "ok"); out != "ok\n" {
		t.Fatalf("winner does not answer: %q", out)
	}
}

func TestRootOwnedWorkspaceIsWritableByAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a root-owned workspace (CI runs as root)")
	}
	e := newEnv(t, "tiny")
	os.Chown(e.ws, 0, 0)
	e.create("rootws")
	out := e.ok("exec", "rootws", "--", "sh", "-c", "id -un; echo made > by-agent.txt; cat by-agent.txt")
	if out != "agent\nmade\n" {
		t.Fatalf("got %q", out)
	}
	if b, err := os.ReadFile(filepath.Join(e.ws, "by-agent.txt")); err != nil || string(b) != "made\n" {
		t.Fatalf("host reads %q, %v", b, err)
	}
}

func TestKilledCLIDuringCreateIsExplainedAndRemovable(t *testing.T) {
	e := newEnv(t, "tiny")
	for i, delay := range []time.Duration{5 * time.Millisecond, 150 * time.Millisecond, 400 * time.Millisecond} {
		name := "cut" + strconv.Itoa(i)
		cmd := exec.Command(e.bin, "create", "--name", name, "--template", "tiny", "--memory", "256M", "--cpus", "1", "--workspace", e.ws)
		cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Kill()
		cmd.Wait()
		// Whatever the moment, ls explains the sandbox (or it was never
		// made) and rm -f leaves nothing of it.
		ls := e.ok("ls")
		explained := regexp.MustCompile(`(?m)^`+name+`\s+(running|starting|created)\s`).MatchString(ls) ||
			regexp.MustCompile(`(?m)^`+name+`\s+broken\s`).MatchString(ls) && regexp.MustCompile(`(?m)^`+name+`: incomplete create`).MatchString(ls)
		if strings.Contains(ls, name) && !explained {
			t.Fatalf("after killing create at %s, ls says:\n%s", delay, ls)
		}
		if _, err := os.Stat(filepath.Join(e.home, "sandboxes", name)); err == nil {
			e.ok("rm", "-f", name)
		}
		if _, err := os.Stat(filepath.Join(e.home, "sandboxes", name)); !os.IsNotExist(err) {
			t.Fatalf("rm -f left %s", name)
		}
	}
	if out := e.ok("ls", "--json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("sandboxes left: %s", out)
	}
}
