package guest

import (
	"errors"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
)

// Reaper collects the exit status of every child of this process. As PID 1
// the agent inherits all orphans and must reap them, but the status of a
// process an Exec waits for must reach that Exec and nobody else.
//
// Invariants:
//   - Only the reaper's loop calls wait4, always while holding mu; nothing
//     else waits for children (no cmd.Wait, no Process.Wait).
//   - Start forks while holding mu and registers the pid before releasing
//     it, so the loop cannot reap a registered child before its waiter is
//     in place. (os.StartProcess itself reaps a child whose exec failed,
//     also while we hold mu, so that status never reaches the loop.)
//   - A status of an unregistered pid (an orphan) is dropped.
type Reaper struct {
	mu      sync.Mutex
	waiters map[int]chan unix.WaitStatus // guarded by mu
	sigs    chan os.Signal
	stop    chan struct{}
	done    chan struct{}
}

// NewReaper starts the reaping loop. Call Stop to end it (tests do).
func NewReaper() *Reaper {
	r := &Reaper{
		waiters: map[int]chan unix.WaitStatus{},
		sigs:    make(chan os.Signal, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	signal.Notify(r.sigs, unix.SIGCHLD)
	go r.loop()
	return r
}

// Stop ends the loop.
func (r *Reaper) Stop() {
	signal.Stop(r.sigs)
	close(r.stop)
	<-r.done
}

func (r *Reaper) loop() {
	defer close(r.done)
	r.reap() // children that exited before Notify
	for {
		select {
		case <-r.stop:
			return
		case <-r.sigs:
			r.reap()
		}
	}
}

// reap collects every exited child. SIGCHLD coalesces, so it loops until
// wait4 has nothing more.
func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		if !ws.Exited() && !ws.Signaled() {
			continue // stopped or continued, not an exit
		}
		if ch, ok := r.waiters[pid]; ok {
			ch <- ws // buffered, never blocks
			delete(r.waiters, pid)
		}
	}
}

// Start starts a process and returns a channel that receives its exit
// status once. The caller must not wait for the process in any other way.
func (r *Reaper) Start(path string, argv []string, attr *os.ProcAttr) (*os.Process, <-chan unix.WaitStatus, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return nil, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiters[p.Pid] = ch
	return p, ch, nil
}
