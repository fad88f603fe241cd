package guest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PasswdEntry is one line of /etc/passwd.
type PasswdEntry struct {
	Name  string
	UID   uint32
	GID   uint32
	Gecos string
	Home  string
	Shell string
}

// GroupEntry is one line of /etc/group.
type GroupEntry struct {
	Name    string
	GID     uint32
	Members []string
}

// ParsePasswd parses /etc/passwd content; malformed lines are skipped.
func ParsePasswd(b []byte) []PasswdEntry {
	var out []PasswdEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 7 {
			continue
		}
		uid, err1 := strconv.ParseUint(f[2], 10, 32)
		gid, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, PasswdEntry{Name: f[0], UID: uint32(uid), GID: uint32(gid), Gecos: f[4], Home: f[5], Shell: f[6]})
	}
	return out
}

// ParseGroup parses /etc/group content; malformed lines are skipped.
func ParseGroup(b []byte) []GroupEntry {
	var out []GroupEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) != 4 {
			continue
		}
		gid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		g := GroupEntry{Name: f[0], GID: uint32(gid)}
		for _, m := range strings.Split(f[3], ",") {
			if m != "" {
				g.Members = append(g.Members, m)
			}
		}
		out = append(out, g)
	}
	return out
}

// EnsurePasswd returns passwd content with e present: a line for e.Name is
// replaced (uid, gid, home and shell set; gecos kept when e has none),
// otherwise appended. Every other line is kept byte for byte. changed
// reports whether the content differs.
func EnsurePasswd(b []byte, e PasswdEntry) (out []byte, changed bool) {
	return ensureLine(b, e.Name, func(old []string) string {
		gecos := e.Gecos
		if gecos == "" && len(old) == 7 {
			gecos = old[4]
		}
		pw := "x"
		if len(old) == 7 {
			pw = old[1]
		}
		return strings.Join([]string{e.Name, pw, strconv.FormatUint(uint64(e.UID), 10), strconv.FormatUint(uint64(e.GID), 10), gecos, e.Home, e.Shell}, ":")
	})
}

// EnsureGroup returns group content with a group called name with gid
// present: its gid is set, its members kept; or it is appended.
func EnsureGroup(b []byte, name string, gid uint32) (out []byte, changed bool) {
	return ensureLine(b, name, func(old []string) string {
		members := ""
		pw := "x"
		if len(old) == 4 {
			pw, members = old[1], old[3]
		}
		return strings.Join([]string{name, pw, strconv.FormatUint(uint64(gid), 10), members}, ":")
	})
}

// EnsureShadow gives name an /etc/shadow line if it has none: no
// password ("!", as useradd leaves it), never expiring. Without one, PAM
// calls the account locked and sudo refuses even a NOPASSWD rule.
func EnsureShadow(b []byte, name string, now time.Time) (out []byte, changed bool) {
	return ensureLine(b, name, func(old []string) string {
		if old != nil {
			return strings.Join(old, ":")
		}
		days := strconv.FormatInt(now.Unix()/86400, 10)
		return name + ":!:" + days + ":0:99999:7:::"
	})
}

// ensureLine replaces the first line whose first field is name with
// render(its fields), or appends render(nil).
func ensureLine(b []byte, name string, render func(old []string) string) ([]byte, bool) {
	text := string(b)
	lines := strings.SplitAfter(text, "\n")
	found := false
	for i, l := range lines {
		body := strings.TrimSuffix(l, "\n")
		f := strings.Split(body, ":")
		if f[0] != name || body == "" {
			continue
		}
		nl := render(f)
		if strings.HasSuffix(l, "\n") {
			nl += "\n"
		}
		lines[i] = nl
		found = true
		break
	}
	out := strings.Join(lines, "")
	if !found {
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		out += render(nil) + "\n"
	}
	return []byte(out), out != text
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, renamed over path; a file that already holds data is left
// alone. There is no fsync: every file written this way is rewritten by the
// next Configure, and an fsync costs tens of milliseconds under TCG, on the
// path of every sandbox start.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if st, err := os.Stat(path); err == nil && st.Mode().Perm() == perm {
			return nil
		}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	var st syscall.Stat_t
	if syscall.Stat(path, &st) == nil {
		f.Chown(int(st.Uid), int(st.Gid)) // /etc/shadow is root:shadow
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// writeSmallFile rewrites a small identity file in place: cheaper than a
// temporary file and a rename on the path of every sandbox start. It
// writes over the old content and then cuts the file to length, never
// truncating to zero first: ext4 flushes a file replaced by rename or by
// truncate-to-zero when it is closed (auto_da_alloc), a disk write on the
// path of every create. Configure rewrites these files on every boot, so
// a torn write cannot outlive the next one.
func writeSmallFile(path string, data []byte, perm os.FileMode) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
