package netpolicy

import "time"

// Record is one line of a sandbox's network log (net.jsonl): a decision,
// or the close of an allowed connection with its byte counts.
type Record struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`          // "connect", "dns", "close"
	Proto   string    `json:"proto"`          // "tcp", "udp", "dns"
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
}
