// Package qemu builds QEMU microvm command lines as data, starts QEMU
// without a shell, and drives it over QMP.
package qemu

import (
	"fmt"
	"strconv"
	"strings"
)

// Config describes one VM. Its paths are as QEMU reaches them: relative to
// QEMU's working directory, absolute, or through an inherited descriptor
// (Confinement.Files, TreePath). The VM has no shared folder: a workspace
// is synced by the supervisor over the control port.
type Config struct {
	Accel string // "kvm" or "tcg"
	// NoHugePages starts QEMU with transparent huge pages disabled
	// (PR_SET_THP_DISABLE, which also applies to the calling process).
	NoHugePages bool
	CPUs        int
	MemoryMiB   int64

	Kernel  string   // uncompressed vmlinux (PVH entry)
	Initrd  string   // the agent's initramfs
	Cmdline []string // kernel command line, see KernelCmdline

	Disk       string // root disk image, written by the guest
	DiskFormat string // "qcow2" or "raw"
	// Backing is Disk's backing chain, nearest first (BackingChain), each
	// opened read-only by the path given here rather than by the name in
	// the image header, which a confined QEMU may not be able to reach.
	Backing []Image

	ControlSocket string // host end of the agent's virtio-serial port
	ControlPort   string // the port's name in the guest
	QMPSocket     string

	// NetSocket, when set, gives the VM a virtio-net device whose frames
	// go over a stream to this unix socket (the supervisor's user-space
	// network listens there; QEMU connects).
	NetSocket string

	// MemoryFile backs guest RAM with a file (VM templating): the template
	// VM maps it shared and so writes its RAM there; clones map it private,
	// copy-on-write, and share its unchanged pages. "" = anonymous memory.
	MemoryFile   string
	MemoryShared bool

	// Incoming starts QEMU paused, waiting for migrate-incoming (restore).
	Incoming bool

	// NoSandbox turns QEMU's seccomp sandbox off (debugging only).
	NoSandbox bool
}

// ControlPortName is the virtio-serial port name the agent looks for.
const ControlPortName = "paddock.ctl"

// defaultTSCkHz is what a TCG guest is told its TSC runs at when the host's
// rate is unknown.
const defaultTSCkHz = 2100000

// KernelCmdline returns the guest kernel's command line for accel. Under
// TCG the guest's TSC ticks at the host's rate, tscKHz (HostTSCkHz; 0 if
// unknown): a guest told another rate keeps time that much too fast or too
// slow.
func KernelCmdline(accel string, tscKHz int64) []string {
	args := []string{
		"console=ttyS0", "reboot=t", "panic=-1", "quiet", "loglevel=4",
		"i8042.noaux", "i8042.nomux", "i8042.nopnp", "i8042.dumbkbd",
		// No pressure-stall accounting and no lockup detectors: nothing in
		// a sandbox reads /proc/pressure, and a detector's periodic work
		// under a loaded host only reports false lockups. Both are code a
		// restored VM runs, so TCG translates it again in every sandbox:
		// 0.5 MiB of each idle sandbox's memory (docs/BENCHMARKS.md).
		"psi=0", "nowatchdog",
		"paddock.root=/dev/vda", "paddock.ctl=" + ControlPortName,
	}
	if accel == "tcg" {
		// Without these the guest can hang at TSC calibration under TCG
		// when the host is loaded (PLATFORM.md).
		if tscKHz <= 0 {
			tscKHz = defaultTSCkHz
		}
		args = append(args, "tsc_early_khz="+strconv.FormatInt(tscKHz, 10), "tsc=reliable")
	}
	return args
}

// Validate reports every problem with the configuration.
func (c Config) Validate() error {
	var errs []string
	if c.Accel != "kvm" && c.Accel != "tcg" {
		errs = append(errs, fmt.Sprintf("accel %q is not kvm or tcg", c.Accel))
	}
	if c.CPUs < 1 {
		errs = append(errs, "cpus must be at least 1")
	}
	if c.MemoryMiB < 64 {
		errs = append(errs, "memory must be at least 64 MiB")
	}
	if c.Kernel == "" || c.Initrd == "" || c.Disk == "" {
		errs = append(errs, "kernel, initrd and disk are required")
	}
	paths := []string{c.Kernel, c.Initrd, c.Disk, c.ControlSocket, c.QMPSocket, c.MemoryFile, c.NetSocket}
	for _, b := range c.Backing {
		paths = append(paths, b.Path)
	}
	for _, p := range paths {
		if strings.Contains(p, ",") {
			errs = append(errs, fmt.Sprintf("path %q contains a comma, which QEMU cannot take", p))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("qemu config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// tcgCPU is the CPU model of a TCG guest: QEMU's generic qemu64 raised to
// the x86-64-v2 level (SSSE3, SSE4.1/4.2, POPCNT, CMPXCHG16B), which RHEL 9
// and other distributions need. "max" would add AVX, AVX2 and XSAVE, whose
// emulation made a restored create ~8% slower here (docs/BENCHMARKS.md).
//
// Without ARAT the guest keeps a periodic tick when idle (it takes the
// APIC timer to stop in idle states and microvm has no broadcast timer):
// an idle sandbox costs ~4% of a host core. +arat made idle tickless (1%)
// but each restored create 25 ms slower to its first exec, from the
// tick's stop and restart at every idle entry; not taken.
const tcgCPU = "qemu64,+ssse3,+sse4.1,+sse4.2,+popcnt,+cx16"

// CPUModel is the -cpu value for accel. A saved VM state or checkpoint
// only loads into a VM with the same model.
func CPUModel(accel string) string {
	if accel == "kvm" {
		return "host"
	}
	return tcgCPU
}

// tcgCodeCacheMiB caps TCG's translated-code buffer. QEMU's default is
// 1 GiB, and a guest running ordinary tools fills it and keeps it: two
// rounds of a python/node/git mix left 589 MiB of translations in QEMU,
// held for the sandbox's life. At 128 MiB the same work flushes the
// buffer a few times and runs no slower; at 64 MiB it runs ~20% slower
// (docs/BENCHMARKS.md). An idle clone's ~19 MiB is far below the cap.
const tcgCodeCacheMiB = 128

// accelArg is the -accel value for accel.
func accelArg(accel string) string {
	if accel == "tcg" {
		return "tcg,tb-size=" + strconv.Itoa(tcgCodeCacheMiB)
	}
	return accel
}

// Args returns QEMU's argv after the binary name.
func (c Config) Args() []string {
	cpu := CPUModel(c.Accel)
	format := c.DiskFormat
	if format == "" {
		format = "qcow2"
	}
	// Guest RAM is always the backend "mem", so every VM's RAM block has
	// the same name and a state saved by one loads into another.
	// ioapic2=off: microvm makes 8 virtio-mmio transports (24 with it on,
	// each a 28 KiB structure QEMU clears at reset: 0.5 MiB more in every
	// QEMU, measured) for the VM's 4 devices (disk, control port, rng,
	// network).
	machine := "microvm,x-option-roms=off,isa-serial=on,rtc=off,acpi=on,ioapic2=off,memory-backend=mem"
	a := []string{
		"-M", machine,
		"-accel", accelArg(c.Accel),
		"-cpu", cpu,
		"-smp", strconv.Itoa(c.CPUs),
		"-m", strconv.FormatInt(c.MemoryMiB, 10) + "M",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", c.Kernel,
		"-initrd", c.Initrd,
		"-append", strings.Join(c.Cmdline, " "),
	}
	a = append(a, blockdevs(c.Disk, format, c.Backing)...)
	a = append(a,
		"-device", "virtio-blk-device,drive=root",
		// One port is used (the agent's); port 0 is kept for a console,
		// so 2. The default, 31, gives QEMU 64 virtqueues with their
		// element arrays: 0.4 MiB more in every QEMU, measured.
		"-device", "virtio-serial-device,max_ports=2",
		"-chardev", "socket,id=ctl,path="+c.ControlSocket+",server=on,wait=off",
		"-device", "virtserialport,chardev=ctl,name="+c.ControlPort,
		"-device", "virtio-rng-device",
		"-chardev", "stdio,id=con,signal=off",
		"-serial", "chardev:con",
		"-qmp", "unix:"+c.QMPSocket+",server=on,wait=off",
	)
	size := strconv.FormatInt(c.MemoryMiB, 10) + "M"
	if c.MemoryFile != "" {
		share := "off"
		if c.MemoryShared {
			share = "on"
		}
		a = append(a, "-object", "memory-backend-file,id=mem,size="+size+",mem-path="+c.MemoryFile+",share="+share)
	} else {
		a = append(a, "-object", "memory-backend-ram,id=mem,size="+size)
	}
	if c.NetSocket != "" {
		a = append(a,
			"-netdev", "stream,id=n0,server=off,addr.type=unix,addr.path="+c.NetSocket,
			// No guest announce: after a restore QEMU would have the guest
			// send gratuitous ARPs and link notifications, which tell
			// switches a migrated VM has moved. This network has no
			// switch, and the announce was ~3% of a clone's translated
			// code (docs/BENCHMARKS.md).
			"-device", "virtio-net-device,netdev=n0,guest_announce=off")
	}
	if c.Incoming {
		a = append(a, "-S", "-incoming", "defer")
	}
	if !c.NoSandbox {
		a = append(a, "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny")
	}
	return a
}

// blockdevs is the root disk as a chain of block nodes: the node "root"
// (disk, written by the guest) on its backing images, each opened
// read-only from the path given.
func blockdevs(disk, format string, backing []Image) []string {
	chain := append([]Image{{Path: disk, Format: format}}, backing...)
	var a []string
	for i := len(chain) - 1; i >= 0; i-- {
		node := "root"
		if i > 0 {
			node = "b" + strconv.Itoa(i)
		}
		ro := ""
		if i > 0 {
			ro = ",read-only=on"
		}
		a = append(a, "-blockdev", "driver=file,node-name="+node+"-file,filename="+chain[i].Path+",discard=unmap"+ro)
		dev := "driver=" + chain[i].Format + ",node-name=" + node + ",file=" + node + "-file,discard=unmap" + ro
		if chain[i].Format == "qcow2" {
			if i+1 < len(chain) {
				dev += ",backing=b" + strconv.Itoa(i+1)
			} else {
				dev += ",backing=null"
			}
		}
		a = append(a, "-blockdev", dev)
	}
	return a
}
