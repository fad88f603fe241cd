package netpolicy

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Ports is the set of destination ports a rule covers.
type Ports struct {
	Any  bool     // ":*"
	List []uint16 // empty with Any false: the default 80 and 443 (host rules)
}

func (p Ports) match(port uint16) bool {
	if p.Any {
		return true
	}
	if len(p.List) == 0 {
		return port == 80 || port == 443
	}
	for _, q := range p.List {
		if q == port {
			return true
		}
	}
	return false
}

func (p Ports) String() string {
	switch {
	case p.Any:
		return ":*"
	case len(p.List) == 0:
		return ""
	default:
		return ":" + strconv.Itoa(int(p.List[0]))
	}
}

// Rule is one allow or deny entry: a host pattern or a CIDR, each with a
// port. Its text form is what users write:
//
//	pypi.org           exact name, ports 80 and 443
//	*.github.com       any name below github.com (not github.com itself)
//	github.com:22      one port
//	*.example.com:*    any port
//	203.0.113.0/24     an address range, any port
//	10.0.0.5:5432      one address (a /32), one port
//	[fd00::/8]:443     IPv6 ranges take brackets when they have a port
type Rule struct {
	Host   string       // lower case; "*.suffix" or an exact name; "" for a CIDR rule
	Prefix netip.Prefix // valid for a CIDR rule
	Ports  Ports
}

// IsCIDR reports whether r matches addresses rather than names.
func (r Rule) IsCIDR() bool { return r.Prefix.IsValid() }

// String is the rule in the form ParseRule reads.
func (r Rule) String() string {
	if r.IsCIDR() {
		// A CIDR covers every port unless it names one.
		s := r.Prefix.String()
		if r.Ports.Any || len(r.Ports.List) == 0 {
			return s
		}
		if r.Prefix.Addr().Is6() {
			return "[" + s + "]" + r.Ports.String()
		}
		return s + r.Ports.String()
	}
	return r.Host + r.Ports.String()
}

// ParseRule reads a host pattern or a CIDR with an optional :PORT.
func ParseRule(s string) (Rule, error) {
	orig := s
	s = strings.TrimSpace(s)
	if s == "" {
		return Rule{}, fmt.Errorf("empty rule")
	}
	// [v6-cidr]:port
	if strings.HasPrefix(s, "[") {
		end := strings.Index(s, "]")
		if end < 0 {
			return Rule{}, fmt.Errorf("rule %q: missing ]", orig)
		}
		r, err := parseCIDR(s[1:end])
		if err != nil {
			return Rule{}, fmt.Errorf("rule %q: %w", orig, err)
		}
		rest := s[end+1:]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return Rule{}, fmt.Errorf("rule %q: want [ADDRESS]:PORT", orig)
			}
			if r.Ports, err = parsePort(rest[1:]); err != nil {
				return Rule{}, fmt.Errorf("rule %q: %w", orig, err)
			}
		} else {
			r.Ports = Ports{Any: true}
		}
		return r, nil
	}
	// A bare IPv6 address or prefix (several colons, no brackets).
	if strings.Count(s, ":") > 1 {
		r, err := parseCIDR(s)
		if err != nil {
			return Rule{}, fmt.Errorf("rule %q: %w (IPv6 with a port: [ADDRESS]:PORT)", orig, err)
		}
		r.Ports = Ports{Any: true}
		return r, nil
	}
	body, port, hasPort := strings.Cut(s, ":")
	var ports Ports
	if hasPort {
		var err error
		if ports, err = parsePort(port); err != nil {
			return Rule{}, fmt.Errorf("rule %q: %w", orig, err)
		}
	}
	if looksLikeAddress(body) {
		r, err := parseCIDR(body)
		if err != nil {
			return Rule{}, fmt.Errorf("rule %q: %w", orig, err)
		}
		if !hasPort {
			ports = Ports{Any: true}
		}
		r.Ports = ports
		return r, nil
	}
	host, err := parseHostPattern(body)
	if err != nil {
		return Rule{}, fmt.Errorf("rule %q: %w", orig, err)
	}
	return Rule{Host: host, Ports: ports}, nil
}

// looksLikeAddress: digits, dots and a slash only (host names with only
// digits and dots are not valid names anyway).
func looksLikeAddress(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && c != '.' && c != '/' {
			return false
		}
	}
	return true
}

func parseCIDR(s string) (Rule, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return Rule{}, fmt.Errorf("%q is not an address or CIDR", s)
		}
		return Rule{Prefix: netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())}, nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return Rule{}, fmt.Errorf("%q is not a CIDR", s)
	}
	return Rule{Prefix: p.Masked()}, nil
}

func parsePort(s string) (Ports, error) {
	if s == "*" {
		return Ports{Any: true}, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil || n == 0 {
		return Ports{}, fmt.Errorf("port %q: want 1-65535 or *", s)
	}
	return Ports{List: []uint16{uint16(n)}}, nil
}

// parseHostPattern accepts "name.example" or "*.example", returning it in
// lower case without a trailing dot.
func parseHostPattern(s string) (string, error) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	name := strings.TrimPrefix(s, "*.")
	if name == "" || len(name) > 253 {
		return "", fmt.Errorf("host pattern %q: empty or too long", s)
	}
	if strings.Contains(name, "*") {
		return "", fmt.Errorf("host pattern %q: a * is allowed only as the whole first label (*.example.com)", s)
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "", fmt.Errorf("host pattern %q: empty or overlong label", s)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", fmt.Errorf("host pattern %q: %q is not allowed in a host name", s, c)
			}
		}
	}
	return s, nil
}

// matchHost reports whether lower-case name matches pattern: exact, or for
// "*.suffix" any name ending in ".suffix" (a label boundary).
func matchHost(pattern, name string) bool {
	if strings.HasPrefix(pattern, "*.") {
		suffix := pattern[1:] // ".suffix"
		return len(name) > len(suffix) && strings.HasSuffix(name, suffix)
	}
	return pattern == name
}

// NormalizeName lower-cases a DNS name and drops its trailing dot.
func NormalizeName(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; c >= 'A' && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}
