// Package vm is what the supervisor needs of a running virtual machine,
// as two small interfaces: its process (Process) and its monitor
// (Monitor). internal/vm/qemu implements them with QEMU and QMP;
// internal/vm/vmtest fakes them, so that the supervisor's boot, restore,
// checkpoint and exec paths are tested without a VM.
package vm

import (
	"context"
	"encoding/json"
)

// Process is a running VM's process.
type Process interface {
	// Pid is the process id.
	Pid() int
	// Done is closed when the process has exited.
	Done() <-chan struct{}
	// Err is how the process exited; valid once Done is closed.
	Err() error
	// Kill ends the process at once; Done follows.
	Kill()
}

// Monitor is the VM's control channel: the QMP commands the supervisor
// sends, and the save and restore of its state.
type Monitor interface {
	// Execute runs a command ("stop", "cont", "quit",
	// "system_powerdown") and returns its result.
	Execute(command string, args map[string]any) (json.RawMessage, error)
	// Status is the VM's run state ("running", "paused", "inmigrate", ...).
	Status() (string, error)
	// SetIgnoreShared says whether a save leaves out (and a restore
	// expects no) RAM mapped from a shared file.
	SetIgnoreShared(on bool) error
	// Save stops the VM and writes its state to path.
	Save(ctx context.Context, path string) error
	// Restore loads the state in path into a VM started to receive one;
	// the VM stays paused until "cont".
	Restore(ctx context.Context, path string) error
	// GrowDisk makes the block node named node size bytes long, live.
	GrowDisk(node string, size int64) error
	// Close disconnects from the monitor.
	Close() error
}
