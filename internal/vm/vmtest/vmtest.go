// Package vmtest fakes a VM for tests of the code that drives one
// (internal/vm): a Process that exits when told or killed, and a Monitor
// that records the commands it is sent, keeps a run state, writes and
// checks fake saved states, and fails a command on request.
package vmtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/paddock-dev/paddock/internal/vm"
)

var (
	_ vm.Process = (*Process)(nil)
	_ vm.Monitor = (*Monitor)(nil)
)

// Process is a fake VM process. It runs until Exit or Kill.
type Process struct {
	pid  int
	done chan struct{}

	mu     sync.Mutex
	once   sync.Once
	err    error // set before done is closed
	killed bool
}

// NewProcess returns a running fake process with process id pid.
func NewProcess(pid int) *Process { return &Process{pid: pid, done: make(chan struct{})} }

func (p *Process) Pid() int              { return p.pid }
func (p *Process) Done() <-chan struct{} { return p.done }

func (p *Process) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Exit ends the process by itself, as a crashed or powered-off VM's
// would, with err as its exit.
func (p *Process) Exit(err error) {
	p.once.Do(func() {
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	})
}

// Kill ends the process ("signal: killed").
func (p *Process) Kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.Exit(errors.New("signal: killed"))
}

// Killed reports whether Kill was called.
func (p *Process) Killed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.killed
}

// stateHeader begins every state a fake Monitor saves; Restore refuses a
// file without it, as QEMU refuses a corrupt stream.
const stateHeader = "vmtest saved state\n"

// WriteState writes a state that a fake Monitor restores.
func WriteState(path string) error { return os.WriteFile(path, []byte(stateHeader), 0o600) }

// Monitor is a fake monitor of Proc. Its operations are named as the QMP
// commands QEMU's would send: Execute by its command, SetIgnoreShared
// "migrate-set-capabilities", Save "migrate", Restore "migrate-incoming",
// GrowDisk "block_resize", Status "query-status".
type Monitor struct {
	Proc *Process // exits on "quit" and "system_powerdown"; may be nil

	mu       sync.Mutex
	status   string
	diskSize int64
	calls    []string
	fail     map[string]error
	closed   bool
}

// NewMonitor returns a monitor of proc whose VM is in run state status
// ("running", or "inmigrate" for one started to receive a state).
func NewMonitor(proc *Process, status string) *Monitor {
	return &Monitor{Proc: proc, status: status, fail: map[string]error{}}
}

// FailOn makes the operation named op (see Monitor) fail with err from now
// on; a nil err makes it succeed again.
func (m *Monitor) FailOn(op string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err == nil {
		delete(m.fail, op)
		return
	}
	m.fail[op] = err
}

// Calls is every operation so far, in order.
func (m *Monitor) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.calls...)
}

// Closed reports whether Close was called.
func (m *Monitor) Closed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// callLocked records op and returns its failure, if one was asked for.
func (m *Monitor) callLocked(op string) error {
	m.calls = append(m.calls, op)
	if m.closed {
		return fmt.Errorf("qmp %s: monitor closed", op)
	}
	if err := m.fail[op]; err != nil {
		return fmt.Errorf("qmp %s: %w", op, err)
	}
	return nil
}

func (m *Monitor) Execute(command string, args map[string]any) (json.RawMessage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.callLocked(command); err != nil {
		return nil, err
	}
	switch command {
	case "stop":
		m.status = "paused"
	case "cont":
		m.status = "running"
	case "quit", "system_powerdown":
		if m.Proc != nil {
			go m.Proc.Exit(nil)
		}
	}
	return json.RawMessage("{}"), nil
}

func (m *Monitor) Status() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.callLocked("query-status"); err != nil {
		return "", err
	}
	return m.status, nil
}

func (m *Monitor) SetIgnoreShared(on bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.callLocked("migrate-set-capabilities")
}

// Save stops the VM and writes a state to path. When "migrate" is to fail
// it leaves part of a state behind, as a save cut short does.
func (m *Monitor) Save(ctx context.Context, path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, "stop")
	m.status = "paused"
	if err := m.callLocked("migrate"); err != nil {
		os.WriteFile(path, []byte(stateHeader[:4]), 0o600)
		return err
	}
	return WriteState(path)
}

// Restore loads the state in path: one that a fake Monitor saved (or
// WriteState wrote); anything else is refused as corrupt.
func (m *Monitor) Restore(ctx context.Context, path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.callLocked("migrate-incoming"); err != nil {
		return err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(b, []byte(stateHeader)) {
		return errors.New("migration failed: load of migration failed: Invalid argument")
	}
	m.status = "paused"
	return nil
}

func (m *Monitor) GrowDisk(node string, size int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.callLocked("block_resize"); err != nil {
		return err
	}
	if size < m.diskSize {
		return fmt.Errorf("disk %q is %d bytes, more than the %d asked for: a disk only grows", node, m.diskSize, size)
	}
	m.diskSize = size
	return nil
}

func (m *Monitor) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	return nil
}
