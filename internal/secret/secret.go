// Package secret is paddock's host-side secret store: credentials that a
// sandbox's requests need but that never enter its VM. Each secret has a
// definition (which hosts it is for, which header carries it, the guest
// variable that holds its stand-in) and a value that is either sealed in
// PADDOCK_HOME with AES-256-GCM under a key kept in a separate file, or
// produced by a command run on the host whenever it is needed.
//
// The guest sees only the secret's placeholder, paddock-secret-NAME-RANDOM,
// which stays the same when the value changes; the host puts the value in
// its place (see Target) in requests bound for the secret's hosts.
package secret

import (
	"encoding/base64"
	"math"
	"strconv"
	"strings"
	"time"
)

// PlaceholderPrefix starts every placeholder.
const PlaceholderPrefix = "paddock-secret-"

// placeholderRandom is the length of a placeholder's random tail, in hex
// digits (12 bytes).
const placeholderRandom = 24

// Definition is everything about a secret except its value. It is what
// List and Get return and what `secret ls` shows.
type Definition struct {
	Name string `json:"name"`
	// Service is the built-in service this definition came from (see
	// Services), or "" for a custom one.
	Service string `json:"service,omitempty"`
	// Targets say where the value goes; a host appears in one target only.
	Targets []Target `json:"targets"`
	// Env is the guest environment variable that holds the placeholder.
	Env string `json:"env"`
	// Query allows the placeholder to be replaced in a request's query
	// string as well as in its headers.
	Query bool `json:"query,omitempty"`
	// PassElsewhere lets a request that carries the placeholder to a host
	// the secret is not for go out with the placeholder unchanged; without
	// it such a request is refused and never sent.
	PassElsewhere bool `json:"pass_elsewhere,omitempty"`
	// Source is where the value comes from.
	Source Source `json:"source"`
	// Placeholder is the guest's stand-in for the value: made when the
	// secret is first set and kept when it is set again.
	Placeholder string    `json:"placeholder"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// Owner names the API key that set the secret through paddock serve,
	// which only that key may see, bind or change; "" for the CLI's.
	Owner string `json:"owner,omitempty"`
	// Sandbox, when set, is the one sandbox the secret was made for: it is
	// removed with that sandbox.
	Sandbox string `json:"sandbox,omitempty"`
}

// Target is how the value is sent to some hosts: in header Header, as
// Format with the value in place of its %s, or, when BasicUser is set, as
// HTTP basic credentials (user BasicUser, the value as password) in
// Authorization. The header is set on a request that lacks it; with
// Override, also in place of the value a request gives it.
type Target struct {
	Hosts     []string `json:"hosts"`
	Header    string   `json:"header"`
	Format    string   `json:"format,omitempty"`
	BasicUser string   `json:"basic_user,omitempty"`
	Override  bool     `json:"override,omitempty"`
}

// HeaderValue is the value of t.Header that carries value.
func (t Target) HeaderValue(value string) string {
	if t.BasicUser != "" {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(t.BasicUser+":"+value))
	}
	f := t.Format
	if f == "" {
		f = "%s"
	}
	return strings.Replace(f, "%s", value, 1)
}

// String describes t for people: "x-api-key", "Authorization: Bearer %s",
// "Authorization: basic auth, user x-access-token".
func (t Target) String() string {
	s := t.Header
	switch {
	case t.BasicUser != "":
		s += ": basic auth, user " + t.BasicUser
	case t.Format != "" && t.Format != "%s":
		s += ": " + t.Format
	}
	if t.Override {
		s += " (always)"
	}
	return s
}

// Hosts lists every host of d's targets.
func (d Definition) Hosts() []string {
	var hosts []string
	for _, t := range d.Targets {
		hosts = append(hosts, t.Hosts...)
	}
	return hosts
}

// HostKey is how a target names a host and port: the name alone for
// HTTPS's port, 443, else NAME:PORT.
func HostKey(name string, port uint16) string {
	if port == 443 {
		return name
	}
	return name + ":" + strconv.Itoa(int(port))
}

// TargetFor returns the target of host (HostKey: a lower-case name
// without a trailing dot, with :PORT unless the port is 443) whose host
// pattern matches it best (HostMatches, Specificity), or false if the
// secret is not for host.
func (d Definition) TargetFor(host string) (Target, bool) {
	var best Target
	score := -1
	for _, t := range d.Targets {
		for _, h := range t.Hosts {
			if HostMatches(h, host) && Specificity(h) > score {
				best, score = t, Specificity(h)
			}
		}
	}
	return best, score >= 0
}

// HostMatches reports whether a target's host pattern matches key
// (HostKey): a name matches itself; *.SUFFIX matches the names under
// SUFFIX at any depth, not SUFFIX itself; either with :PORT for a port
// other than 443, which key must have too.
func HostMatches(pattern, key string) bool {
	if pattern == key {
		return true
	}
	rest, ok := strings.CutPrefix(pattern, "*")
	if !ok {
		return false
	}
	suffix, pport, _ := strings.Cut(rest, ":")
	name, kport, _ := strings.Cut(key, ":")
	return pport == kport && len(name) > len(suffix) && strings.HasSuffix(name, suffix)
}

// Specificity orders the patterns that match one host: a name above any
// wildcard, a longer wildcard suffix above a shorter one.
func Specificity(pattern string) int {
	if rest, ok := strings.CutPrefix(pattern, "*"); ok {
		suffix, _, _ := strings.Cut(rest, ":")
		return len(suffix)
	}
	return math.MaxInt
}

// SourceKind says where a value comes from.
type SourceKind string

const (
	// FromStdin: the value was read from the command line's stdin at set
	// time and is sealed in the store.
	FromStdin SourceKind = "stdin"
	// FromEnv: the value was read from a host environment variable at set
	// time and is sealed in the store.
	FromEnv SourceKind = "env"
	// FromCommand: the value is the output of a command run on the host
	// whenever it is needed (cached); nothing is sealed.
	FromCommand SourceKind = "command"
)

// Source is where a secret's value comes from.
type Source struct {
	Kind SourceKind `json:"kind"`
	// Env is the host variable the value was read from (FromEnv).
	Env string `json:"env,omitempty"`
	// Command is run with sh -c (FromCommand).
	Command string `json:"command,omitempty"`
	// Cache is how long a command's value is reused (FromCommand); 0: run
	// it every time.
	Cache Duration `json:"cache,omitempty"`
}

// String describes s for people, never with a value.
func (s Source) String() string {
	switch s.Kind {
	case FromEnv:
		return "env " + s.Env + " (at set time)"
	case FromCommand:
		c := "no cache"
		if s.Cache > 0 {
			c = "cached " + time.Duration(s.Cache).String()
		}
		return "command: " + s.Command + " (" + c + ")"
	}
	return string(s.Kind) + " (at set time)"
}

// Duration is a time.Duration written in JSON as "5m0s".
type Duration time.Duration

// MarshalText writes d as time.Duration's String.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what MarshalText writes.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	*d = Duration(v)
	return err
}

// Placeholders returns every well-formed placeholder in s, in order: what
// a request carries that the host must either replace or refuse to send.
func Placeholders(s string) []string {
	var found []string
	for {
		i := strings.Index(s, PlaceholderPrefix)
		if i < 0 {
			return found
		}
		s = s[i+len(PlaceholderPrefix):]
		if n := placeholderLen(s); n > 0 {
			found = append(found, PlaceholderPrefix+s[:n])
			s = s[n:]
		}
	}
}

// placeholderLen returns the length of the NAME-RANDOM that starts s, or 0.
// NAME may itself hold dashes, so the longest valid one is taken.
func placeholderLen(s string) int {
	end := 0
	for end < len(s) && (lowerOrDigit(s[end]) || s[end] == '-') {
		end++
	}
	if next := strings.Index(s[:end], PlaceholderPrefix); next >= 0 {
		end = next // two placeholders back to back
	}
	// Try the longest candidate first: NAME-RANDOM where RANDOM is
	// placeholderRandom hex digits ending at some point up to end.
	for n := end; n >= placeholderRandom+2; n-- {
		r := s[n-placeholderRandom : n]
		if s[n-placeholderRandom-1] == '-' && isHex(r) && validName(s[:n-placeholderRandom-1]) {
			return n
		}
	}
	return 0
}

func lowerOrDigit(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9' || 'a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}
