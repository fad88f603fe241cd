package usernet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
)

// errNeedMore means the bytes so far end before the name could be read.
var errNeedMore = errors.New("need more data")

// sniffName reads the name a client put in the first bytes of a
// connection: the TLS ClientHello's SNI, or an HTTP/1 request's Host
// header. It returns "" when the stream is neither or names nothing.
func sniffName(b []byte) (string, error) {
	if len(b) == 0 {
		return "", errNeedMore
	}
	if b[0] == 0x16 {
		return sniffSNI(b)
	}
	return sniffHost(b)
}

// sniffSNI parses a TLS record holding a ClientHello (RFC 8446 4.1.2,
// RFC 6066 3) for its server_name.
func sniffSNI(b []byte) (string, error) {
	if len(b) < 5 {
		return "", errNeedMore
	}
	recLen := int(binary.BigEndian.Uint16(b[3:5]))
	if len(b) < 5+recLen {
		return "", errNeedMore
	}
	p := b[5 : 5+recLen]
	// Handshake header: type 1 (ClientHello), 3-byte length.
	if len(p) < 4 || p[0] != 1 {
		return "", nil
	}
	p = p[4:]
	skip := func(n int) bool {
		if len(p) < n {
			return false
		}
		p = p[n:]
		return true
	}
	vec := func(lenBytes int) bool {
		if len(p) < lenBytes {
			return false
		}
		n := 0
		for i := 0; i < lenBytes; i++ {
			n = n<<8 | int(p[i])
		}
		return skip(lenBytes + n)
	}
	// version, random, session id, cipher suites, compression methods
	if !skip(2+32) || !vec(1) || !vec(2) || !vec(1) {
		return "", nil
	}
	if len(p) < 2 {
		return "", nil
	}
	ext := p[2:min(len(p), 2+int(binary.BigEndian.Uint16(p)))]
	for len(ext) >= 4 {
		typ, n := binary.BigEndian.Uint16(ext), int(binary.BigEndian.Uint16(ext[2:]))
		if len(ext) < 4+n {
			return "", nil
		}
		body := ext[4 : 4+n]
		ext = ext[4+n:]
		if typ != 0 || len(body) < 2 {
			continue
		}
		list := body[2:]
		for len(list) >= 3 {
			kind, l := list[0], int(binary.BigEndian.Uint16(list[1:]))
			if len(list) < 3+l {
				return "", nil
			}
			if kind == 0 {
				return string(list[3 : 3+l]), nil
			}
			list = list[3+l:]
		}
	}
	return "", nil
}

var httpMethods = []string{"GET ", "POST ", "PUT ", "HEAD ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "}

// sniffHost reads the Host header of an HTTP/1 request.
func sniffHost(b []byte) (string, error) {
	isHTTP := false
	for _, m := range httpMethods {
		n := min(len(m), len(b))
		if string(b[:n]) == m[:n] {
			if n < len(m) {
				return "", errNeedMore
			}
			isHTTP = true
			break
		}
	}
	if !isHTTP {
		return "", nil
	}
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return "", errNeedMore
	}
	for _, line := range strings.Split(string(b[:end]), "\r\n")[1:] {
		k, v, ok := strings.Cut(line, ":")
		if ok && strings.EqualFold(strings.TrimSpace(k), "host") {
			host := strings.TrimSpace(v)
			if strings.HasPrefix(host, "[") {
				if i := strings.Index(host, "]"); i > 0 {
					return host[1:i], nil
				}
			}
			if h, _, ok := strings.Cut(host, ":"); ok {
				host = h
			}
			return host, nil
		}
	}
	return "", nil
}
