package netpolicy

import (
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Record is one line of a sandbox's network log (net.jsonl): a decision,
// the close of an allowed connection with its byte counts, or an HTTP
// request on a connection whose requests the host reads (secret
// injection, package inject).
type Record struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`          // "connect", "dns", "close", "request", "suppressed"
	Proto   string    `json:"proto"`          // "tcp", "udp", "dns"; "https", "http" for a request
	Dest    string    `json:"dest,omitempty"` // what the guest addressed, ADDR:PORT
	Name    string    `json:"name,omitempty"` // from DNS, SNI or Host
	Type    string    `json:"type,omitempty"` // a DNS query's type: A, AAAA, ...
	Addr    string    `json:"addr,omitempty"` // the real address dialled (host side)
	Port    uint16    `json:"port,omitempty"`
	Verdict string    `json:"verdict"`
	Rule    string    `json:"rule"`
	// Sent and Received are bytes guest->destination and back, on close.
	Sent     int64  `json:"sent,omitempty"`
	Received int64  `json:"received,omitempty"`
	Error    string `json:"error,omitempty"` // e.g. a failed dial
	// A request's method, path (never its query string, which may carry
	// values), the status answered to the guest, and the secrets whose
	// values it carried (names, never values).
	Method  string   `json:"method,omitempty"`
	Path    string   `json:"path,omitempty"`
	Status  int      `json:"status,omitempty"`
	Secrets []string `json:"secrets,omitempty"`
}

// RecordLimiter passes records at a rate, with bursts, and counts the
// rest; a "suppressed" record reports how many, with the next record let
// through or at Flush. It is safe for concurrent use.
type RecordLimiter struct {
	mu         sync.Mutex
	lim        *rate.Limiter
	perSecond  int
	suppressed int64     // guarded by mu: records dropped since the last report
	since      time.Time // guarded by mu: when the first of them was dropped
}

// NewRecordLimiter passes perSecond records a second with bursts of burst.
func NewRecordLimiter(perSecond, burst int) *RecordLimiter {
	return &RecordLimiter{lim: rate.NewLimiter(rate.Limit(perSecond), burst), perSecond: perSecond}
}

// Pass returns the records to write for r: none while over the rate;
// else a report of what was suppressed, if anything was, then r.
func (l *RecordLimiter) Pass(r Record) []Record {
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
		return []Record{r}
	}
	return []Record{l.reportLocked(r.Time), r}
}

// Flush returns the report of records suppressed and not yet reported.
func (l *RecordLimiter) Flush() (Record, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.suppressed == 0 {
		return Record{}, false
	}
	return l.reportLocked(time.Now()), true
}

func (l *RecordLimiter) reportLocked(now time.Time) Record {
	r := Record{Time: now, Event: "suppressed", Proto: "-",
		Rule: fmt.Sprintf("%d records not logged since %s: over %d a second", l.suppressed, l.since.Format(time.RFC3339), l.perSecond)}
	l.suppressed = 0
	return r
}
