package guest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// Shutdown answers, then powers the VM off (see PowerOff). The power-off
// starts a moment after the reply so that it reaches the host.
func (a *Agent) Shutdown(context.Context, *agentv1.ShutdownRequest) (*agentv1.ShutdownResponse, error) {
	a.Log.Info("shutdown requested")
	go func() {
		time.Sleep(100 * time.Millisecond)
		a.System.PowerOff()
	}()
	return &agentv1.ShutdownResponse{}, nil
}

// GuestSystem is HostSystem with the PID 1 power-off: SIGTERM every other
// process, wait up to 2 s, SIGKILL the rest, sync, unmount what can be
// unmounted, remount / read-only, power off.
type GuestSystem struct {
	HostSystem
}

func (GuestSystem) PowerOff() { powerOff() }

func powerOff() {
	unix.Kill(-1, unix.SIGTERM) // every process but PID 1
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && userProcesses() > 0 {
		time.Sleep(20 * time.Millisecond)
	}
	unix.Kill(-1, unix.SIGKILL)
	unix.Sync()
	unmountAll()
	unix.Mount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY, "")
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
}

// userProcesses counts processes other than this one that are not kernel
// threads (kthreadd, PID 2, and its children).
func userProcesses() int {
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || pid == 2 {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
		s := string(stat)
		rest := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(rest) >= 2 && (rest[1] == "2" || rest[0] == "Z") {
			continue
		}
		n++
	}
	return n
}

// unmountAll unmounts everything but /, /proc, /sys and /dev, deepest first,
// best effort.
func unmountAll() {
	ms, err := mounts()
	if err != nil {
		return
	}
	slices.Reverse(ms)
	for _, m := range ms {
		switch m.Target {
		case "/", "/proc", "/sys", "/dev":
			continue
		}
		unix.Unmount(m.Target, unix.MNT_DETACH)
	}
}
