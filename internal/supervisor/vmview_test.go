package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestIdmappedTree: through the tree, files of the mapped owner appear as
// QEMU's uid, and a file made there as QEMU's uid is the owner's on disk.
func TestIdmappedTree(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("idmapped mounts need root: run the tests as root (make test does)")
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "mine"), []byte("x"), 0o600)
	os.Chown(filepath.Join(dir, "mine"), 1234, 1234)
	os.Chown(dir, 1234, 1234)
	const qemuID = vmUIDBase + 7
	ns, err := userNamespace(idMap{uid: 1234, gid: 1234, toUID: qemuID, toGID: qemuID})
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	tree, err := idmappedTree(dir, ns, false)
	if err != nil {
		t.Fatal(err)
	}
	defer tree.Close()
	path := fmt.Sprintf("/proc/self/fd/%d", tree.Fd())
	var st syscall.Stat_t
	if err := syscall.Stat(path+"/mine", &st); err != nil || st.Uid != qemuID {
		t.Fatalf("through the tree the owner is %d (%v), want %d", st.Uid, err, qemuID)
	}
	// Make a file there as QEMU would: with its ids (on this thread).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	unix.Setfsgid(int(qemuID))
	unix.Setfsuid(int(qemuID))
	err = os.WriteFile(path+"/made", []byte("y"), 0o600)
	unix.Setfsuid(0)
	unix.Setfsgid(0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat(filepath.Join(dir, "made"), &st); err != nil || st.Uid != 1234 {
		t.Fatalf("on disk the new file's owner is %d (%v), want 1234", st.Uid, err)
	}
}

// The paused child that holds a namespace is gone once it is open.
func TestUserNamespaceLeavesNoChild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("run as root (make test does)")
	}
	ns, err := userNamespace(idMap{uid: 0, gid: 0, toUID: vmUIDBase + 9, toGID: vmUIDBase + 9})
	if err != nil {
		t.Fatal(err)
	}
	ns.Close()
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), os.Getpid()))
	entries, _ := os.ReadDir("/proc/self/task")
	for _, e := range entries {
		c, _ := os.ReadFile(fmt.Sprintf("/proc/self/task/%s/children", e.Name()))
		b = append(b, c...)
	}
	if strings.TrimSpace(string(b)) != "" {
		t.Fatalf("children left: %q", b)
	}
}
