package qemu

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/digitalocean/go-qemu/qmp"
	"golang.org/x/sys/unix"

	"github.com/paddock-dev/paddock/internal/vm"
)

// Binary is the QEMU system emulator paddock runs.
const Binary = "qemu-system-x86_64"

// Process is a running QEMU. It dies with the process that started it
// (PR_SET_PDEATHSIG), so a killed supervisor never leaves QEMU behind.
type Process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
}

// Start runs QEMU with cfg in dir, confined by c, its stdout (the serial
// console) to console and its stderr to stderr.
func Start(cfg Config, c Confinement, dir string, console, stderr io.Writer) (*Process, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	bin, err := exec.LookPath(Binary)
	if err != nil {
		return nil, fmt.Errorf("%s not found: install it with \"apt-get install qemu-system-x86\" (or run make deps)", Binary)
	}
	if cfg.NoHugePages {
		// Inherited by the child and kept across exec: QEMU madvises its
		// TCG code buffer for huge pages, and each 2 MiB page it touches
		// would then count whole.
		if err := unix.Prctl(unix.PR_SET_THP_DISABLE, 1, 0, 0, 0); err != nil {
			return nil, fmt.Errorf("disable transparent huge pages: %w", err)
		}
	}
	cmd := exec.Command(bin, cfg.Args()...)
	cmd.Env = mallocEnv(os.Environ())
	cmd.Dir = dir
	cmd.Stdout = console
	cmd.Stderr = stderr
	cmd.ExtraFiles = c.Files
	cmd.SysProcAttr = c.sysProcAttr()
	p := &Process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	// PDEATHSIG fires when the thread that forked the child exits, so the
	// fork happens on a thread that stays locked for QEMU's whole life.
	// The file filter is loaded on that thread only; it is never unlocked,
	// so it ends with QEMU's wait and nothing else runs under the filter.
	go func() {
		runtime.LockOSThread()
		if err := loadFileFilter(); err != nil {
			started <- err
			return
		}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start qemu: %w", err)
	}
	return p, nil
}

// mallocEnv is QEMU's environment: env with glibc's allocator set to one
// arena and fixed mmap and trim thresholds, unless env sets
// MALLOC_ARENA_MAX itself, and with GLib's slice allocator turned into
// malloc, unless env sets G_SLICE.
//
// By default each QEMU thread that allocates (vCPUs, block and 9p workers)
// gets an arena of its own, and buffers freed there, such as those of a
// guest's first disk writes, stay in it; and after a large buffer is freed
// glibc raises both thresholds, so later frees are not returned either:
// 0.3-0.6 MiB per idle QEMU. GLib 2.74's GSlice (Debian 12) hands out the
// nodes of TCG's region tree, one per translated block, from 512-byte
// slabs of nine; from malloc each is a 48-byte chunk: 0.4-0.6 MiB less per
// idle QEMU, for a create ~5 ms slower and a busy guest ~3.5% slower
// (docs/BENCHMARKS.md). GLib 2.76 made GSlice a wrapper around malloc.
func mallocEnv(env []string) []string {
	has := func(key string) bool {
		return slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, key+"=") })
	}
	if !has("MALLOC_ARENA_MAX") {
		env = append(env, "MALLOC_ARENA_MAX=1", "MALLOC_MMAP_THRESHOLD_=131072", "MALLOC_TRIM_THRESHOLD_=131072")
	}
	if !has("G_SLICE") {
		env = append(env, "G_SLICE=always-malloc")
	}
	return env
}

// Pid is QEMU's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when QEMU has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is how QEMU exited; valid after Done is closed.
func (p *Process) Err() error { return p.err }

// Kill kills QEMU at once.
func (p *Process) Kill() { _ = p.cmd.Process.Kill() }

// Monitor is a QMP connection.
type Monitor struct{ m *qmp.SocketMonitor }

// DialMonitor connects to QEMU's QMP socket, retrying until ctx ends.
func DialMonitor(ctx context.Context, path string) (*Monitor, error) {
	for {
		m, err := qmp.NewSocketMonitor("unix", path, 2*time.Second)
		if err == nil {
			if err = m.Connect(); err == nil {
				return &Monitor{m: m}, nil
			}
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to qemu monitor %s: %w", path, err)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// Execute runs a QMP command and returns its "return" value.
func (m *Monitor) Execute(command string, args map[string]any) (json.RawMessage, error) {
	return m.execute(command, args, nil)
}

// execute runs a QMP command, passing file along with it when not nil
// (SCM_RIGHTS, as getfd expects).
func (m *Monitor) execute(command string, args map[string]any, file *os.File) (json.RawMessage, error) {
	req := map[string]any{"execute": command}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	var raw []byte
	if file != nil {
		raw, err = m.m.RunWithFile(b, file)
	} else {
		raw, err = m.m.Run(b)
	}
	if err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	var resp struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Class string `json:"class"`
			Desc  string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal(raw, &resp); err != nil {
		return nil, fmt.Errorf("qmp %s: %w", command, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("qmp %s: %s: %s", command, resp.Error.Class, resp.Error.Desc)
	}
	return resp.Return, nil
}

// Status returns the VM run state ("running", "paused", ...).
func (m *Monitor) Status() (string, error) {
	raw, err := m.Execute("query-status", nil)
	if err != nil {
		return "", err
	}
	var st struct {
		Status string `json:"status"`
	}
	err = json.Unmarshal(raw, &st)
	return st.Status, err
}

// Close disconnects from QMP.
func (m *Monitor) Close() error { return m.m.Disconnect() }

// Process and Monitor are what the supervisor drives (internal/vm).
var (
	_ vm.Process = (*Process)(nil)
	_ vm.Monitor = (*Monitor)(nil)
)
