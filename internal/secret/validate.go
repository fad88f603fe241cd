package secret

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/paddock-dev/paddock/internal/label"
)

// DefaultCache is how long a command's value is reused unless the spec
// says otherwise.
const DefaultCache = 5 * time.Minute

// MaxValue is the longest value accepted, in bytes.
const MaxValue = 64 << 10

// Spec is what Set is asked to store.
type Spec struct {
	Name string
	// Targets are the hosts and how the value is sent to them; none: the
	// built-in service of the same name (see Services).
	Targets []Target
	// Env is the guest variable for the placeholder; "": the service's,
	// else Name upper-cased with '-' as '_'.
	Env string
	// Query allows replacement in query strings.
	Query bool
	// PassElsewhere lets the placeholder go unchanged to hosts the secret
	// is not for (see Definition).
	PassElsewhere bool
	// Source is where the value comes from. For FromCommand, a Cache of
	// 0 means DefaultCache and a negative one no caching.
	Source Source
	// Value is the value, for FromStdin and FromEnv (sealed, never
	// stored in clear). It must be empty for FromCommand.
	Value string
	// Owner names the API key that set the secret ("" for the CLI).
	Owner string
	// Sandbox is the one sandbox the secret is made for (removed with it).
	Sandbox string
}

// Check reports every problem of spec, as Set would, changing nothing.
func (spec Spec) Check() error {
	_, err := spec.definition()
	return err
}

// definition checks spec and returns the definition it asks for, without
// its placeholder and times. Every problem is reported, joined.
func (spec Spec) definition() (Definition, error) {
	var errs []error
	d := Definition{Name: spec.Name, Query: spec.Query, PassElsewhere: spec.PassElsewhere, Owner: spec.Owner, Sandbox: spec.Sandbox}
	if !validName(spec.Name) {
		errs = append(errs, fmt.Errorf("invalid secret name %q: use 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit", spec.Name))
	}
	svc, builtin := LookupService(spec.Name)
	switch {
	case len(spec.Targets) > 0:
		d.Targets = normalTargets(spec.Targets)
		errs = append(errs, checkTargets(d.Targets)...)
	case builtin:
		d.Service, d.Targets = svc.Name, svc.Targets
	default:
		errs = append(errs, fmt.Errorf("%q is not a built-in service (%s): give its hosts and header", spec.Name, serviceNames()))
	}
	d.Env = spec.Env
	if d.Env == "" && builtin && len(spec.Targets) == 0 {
		d.Env = svc.Env
	} else if d.Env == "" {
		d.Env = strings.ReplaceAll(strings.ToUpper(spec.Name), "-", "_")
		if !validEnv(d.Env) {
			errs = append(errs, fmt.Errorf("%q is not a valid variable name for the placeholder: give one (env)", d.Env))
		}
	} else if !validEnv(d.Env) {
		errs = append(errs, fmt.Errorf("invalid variable name %q: use letters, digits and '_', not starting with a digit", d.Env))
	}
	src, err := spec.source()
	if err != nil {
		errs = append(errs, err)
	}
	d.Source = src
	return d, errors.Join(errs...)
}

// source checks the spec's source and value.
func (spec Spec) source() (Source, error) {
	s := spec.Source
	switch s.Kind {
	case FromStdin, FromEnv:
		if s.Kind == FromEnv && !validEnv(s.Env) {
			return s, fmt.Errorf("invalid host variable name %q", s.Env)
		}
		if s.Command != "" || s.Cache != 0 {
			return s, errors.New("a command and a cache time go only with a command source")
		}
		if s.Kind == FromStdin {
			s.Env = ""
		}
		return Source{Kind: s.Kind, Env: s.Env}, checkValue(spec.Value)
	case FromCommand:
		switch {
		case strings.TrimSpace(s.Command) == "":
			return s, errors.New("the command is empty")
		case strings.ContainsRune(s.Command, 0):
			return s, errors.New("the command has a NUL byte")
		case spec.Value != "":
			return s, errors.New("a command source takes no value: the command gives it")
		}
		switch {
		case s.Cache == 0:
			s.Cache = Duration(DefaultCache)
		case s.Cache < 0:
			s.Cache = 0
		}
		return Source{Kind: FromCommand, Command: s.Command, Cache: s.Cache}, nil
	}
	return s, fmt.Errorf("unknown value source %q: want %s, %s or %s", s.Kind, FromStdin, FromEnv, FromCommand)
}

// checkValue refuses values that cannot go in an HTTP header, never
// quoting the value.
func checkValue(v string) error {
	switch {
	case v == "":
		return errors.New("the value is empty")
	case len(v) > MaxValue:
		return fmt.Errorf("the value is longer than %d bytes", MaxValue)
	case strings.ContainsAny(v, "\n\r"):
		return errors.New("the value has a line break: a header cannot carry one")
	case strings.ContainsRune(v, 0):
		return errors.New("the value has a NUL byte")
	case !headerValue(v):
		return errors.New("the value has a control character: a header cannot carry one")
	}
	return nil
}

// normalTargets returns ts with hosts in lower case without a trailing dot.
func normalTargets(ts []Target) []Target {
	out := cloneTargets(ts)
	for i := range out {
		for j, h := range out[i].Hosts {
			h = strings.ToLower(strings.TrimSuffix(h, ":443"))
			name, port, hasPort := strings.Cut(h, ":")
			if name = strings.TrimSuffix(name, "."); hasPort {
				name += ":" + port
			}
			out[i].Hosts[j] = name
		}
		if out[i].BasicUser != "" && out[i].Header == "" {
			out[i].Header = "Authorization"
		}
		if out[i].Format == "%s" {
			out[i].Format = ""
		}
	}
	return out
}

// forbiddenHeaders would change how a request is framed or routed.
var forbiddenHeaders = []string{"host", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer", "keep-alive", "proxy-connection"}

func checkTargets(ts []Target) []error {
	var errs []error
	seen := map[string]bool{}
	for _, t := range ts {
		if len(t.Hosts) == 0 {
			errs = append(errs, errors.New("a target without hosts"))
		}
		for _, h := range t.Hosts {
			if err := checkHost(h); err != nil {
				errs = append(errs, err)
			} else if seen[h] {
				errs = append(errs, fmt.Errorf("host %s is given twice", h))
			}
			seen[h] = true
		}
		switch {
		case t.Header == "":
			errs = append(errs, errors.New("no header: say which header carries the value"))
		case !token(t.Header):
			errs = append(errs, fmt.Errorf("invalid header name %q: use letters, digits and !#$%%&'*+-.^_`|~", t.Header))
		case containsFold(forbiddenHeaders, t.Header):
			errs = append(errs, fmt.Errorf("header %s cannot carry a secret: it frames or routes the request", t.Header))
		}
		if t.BasicUser != "" {
			if t.Format != "" {
				errs = append(errs, errors.New("basic auth takes no format: the header is Basic base64(user:value)"))
			}
			if strings.ContainsRune(t.BasicUser, ':') || !headerValue(t.BasicUser) {
				errs = append(errs, fmt.Errorf("invalid basic auth user %q: no ':' or control characters", t.BasicUser))
			}
			continue
		}
		if t.Format != "" && strings.Count(t.Format, "%s") != 1 {
			errs = append(errs, fmt.Errorf("format %q must hold %%s exactly once, where the value goes", t.Format))
		} else if !headerValue(t.Format) {
			errs = append(errs, fmt.Errorf("format %q has a control character", t.Format))
		}
	}
	return errs
}

// checkHost accepts a DNS name of labels of letters, digits, '-' and '_'
// (as the network policy does), or *.NAME for the names under it, with
// :PORT for a port other than 443
// (HostKey); not an IP address, which TLS SNI, on which the host side
// matches, never carries, and not port 80, whose plain HTTP never gets a
// secret.
func checkHost(hp string) error {
	h, port, hasPort := strings.Cut(hp, ":")
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil || n == 0 || strconv.FormatUint(n, 10) != port:
			return fmt.Errorf("invalid host %q: want NAME or NAME:PORT, a port from 1 to 65535", hp)
		case n == 80:
			return fmt.Errorf("host %q: port 80 is plain HTTP, where a secret would go in clear text; secrets go only over TLS", hp)
		}
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return fmt.Errorf("host %q is an address: give the name clients connect to", hp)
	}
	h = strings.TrimPrefix(h, "*.") // the names under h
	if h == "" || len(h) > 253 {
		return fmt.Errorf("invalid host %q: empty or longer than 253 characters", hp)
	}
	for _, l := range strings.Split(h, ".") {
		if !label.Hostname(strings.ReplaceAll(l, "_", "a")) {
			return fmt.Errorf("invalid host %q: want a name such as api.example.com or *.example.com (:PORT after it for a port other than 443)", hp)
		}
	}
	return nil
}

func validName(s string) bool { return label.Name(s) }

func validEnv(s string) bool {
	if s == "" || '0' <= s[0] && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || '0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// token reports whether s is an HTTP token (RFC 9110 5.6.2), as header
// names must be.
func token(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// headerValue reports whether s has no control character but tab.
func headerValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func serviceNames() string {
	names := make([]string, len(services))
	for i, s := range services {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}
