package guest

import (
	"encoding/binary"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// System is the machine-wide state the agent changes: kernel identity,
// clock, RNG, mounts and power. HostSystem is the real one.
type System interface {
	SetHostname(name string) error
	SetClock(t time.Time) error
	AddEntropy(b []byte) error
	BindFile(src, dst string) error
	Sync()
	PowerOff()
}

// HostSystem makes the system calls. Most need root (CAP_SYS_ADMIN). It
// has no PowerOff: GuestSystem adds the PID 1 one, so nothing run on a
// development host can power it off.
type HostSystem struct{}

func (HostSystem) SetHostname(name string) error {
	if err := unix.Sethostname([]byte(name)); err != nil {
		return fmt.Errorf("set hostname %q: %w", name, err)
	}
	return nil
}

func (HostSystem) SetClock(t time.Time) error {
	ts := unix.NsecToTimespec(t.UnixNano())
	if err := unix.ClockSettime(unix.CLOCK_REALTIME, &ts); err != nil {
		return fmt.Errorf("set clock: %w", err)
	}
	return nil
}

// AddEntropy mixes b into the kernel's input pool with RNDADDENTROPY,
// crediting every bit, then forces a reseed of the CRNG (RNDRESEEDCRNG).
// Without the reseed a 6.1 kernel keeps serving /dev/urandom from the CRNG
// state it had when the VM was saved until its next periodic reseed (up to
// a minute later), so two clones of one saved VM would agree.
func (HostSystem) AddEntropy(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("add entropy: %w", err)
	}
	defer f.Close()
	// struct rand_pool_info { int entropy_count; int buf_size; __u32 buf[]; }
	info := make([]byte, 8+len(b)+3)
	binary.NativeEndian.PutUint32(info[0:], uint32(8*len(b)))
	binary.NativeEndian.PutUint32(info[4:], uint32(len(b)))
	copy(info[8:], b)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&info[0]))); errno != 0 {
		return fmt.Errorf("add entropy: RNDADDENTROPY: %w", errno)
	}
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDRESEEDCRNG, 0); errno != 0 {
		return fmt.Errorf("add entropy: RNDRESEEDCRNG: %w", errno)
	}
	return nil
}

// BindFile bind-mounts the file src over the file dst.
func (HostSystem) BindFile(src, dst string) error {
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dst, err)
	}
	return nil
}

func (HostSystem) Sync() { unix.Sync() }

// NoopSystem changes nothing; it logs. The agent uses it when it runs
// outside a VM for development (paddock-agent -listen), where setting the
// hostname or the clock would change the developer's machine.
type NoopSystem struct{ Log func(msg string, args ...any) }

func (s NoopSystem) log(msg string, args ...any) {
	if s.Log != nil {
		s.Log(msg, args...)
	}
}
func (s NoopSystem) SetHostname(name string) error {
	s.log("would set hostname", "name", name)
	return nil
}
func (s NoopSystem) SetClock(t time.Time) error { s.log("would set clock", "time", t); return nil }
func (s NoopSystem) AddEntropy(b []byte) error {
	s.log("would add entropy", "bytes", len(b))
	return nil
}
func (s NoopSystem) BindFile(src, dst string) error {
	s.log("would bind", "src", src, "dst", dst)
	return nil
}
func (s NoopSystem) Sync()     {}
func (s NoopSystem) PowerOff() { s.log("would power off"); os.Exit(0) }
