package guest

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// The workspace is shared with the uid and gid of its owner on the host,
// and the guest's agent user gets that uid, so the agent can write it and
// what it writes belongs to the owner. A workspace owned by root (a root
// user's project, a CI checkout) cannot be given to agent that way: agent
// keeps uid 1000 and, for writing, gets CAP_DAC_OVERRIDE and CAP_FOWNER as
// ambient capabilities. That gives agent nothing it lacks: it has
// passwordless sudo in its own VM. (Its new files are owned by uid 1000 on
// the host.)

// shareCaps returns the ambient capabilities an exec as uid gets.
func (a *Agent) shareCaps(uid uint32) []uintptr {
	a.mu.Lock()
	defer a.mu.Unlock()
	if uid == 0 || !a.rootShare {
		return nil
	}
	return []uintptr{unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER}
}

func ownedByRoot(path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && st.Uid == 0
}
