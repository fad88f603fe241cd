package usernet

import "github.com/paddock-dev/paddock/internal/netpolicy"

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

func newRecordLimiter() *netpolicy.RecordLimiter {
	return netpolicy.NewRecordLimiter(recordRate, recordBurst)
}
