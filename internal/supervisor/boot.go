package supervisor

import (
	"context"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/template/initramfs"
	"github.com/paddock-dev/paddock/internal/vm/qemu"
)

// boot is what one boot's steps find out and make, for the steps after
// them.
type boot struct {
	s       *sup
	ctx     context.Context
	diskErr error // the sandbox's disk at the start: nil when it exists

	tpl    *template.Template
	rootfs string // the template's root image: a cold boot's disk is an overlay on it
	spec   stateSpec
	state  savedState             // the template's saved VM (mode "restore")
	ckpt   store.CheckpointLayout // the checkpoint a fork starts from (mode "fork")
	srv    *grpc.Server
}

// bootStep is one named step of a boot.
type bootStep struct {
	name string
	run  func() error
}

// boot runs the named steps that take a sandbox from a config to a VM
// whose agent answers, and serves the API. Each step is logged and timed.
// A new sandbox restores the template's saved VM; a sandbox whose disk
// already exists (start after stop), or one made with --cold, boots cold.
func (s *sup) boot(ctx context.Context) (*grpc.Server, error) {
	b := s.newBoot(ctx)
	if err := s.runSteps(b.templateSteps()); err != nil {
		return nil, err
	}
	return s.bootVM(b)
}

// newBoot chooses the boot's mode: a sandbox without a disk is forked
// from its checkpoint or restored from its template's saved VM, unless
// made with --cold.
func (s *sup) newBoot(ctx context.Context) *boot {
	_, diskErr := os.Stat(s.layout.Disk())
	s.mode = "cold"
	switch {
	case os.IsNotExist(diskErr) && s.cfg.From != "":
		s.mode = "fork"
	case os.IsNotExist(diskErr) && !s.cfg.Cold:
		s.mode = "restore"
	}
	return &boot{s: s, ctx: ctx, diskErr: diskErr, ckpt: s.opts.Home.Checkpoint(s.cfg.From)}
}

// templateSteps find the template and what the VM is made of (b.spec).
func (b *boot) templateSteps() []bootStep {
	return []bootStep{
		{"open template", b.openTemplate},
		{"initramfs", b.initramfs},
		{"choose accelerator", b.chooseAccel},
	}
}

// bootVM runs the steps from b.spec to a serving sandbox.
func (s *sup) bootVM(b *boot) (*grpc.Server, error) {
	if err := s.runSteps(b.vmSteps()); err != nil {
		return nil, err
	}
	s.started = time.Now()
	s.noteRestore()
	return b.srv, nil
}

func (b *boot) vmSteps() []bootStep {
	s, ctx := b.s, b.ctx
	return []bootStep{
		{"saved vm state", b.savedState},
		{"create disk", b.createDisk},
		{"open workspace", s.openFolders}, // workspace.go
		{"start network", s.startNetwork},
		{"start qemu", b.startQEMU},
		{"connect monitor", b.connectMonitor},
		{"restore", b.restore},
		{"grow disk", s.growDisk}, // disk.go
		{"wait for agent", func() error { return s.waitAgent(ctx) }},
		{"configure guest", func() error { return s.configure(ctx) }},
		{"sync workspace", func() error { return s.startSync(ctx) }},
		{"serve api", func() (err error) {
			b.srv, err = s.serve()
			return err
		}},
	}
}

// runSteps runs steps in order, logging each with its duration, and
// stops at the first that fails.
func (s *sup) runSteps(steps []bootStep) error {
	for _, st := range steps {
		t0 := time.Now()
		if err := st.run(); err != nil {
			s.log.Error("boot step failed", "step", st.name, "err", err)
			return fmt.Errorf("%s: %w", st.name, err)
		}
		s.log.Info("boot step", "step", st.name, "mode", s.mode, "duration", time.Since(t0).Round(time.Millisecond))
	}
	return nil
}

func (b *boot) openTemplate() (err error) {
	s := b.s
	b.tpl, err = template.Open(string(s.opts.Home), s.cfg.Template)
	if err != nil {
		return err
	}
	b.rootfs = b.tpl.Rootfs
	return s.checkTemplateBuild(b.tpl, b.diskErr == nil)
}

func (b *boot) initramfs() (err error) {
	s := b.s
	b.spec.Initrd, err = initramfs.For(b.ctx, b.tpl, s.opts.AgentPath, s.opts.Home.CacheDir())
	return err
}

func (b *boot) chooseAccel() error {
	s, tpl := b.s, b.tpl
	probe := func() error { return probeKVM(b.ctx, s.opts.Home, realPath(tpl.Kernel)) }
	accel, warning, err := qemu.ChooseAccel(s.cfg.Accel, probe)
	if warning != "" {
		s.log.Warn(warning)
	}
	s.accel = accel
	// Real paths: a PADDOCK_HOME may reach templates through symlinks,
	// and the state's key must not depend on that.
	b.spec = stateSpec{
		Template: tpl.Name, TemplateHash: template.BuildID(tpl), Rootfs: realPath(tpl.Rootfs), Kernel: realPath(tpl.Kernel),
		Initrd: realPath(b.spec.Initrd), Accel: accel, CPUs: s.cfg.CPUs, MemoryMiB: s.cfg.MemoryBytes >> 20,
		QEMU: qemuVersion(), CPU: qemu.CPUModel(accel), Format: stateFormat,
	}
	if accel == "tcg" {
		b.spec.TSCkHz = hostTSC(s.opts.Home)
	}
	return err
}

// savedState finds (or makes) the template's saved VM a restore needs; a
// sandbox boots cold without one.
func (b *boot) savedState() (err error) {
	s := b.s
	if s.mode != "restore" {
		return nil
	}
	b.state, err = ensureState(b.ctx, s.opts.Home, b.spec, s.log)
	if err != nil {
		s.log.Warn("no saved vm state, falling back to a cold boot", "err", err)
		s.mode = "cold"
	}
	return nil
}

func (b *boot) createDisk() error {
	switch {
	case b.s.mode == "fork":
		return b.forkDisk()
	case b.s.mode == "restore":
		return b.restoreDisk()
	case os.IsNotExist(b.diskErr):
		return b.coldDisk()
	}
	return nil
}

// forkDisk copies the checkpoint's disk pair, and its workspace's sync
// record when the fork has the checkpoint's workspace.
func (b *boot) forkDisk() error {
	s := b.s
	if err := copyDiskPair(b.ckpt.Dir, s.layout.Dir); err != nil {
		return fmt.Errorf("copy checkpoint %q disk: %w", s.cfg.From, err)
	}
	var meta store.CheckpointMeta
	if s.cfg.Workspace != "" && store.ReadJSON(b.ckpt.Meta(), &meta) == nil && meta.Config.Workspace == s.cfg.Workspace {
		return copySyncState(b.ckpt.SyncState(), s.layout.SyncState())
	}
	return nil
}

// restoreDisk gives the sandbox its own link to the saved state's disk
// (the state may be pruned while the sandbox lives) and a copy of the
// state's clone disk on it.
func (b *boot) restoreDisk() error {
	l := b.s.layout
	if err := linkOrCopy(b.state.Disk(), l.BaseDisk()); err != nil {
		return err
	}
	if err := copySparse(b.state.Clone(), l.Disk()); err != nil {
		return fmt.Errorf("copy the saved state's clone disk: %w", err)
	}
	return nil
}

// coldDisk makes a new overlay on the template's root image.
func (b *boot) coldDisk() error {
	return b.s.vms.createDisk(b.ctx, b.rootfs, "raw", b.s.layout.Disk(), b.s.cfg.DiskBytes)
}

func (b *boot) startQEMU() error { return b.s.startQEMU(b.spec, b.state) }

func (b *boot) connectMonitor() (err error) {
	mctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	b.s.monitor, err = b.s.vms.dialMonitor(mctx, b.s.layout.QMPSocket())
	return err
}

// restore loads the checkpoint of a fork or the saved VM of a restore
// into the QEMU waiting for it; a saved VM that does not load is booted
// cold instead.
func (b *boot) restore() error {
	s := b.s
	switch s.mode {
	case "fork":
		if err := s.restoreCheckpoint(b.ctx, b.ckpt); err != nil {
			return fmt.Errorf("restore checkpoint %q: %w", s.cfg.From, err)
		}
		return nil
	case "restore":
		if err := s.restore(b.ctx, b.state); err != nil {
			return b.coldAfterRestore(err)
		}
	}
	return nil
}

// coldAfterRestore boots cold after the saved VM failed to load (a
// corrupt or mismatched state, err): the QEMU that waited for it goes,
// and so does the disk made for it.
func (b *boot) coldAfterRestore(err error) error {
	s := b.s
	s.log.Warn("restore failed, falling back to a cold boot; remove the saved state to have it made again", "err", err, "state", b.state.Dir)
	s.monitor.Close()
	s.qemu.Kill()
	<-s.qemu.Done()
	s.mode = "cold"
	os.Remove(s.layout.Disk())
	os.Remove(s.layout.BaseDisk())
	for _, step := range []func() error{b.coldDisk, b.startQEMU, b.connectMonitor} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// noteRestore tells the console log's reader why a restored or forked VM
// shows no boot: its guest booted before its state was saved, and writes
// nothing to the slow serial console on the way back.
func (s *sup) noteRestore() {
	var from string
	switch s.mode {
	case "restore":
		from = "template " + s.cfg.Template + "'s saved VM"
	case "fork":
		from = "checkpoint " + s.cfg.From
	default:
		return
	}
	fmt.Fprintf(s.console, "[paddock] %s restored from %s: the guest booted when that state was saved; this start's steps are in paddock logs --kind supervisor\n",
		s.started.UTC().Format(time.RFC3339), from)
}

// restore loads the saved state into a QEMU started with Incoming and
// lets it run.
func (s *sup) restore(ctx context.Context, st savedState) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if err := s.monitor.SetIgnoreShared(true); err != nil {
		return err
	}
	err := s.monitor.Restore(ctx, st.DevState())
	// A private RAM copy stays mapped by QEMU; its name is not needed.
	os.Remove(s.layout.PrivateRAM())
	if err != nil {
		return err
	}
	_, err = s.monitor.Execute("cont", nil)
	return err
}
