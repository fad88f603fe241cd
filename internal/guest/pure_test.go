package guest

import (
	"context"
	"go/parser"
	"go/token"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

func TestPackageDoc(t *testing.T) {
	for _, dir := range []string{".", "../../cmd/paddock-agent"} {
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, parser.ParseComments|parser.PackageClauseOnly)
		if err != nil {
			t.Fatal(err)
		}
		for name, p := range pkgs {
			doc := false
			for _, f := range p.Files {
				doc = doc || f.Doc != nil
			}
			if !doc {
				t.Errorf("package %s in %s has no doc comment", name, dir)
			}
		}
	}
}

func TestParseCmdline(t *testing.T) {
	cfg, err := ParseCmdline("console=ttyS0 paddock.root=/dev/vda paddock.rootflags=noatime,discard quiet paddock.ctl=ctl2\n")
	if err != nil {
		t.Fatal(err)
	}
	want := BootConfig{Root: "/dev/vda", RootFlags: "noatime,discard", RootFSType: "ext4", Port: "ctl2"}
	if cfg != want {
		t.Errorf("got %+v, want %+v", cfg, want)
	}
	cfg, err = ParseCmdline("paddock.root=/dev/vdb")
	if err != nil || cfg.Port != DefaultControlPort {
		t.Errorf("default port: %+v %v", cfg, err)
	}
	if _, err := ParseCmdline("console=ttyS0"); err == nil {
		t.Error("missing paddock.root: want an error")
	}
}

func TestParseModuleList(t *testing.T) {
	mods, err := ParseModuleList(strings.NewReader("# deps first\nkernel/drivers/virtio/virtio_ring.ko\n\n  kernel/drivers/virtio/virtio.ko  \n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"kernel/drivers/virtio/virtio_ring.ko", "kernel/drivers/virtio/virtio.ko"}
	if !reflect.DeepEqual(mods, want) {
		t.Errorf("got %q, want %q", mods, want)
	}
	if _, err := ParseModuleList(strings.NewReader("/abs.ko\n../up.ko\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad paths: got %v, want errors naming both lines", err)
	}
}

func TestLoadModulesWithoutListLoadsNothing(t *testing.T) {
	n, err := loadModules(filepath.Join(t.TempDir(), "none"), "/nonexistent")
	if n != 0 || err != nil {
		t.Errorf("got %d, %v; want 0, nil", n, err)
	}
}

func TestFindPort(t *testing.T) {
	dir := t.TempDir()
	for name, port := range map[string]string{"vport1p1": "other", "vport1p2": "paddock.ctl"} {
		os.MkdirAll(filepath.Join(dir, name), 0o755)
		os.WriteFile(filepath.Join(dir, name, "name"), []byte(port+"\n"), 0o644)
	}
	dev, err := findPort(dir, "paddock.ctl")
	if err != nil || dev != "/dev/vport1p2" {
		t.Errorf("got %q, %v", dev, err)
	}
	if _, err := findPort(dir, "missing"); err == nil {
		t.Error("missing port: want an error")
	}
}

func TestParseMountInfo(t *testing.T) {
	in := "36 35 98:0 / /mnt/my\\040dir rw,noatime master:1 - 9p workspace rw\n" +
		"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
	ms, err := parseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []mountInfo{{Target: "/mnt/my dir", FSType: "9p", Source: "workspace"}, {Target: "/proc", FSType: "proc", Source: "proc"}}
	if !reflect.DeepEqual(ms, want) {
		t.Errorf("got %+v, want %+v", ms, want)
	}
}

func TestBuildEnv(t *testing.T) {
	id := Identity{Name: "agent", Home: "/home/agent", Shell: "/bin/sh"}
	env := BuildEnv(id, true, []string{"FOO=bar", "PATH=/opt/bin", "NOEQUALS", "TERM=dumb"})
	want := []string{"PATH=/opt/bin", "HOME=/home/agent", "USER=agent", "LOGNAME=agent", "SHELL=/bin/sh", "TERM=dumb", "FOO=bar"}
	if !reflect.DeepEqual(env, want) {
		t.Errorf("got %q\nwant %q", env, want)
	}
	if env := BuildEnv(id, false, nil); slices.ContainsFunc(env, func(s string) bool { return strings.HasPrefix(s, "TERM=") }) {
		t.Errorf("no tty: TERM set: %q", env)
	}
}

const testPasswd = "root:x:0:0:root:/root:/bin/bash\n# comment\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\nagent:x:1001:1001:Agent:/home/old:/bin/zsh\n"

func TestEnsurePasswd(t *testing.T) {
	out, changed := EnsurePasswd([]byte(testPasswd), PasswdEntry{Name: "agent", UID: 1000, GID: 1000, Home: "/home/agent", Shell: "/bin/zsh"})
	want := "root:x:0:0:root:/root:/bin/bash\n# comment\nbin:x:2:2:bin:/bin:/usr/sbin/nologin\nagent:x:1000:1000:Agent:/home/agent:/bin/zsh\n"
	if !changed || string(out) != want {
		t.Errorf("update: changed=%v\n%s", changed, out)
	}
	again, changed := EnsurePasswd(out, PasswdEntry{Name: "agent", UID: 1000, GID: 1000, Home: "/home/agent", Shell: "/bin/zsh"})
	if changed || string(again) != want {
		t.Errorf("second run changed the file:\n%s", again)
	}
	added, changed := EnsurePasswd([]byte("root:x:0:0:root:/root:/bin/sh"), PasswdEntry{Name: "dev", UID: 1500, GID: 1500, Home: "/home/dev", Shell: "/bin/sh"})
	if !changed || string(added) != "root:x:0:0:root:/root:/bin/sh\ndev:x:1500:1500::/home/dev:/bin/sh\n" {
		t.Errorf("append:\n%s", added)
	}
}

func TestEnsureGroup(t *testing.T) {
	in := "root:x:0:\nsudo:x:27:agent\nagent:x:1001:friend\n"
	out, changed := EnsureGroup([]byte(in), "agent", 1000)
	if !changed || string(out) != "root:x:0:\nsudo:x:27:agent\nagent:x:1000:friend\n" {
		t.Errorf("update:\n%s", out)
	}
	out, _ = EnsureGroup([]byte("root:x:0:\n"), "agent", 1000)
	if string(out) != "root:x:0:\nagent:x:1000:\n" {
		t.Errorf("append:\n%s", out)
	}
}

func TestUsersEnsureAndLookup(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc", "sudoers.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte(testPasswd), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\ndocker:x:999:agent,x\n"), 0o644)
	u := Users{Root: root}
	if err := u.Ensure("agent", uint32(os.Geteuid()), 1000, "/home/agent"); err != nil {
		t.Fatal(err)
	}
	id, err := u.Lookup("agent")
	if err != nil {
		t.Fatal(err)
	}
	want := Identity{Name: "agent", UID: uint32(os.Geteuid()), GID: 1000, Groups: []uint32{1000, 999}, Home: "/home/agent", Shell: "/bin/zsh"}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("got %+v, want %+v", id, want)
	}
	if fi, err := os.Stat(filepath.Join(root, "home", "agent")); err != nil || !fi.IsDir() {
		t.Errorf("home not created: %v", err)
	}
	sudo, err := os.ReadFile(filepath.Join(root, "etc", "sudoers.d", "paddock-agent"))
	if err != nil || string(sudo) != "agent ALL=(ALL) NOPASSWD:ALL\n" {
		t.Errorf("sudoers: %q %v", sudo, err)
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc", "sudoers.d", "paddock-agent")); fi.Mode().Perm() != 0o440 {
		t.Errorf("sudoers mode %v, want 0440", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	if !strings.HasPrefix(string(b), "root:x:0:0:root:/root:/bin/bash\n# comment\n") {
		t.Errorf("other lines not kept:\n%s", b)
	}
	byUID, err := u.Lookup("0")
	if err != nil || byUID.Name != "root" || byUID.Home != "/root" {
		t.Errorf("lookup by uid: %+v %v", byUID, err)
	}
	anon, err := u.Lookup("4242")
	if err != nil || anon.UID != 4242 || anon.GID != 4242 || anon.Home != "/" {
		t.Errorf("unknown uid: %+v %v", anon, err)
	}
	if _, err := u.Lookup("nobody-here"); err == nil {
		t.Error("unknown name: want an error")
	}
}

func TestEnsureHostsName(t *testing.T) {
	out := string(EnsureHostsName([]byte("127.0.0.1 localhost\n127.0.1.1 old\n::1 ip6-localhost\n"), "sbx"))
	if out != "127.0.0.1 localhost\n::1 ip6-localhost\n127.0.1.1\tsbx\n" {
		t.Errorf("got %q", out)
	}
	if out := string(EnsureHostsName(nil, "sbx")); out != "127.0.0.1\tlocalhost\n127.0.1.1\tsbx\n" {
		t.Errorf("empty: got %q", out)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "data"), []byte("x"), 0o644)
	if p, err := lookPath("run", "/nonexistent:"+dir, "/"); err != nil || p != filepath.Join(dir, "run") {
		t.Errorf("run: %q %v", p, err)
	}
	if _, err := lookPath("data", dir, "/"); err != errNotExecutable {
		t.Errorf("data: %v, want not executable", err)
	}
	if _, err := lookPath("nothing", dir, "/"); !os.IsNotExist(err) {
		t.Errorf("nothing: %v, want not exist", err)
	}
	if p, err := lookPath("./run", "", dir); err != nil || p != filepath.Join(dir, "run") {
		t.Errorf("relative: %q %v", p, err)
	}
}

func TestIsMountPoint(t *testing.T) {
	for _, c := range []struct {
		path string
		want bool
	}{{"/proc", true}, {t.TempDir(), false}} {
		got, err := isMountPoint(c.path)
		if err != nil || got != c.want {
			t.Errorf("isMountPoint(%s) = %v, %v; want %v", c.path, got, err, c.want)
		}
	}
	if _, err := isMountPoint(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing path: want an error")
	}
}

func TestEnsureUserOncePerSettings(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc", "sudoers.d"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte(testPasswd), 0o644)
	os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\n"), 0o644)
	a := &Agent{Users: Users{Root: root}}
	sudoers := filepath.Join(root, "etc", "sudoers.d", "paddock-agent")
	u := &agentv1.User{Name: "agent", Uid: 1000, Gid: 1000, Home: "/home/agent"}
	if err := a.ensureUser(u); err != nil {
		t.Fatal(err)
	}
	if a.defaultUser != "agent" {
		t.Fatalf("default user %q", a.defaultUser)
	}
	// The same settings again: nothing is redone.
	os.Remove(sudoers)
	if err := a.ensureUser(&agentv1.User{Name: "agent", Uid: 1000, Gid: 1000, Home: "/home/agent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sudoers); !os.IsNotExist(err) {
		t.Fatalf("the same user was ensured again: %v", err)
	}
	// Other settings: ensured.
	if err := a.ensureUser(&agentv1.User{Name: "agent", Uid: 1001, Gid: 1001, Home: "/home/agent"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sudoers); err != nil {
		t.Fatalf("a changed user was not ensured: %v", err)
	}
	if id, err := a.Users.Lookup("agent"); err != nil || id.UID != 1001 {
		t.Fatalf("agent after the change: %+v %v", id, err)
	}
}

func TestConfigureReportsSteps(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	a := &Agent{Root: root, System: NoopSystem{}, Log: slog.New(slog.DiscardHandler), Version: "v1"}
	resp, err := a.Configure(context.Background(), &agentv1.ConfigureRequest{Hostname: "box", MachineId: strings.Repeat("ab", 16)})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetVersion() != "v1" {
		t.Errorf("version %q", resp.GetVersion())
	}
	var names []string
	for _, st := range resp.GetSteps() {
		names = append(names, st.GetName())
	}
	slices.Sort(names)
	if want := []string{"entropy", "hostname", "hosts", "machine-id"}; !slices.Equal(names, want) {
		t.Errorf("steps %v, want %v", names, want)
	}
}

// bindRecorder is a System that records the files bound over others.
type bindRecorder struct {
	NoopSystem
	mu    sync.Mutex
	binds map[string]string // dst -> src
}

func (r *bindRecorder) BindFile(src, dst string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.binds[dst] = src
	return nil
}

func TestConfigureBindsIdentityFilesFromRun(t *testing.T) {
	root := t.TempDir()
	etc := filepath.Join(root, "etc")
	os.MkdirAll(etc, 0o755)
	os.WriteFile(filepath.Join(etc, "hosts"), []byte("127.0.0.1\tlocalhost\n10.1.2.3\tdb\n"), 0o644)
	sys := &bindRecorder{binds: map[string]string{}}
	a := &Agent{Root: root, System: sys, Log: slog.New(slog.DiscardHandler)}
	id := strings.Repeat("cd", 16)
	if _, err := a.Configure(context.Background(), &agentv1.ConfigureRequest{Hostname: "box", MachineId: id}); err != nil {
		t.Fatal(err)
	}
	run := filepath.Join(root, "run", "paddock", "etc")
	want := map[string]string{
		"hostname":   "box\n",
		"machine-id": id + "\n",
		"hosts":      "127.0.0.1\tlocalhost\n10.1.2.3\tdb\n127.0.1.1\tbox\n",
	}
	for name, content := range want {
		if b, _ := os.ReadFile(filepath.Join(run, name)); string(b) != content {
			t.Errorf("%s in /run: %q, want %q", name, b, content)
		}
		if src := sys.binds[filepath.Join(etc, name)]; src != filepath.Join(run, name) {
			t.Errorf("/etc/%s is bound from %q", name, src)
		}
	}
	// The root filesystem keeps its own files; missing ones become empty
	// files to bind over.
	if b, _ := os.ReadFile(filepath.Join(etc, "hosts")); string(b) != "127.0.0.1\tlocalhost\n10.1.2.3\tdb\n" {
		t.Errorf("root fs /etc/hosts changed: %q", b)
	}
	if fi, err := os.Stat(filepath.Join(etc, "hostname")); err != nil || fi.Size() != 0 {
		t.Errorf("root fs /etc/hostname: %v %v", fi, err)
	}
}

func TestConfigureWritesThroughAnIdentitySymlink(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	target := filepath.Join(root, "managed-hostname")
	os.Symlink(target, filepath.Join(root, "etc", "hostname"))
	sys := &bindRecorder{binds: map[string]string{}}
	a := &Agent{Root: root, System: sys, Log: slog.New(slog.DiscardHandler)}
	if err := a.configureHostname("box"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(target); string(b) != "box\n" {
		t.Errorf("symlink target holds %q", b)
	}
	if len(sys.binds) != 0 {
		t.Errorf("bound over a symlink: %v", sys.binds)
	}
}

func TestPrimeRootFSLeavesNothing(t *testing.T) {
	root := t.TempDir()
	for _, d := range []string{"tmp", "home"} {
		os.MkdirAll(filepath.Join(root, d), 0o755)
	}
	a := &Agent{Root: root}
	a.primeRootFS()
	for _, d := range []string{"", "tmp", "home"} {
		ents, err := os.ReadDir(filepath.Join(root, d))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() == ".paddock-prime" {
				t.Errorf("%s/.paddock-prime left behind", d)
			}
		}
	}
}

func TestEnsureShadow(t *testing.T) {
	in := "root:*:20791:0:99999:7:::\nagent:$y$hash:20000:0:99999:7:::\n"
	if out, changed := EnsureShadow([]byte(in), "agent", time.Unix(0, 0)); changed || string(out) != in {
		t.Errorf("an existing entry was changed:\n%s", out)
	}
	out, changed := EnsureShadow([]byte(in), "user", time.Unix(86400*20000, 0))
	if want := in + "user:!:20000:0:99999:7:::\n"; !changed || string(out) != want {
		t.Errorf("added:\n%s", out)
	}
}
