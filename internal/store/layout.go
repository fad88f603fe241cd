package store

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// This file names every file under PADDOCK_HOME: the sandboxes, their
// checkpoints, the saved VM states they are restored from, the templates
// and the build cache, the secret store and the API keys. Nothing else in
// paddock builds a path under PADDOCK_HOME from a literal name; every
// path is absolute.

// Home is the root of paddock's state (PADDOCK_HOME).
type Home string

// DefaultHome is $PADDOCK_HOME if set, /var/lib/paddock for root, else
// $XDG_DATA_HOME/paddock (~/.local/share/paddock).
func DefaultHome() (Home, error) {
	if h := os.Getenv("PADDOCK_HOME"); h != "" {
		abs, err := filepath.Abs(h)
		if err != nil {
			return "", fmt.Errorf("PADDOCK_HOME %q: %w", h, err)
		}
		return Home(abs), nil
	}
	if os.Geteuid() == 0 {
		return "/var/lib/paddock", nil
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return Home(filepath.Join(x, "paddock")), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("cannot find a home for paddock state: set PADDOCK_HOME: %w", err)
	}
	return Home(filepath.Join(home, ".local", "share", "paddock")), nil
}

// PrivateMark is an empty file that says Secure has taken every other
// user's permissions off the home and all in it.
func (h Home) PrivateMark() string { return filepath.Join(string(h), ".private") }

// SandboxesDir holds one directory per sandbox.
func (h Home) SandboxesDir() string { return filepath.Join(string(h), "sandboxes") }

// TemplatesDir holds built templates (see package template).
func (h Home) TemplatesDir() string { return filepath.Join(string(h), "templates") }

// CacheDir holds downloads and generated artifacts keyed by their inputs.
func (h Home) CacheDir() string { return filepath.Join(string(h), "cache") }

// SecretsDir holds the host-side secret store (internal/secret).
func (h Home) SecretsDir() string { return filepath.Join(string(h), "secrets") }

// Secrets is the secret definitions, each with its value sealed
// (AES-256-GCM) under SecretsKey, JSON.
func (h Home) Secrets() string { return filepath.Join(h.SecretsDir(), "secrets.json") }

// SecretsKey is the 32-byte key that seals the values in Secrets: a
// separate file, so a copy of Secrets alone reveals no value.
func (h Home) SecretsKey() string { return filepath.Join(h.SecretsDir(), "secrets.key") }

// SecretsLock serialises changes to Secrets and the making of SecretsKey.
func (h Home) SecretsLock() string { return filepath.Join(h.SecretsDir(), "lock") }

// CAKey is the private key of this install's certificate authority, the
// one the network forwarder signs intercepted hosts' certificates with
// (internal/inject); PEM, 0600, never given to a VM.
func (h Home) CAKey() string { return filepath.Join(h.SecretsDir(), "ca.key") }

// CACert is that authority's certificate (PEM): what every guest trusts.
func (h Home) CACert() string { return filepath.Join(h.SecretsDir(), "ca.crt") }

// Sandbox returns the layout of sandbox name (not checking it exists).
func (h Home) Sandbox(name string) Layout {
	return Layout{Dir: filepath.Join(h.SandboxesDir(), name)}
}

// Layout names every file a sandbox has on disk. Nothing else in paddock
// builds a path inside a sandbox directory.
type Layout struct{ Dir string }

func (l Layout) path(name string) string { return filepath.Join(l.Dir, name) }

// Config is the sandbox's settings (config.json), written once at create.
func (l Layout) Config() string { return l.path("config.json") }

// Disk is the qcow2 overlay on the template's root image.
func (l Layout) Disk() string { return l.VM().Disk() }

// BaseDisk is the backing file of Disk for a sandbox made from a saved
// VM state (see BaseDiskName); a cold-booted sandbox has none.
func (l Layout) BaseDisk() string { return l.VM().BaseDisk() }

// PrivateRAM is the sandbox's own copy of its saved state's RAM file,
// used with --no-share-memory.
func (l Layout) PrivateRAM() string { return l.path("ram.private") }

// SupervisorPid records the running supervisor (pid, boot id, start time).
func (l Layout) SupervisorPid() string { return l.path("supervisor.pid") }

// QEMUPid records the running QEMU process.
func (l Layout) QEMUPid() string { return l.path("qemu.pid") }

// Socket is the supervisor's API socket, for the CLI. Short on purpose:
// unix socket paths are limited to 107 bytes (see Sockets).
func (l Layout) Socket() string { return l.path("sv.sock") }

// Sockets is every unix socket in the sandbox directory: each path must
// fit in the 107 bytes a socket address holds.
func (l Layout) Sockets() []string {
	return []string{l.Socket(), l.QMPSocket(), l.ControlSocket(), l.NetSocket()}
}

// VM is the files the sandbox's QEMU uses, named as in every VM directory.
func (l Layout) VM() VMFiles { return VMFiles{Dir: l.Dir} }

// VMFiles names the files of a directory that one QEMU runs in: a
// sandbox's, or a saved state's template VM's.
type VMFiles struct{ Dir string }

// Disk is the VM's qcow2 overlay.
func (v VMFiles) Disk() string { return filepath.Join(v.Dir, DiskName) }

// BaseDisk is the backing file of Disk when it is a clone's (BaseDiskName).
func (v VMFiles) BaseDisk() string { return filepath.Join(v.Dir, BaseDiskName) }

// QMPSocket is QEMU's monitor socket.
func (v VMFiles) QMPSocket() string { return filepath.Join(v.Dir, "qmp.sock") }

// ControlSocket is the host end of the guest agent's virtio-serial port.
func (v VMFiles) ControlSocket() string { return filepath.Join(v.Dir, "ctl.sock") }

// NetSocket is the supervisor's end of the guest's virtio-net device
// (QEMU "-netdev stream" connects to it).
func (v VMFiles) NetSocket() string { return filepath.Join(v.Dir, "net.sock") }

const (
	DiskName = "disk.qcow2"
	// BaseDiskName is a clone's own hard link (or copy) of its saved VM
	// state's disk, which its DiskName names as its backing file by this
	// relative name (qemu resolves it beside the overlay): a disk pair
	// copied to another directory stays whole.
	BaseDiskName = "base.qcow2"
)

// NetSocket is where the supervisor's user-space network listens for QEMU.
func (l Layout) NetSocket() string { return l.VM().NetSocket() }

// Policy is the sandbox's network policy (YAML), written at create and
// rewritten by the policy verbs.
func (l Layout) Policy() string { return l.path("policy.yaml") }

// NetLog is the network decision log, JSON lines (rotated to NetLog()+".1").
func (l Layout) NetLog() string { return l.path("net.jsonl") }

// QMPSocket is QEMU's monitor socket.
func (l Layout) QMPSocket() string { return l.VM().QMPSocket() }

// ControlSocket is the host end of the guest agent's virtio-serial port.
func (l Layout) ControlSocket() string { return l.VM().ControlSocket() }

// ConsoleLog is the guest's serial console (rotated to ConsoleLog()+".1").
func (l Layout) ConsoleLog() string { return l.path("console.log") }

// ExecLog is the exec audit log, JSON lines.
func (l Layout) ExecLog() string { return l.path("exec.jsonl") }

// SupervisorLog is the supervisor's own log (stderr of the detached process).
func (l Layout) SupervisorLog() string { return l.path("supervisor.log") }

// SyncState is the workspace sync's record of what the host and the
// guest's copy last agreed on (internal/wsync).
func (l Layout) SyncState() string { return l.path("sync.state") }

// MountSyncState is that record for the folder added at guest path id
// (a digest of it: paddock mount add).
func (l Layout) MountSyncState(id string) string { return l.path("sync-" + id + ".state") }

// LastExit records how the last run ended, written by the supervisor.
func (l Layout) LastExit() string { return l.path("last-exit.json") }

// Cgroup records the sandbox's host cgroup (where, which limits), written
// by the supervisor while it runs and read by rm, inspect and stats.
func (l Layout) Cgroup() string { return l.path("cgroup.json") }

// Lock serialises lifecycle operations on one sandbox.
func (l Layout) Lock() string { return l.path("lock") }

// RunLock is held (flock) by the supervisor for as long as it runs: a lock
// that cannot be taken is proof of a live supervisor.
func (l Layout) RunLock() string { return l.path("run.lock") }

// DashboardSessions is paddock serve's dashboard logins, by the SHA-256
// of their tokens (never a token), JSON.
func (h Home) DashboardSessions() string { return filepath.Join(string(h), "dashboard-sessions.json") }

// APIKeys is paddock serve's API keys (internal/apikey), JSON.
func (h Home) APIKeys() string { return filepath.Join(string(h), "apikeys.json") }

// KVMProbe remembers, per host boot and kernel, whether a guest kernel
// runs under this host's KVM.
func (h Home) KVMProbe() string { return filepath.Join(h.CacheDir(), "kvm-probe.json") }

// TSC remembers the host's TSC rate, measured once per host boot.
func (h Home) TSC() string { return filepath.Join(h.CacheDir(), "tsc.json") }

// StatesDir holds the saved VM states that sandboxes are restored from.
func (h Home) StatesDir() string { return filepath.Join(h.CacheDir(), "states") }

// SavedState is the layout of the saved state named key (its template's
// name and a digest of what must match between it and its clones).
func (h Home) SavedState(key string) SavedStateLayout {
	return SavedStateLayout{Dir: filepath.Join(h.StatesDir(), key)}
}

// StateMakePattern is the os.MkdirTemp pattern, in StatesDir, of a saved
// state being made; a crashed make leaves one behind.
const StateMakePattern = ".make-*"

// SavedStateLayout names the files of a saved state: a template VM booted
// once, its agent answering, saved to disk (see internal/supervisor).
type SavedStateLayout struct{ Dir string }

// VM is the files the template VM's QEMU used.
func (s SavedStateLayout) VM() VMFiles { return VMFiles{Dir: s.Dir} }

// RAM is the guest's memory, a file the template VM mapped shared.
func (s SavedStateLayout) RAM() string { return filepath.Join(s.Dir, "ram") }

// DevState is the migration stream without RAM (x-ignore-shared).
func (s SavedStateLayout) DevState() string { return filepath.Join(s.Dir, "dev.state") }

// Disk is the template VM's disk overlay, every clone's backing file.
func (s SavedStateLayout) Disk() string { return s.VM().Disk() }

// Clone is an empty overlay backed by BaseDiskName: a clone's disk is a
// copy of it beside its link to Disk.
func (s SavedStateLayout) Clone() string { return filepath.Join(s.Dir, "clone.qcow2") }

// Meta is what the state was made from, written last.
func (s SavedStateLayout) Meta() string { return filepath.Join(s.Dir, "meta.json") }

// ConsoleLog is the template VM's serial console.
func (s SavedStateLayout) ConsoleLog() string { return filepath.Join(s.Dir, "console.log") }

// Lock serialises the making of the state (beside it, so a make can
// replace the directory).
func (s SavedStateLayout) Lock() string { return s.Dir + ".lock" }

// CheckpointsDir holds one directory per checkpoint.
func (h Home) CheckpointsDir() string { return filepath.Join(string(h), "checkpoints") }

// Checkpoint returns the layout of checkpoint name.
func (h Home) Checkpoint(name string) CheckpointLayout {
	return CheckpointLayout{Dir: filepath.Join(h.CheckpointsDir(), name)}
}

// CheckpointLayout names the files of a checkpoint: a running sandbox's
// memory and device state, and a copy of its disk overlay.
type CheckpointLayout struct{ Dir string }

// Meta is what the checkpoint was taken of (checkpoint.json), written last.
func (c CheckpointLayout) Meta() string { return filepath.Join(c.Dir, "checkpoint.json") }

// Memory is the VM's migration stream, RAM included.
func (c CheckpointLayout) Memory() string { return filepath.Join(c.Dir, "memory.state") }

// Disk is the copy of the sandbox's disk overlay; BaseDisk is its backing
// file, if the sandbox had one (the same pair as in a sandbox directory).
func (c CheckpointLayout) Disk() string { return filepath.Join(c.Dir, DiskName) }

// BaseDisk is the checkpoint's link to the disk its Disk is backed by.
func (c CheckpointLayout) BaseDisk() string { return filepath.Join(c.Dir, BaseDiskName) }

// Machine records the virtual machine the state was saved from (QEMU
// version and CPU model); a fork needs the same.
func (c CheckpointLayout) Machine() string { return filepath.Join(c.Dir, "machine.json") }

// SyncState is the sandbox's workspace sync record as of the checkpoint: a
// fork on the same workspace starts its sync from it.
func (c CheckpointLayout) SyncState() string { return filepath.Join(c.Dir, "sync.state") }

// Templates and the build cache (internal/template):
//
//	$PADDOCK_HOME/templates/NAME/          a built template (TemplateLayout)
//	    template.json                      metadata, written last
//	    recipe.yaml                        the recipe it was built from
//	    vmlinux                            uncompressed guest kernel (PVH)
//	    modules/                           lib/modules/KVER of the kernel
//	    root.ext4                          sparse ext4 root filesystem
//	$PADDOCK_HOME/templates/.NAME.lock     flock serialising builds of NAME
//	$PADDOCK_HOME/templates/.NAME.build-*  a build in progress (or crashed)
//	$PADDOCK_HOME/templates/.NAME.old-*    a replaced template being removed
//	$PADDOCK_HOME/cache/debs/PKG_VER.deb   downloaded packages
//	$PADDOCK_HOME/cache/kernels/PKG_VER/   unpacked kernel + vmlinux + modules.dep
//	$PADDOCK_HOME/cache/debootstrap/H.tgz  debootstrap --make-tarball output
//	$PADDOCK_HOME/cache/apt-archives/H/    .debs apt-get installed into it
//	$PADDOCK_HOME/cache/initramfs/H.cpio   generated initramfs archives

// Template returns the layout of template name.
func (h Home) Template(name string) TemplateLayout {
	return TemplateLayout{Dir: filepath.Join(h.TemplatesDir(), name)}
}

// TemplateLock is the flock that serialises builds of template name.
func (h Home) TemplateLock(name string) string {
	return filepath.Join(h.TemplatesDir(), "."+name+".lock")
}

// TemplateBuildPattern and TemplateOldPattern are os.MkdirTemp patterns in
// TemplatesDir: a build of name in progress, and a replaced template of
// that name being removed.
func TemplateBuildPattern(name string) string { return "." + name + ".build-*" }
func TemplateOldPattern(name string) string   { return "." + name + ".old-*" }

// DebsDir holds downloaded packages; DownloadPattern is the os.MkdirTemp
// pattern of a download in progress there.
func (h Home) DebsDir() string { return filepath.Join(h.CacheDir(), "debs") }

const DownloadPattern = ".download-*"

// Deb is a downloaded package, keyed by name and version.
func (h Home) Deb(pkg, version string) string {
	return filepath.Join(h.DebsDir(), pkg+"_"+fileSafe(version)+".deb")
}

// KernelsDir holds unpacked kernel packages.
func (h Home) KernelsDir() string { return filepath.Join(h.CacheDir(), "kernels") }

// Kernel is an unpacked kernel package, keyed by name and version.
func (h Home) Kernel(pkg, version string) KernelLayout {
	return KernelLayout{Dir: filepath.Join(h.KernelsDir(), pkg+"_"+fileSafe(version))}
}

// DebootstrapDir holds debootstrap --make-tarball results.
func (h Home) DebootstrapDir() string { return filepath.Join(h.CacheDir(), "debootstrap") }

// DebootstrapTarball is a --make-tarball result keyed by a hash of what
// went into it.
func (h Home) DebootstrapTarball(key string) string {
	return filepath.Join(h.DebootstrapDir(), key+".tgz")
}

// AptArchives keeps the .deb files apt downloaded into a debootstrap
// rootfs, keyed like its tarball.
func (h Home) AptArchives(key string) string {
	return filepath.Join(h.CacheDir(), "apt-archives", key)
}

// InitramfsPath is where an initramfs archive is cached within a cache
// dir; InitramfsMemo records which archive an agent file (path, size,
// mtime) and template build map to.
func InitramfsPath(cacheDir, key string) string {
	return filepath.Join(cacheDir, "initramfs", key+".cpio")
}

func InitramfsMemo(cacheDir, key string) string {
	return filepath.Join(cacheDir, "initramfs", key+".memo")
}

// In the initramfs folder: the glob of its archives and of its memos, and
// the os.CreateTemp pattern of an archive being written.
const (
	InitramfsArchiveGlob = "*.cpio"
	InitramfsMemoGlob    = "*.memo"
	InitramfsTempPattern = ".initramfs-*"
)

// TemplateLayout names the files of one template directory.
type TemplateLayout struct{ Dir string }

// Meta is template.json.
func (l TemplateLayout) Meta() string { return filepath.Join(l.Dir, "template.json") }

// Recipe is the recipe the template was built from.
func (l TemplateLayout) Recipe() string { return filepath.Join(l.Dir, "recipe.yaml") }

// Kernel is the uncompressed vmlinux.
func (l TemplateLayout) Kernel() string { return filepath.Join(l.Dir, "vmlinux") }

// Modules is the kernel's modules tree (what /lib/modules/KVER holds).
func (l TemplateLayout) Modules() string { return filepath.Join(l.Dir, "modules") }

// Rootfs is the ext4 root filesystem image.
func (l TemplateLayout) Rootfs() string { return filepath.Join(l.Dir, "root.ext4") }

// Staging is where a root filesystem tree is assembled during a build
// (inside the build's temporary directory; removed before it completes).
func (l TemplateLayout) Staging() string { return filepath.Join(l.Dir, "staging") }

// DebootstrapWorkPattern is the os.MkdirTemp pattern, in a build's
// temporary directory, of the tree debootstrap makes its tarball in.
const DebootstrapWorkPattern = "debootstrap-work-*"

// KernelLayout is the unpacked kernel package (dpkg -x) plus what the
// builder adds: vmlinux and modules.dep.
type KernelLayout struct{ Dir string }

func (k KernelLayout) Vmlinux() string     { return filepath.Join(k.Dir, "vmlinux") }
func (k KernelLayout) BootDir() string     { return filepath.Join(k.Dir, "boot") }
func (k KernelLayout) ModulesRoot() string { return filepath.Join(k.Dir, "lib", "modules") }
func (k KernelLayout) Modules(kver string) string {
	return filepath.Join(k.ModulesRoot(), kver)
}

// Files inside a modules tree.
const (
	ModulesDepFile     = "modules.dep"
	ModulesBuiltinFile = "modules.builtin"
)

// Paths inside the initramfs.
const (
	InitramfsInit       = "init"
	InitramfsModuleList = "etc/paddock/modules"
	InitramfsModulesDir = "lib/modules" // + /KVER
)

// fileSafe makes a Debian version usable in a file name (epochs have ':').
func fileSafe(v string) string { return strings.ReplaceAll(v, ":", "%3a") }
