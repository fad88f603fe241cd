package recipe

import (
	"slices"
	"strings"
	"testing"
)

const tinyRecipe = `
name: t1
rootfs:
  kind: busybox
disk_size: 512M
`

func TestParseRecipeDefaults(t *testing.T) {
	r, err := Parse([]byte("name: d1\nrootfs:\n  packages: [git]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Recipe{
		Name:   "d1",
		Kernel: KernelSpec{Package: "linux-image-amd64"},
		Rootfs: RootfsSpec{Kind: KindDebootstrap, Suite: "bookworm", Variant: "minbase",
			Mirror: "http://deb.debian.org/debian", Packages: []string{"git"}},
		User:     UserSpec{Name: "agent", UID: 1000, GID: 1000, Shell: "/bin/bash"},
		DiskSize: "16G",
	}
	if r.Hash() != want.Hash() {
		t.Errorf("defaults: got %+v, want %+v", *r, want)
	}
	b, err := Parse([]byte(tinyRecipe))
	if err != nil {
		t.Fatal(err)
	}
	if b.User.Shell != "/bin/sh" || b.Rootfs.Mirror != "" || b.DiskBytes() != 512<<20 {
		t.Errorf("busybox defaults: %+v", *b)
	}
}

func TestParseRecipeReportsEveryProblem(t *testing.T) {
	_, err := Parse([]byte(`
name: Bad_Name
kernel: {package: "-oops"}
rootfs:
  kind: debootstrap
  variant: fat
  mirror: ftp://x
  packages: ["ok", "--evil"]
user: {name: root, uid: 70000, gid: -1, shell: bin/sh, sudo: true}
disk_size: 12Q
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"name", "kernel.package", "rootfs.variant", "rootfs.mirror",
		`"--evil"`, "user.sudo", "user.name", "user.uid", "user.gid", "user.shell", "disk_size"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s:\n%v", want, err)
		}
	}
}

func TestParseRecipeUnknownFields(t *testing.T) {
	_, err := Parse([]byte("name: x\nnmae: y\nrootfs:\n  kind: busybox\n  pakages: [a]\n"))
	if err == nil || !strings.Contains(err.Error(), "nmae") || !strings.Contains(err.Error(), "pakages") {
		t.Fatalf("want both unknown fields reported, got %v", err)
	}
}

func TestParseRecipeBusyboxRejectsDebootstrapFields(t *testing.T) {
	_, err := Parse([]byte("name: x\nrootfs: {kind: busybox, packages: [git]}\n"))
	if err == nil || !strings.Contains(err.Error(), "debootstrap") {
		t.Fatalf("got %v", err)
	}
	_, err = Parse([]byte("name: x\nrootfs: {kind: squashfs}\n"))
	if err == nil || !strings.Contains(err.Error(), "rootfs.kind") {
		t.Fatalf("got %v", err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"512M": 512 << 20, "16G": 16 << 30, "1t": 1 << 40, "4096": 4096, "64k": 64 << 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "G", "-1G", "1.5G", "12Q", "99999999999T"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
}

func TestRecipeHash(t *testing.T) {
	a, _ := Parse([]byte(tinyRecipe))
	// Comments, order, spacing and spelled-out defaults do not count.
	b, err := Parse([]byte("# a comment\ndisk_size: 512M\nrootfs: {kind: busybox}\nname: t1\nkernel:\n  package: linux-image-amd64\nuser: {name: agent, uid: 1000}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash() != b.Hash() {
		t.Error("equivalent recipes hash differently")
	}
	if a.Hash() != a.Hash() || len(a.Hash()) != 64 {
		t.Error("hash not stable")
	}
	c, _ := Parse([]byte(strings.Replace(tinyRecipe, "512M", "1G", 1)))
	d, _ := Parse([]byte(tinyRecipe + "user: {uid: 1001}\n"))
	for _, r := range []*Recipe{c, d} {
		if r.Hash() == a.Hash() {
			t.Errorf("changed recipe %+v has the same hash", *r)
		}
	}
}

func TestEmbeddedRecipes(t *testing.T) {
	names := Names()
	if strings.Join(names, ",") != "claude,codex,debian,gemini,tiny" {
		t.Fatalf("Names() = %v", names)
	}
	for _, n := range names {
		r, err := Load(n)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if r.Name != n {
			t.Errorf("%s: name %q", n, r.Name)
		}
	}
	deb, _ := Load("debian")
	if !deb.User.Sudo || deb.DiskBytes() != 16<<30 || !slices.Contains(deb.Rootfs.Packages, "npm") {
		t.Errorf("debian recipe: %+v", *deb)
	}
	_, err := Load("nope")
	if err == nil || err.Error() != `unknown template "nope" (known: claude, codex, debian, gemini, tiny)` {
		t.Errorf("unknown: %v", err)
	}
}

func TestRecipeBase(t *testing.T) {
	r, err := Load("claude")
	if err != nil {
		t.Fatal(err)
	}
	d, _ := Load("debian")
	if r.Rootfs.Kind != KindDebootstrap || r.User.Name != d.User.Name || r.DiskSize != d.DiskSize || len(r.Npm) == 0 {
		t.Fatalf("claude did not inherit debian: %+v", r)
	}
	if r.Hash() == d.Hash() {
		t.Error("claude has debian's hash")
	}
	_, err = Parse([]byte("name: x\nbase: debian\ndisk_size: 1G\nrootfs:\n  kind: busybox\n"))
	if err == nil || !strings.Contains(err.Error(), "rootfs is taken from the base") || !strings.Contains(err.Error(), "disk_size is taken") {
		t.Errorf("overriding a base: %v", err)
	}
	if _, err := Parse([]byte("name: x\nrootfs:\n  packages: [npm]\nnpm: [\"Bad Name\"]\n")); err == nil || !strings.Contains(err.Error(), "not an npm package name") {
		t.Errorf("bad npm spec: %v", err)
	}
}
