package supervisor

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"
)

// supervisor.log is the supervisor's stdout and stderr (spawn opens it).
// Lines reach it from the supervisor, QEMU's stderr and libraries (ttrpc
// logs a line for each frame on a stream it does not know): some are the
// guest's doing, so every writer goes through one lineLimiter, and the
// file rotates.
const (
	supervisorLogMax = 8 << 20
	logRate          = 50  // lines a second, on average
	logBurst         = 500 // lines at once
)

// lineLimiter passes writes (each a line, as slog and logrus write them;
// a chunk of QEMU's stderr) at logRate with bursts of logBurst, counts
// the rest and says how many when it passes one again.
type lineLimiter struct {
	mu         sync.Mutex
	w          io.Writer
	lim        *rate.Limiter
	suppressed int // guarded by mu
}

func newLineLimiter(w io.Writer) *lineLimiter {
	return &lineLimiter{w: w, lim: rate.NewLimiter(logRate, logBurst)}
}

func (l *lineLimiter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lim.Allow() {
		l.suppressed++
		return len(p), nil
	}
	l.reportLocked()
	return l.w.Write(p)
}

// reportLocked writes how many lines were suppressed, if any. l.mu is held.
func (l *lineLimiter) reportLocked() {
	if l.suppressed > 0 {
		fmt.Fprintf(l.w, "time=%s level=WARN msg=\"suppressed %d log lines (over %d a second)\"\n", time.Now().UTC().Format(time.RFC3339), l.suppressed, logRate)
		l.suppressed = 0
	}
}

// flush reports lines suppressed since the last report.
func (l *lineLimiter) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reportLocked()
}

// stderrLog is where the supervisor's log lines go: fd 2 through the
// limiter. Libraries that log through logrus (ttrpc) write there too.
var stderrLog = func() *lineLimiter {
	l := newLineLimiter(os.Stderr)
	logrus.SetOutput(l)
	return l
}()

// LogWriter is the writer for the supervisor's own logger.
func LogWriter() io.Writer { return stderrLog }

// keepLogSmall rotates path, the file behind fds 1 and 2, to path.1 when
// it passes supervisorLogMax, and reports suppressed lines, every few
// seconds until ctx ends.
func keepLogSmall(ctx context.Context, path string) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		stderrLog.flush()
		var st unix.Stat_t
		if unix.Fstat(2, &st) != nil || st.Size < supervisorLogMax {
			continue
		}
		if err := rotateStdio(path); err != nil {
			fmt.Fprintf(os.Stderr, "rotate %s: %v\n", path, err)
		}
	}
}

// rotateStdio renames path to path.1 and points fds 1 and 2 at a new
// path. Writes under stderrLog's lock see one file or the other, whole.
func rotateStdio(path string) error {
	stderrLog.mu.Lock()
	defer stderrLog.mu.Unlock()
	if err := os.Rename(path, path+".1"); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for _, fd := range []int{1, 2} {
		if err := unix.Dup3(int(f.Fd()), fd, 0); err != nil {
			return err
		}
	}
	return nil
}
