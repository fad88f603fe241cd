package usernet

import (
	"crypto/tls"
	"net"
	"net/netip"
	"testing"
)

func clientHello(t *testing.T, sni string) []byte {
	c, s := net.Pipe()
	go func() {
		tls.Client(c, &tls.Config{ServerName: sni, InsecureSkipVerify: true}).Handshake()
		c.Close()
	}()
	buf := make([]byte, 0, 4096)
	for {
		b := make([]byte, 4096)
		n, err := s.Read(b)
		buf = append(buf, b[:n]...)
		if _, serr := sniffName(buf); serr == nil || err != nil {
			s.Close()
			return buf
		}
	}
}

func TestSniff(t *testing.T) {
	hello := clientHello(t, "allowed.test")
	tests := []struct {
		name string
		in   []byte
		want string
		more bool
	}{
		{"tls sni", hello, "allowed.test", false},
		{"tls partial", hello[:20], "", true},
		{"http host", []byte("GET / HTTP/1.1\r\nUser-Agent: x\r\nHOST: Example.com:8080\r\n\r\n"), "Example.com", false},
		{"http no host", []byte("GET / HTTP/1.0\r\n\r\n"), "", false},
		{"http partial", []byte("GET / HTTP/1.1\r\nHost: a"), "", true},
		{"method partial", []byte("GE"), "", true},
		{"not http", []byte("SSH-2.0-OpenSSH\r\n"), "", false},
		{"empty", nil, "", true},
	}
	for _, tt := range tests {
		got, err := sniffName(tt.in)
		if got != tt.want || (err == errNeedMore) != tt.more {
			t.Errorf("%s: got %q, %v; want %q, need more %v", tt.name, got, err, tt.want, tt.more)
		}
	}
}

func TestNameTableStable(t *testing.T) {
	nt := newNameTable(NamesPrefix)
	a, _ := nt.addr("a.test")
	b, _ := nt.addr("b.test")
	a2, _ := nt.addr("a.test")
	if a != a2 || a == b || !NamesPrefix.Contains(a) {
		t.Fatalf("a=%v a2=%v b=%v", a, a2, b)
	}
	if n, ok := nt.name(b); !ok || n != "b.test" {
		t.Fatalf("name(%v) = %q", b, n)
	}
	if _, ok := nt.name(netip.MustParseAddr("198.18.9.9")); ok {
		t.Fatal("an address never handed out has a name")
	}
	small := newNameTable(netip.MustParsePrefix("198.18.0.0/30"))
	small.addr("x")
	small.addr("y")
	if _, err := small.addr("z"); err == nil {
		t.Fatal("a full table handed out an address")
	}
}
