package usernet

import (
	"errors"
	"net/netip"
	"sync"
)

// nameTable hands out one synthetic address per name, stable for the life
// of the sandbox, from the names range (never a real destination). The
// forwarder maps a connection to such an address back to its name.
//
// Invariant: byName and byAddr are inverse maps; next is the lowest
// address not yet handed out.
type nameTable struct {
	prefix netip.Prefix

	mu     sync.Mutex
	byName map[string]netip.Addr // guarded by mu
	byAddr map[netip.Addr]string // guarded by mu
	next   netip.Addr            // guarded by mu
}

func newNameTable(prefix netip.Prefix) *nameTable {
	return &nameTable{
		prefix: prefix,
		byName: map[string]netip.Addr{},
		byAddr: map[netip.Addr]string{},
		next:   prefix.Addr().Next(),
	}
}

var errNamesFull = errors.New("the sandbox's name range is exhausted")

// addr returns name's synthetic address, assigning one if needed.
func (t *nameTable) addr(name string) (netip.Addr, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if a, ok := t.byName[name]; ok {
		return a, nil
	}
	a := t.next
	if !t.prefix.Contains(a) || !t.prefix.Contains(a.Next()) {
		return netip.Addr{}, errNamesFull
	}
	t.next = a.Next()
	t.byName[name], t.byAddr[a] = a, name
	return a, nil
}

// name returns the name behind a synthetic address.
func (t *nameTable) name(a netip.Addr) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n, ok := t.byAddr[a]
	return n, ok
}
