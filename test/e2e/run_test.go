package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// noSandboxes fails unless e has no sandbox left.
func (e *env) noSandboxes() {
	e.t.Helper()
	if out := e.ok("ls", "--json"); strings.TrimSpace(out) != "[]" {
		e.t.Fatalf("sandboxes left behind:\n%s", out)
	}
}

func TestRunCommand(t *testing.T) {
	e := newEnv(t, "tiny")
	t.Run("--rm passes the exit status and removes the sandbox", func(t *testing.T) {
		e := e.with(t)
		out, errs, code := e.run("run", "--rm", "--template", "tiny", "--memory", "512M", "--", "sh", "-c", "echo out; echo err >&2; exit 3")
		if code != 3 || out != "out\n" || !strings.Contains(errs, "err\n") {
			t.Fatalf("code %d stdout %q stderr %q; want 3, out, err", code, out, errs)
		}
		e.noSandboxes()
	})
	t.Run("runs as agent in the workspace with -e", func(t *testing.T) {
		e := e.with(t)
		out, errs, code := e.run("run", "--rm", "--template", "tiny", "--memory", "512M", "-e", "KEY=v1", "--", "sh", "-c", "id -un; pwd; echo $KEY")
		if code != 0 || out != "agent\n"+e.ws+"\nv1\n" {
			t.Fatalf("code %d stdout %q stderr %q", code, out, errs)
		}
		e.noSandboxes()
	})
	t.Run("without --rm the sandbox stays", func(t *testing.T) {
		e := e.with(t)
		_, errs, code := e.run("run", "--name", "stays", "--template", "tiny", "--memory", "512M", "--", "true")
		if code != 0 || !strings.Contains(errs, "stays is still running") {
			t.Fatalf("code %d stderr %q", code, errs)
		}
		e.ok("rm", "-f", "stays")
	})
	t.Run("SIGTERM during --rm removes the sandbox", func(t *testing.T) {
		e := e.with(t)
		cmd := exec.Command(e.bin, "run", "--rm", "--template", "tiny", "--memory", "512M", "--", "sh", "-c", "echo ready; sleep 600")
		cmd.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
		cmd.Dir = e.ws
		stdout, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		if line != "ready\n" {
			cmd.Process.Kill()
			t.Fatalf("read %q", line)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			t.Fatal("paddock run did not end within 60s of SIGTERM")
		}
		if code := cmd.ProcessState.ExitCode(); code != 128+15 {
			t.Errorf("exit code %d, want 143", code)
		}
		e.noSandboxes()
	})
	t.Run("unknown agent says what to do", func(t *testing.T) {
		e := e.with(t)
		_, errs, code := e.run("run", "make", "test")
		if code == 0 || !strings.Contains(errs, "paddock run -- make test") {
			t.Fatalf("code %d stderr %q", code, errs)
		}
	})
}

// Each agent preset's template has its CLI, which runs offline in its
// unattended mode: --version after -- reaches the agent. make test runs
// claude's; codex and gemini are in run_agents_test.go (make test-agents).
func TestRunAgentVersions(t *testing.T) { runAgentVersions(t, "claude") }

func runAgentVersions(t *testing.T, agents ...string) {
	e := newEnv(t, agents...)
	version := regexp.MustCompile(`\d+\.\d+\.\d+`)
	for _, agent := range agents {
		t.Run(agent, func(t *testing.T) {
			e := e.with(t)
			out, errs, code := e.run("run", agent, "--rm", "--memory", "1G", "--", "--version")
			if code != 0 || !version.MatchString(out) {
				t.Fatalf("paddock run %s --rm -- --version: code %d stdout %q stderr %q", agent, code, out, errs)
			}
			t.Logf("%s: %s", agent, strings.TrimSpace(out))
			e.noSandboxes()
		})
	}
}
