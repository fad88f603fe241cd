package supervisor

import (
	"context"
	"io"

	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/vm"
	"github.com/paddock-dev/paddock/internal/vm/qemu"
)

// backend makes a sandbox's VM and reaches it: its disk, its process, its
// monitor and the link to its agent. qemuBackend is QEMU; the tests'
// fakeBackend (backend_test.go) starts no VM and answers with
// internal/vm/vmtest's fakes and a scripted agent.
type backend interface {
	// createDisk makes a qcow2 overlay at path on base, size bytes long
	// (0: base's size).
	createDisk(ctx context.Context, base, baseFormat, path string, size int64) error
	// start starts the VM whose directory is vm (startVM).
	start(key string, vm store.VMFiles, sp stateSpec, ram string, adjust func(*qemu.Config), console, stderr io.Writer) (vm.Process, error)
	// dialMonitor connects to the VM's monitor socket at path, retrying
	// until ctx ends.
	dialMonitor(ctx context.Context, path string) (vm.Monitor, error)
	// dialAgent returns the link to the agent on the control socket at
	// path; it connects on first use.
	dialAgent(path string) agentLink
}

// qemuBackend runs QEMU.
type qemuBackend struct{}

func (qemuBackend) createDisk(ctx context.Context, base, baseFormat, path string, size int64) error {
	return createOverlay(ctx, base, baseFormat, path, size)
}

func (qemuBackend) start(key string, files store.VMFiles, sp stateSpec, ram string, adjust func(*qemu.Config), console, stderr io.Writer) (vm.Process, error) {
	p, err := startVM(key, files, sp, ram, adjust, console, stderr)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
}

func (qemuBackend) dialMonitor(ctx context.Context, path string) (vm.Monitor, error) {
	m, err := qemu.DialMonitor(ctx, path)
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (qemuBackend) dialAgent(path string) agentLink { return newGuestLink(path) }
