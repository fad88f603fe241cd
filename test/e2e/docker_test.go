package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Docker Engine inside a debian sandbox: the guest's own daemon, used by
// the agent user, loads an image, runs it, and builds on it offline.
func TestDockerInSandbox(t *testing.T) {
	e := newEnv(t, "debian")
	writeArchive(t, testImage(t, 0), "my-image:1", filepath.Join(e.ws, "img.tar"))
	os.Chown(filepath.Join(e.ws, "img.tar"), 1000, 1000)
	os.Mkdir(filepath.Join(e.ws, "build"), 0o755)
	os.WriteFile(filepath.Join(e.ws, "build", "Dockerfile"), []byte(
		"FROM my-image:1\nRUN echo built offline > /built.txt\nCMD [\"cat\", \"/built.txt\"]\n"), 0o644)
	e.ok("create", "--name", "dk", "--memory", "1G", "--workspace", e.ws)

	t.Run("the daemon is the guest's own", func(t *testing.T) {
		e := e.with(t)
		out := e.ok("exec", "dk", "--", "docker", "info", "--format", "{{.OperatingSystem}}|{{.KernelVersion}}|{{.DockerRootDir}}|{{.CgroupVersion}}")
		f := strings.Split(strings.TrimSpace(out), "|")
		if len(f) != 4 || !strings.Contains(f[0], "Debian GNU/Linux 12") || !strings.HasPrefix(f[1], "6.1.") || f[2] != "/var/lib/docker" || f[3] != "2" {
			t.Fatalf("docker info: %q; want Debian 12, the guest kernel 6.1, /var/lib/docker, cgroup v2", out)
		}
		if out := e.ok("exec", "dk", "--", "id", "-Gn"); !strings.Contains(out, "docker") {
			t.Fatalf("agent is not in group docker: %q", out)
		}
	})
	t.Run("docker load and run", func(t *testing.T) {
		e := e.with(t)
		if out := e.ok("exec", "dk", "--", "docker", "load", "-i", "img.tar"); !strings.Contains(out, "my-image:1") {
			t.Fatalf("docker load printed %q", out)
		}
		if out := e.ok("exec", "dk", "--", "docker", "run", "--rm", "my-image:1", "echo", "hi"); out != "hi\n" {
			t.Fatalf("docker run printed %q, want hi", out)
		}
		out := e.ok("exec", "dk", "--", "docker", "run", "--rm", "my-image:1", "sh", "-c", "echo $GREETING; pwd")
		if out != "from-image\n/srv/app\n" {
			t.Fatalf("docker run printed %q", out)
		}
	})
	t.Run("docker build FROM the loaded image, offline", func(t *testing.T) {
		e := e.with(t)
		e.ok("exec", "-w", filepath.Join(e.ws, "build"), "dk", "--", "docker", "build", "-q", "-t", "derived:1", ".")
		if out := e.ok("exec", "dk", "--", "docker", "run", "--rm", "derived:1"); out != "built offline\n" {
			t.Fatalf("docker run derived:1 printed %q", out)
		}
	})
}
