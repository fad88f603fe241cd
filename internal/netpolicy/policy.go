package netpolicy

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Presets name the base a policy starts from.
const (
	AllowAll = "allow-all" // every public destination
	Balanced = "balanced"  // the registries, git hosts and AI APIs in BalancedHosts
	DenyAll  = "deny-all"  // nothing but the policy's own allow rules
	Learn    = "learn"     // like allow-all; its log feeds "paddock policy suggest"
)

// Presets lists the preset names in the order help text shows them.
var Presets = []string{Balanced, DenyAll, AllowAll, Learn}

// DefaultPreset is what a sandbox gets without --policy.
const DefaultPreset = Balanced

// Policy is the form users write, in YAML (--policy FILE, policy set,
// policy suggest) or through flags. See docs/NETWORK.md.
type Policy struct {
	// Preset is the base: allow-all, balanced, deny-all or learn.
	Preset string `yaml:"preset" json:"preset"`
	// Allow and Deny are rules (host patterns or CIDRs, :PORT optional).
	// Deny wins over allow.
	Allow []string `yaml:"allow,omitempty" json:"allow,omitempty"`
	Deny  []string `yaml:"deny,omitempty" json:"deny,omitempty"`
	// AddHosts pins names to addresses (NAME: IP), resolved on the host
	// side instead of DNS. The address is still checked against the rules.
	AddHosts map[string]string `yaml:"add_hosts,omitempty" json:"add_hosts,omitempty"`
	// DNSUpstream is the resolver the host side asks (ADDR[:PORT]); empty:
	// the host's /etc/resolv.conf.
	DNSUpstream string `yaml:"dns_upstream,omitempty" json:"dns_upstream,omitempty"`
}

const fileHeader = `# paddock network policy (docs/NETWORK.md).
# preset: balanced | deny-all | allow-all | learn
# allow/deny: host patterns (name, *.suffix) or CIDRs, each with an optional
#   :PORT (:* = any). Host rules default to ports 80 and 443, CIDRs to any.
#   Deny wins over allow. Private, loopback, link-local, metadata and CGNAT
#   addresses stay blocked unless an allow CIDR names them.
# add_hosts: NAME: IP pins a name to an address.
# dns_upstream: ADDR[:PORT] of the resolver the host asks (default: the host's).
`

// Marshal writes p as commented YAML.
func (p Policy) Marshal() []byte {
	b, _ := yaml.Marshal(p)
	return append([]byte(fileHeader), b...)
}

// Parse reads a YAML policy and validates it.
func Parse(b []byte) (Policy, error) {
	var p Policy
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&p); err != nil && err.Error() != "EOF" {
		return p, fmt.Errorf("policy: %w", err)
	}
	if p.Preset == "" {
		p.Preset = DenyAll
	}
	_, err := Compile(p)
	return p, err
}

// Load reads a policy: a preset name, or a path to a YAML file.
func Load(spec string) (Policy, error) {
	if slices.Contains(Presets, spec) {
		return Policy{Preset: spec}, nil
	}
	b, err := os.ReadFile(spec)
	if err != nil {
		if os.IsNotExist(err) && !strings.ContainsAny(spec, "/.") {
			return Policy{}, fmt.Errorf("--policy %q: not a preset (%s) nor a file", spec, strings.Join(Presets, ", "))
		}
		return Policy{}, fmt.Errorf("--policy %s: %w", spec, err)
	}
	p, err := Parse(b)
	if err != nil {
		return p, fmt.Errorf("--policy %s: %w", spec, err)
	}
	return p, nil
}

// AddRule appends rule to the allow (or deny) list, dropping an identical
// entry from the other list so the latest command wins.
func (p *Policy) AddRule(allow bool, rule string) error {
	r, err := ParseRule(rule)
	if err != nil {
		return err
	}
	s := r.String()
	p.Allow = slices.DeleteFunc(p.Allow, func(x string) bool { return sameRule(x, s) })
	p.Deny = slices.DeleteFunc(p.Deny, func(x string) bool { return sameRule(x, s) })
	if allow {
		p.Allow = append(p.Allow, s)
	} else {
		p.Deny = append(p.Deny, s)
	}
	return nil
}

func sameRule(a, b string) bool {
	r, err := ParseRule(a)
	return err == nil && r.String() == b
}

// Matcher is a compiled Policy. It is immutable: a change compiles a new
// one, so it is safe for concurrent use.
type Matcher struct {
	Policy     Policy
	preset     string
	allowHosts []Rule
	denyHosts  []Rule
	allowCIDRs []Rule
	denyCIDRs  []Rule
	pins       map[string]netip.Addr
	upstream   string
}

// Compile validates p, gathering every problem, and compiles it.
func Compile(p Policy) (*Matcher, error) {
	var errs []error
	m := &Matcher{Policy: p, preset: p.Preset, pins: map[string]netip.Addr{}}
	if !slices.Contains(Presets, p.Preset) {
		errs = append(errs, fmt.Errorf("preset %q: use one of %s", p.Preset, strings.Join(Presets, ", ")))
	}
	add := func(list []string, hosts, cidrs *[]Rule, what string) {
		for _, s := range list {
			r, err := ParseRule(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", what, err))
				continue
			}
			if r.IsCIDR() {
				*cidrs = append(*cidrs, r)
			} else {
				*hosts = append(*hosts, r)
			}
		}
	}
	add(p.Allow, &m.allowHosts, &m.allowCIDRs, "allow")
	add(p.Deny, &m.denyHosts, &m.denyCIDRs, "deny")
	if p.Preset == Balanced {
		for _, h := range BalancedHosts {
			r, err := ParseRule(h)
			if err != nil {
				panic(err)
			}
			m.allowHosts = append(m.allowHosts, r)
		}
	}
	for name, ip := range p.AddHosts {
		n, err := parseHostPattern(name)
		if err != nil || strings.HasPrefix(n, "*.") {
			errs = append(errs, fmt.Errorf("add_hosts %q: want an exact host name", name))
			continue
		}
		a, err := netip.ParseAddr(ip)
		if err != nil {
			errs = append(errs, fmt.Errorf("add_hosts %s: %q is not an IP address", name, ip))
			continue
		}
		m.pins[n] = a.Unmap()
	}
	if p.DNSUpstream != "" {
		up, err := NormalizeUpstream(p.DNSUpstream)
		if err != nil {
			errs = append(errs, err)
		}
		m.upstream = up
	}
	return m, errors.Join(errs...)
}

// NormalizeUpstream turns ADDR or ADDR:PORT into ADDR:PORT (port 53).
func NormalizeUpstream(s string) (string, error) {
	if a, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
		return netip.AddrPortFrom(a, 53).String(), nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return "", fmt.Errorf("dns upstream %q: want an IP address with an optional :PORT", s)
	}
	return ap.String(), nil
}

// Pin returns the --add-host address of a name, if any.
func (m *Matcher) Pin(name string) (netip.Addr, bool) {
	a, ok := m.pins[NormalizeName(name)]
	return a, ok
}

// Upstream is the policy's DNS upstream (ADDR:PORT), or "".
func (m *Matcher) Upstream() string { return m.upstream }

// Preset is the policy's preset.
func (m *Matcher) Preset() string { return m.preset }

// Verdicts.
const (
	Allow = "allow"
	Deny  = "deny"
)

// Query is one connection attempt (or DNS lookup) to decide.
type Query struct {
	Proto string     // "tcp", "udp"
	Name  string     // the name seen in DNS, SNI or Host; "" for a raw address
	Addr  netip.Addr // the address to be dialled; invalid: not known yet
	Port  uint16
}

// Decision is a verdict and the rule that made it.
type Decision struct {
	Verdict string // Allow or Deny
	Rule    string // e.g. "allow *.github.com", "default: loopback 127.0.0.0/8"
}

// Allowed reports whether the verdict is Allow.
func (d Decision) Allowed() bool { return d.Verdict == Allow }

func allow(rule string) Decision { return Decision{Allow, rule} }
func deny(rule string) Decision  { return Decision{Deny, rule} }

// Decide is the policy. Order: deny host rules, deny CIDR rules, then a
// name needs an allow host rule (or an allowing preset) and a raw address
// an allow CIDR rule (or allow-all/learn); either way an address in a
// default-blocked range also needs an allow CIDR rule that covers it.
func (m *Matcher) Decide(q Query) Decision {
	name := NormalizeName(q.Name)
	addr := q.Addr.Unmap()
	if name != "" {
		for i := range m.denyHosts {
			if r := &m.denyHosts[i]; r.Ports.match(q.Port) && matchHost(r.Host, name) {
				return deny("deny " + r.String())
			}
		}
	}
	if addr.IsValid() {
		for i := range m.denyCIDRs {
			if r := &m.denyCIDRs[i]; r.Ports.match(q.Port) && r.Prefix.Contains(addr) {
				return deny("deny " + r.String())
			}
		}
	}
	var allowedBy string
	if name != "" {
		for i := range m.allowHosts {
			if r := &m.allowHosts[i]; r.Ports.match(q.Port) && matchHost(r.Host, name) {
				allowedBy = "allow " + r.String()
				if i >= len(m.allowHosts)-len(BalancedHosts) && m.preset == Balanced {
					allowedBy = "preset balanced " + r.String()
				}
				break
			}
		}
		if allowedBy == "" && (m.preset == AllowAll || m.preset == Learn) {
			allowedBy = "preset " + m.preset
		}
		if allowedBy == "" {
			return deny("default: no rule allows " + name + portSuffix(q.Port))
		}
		if !addr.IsValid() {
			return allow(allowedBy)
		}
	}
	cidr := m.allowCIDR(addr, q.Port)
	if p, what, blocked := Blocked(addr); blocked {
		if cidr == "" {
			return deny("default: " + what + " " + p.String())
		}
		if allowedBy == "" {
			allowedBy = cidr
		}
		return allow(allowedBy)
	}
	if allowedBy != "" {
		return allow(allowedBy)
	}
	if cidr != "" {
		return allow(cidr)
	}
	if m.preset == AllowAll || m.preset == Learn {
		return allow("preset " + m.preset)
	}
	return deny("default: no CIDR rule allows " + addr.String() + portSuffix(q.Port))
}

func (m *Matcher) allowCIDR(addr netip.Addr, port uint16) string {
	for i := range m.allowCIDRs {
		if r := &m.allowCIDRs[i]; r.Ports.match(port) && r.Prefix.Contains(addr) {
			return "allow " + r.String()
		}
	}
	return ""
}

func portSuffix(p uint16) string {
	if p == 0 {
		return ""
	}
	return fmt.Sprintf(":%d", p)
}

// PermitsName reports whether some allow rule could permit a connection to
// name on some port: the sandbox resolver answers only such names.
func (m *Matcher) PermitsName(name string) Decision {
	name = NormalizeName(name)
	for i := range m.denyHosts {
		if r := &m.denyHosts[i]; r.Ports.Any && matchHost(r.Host, name) {
			return deny("deny " + r.String())
		}
	}
	for i := range m.allowHosts {
		if r := &m.allowHosts[i]; matchHost(r.Host, name) {
			if i >= len(m.allowHosts)-len(BalancedHosts) && m.preset == Balanced {
				return allow("preset balanced " + r.String())
			}
			return allow("allow " + r.String())
		}
	}
	if m.preset == AllowAll || m.preset == Learn {
		return allow("preset " + m.preset)
	}
	return deny("default: no rule allows " + name)
}

// ValidName reports whether s can be a DNS host name we answer for.
func ValidName(s string) bool {
	_, err := parseHostPattern(s)
	return err == nil && !strings.HasPrefix(s, "*") && net.ParseIP(s) == nil
}
