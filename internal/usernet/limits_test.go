package usernet

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

func TestRecordLimiterCountsWhatItDrops(t *testing.T) {
	l := newRecordLimiter()
	written, reported := 0, int64(0)
	count := func(rs []netpolicy.Record) {
		for _, r := range rs {
			if r.Event == "suppressed" {
				var n int64
				fmt.Sscanf(r.Rule, "%d", &n)
				reported += n
			} else {
				written++
			}
		}
	}
	const flood = 10_000
	for i := range flood {
		count(l.Pass(netpolicy.Record{Time: time.Now(), Event: "dns", Name: fmt.Sprint(i)}))
	}
	if written < recordBurst || written > recordBurst+recordRate*5 {
		t.Fatalf("%d of %d records written at once, want about the burst %d", written, flood, recordBurst)
	}
	r, ok := l.Flush()
	if !ok || !strings.Contains(r.Rule, "not logged") {
		t.Fatalf("flush after a flood: %+v %v", r, ok)
	}
	count([]netpolicy.Record{r})
	if int64(written)+reported != flood {
		t.Fatalf("written %d + reported suppressed %d != %d", written, reported, flood)
	}
	if _, ok := l.Flush(); ok {
		t.Fatal("a second flush reported again")
	}
}

func TestSlots(t *testing.T) {
	s := make(slots, 2)
	if !s.take() || !s.take() || s.take() {
		t.Fatal("two slots: want two takes, then a refusal")
	}
	s.give()
	if !s.take() {
		t.Fatal("a slot given back is not taken again")
	}
}

func TestResolverCacheBounded(t *testing.T) {
	r := &resolver{cache: map[string]cached{}}
	exp := time.Now().Add(time.Hour)
	for i := range maxCached * 3 {
		r.mu.Lock()
		r.pruneLocked()
		r.cache[fmt.Sprint(i)] = cached{expires: exp}
		r.mu.Unlock()
	}
	if len(r.cache) > maxCached {
		t.Fatalf("%d cached answers, cap %d", len(r.cache), maxCached)
	}
	for i := 0; len(r.cache) < maxCached-1; i++ {
		r.cache[fmt.Sprint("more", i)] = cached{expires: exp}
	}
	r.cache["old"] = cached{expires: time.Now().Add(-time.Second)}
	r.mu.Lock()
	r.pruneLocked()
	r.mu.Unlock()
	if _, ok := r.cache["old"]; ok {
		t.Fatal("an expired answer survived a prune of a full cache")
	}
}

func TestUDPSeenBounded(t *testing.T) {
	n := &Network{udpSeen: map[netip.AddrPort]time.Time{}}
	now := time.Now()
	dst := netip.MustParseAddrPort("203.0.113.1:53")
	if !n.udpLogDue(dst, now) || n.udpLogDue(dst, now.Add(time.Second)) || !n.udpLogDue(dst, now.Add(udpLogEvery)) {
		t.Fatal("one destination: logged, then quiet for udpLogEvery, then logged")
	}
	for i := range 10_000 {
		n.udpLogDue(netip.AddrPortFrom(netip.MustParseAddr("203.0.113.2"), uint16(i)), now)
	}
	if len(n.udpSeen) > maxUDPSeen {
		t.Fatalf("%d destinations remembered, cap %d", len(n.udpSeen), maxUDPSeen)
	}
}
