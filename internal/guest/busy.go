package guest

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// BusyProcess is a process that holds a file under a share.
type BusyProcess struct {
	PID  int
	Comm string
	Path string // what it holds: its cwd, root, an open file or a mapping
}

func (b BusyProcess) String() string { return fmt.Sprintf("pid %d (%s)", b.PID, b.Comm) }

// FindBusy scans procDir (/proc) for processes other than self whose cwd,
// root, open files or memory mappings lie under dir. Processes that vanish
// or cannot be read mid-scan are skipped.
func FindBusy(procDir, dir string, self int) []BusyProcess {
	dir = filepath.Clean(dir)
	under := func(p string) bool {
		p = strings.TrimSuffix(p, " (deleted)")
		return p == dir || strings.HasPrefix(p, dir+"/")
	}
	entries, err := os.ReadDir(procDir)
	if err != nil {
		return nil
	}
	var out []BusyProcess
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		base := filepath.Join(procDir, e.Name())
		if p := heldPath(base, under); p != "" {
			comm, _ := os.ReadFile(filepath.Join(base, "comm"))
			out = append(out, BusyProcess{PID: pid, Comm: strings.TrimSpace(string(comm)), Path: p})
		}
	}
	return out
}

// heldPath returns the first path under the share that the process at base
// (/proc/PID) holds, or "".
func heldPath(base string, under func(string) bool) string {
	for _, l := range []string{"cwd", "root"} {
		if p, err := os.Readlink(filepath.Join(base, l)); err == nil && under(p) {
			return p
		}
	}
	fds, _ := os.ReadDir(filepath.Join(base, "fd"))
	for _, fd := range fds {
		if p, err := os.Readlink(filepath.Join(base, "fd", fd.Name())); err == nil && under(p) {
			return p
		}
	}
	f, err := os.Open(filepath.Join(base, "maps"))
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode path
		fields := strings.SplitN(sc.Text(), " ", 6)
		if len(fields) == 6 {
			if p := strings.TrimSpace(fields[5]); p != "" && under(p) {
				return p
			}
		}
	}
	return ""
}
