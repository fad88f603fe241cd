package usernet

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

// What a guest can make the supervisor hold is bounded. Past a bound the
// guest is refused, and the refusal is a decision in the network log like
// any other.
const (
	// maxConns is how many TCP connections a sandbox may have open at
	// once: relayed, dialling, or being read for their SNI or Host.
	maxConns = 512
	// maxSniffing is how many of them may be waiting for their first
	// bytes (a guest can open connections and send nothing).
	maxSniffing = 64
	// maxLookups is how many upstream DNS lookups may wait at once.
	maxLookups = 32
	// maxCached is how many upstream answers the resolver keeps.
	maxCached = 4096
	// maxUDPSeen is how many UDP destinations the drop log remembers.
	maxUDPSeen = 1024
	// recordRate and recordBurst bound the network log: past them
	// records are counted, and one "suppressed" record says how many.
	recordRate  = 200
	recordBurst = 1000
)

// slots is a counting semaphore that never waits.
type slots chan struct{}

func (s slots) take() bool {
	select {
	case s <- struct{}{}:
		return true
	default:
		return false
	}
}

func (s slots) give() { <-s }

// recordLimiter passes records at recordRate with bursts of recordBurst
// and counts the rest.
type recordLimiter struct {
	mu         sync.Mutex
	lim        *rate.Limiter
	suppressed int64     // guarded by mu: records dropped since the last report
	since      time.Time // guarded by mu: when the first of them was dropped
}

func newRecordLimiter() *recordLimiter {
	return &recordLimiter{lim: rate.NewLimiter(recordRate, recordBurst)}
}

// pass returns the records to write for r: none while over the rate;
// else a report of what was suppressed, if anything was, then r.
func (l *recordLimiter) pass(r netpolicy.Record) []netpolicy.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.lim.Allow() {
		if l.suppressed == 0 {
			l.since = r.Time
		}
		l.suppressed++
		return nil
	}
	if l.suppressed == 0 {
		return []netpolicy.Record{r}
	}
	report := netpolicy.Record{Time: r.Time, Event: "suppressed", Proto: "-",
		Rule: fmt.Sprintf("%d records not logged since %s: over %d a second", l.suppressed, l.since.Format(time.RFC3339), recordRate)}
	l.suppressed = 0
	return []netpolicy.Record{report, r}
}

// flush returns the report of records suppressed and not yet reported.
func (l *recordLimiter) flush() (netpolicy.Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.suppressed == 0 {
		return netpolicy.Record{}, false
	}
	r := netpolicy.Record{Time: time.Now(), Event: "suppressed", Proto: "-",
		Rule: fmt.Sprintf("%d records not logged since %s: over %d a second", l.suppressed, l.since.Format(time.RFC3339), recordRate)}
	l.suppressed = 0
	return r, true
}
