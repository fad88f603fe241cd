package supervisor

import (
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/ttrpc"
	"github.com/sirupsen/logrus"
)

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A guest that floods the agent link with frames on streams nobody opened
// costs the host a bounded number of log lines, and a count of the rest.
func TestGuestFrameFloodIsRateLimited(t *testing.T) {
	var out syncBuffer
	l := newLineLimiter(&out)
	logrus.SetOutput(l)
	t.Cleanup(func() { logrus.SetOutput(stderrLog) })

	start := time.Now()
	host, guest := net.Pipe()
	c := ttrpc.NewClient(host)
	defer c.Close()
	const frames = 20_000
	go func() {
		var hdr [10]byte
		for i := range frames {
			binary.BigEndian.PutUint32(hdr[0:4], 0)             // length
			binary.BigEndian.PutUint32(hdr[4:8], uint32(2*i+1)) // a stream nobody opened
			hdr[8] = 2                                          // response
			if _, err := guest.Write(hdr[:]); err != nil {
				return
			}
		}
		guest.Close()
	}()
	time.Sleep(500 * time.Millisecond)
	for deadline := time.Now().Add(10 * time.Second); strings.Count(out.String(), "\n") < logBurst && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	l.flush()
	// The burst, then logRate a second for as long as the flood ran
	// (a passed line may come with a "suppressed" line).
	lines := strings.Count(out.String(), "\n")
	if bound := logBurst + int(2*logRate*time.Since(start).Seconds()) + 10; lines > bound {
		t.Fatalf("%d log lines for %d garbage frames in %s, want at most %d", lines, frames, time.Since(start).Round(time.Millisecond), bound)
	}
	if !strings.Contains(out.String(), "inactive stream") || !strings.Contains(out.String(), "suppressed") {
		t.Fatalf("want ttrpc's lines and a suppressed count:\n%s", out.String()[max(0, len(out.String())-500):])
	}
}
