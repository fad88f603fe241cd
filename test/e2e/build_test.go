package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/build"
	"github.com/paddock-dev/paddock/internal/template/initramfs"
)

// TestBuildTiny builds the tiny template for real into a fresh
// PADDOCK_HOME, through the builder's Go API: Debian's kernel and
// busybox-static are fetched with apt from the mirror (so it lives here,
// with the tests that need the machine, not in internal/).
func TestBuildTiny(t *testing.T) {
	if err := template.MissingTools("apt-get", "apt-cache", "dpkg", "mkfs.ext4", "debugfs"); err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	ctx := context.Background()

	if _, err := template.Open(home, "tiny"); err == nil || !strings.Contains(err.Error(), `run "paddock template build tiny"`) {
		t.Fatalf("Open before build: %v", err)
	}
	tp := buildTwoAtOnce(t, home)
	checkKernel(t, tp)
	checkImage(t, tp)
	checkCacheHit(t, home, tp)
	checkOpenAndList(t, home, tp)
	checkInitramfs(t, tp)

	// A forced rebuild that is interrupted leaves the old template intact
	// and no half-built directory.
	cctx, cancel := context.WithCancel(ctx)
	w := &cancelOn{word: "assembling", cancel: cancel}
	if _, err := build.Build(cctx, build.Options{Home: home, Name: "tiny", Force: true, Progress: w}); err == nil {
		t.Fatal("interrupted build succeeded")
	}
	if _, err := template.Open(home, "tiny"); err != nil {
		t.Errorf("after an interrupted rebuild: %v", err)
	}
	left, _ := filepath.Glob(filepath.Join(home, "templates", ".tiny.build-*"))
	if len(left) != 0 {
		t.Errorf("interrupted build left %v", left)
	}
}

// buildTwoAtOnce starts two builds of tiny at once: one builds, the other
// waits for the lock and finds the finished template.
func buildTwoAtOnce(t *testing.T, home string) *template.Template {
	ctx := context.Background()
	var progress [2]bytes.Buffer
	var built [2]*template.Template
	var errs [2]error
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			built[i], errs[i] = build.Build(ctx, build.Options{Home: home, Name: "tiny", Progress: &progress[i]})
		}()
	}
	wg.Wait()
	for i := range 2 {
		if errs[i] != nil {
			t.Fatalf("build %d: %v\n%s", i, errs[i], progress[i].String())
		}
	}
	out := progress[0].String() + progress[1].String()
	t.Logf("progress:\n%s", out)
	if strings.Count(out, "making 512M ext4 image") != 1 || !strings.Contains(out, "up to date") {
		t.Errorf("want exactly one real build and one cache hit:\n%s", out)
	}
	tp := built[0]
	if built[0].RecipeHash != built[1].RecipeHash || !built[0].Created.Equal(built[1].Created) {
		t.Errorf("the two builds returned different templates: %+v %+v", built[0], built[1])
	}
	return tp
}

// checkKernel: the kernel is an uncompressed ELF vmlinux, with its modules.
func checkKernel(t *testing.T, tp *template.Template) {
	k, err := os.ReadFile(tp.Kernel)
	if err != nil || !bytes.HasPrefix(k, []byte("\x7fELF")) {
		t.Fatalf("kernel %s is not ELF (%v)", tp.Kernel, err)
	}
	if tp.KernelVersion == "" || !strings.HasPrefix(tp.KernelPackage, "linux-image-"+tp.KernelVersion) {
		t.Errorf("kernel version %q package %q", tp.KernelVersion, tp.KernelPackage)
	}
	if _, err := os.Stat(filepath.Join(tp.ModulesDir, "kernel", "fs", "ext4", "ext4.ko")); err != nil {
		t.Error(err)
	}
}

// checkImage: the image is 512M apparent, small on disk, busybox and its
// applets in it.
func checkImage(t *testing.T, tp *template.Template) {
	fi, err := os.Stat(tp.Rootfs)
	if err != nil || fi.Size() != 512<<20 || tp.DiskSize != 512<<20 {
		t.Fatalf("root image: %v size %d", err, tp.DiskSize)
	}
	if used := template.DiskUsage(tp.Rootfs); used > 64<<20 {
		t.Errorf("root image uses %d bytes on disk, want it sparse", used)
	}
	ls := debugfs(t, tp.Rootfs, "ls -l /bin")
	for _, want := range []string{" busybox", " sh", " ls"} {
		if !strings.Contains(ls, want) {
			t.Errorf("/bin lacks%s:\n%s", want, ls)
		}
	}
	if passwd := debugfs(t, tp.Rootfs, "cat /etc/passwd"); !strings.Contains(passwd, "agent:x:1000:1000:agent:/home/agent:/bin/sh") {
		t.Errorf("/etc/passwd:\n%s", passwd)
	}
	if st := debugfs(t, tp.Rootfs, "stat /home/agent"); !strings.Contains(st, "User:  1000   Group:  1000") {
		t.Errorf("/home/agent owner:\n%s", st)
	}
	if st := debugfs(t, tp.Rootfs, "stat /tmp"); !strings.Contains(st, "Mode:  01777") {
		t.Errorf("/tmp mode:\n%s", st)
	}
}

// checkCacheHit: a second build is a cache hit: same hash, nothing
// rebuilt.
func checkCacheHit(t *testing.T, home string, tp *template.Template) {
	ctx := context.Background()
	var again bytes.Buffer
	start := time.Now()
	t2, err := build.Build(ctx, build.Options{Home: home, Name: "tiny", Progress: &again})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cached build took %s", time.Since(start))
	if t2.RecipeHash != tp.RecipeHash || !t2.Created.Equal(tp.Created) || !strings.Contains(again.String(), "up to date") {
		t.Errorf("second build was not a cache hit:\n%s", again.String())
	}
}

// checkOpenAndList: Open and List agree with the build.
func checkOpenAndList(t *testing.T, home string, tp *template.Template) {
	o, err := template.Open(home, "tiny")
	if err != nil || o.Rootfs != tp.Rootfs {
		t.Fatalf("Open: %v", err)
	}
	infos, err := template.List(home)
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		switch info.Name {
		case "tiny":
			if !info.Built || info.KernelVersion != tp.KernelVersion || info.ImageUsage == 0 || info.ImageUsage > 64<<20 {
				t.Errorf("List tiny: %+v", info)
			}
		case "debian":
			if info.Built {
				t.Errorf("List debian: %+v", info)
			}
		}
	}
}

// checkInitramfs: the initramfs for the template carries the guest
// modules, and a second call returns the cached archive.
func checkInitramfs(t *testing.T, tp *template.Template) {
	ctx := context.Background()
	agent := filepath.Join(t.TempDir(), "agent")
	os.WriteFile(agent, []byte("#!/bin/false\n"), 0o755)
	cacheDir := t.TempDir()
	ird, err := initramfs.For(ctx, tp, agent, cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("cpio", "-t", "--quiet")
	f, _ := os.Open(ird)
	defer f.Close()
	cmd.Stdin = f
	list, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"init", "etc/paddock/modules", "kernel/fs/ext4/ext4.ko", "kernel/drivers/virtio/virtio_mmio.ko", "kernel/drivers/net/virtio_net.ko"} {
		if !strings.Contains(string(list), want+"\n") {
			t.Errorf("initramfs lacks %s", want)
		}
	}
	if again, err := initramfs.For(ctx, tp, agent, cacheDir); err != nil || again != ird {
		t.Errorf("second Initramfs: %s, %v; want the cached %s", again, err, ird)
	}
}

// cancelOn cancels a context when a progress line mentions word.
type cancelOn struct {
	word   string
	cancel func()
}

func (c *cancelOn) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(c.word)) {
		c.cancel()
	}
	return len(p), nil
}

func debugfs(t *testing.T, image, request string) string {
	t.Helper()
	out, err := exec.Command("debugfs", "-R", request, image).Output()
	if err != nil {
		t.Fatalf("debugfs -R %q: %v", request, err)
	}
	return string(out)
}
