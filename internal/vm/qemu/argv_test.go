package qemu

import (
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

func testConfig() Config {
	return Config{
		Accel: "tcg", CPUs: 2, MemoryMiB: 2048,
		Kernel: "/t/vmlinux", Initrd: "/c/initrd.img", Cmdline: KernelCmdline("tcg", 0),
		Disk: "disk.qcow2", DiskFormat: "qcow2",
		Backing:       []Image{{Path: "base.qcow2", Format: "qcow2"}, {Path: "/t/root.ext4", Format: "raw"}},
		ControlSocket: "ctl.sock", ControlPort: ControlPortName, QMPSocket: "qmp.sock",
	}
}

// flag returns the values that follow each occurrence of name in args.
func flag(args []string, name string) []string {
	var out []string
	for i := 0; i+1 < len(args); i++ {
		if args[i] == name {
			out = append(out, args[i+1])
		}
	}
	return out
}

func TestArgsTCG(t *testing.T) {
	a := testConfig().Args()
	want := map[string][]string{
		"-M":      {"microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=on,ioapic2=off,memory-backend=mem"},
		"-object": {"memory-backend-ram,id=mem,size=2048M"},
		"-accel":  {"tcg,tb-size=128"},
		"-cpu":    {tcgCPU},
		"-smp":    {"2"},
		"-m":      {"2048M"},
		"-kernel": {"/t/vmlinux"},
		"-initrd": {"/c/initrd.img"},
		"-drive":  nil,
		// The backing chain is explicit, read-only below the disk.
		"-blockdev": {
			"driver=file,node-name=b2-file,filename=/t/root.ext4,discard=unmap,read-only=on",
			"driver=raw,node-name=b2,file=b2-file,discard=unmap,read-only=on",
			"driver=file,node-name=b1-file,filename=base.qcow2,discard=unmap,read-only=on",
			"driver=qcow2,node-name=b1,file=b1-file,discard=unmap,read-only=on,backing=b2",
			"driver=file,node-name=root-file,filename=disk.qcow2,discard=unmap",
			"driver=qcow2,node-name=root,file=root-file,discard=unmap,backing=b1",
		},
		"-fsdev":   nil,
		"-qmp":     {"unix:qmp.sock,server=on,wait=off"},
		"-sandbox": {"on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny"},
	}
	for f, v := range want {
		if got := flag(a, f); !slices.Equal(got, v) {
			t.Errorf("%s = %q, want %q", f, got, v)
		}
	}
	if !slices.Contains(flag(a, "-device"), "virtserialport,chardev=ctl,name=paddock.ctl") {
		t.Errorf("no control port in %q", flag(a, "-device"))
	}
	for _, x := range []string{"-nodefaults", "-no-user-config", "-no-reboot", "-nographic"} {
		if !slices.Contains(a, x) {
			t.Errorf("missing %s", x)
		}
	}
	// Nothing is shared (no file server at all), and there is no network
	// device.
	for _, d := range flag(a, "-device") {
		if strings.Contains(d, "9p") || strings.Contains(d, "fs") {
			t.Errorf("a shared folder's device %q", d)
		}
		if strings.Contains(d, "net") {
			t.Errorf("unexpected network device %q", d)
		}
	}
}

func TestArgsKVMUsesHostCPU(t *testing.T) {
	c := testConfig()
	c.Accel = "kvm"
	c.Cmdline = KernelCmdline("kvm", 2600000)
	a := c.Args()
	if got := flag(a, "-cpu"); !slices.Equal(got, []string{"host"}) {
		t.Errorf("-cpu = %q", got)
	}
	if got := flag(a, "-accel"); !slices.Equal(got, []string{"kvm"}) {
		t.Errorf("-accel = %q (no TCG options on KVM)", got)
	}
	if strings.Contains(strings.Join(flag(a, "-append"), " "), "tsc_early_khz") {
		t.Error("TSC workaround on KVM")
	}
}

func TestKernelCmdlineTCG(t *testing.T) {
	cl := strings.Join(KernelCmdline("tcg", 2600000), " ")
	for _, want := range []string{"console=ttyS0", "panic=-1", "paddock.root=/dev/vda", "paddock.ctl=paddock.ctl", "tsc_early_khz=2600000", "tsc=reliable", "psi=0", "nowatchdog"} {
		if !strings.Contains(cl, want) {
			t.Errorf("cmdline %q lacks %q", cl, want)
		}
	}
	if cl := strings.Join(KernelCmdline("tcg", 0), " "); !strings.Contains(cl, "tsc_early_khz=2100000") {
		t.Errorf("unknown TSC rate: cmdline %q lacks the default", cl)
	}
	if cl := strings.Join(KernelCmdline("kvm", 2600000), " "); strings.Contains(cl, "tsc") {
		t.Errorf("KVM cmdline %q has TSC settings", cl)
	}
}

func TestHostTSCkHzIsStable(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("no x86 TSC on " + runtime.GOARCH)
	}
	a, b := HostTSCkHz(20*time.Millisecond), HostTSCkHz(20*time.Millisecond)
	if a < 500000 || a > 10000000 || a%1000 != 0 {
		t.Fatalf("host TSC %d kHz: want whole MHz between 0.5 and 10 GHz", a)
	}
	if d := a - b; d < -1000 || d > 1000 {
		t.Fatalf("two measurements differ: %d and %d kHz", a, b)
	}
}

func TestNoSandbox(t *testing.T) {
	c := testConfig()
	c.NoSandbox = true
	a := c.Args()
	if len(flag(a, "-sandbox")) != 0 {
		t.Error("-sandbox present with NoSandbox")
	}
}

func TestValidateGathersEveryProblem(t *testing.T) {
	err := Config{Accel: "xen", CPUs: 0, MemoryMiB: 1}.Validate()
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"accel", "cpus", "memory", "kernel"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
	c := testConfig()
	c.Disk = "/a,b/disk.qcow2"
	if c.Validate() == nil {
		t.Error("comma in the disk's path accepted")
	}
}

func TestChooseAccel(t *testing.T) {
	if a, _, err := ChooseAccel("tcg", nil); err != nil || a != "tcg" {
		t.Errorf("tcg -> %s, %v", a, err)
	}
	if _, _, err := ChooseAccel("xen", nil); err == nil {
		t.Error("xen accepted")
	}
	a, warn, err := ChooseAccel("auto", nil)
	if err != nil || (a != "kvm" && a != "tcg") {
		t.Fatalf("auto -> %s, %v", a, err)
	}
	if a == "tcg" && !strings.Contains(warn, "TCG") {
		t.Errorf("fallback to TCG without a warning: %q", warn)
	}
}

func TestArgsMemoryFileForTemplateAndClone(t *testing.T) {
	c := testConfig()
	c.MemoryFile, c.MemoryShared = "ram", true
	if got := flag(c.Args(), "-object"); !slices.Equal(got, []string{"memory-backend-file,id=mem,size=2048M,mem-path=ram,share=on"}) {
		t.Errorf("template vm -object = %q", got)
	}
	c.MemoryShared, c.Incoming = false, true
	a := c.Args()
	if got := flag(a, "-object"); !slices.Equal(got, []string{"memory-backend-file,id=mem,size=2048M,mem-path=ram,share=off"}) {
		t.Errorf("clone -object = %q", got)
	}
	if got := flag(a, "-incoming"); !slices.Equal(got, []string{"defer"}) || !slices.Contains(a, "-S") {
		t.Errorf("clone is not started paused waiting for its state: %q", a)
	}
}

func TestArgsNetwork(t *testing.T) {
	c := testConfig()
	if slices.Contains(c.Args(), "-netdev") {
		t.Error("a netdev without NetSocket")
	}
	c.NetSocket = "net.sock"
	a := c.Args()
	if got := flag(a, "-netdev"); !slices.Equal(got, []string{"stream,id=n0,server=off,addr.type=unix,addr.path=net.sock"}) {
		t.Errorf("-netdev = %q", got)
	}
	if !slices.Contains(flag(a, "-device"), "virtio-net-device,netdev=n0,guest_announce=off") {
		t.Errorf("no virtio-net device in %q", flag(a, "-device"))
	}
	c.NetSocket = "a,b.sock"
	if c.Validate() == nil {
		t.Error("a comma in the net socket path passed validation")
	}
}

func TestMallocEnv(t *testing.T) {
	got := mallocEnv([]string{"PATH=/bin"})
	want := []string{"PATH=/bin", "MALLOC_ARENA_MAX=1", "MALLOC_MMAP_THRESHOLD_=131072", "MALLOC_TRIM_THRESHOLD_=131072", "G_SLICE=always-malloc"}
	if !slices.Equal(got, want) {
		t.Errorf("mallocEnv = %q, want %q", got, want)
	}
	mine := []string{"MALLOC_ARENA_MAX=8", "PATH=/bin"}
	if got, want := mallocEnv(slices.Clone(mine)), append(slices.Clone(mine), "G_SLICE=always-malloc"); !slices.Equal(got, want) {
		t.Errorf("an environment that sets MALLOC_ARENA_MAX: got %q, want %q", got, want)
	}
	mine = []string{"G_SLICE=debug-blocks", "MALLOC_ARENA_MAX=8"}
	if got := mallocEnv(slices.Clone(mine)); !slices.Equal(got, mine) {
		t.Errorf("mallocEnv changed an environment that sets both: got %q", got)
	}
}
