package store

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// PidFile identifies a process across time: a pid alone can be reused after
// the process exits or the host reboots, so the record also carries the
// host's boot id and the process's start time (field 22 of /proc/PID/stat).
type PidFile struct {
	Pid       int    `json:"pid"`
	BootID    string `json:"boot_id"`
	StartTime uint64 `json:"start_time"`
}

var (
	bootIDOnce sync.Once
	bootID     string
)

// BootID is this host's current boot id.
func BootID() string {
	bootIDOnce.Do(func() {
		b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
		if err == nil {
			bootID = strings.TrimSpace(string(b))
		}
	})
	return bootID
}

// ProcessStartTime returns the start time of pid in clock ticks since boot.
func ProcessStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may contain spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[i+1:])
	// fields[0] is field 3 (state); start time is field 22.
	if len(fields) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(fields[19], 10, 64)
}

// ProcessState returns the one-letter state of pid ("Z" for a zombie).
func ProcessState(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return ""
	}
	return s[i+2 : i+3]
}

// PidFileFor describes the running process pid.
func PidFileFor(pid int) (PidFile, error) {
	st, err := ProcessStartTime(pid)
	if err != nil {
		return PidFile{}, err
	}
	return PidFile{Pid: pid, BootID: BootID(), StartTime: st}, nil
}

// WritePidFile records pid at path.
func WritePidFile(path string, pid int) error {
	pf, err := PidFileFor(pid)
	if err != nil {
		return err
	}
	return WriteJSON(path, pf)
}

// ReadPidFile reads a pid file; a missing file gives an error for which
// errors.Is(err, os.ErrNotExist) holds.
func ReadPidFile(path string) (PidFile, error) {
	var pf PidFile
	err := ReadJSON(path, &pf)
	return pf, err
}

// Alive reports whether the process the record names is still running
// (a zombie counts as gone).
func (p PidFile) Alive() bool {
	if p.Pid <= 0 || p.BootID != BootID() {
		return false
	}
	st, err := ProcessStartTime(p.Pid)
	if err != nil || st != p.StartTime {
		return false
	}
	return ProcessState(p.Pid) != "Z"
}

// Kill sends sig to the recorded process if it is still the same process.
func (p PidFile) Kill(sig syscall.Signal) error {
	if !p.Alive() {
		return os.ErrProcessDone
	}
	err := syscall.Kill(p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}
