package supervisor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/vm/qemu"
)

// A saved state is a template VM booted once, its agent answering, no
// workspace mounted, saved to disk (VM templating as Kata Containers does
// it). Clones restore it instead of booting. Its directory
// (store.SavedStateLayout) holds:
//
//	ram        the guest RAM, a file the template VM mapped shared; clones
//	           map it private (copy-on-write) and share its pages
//	dev.state  the migration stream without RAM (x-ignore-shared)
//	disk.qcow2 the template VM's disk overlay (the guest's page cache must
//	           match its disk, so clones' overlays are backed by this one)
//	clone.qcow2 an empty overlay backed by "base.qcow2": a clone's disk is
//	           a copy of it beside its link to disk.qcow2 (faster than
//	           running qemu-img on the path of every create)
//	meta.json  what the state was made from, written last
type savedState = store.SavedStateLayout

// stateSpec is everything that must match between the template VM and its
// clones. Its hash names the state directory.
type stateSpec struct {
	Template     string `json:"template"`
	TemplateHash string `json:"template_build"` // template.BuildID: a rebuild makes a new state
	Rootfs       string `json:"rootfs"`
	Kernel       string `json:"kernel"`
	Initrd       string `json:"initrd"` // cached by agent + kernel hash: its path is its identity
	Accel        string `json:"accel"`
	CPUs         int    `json:"cpus"`
	MemoryMiB    int64  `json:"memory_mib"`
	QEMU         string `json:"qemu"`              // qemu version: states do not cross versions
	CPU          string `json:"cpu"`               // qemu.CPUModel
	TSCkHz       int64  `json:"tsc_khz,omitempty"` // the host TSC rate a TCG guest is told (hostTSC)
	Format       int    `json:"format"`            // bump when the device set or the kernel command line changes
}

// 2: a virtio-net device (-netdev stream to net.sock).
// 4: the CPU model is part of the key.
// 5: virtio-net without guest_announce (a device feature bit).
// 6: virtio-serial with max_ports=2 (its queue count is device state).
// 7: microvm with ioapic2=off (8 virtio-mmio transports); psi=0 nowatchdog.
// 9: no virtio-9p device (the workspace is synced, nothing is shared).
const stateFormat = 9

func (sp stateSpec) key() string {
	b, _ := json.Marshal(sp)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

func stateFor(home store.Home, sp stateSpec) savedState {
	return home.SavedState(sp.Template + "-" + sp.key())
}

// stateComplete reports whether the state's files are all there.
func stateComplete(s savedState) bool {
	for _, p := range []string{s.RAM(), s.DevState(), s.Disk(), s.Clone(), s.Meta()} {
		if _, err := os.Stat(p); err != nil {
			return false
		}
	}
	return true
}

// qemuVersion identifies the QEMU binary by path, size and mtime: a saved
// state does not load into another QEMU version, and running qemu
// --version on every start would cost more than a stat.
func qemuVersion() string {
	path, err := exec.LookPath(qemu.Binary)
	if err != nil {
		return "unknown"
	}
	st, err := os.Stat(path)
	if err != nil {
		return "unknown"
	}
	return fmt.Sprintf("%s %d %d", path, st.Size(), st.ModTime().UnixNano())
}

// vmConfig is the device set shared by template VMs and their clones,
// with every path as the QEMU of view reaches it: vm is the VM's own
// directory (its disk and sockets), backing its disk's backing chain.
func vmConfig(sp stateSpec, view *vmView, vm store.VMFiles, backing []qemu.Image) qemu.Config {
	cfg := qemu.Config{
		Accel:         sp.Accel,
		CPUs:          sp.CPUs,
		MemoryMiB:     sp.MemoryMiB,
		Kernel:        view.path(sp.Kernel),
		Initrd:        view.path(sp.Initrd),
		Cmdline:       qemu.KernelCmdline(sp.Accel, sp.TSCkHz),
		Disk:          view.path(vm.Disk()),
		DiskFormat:    "qcow2",
		ControlSocket: view.path(vm.ControlSocket()),
		NetSocket:     view.path(vm.NetSocket()),
		ControlPort:   qemu.ControlPortName,
		QMPSocket:     view.path(vm.QMPSocket()),
	}
	for _, b := range backing {
		cfg.Backing = append(cfg.Backing, qemu.Image{Path: view.path(b.Path), Format: b.Format})
	}
	return cfg
}

// vmDirs is every directory the QEMU of a VM whose own directory is dir
// reaches: dir itself, the kernel's and initramfs's, those of its disk's
// backing images, and that of its RAM file (ram, "" for none).
func vmDirs(dir string, sp stateSpec, backing []qemu.Image, ram string) []vmDir {
	dirs := []vmDir{{path: dir, writable: true}}
	for _, p := range []string{sp.Kernel, sp.Initrd} {
		dirs = append(dirs, vmDir{path: filepath.Dir(p)})
	}
	for _, b := range backing {
		dirs = append(dirs, vmDir{path: filepath.Dir(b.Path)})
	}
	if ram != "" {
		// Opened read-write even by a clone, which maps it private.
		dirs = append(dirs, vmDir{path: filepath.Dir(ram), writable: true})
	}
	return dirs
}

// startVM starts the QEMU of the VM whose directory is vm, with its RAM in
// ram ("" for anonymous memory). key names the VM for its host uid
// (vmIDs).
func startVM(key string, vm store.VMFiles, sp stateSpec, ram string, adjust func(*qemu.Config), console, stderr io.Writer) (*qemu.Process, error) {
	backing, err := qemu.BackingChain(vm.Disk())
	if err != nil {
		return nil, err
	}
	view, err := newVMView(key, vmDirs(vm.Dir, sp, backing, ram), sp.Accel)
	if err != nil {
		return nil, err
	}
	defer view.Close()
	cfg := vmConfig(sp, view, vm, backing)
	if ram != "" {
		cfg.MemoryFile = view.path(ram)
	}
	if adjust != nil {
		adjust(&cfg)
	}
	return qemu.Start(cfg, view.confine, view.cwd, console, stderr)
}

// ensureState returns the saved state for sp, making it first if needed.
// Concurrent supervisors wait for one maker (flock).
func ensureState(ctx context.Context, home store.Home, sp stateSpec, log *slog.Logger) (savedState, error) {
	st := stateFor(home, sp)
	if stateComplete(st) {
		return st, nil
	}
	if err := os.MkdirAll(filepath.Dir(st.Dir), 0o700); err != nil {
		return st, err
	}
	lock, err := store.LockFile(st.Lock(), true)
	if err != nil {
		return st, err
	}
	defer lock.Unlock()
	if stateComplete(st) {
		return st, nil
	}
	t0 := time.Now()
	tmp, err := os.MkdirTemp(filepath.Dir(st.Dir), store.StateMakePattern)
	if err != nil {
		return st, err
	}
	defer os.RemoveAll(tmp)
	if err := makeState(ctx, savedState{Dir: tmp}, sp, log); err != nil {
		return st, fmt.Errorf("make saved vm state: %w", err)
	}
	os.RemoveAll(st.Dir)
	if err := os.Rename(tmp, st.Dir); err != nil {
		return st, err
	}
	log.Info("made saved vm state", "dir", st.Dir, "duration", time.Since(t0).Round(time.Millisecond))
	pruneStates(filepath.Dir(st.Dir), st.Dir, sp, log)
	return st, nil
}

// pruneStates removes the states that st replaces (same template, cpus,
// memory and accelerator, but an older template build, agent or QEMU) and
// those of templates that no longer exist.
// Sandboxes made from them keep working: each holds its own link to the
// state's disk, and their memory is their own once they run. Leftovers of
// interrupted makes are removed too.
func pruneStates(dir, keep string, sp stateSpec, log *slog.Logger) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if !e.IsDir() || p == keep {
			continue
		}
		if ok, _ := filepath.Match(store.StateMakePattern, e.Name()); ok {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				os.RemoveAll(p)
			}
			continue
		}
		var old stateSpec
		if store.ReadJSON(savedState{Dir: p}.Meta(), &old) != nil {
			continue
		}
		_, rootErr := os.Stat(old.Rootfs) // gone: its template was removed
		replaced := old.Template == sp.Template && old.CPUs == sp.CPUs && old.MemoryMiB == sp.MemoryMiB && old.Accel == sp.Accel && old != sp
		if replaced || errors.Is(rootErr, os.ErrNotExist) {
			if err := os.RemoveAll(p); err == nil {
				os.Remove(savedState{Dir: p}.Lock())
				log.Info("pruned an outdated saved vm state", "dir", p)
			}
		}
	}
}

// templateMachineID is the template VM's machine id; every clone is given
// its own.
const templateMachineID = "00000000000000000000000000000001"

// makeState boots a template VM in dir, waits for its agent, disconnects,
// and saves it.
func makeState(ctx context.Context, st savedState, sp stateSpec, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, bootTimeout)
	defer cancel()
	if err := prepareState(ctx, st, sp); err != nil {
		return err
	}
	// The template VM has the clones' virtio-net device, attached to a
	// link that goes nowhere; each clone connects to its own network.
	stopNet, err := holdNetSocket(st.VM().NetSocket(), qemuUID(st.Dir))
	if err != nil {
		return err
	}
	defer stopNet()
	consoleFile, err := os.Create(st.ConsoleLog())
	if err != nil {
		return err
	}
	defer consoleFile.Close()
	console := newConsoleWatch(consoleFile)
	shared := func(cfg *qemu.Config) { cfg.MemoryShared = true }
	p, err := startVM(st.Dir, st.VM(), sp, st.RAM(), shared, console, console)
	if err != nil {
		return err
	}
	defer func() { p.Kill(); <-p.Done() }()
	mon, err := qemu.DialMonitor(ctx, st.VM().QMPSocket())
	if err != nil {
		return err
	}
	defer mon.Close()
	go func() {
		select {
		case <-p.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	link := newGuestLink(st.VM().ControlSocket())
	defer link.drop()
	if _, err := link.waitAgent(ctx); err != nil {
		return fmt.Errorf("template vm agent did not answer: %w (console: %s)", err, consoleFile.Name())
	}
	agent, err := link.agent(ctx)
	if err != nil {
		return err
	}
	// Configure what is the same for most sandboxes (the default user),
	// so a clone's Configure finds it done, and bind the identity files a
	// clone rewrites (see the agent's writeIdentity): then they cost a
	// clone nothing on its root filesystem.
	if _, err := agent.Configure(ctx, &agentv1.ConfigureRequest{
		Hostname:  "paddock",
		MachineId: templateMachineID,
		User:      &agentv1.User{Name: "agent", Uid: 1000, Gid: 1000, Home: "/home/agent"},
		Network:   guestNetwork(),
	}); err != nil {
		return fmt.Errorf("configure template vm: %w", err)
	}
	if _, err := agent.Quiesce(ctx, &agentv1.QuiesceRequest{}); err != nil {
		return fmt.Errorf("quiesce the template vm: %w", err)
	}
	waitDocker(ctx, agent, log) // dockerwait.go
	// Every clone must start from an agent between host sessions, waiting
	// for a new connection: detach waits for the agent to say so.
	if err := detach(ctx, link, console); err != nil {
		return err
	}
	if err := saveDevState(ctx, mon, st); err != nil {
		return err
	}
	p.Kill()
	<-p.Done()
	return store.WriteJSON(st.Meta(), sp)
}

// saveDevState saves a stopped template VM's device state, without its
// RAM (x-ignore-shared: the RAM file is the state's), and removes the
// VM's sockets from the state's folder.
func saveDevState(ctx context.Context, mon *qemu.Monitor, st savedState) error {
	defer os.Remove(st.VM().QMPSocket())
	defer os.Remove(st.VM().ControlSocket())
	if err := mon.SetIgnoreShared(true); err != nil {
		return err
	}
	if err := mon.Save(ctx, st.DevState()); err != nil {
		return fmt.Errorf("save device state: %w", err)
	}
	return nil
}

// prepareState makes a new state's disk and its clones' disk.
func prepareState(ctx context.Context, st savedState, sp stateSpec) error {
	if err := createOverlay(ctx, sp.Rootfs, "raw", st.Disk(), 0); err != nil {
		return err
	}
	return makeCloneDisk(ctx, st, sp)
}

// makeCloneDisk writes the state's clone.qcow2. Its backing file is named
// relatively, so one copy serves every clone; qemu-img does not open it
// (-u), and the size is the state disk's (the template's root image's).
func makeCloneDisk(ctx context.Context, st savedState, sp stateSpec) error {
	fi, err := os.Stat(sp.Rootfs)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "qemu-img", "create", "-q", "-f", "qcow2", "-u", "-F", "qcow2", "-b", store.BaseDiskName,
		st.Clone(), strconv.FormatInt(fi.Size(), 10)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("qemu-img: %v: %s", err, out)
	}
	return nil
}
