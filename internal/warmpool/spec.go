package warmpool

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/paddock-dev/paddock/internal/store"
)

// MaxPerTemplate bounds N in --warm TEMPLATE=N: each idle clone is a
// running VM (about 140 MiB of host memory and a periodic guest tick).
const MaxPerTemplate = 16

// Spec is how many idle clones to keep per template.
type Spec map[string]int

// ParseSpec parses --warm: "TEMPLATE=N[,TEMPLATE=N...]", each template once,
// N from 1 to MaxPerTemplate. It reports every problem at once. An empty
// string is an empty spec (no pool).
func ParseSpec(s string) (Spec, error) {
	out := Spec{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	var errs []error
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		name, num, ok := strings.Cut(item, "=")
		if !ok || name == "" || num == "" {
			errs = append(errs, fmt.Errorf("--warm %q: use TEMPLATE=N, such as tiny=2", item))
			continue
		}
		if err := store.ValidateName(name); err != nil {
			errs = append(errs, fmt.Errorf("--warm %q: %w", item, err))
			continue
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > MaxPerTemplate {
			errs = append(errs, fmt.Errorf("--warm %q: N must be a whole number from 1 to %d (each is a running VM)", item, MaxPerTemplate))
			continue
		}
		if _, dup := out[name]; dup {
			errs = append(errs, fmt.Errorf("--warm: template %q is named twice", name))
			continue
		}
		out[name] = n
	}
	return out, errors.Join(errs...)
}

// Alias renames template alias (E2B's "base") to target, refusing a spec
// that names both.
func (s Spec) Alias(alias, target string) error {
	n, ok := s[alias]
	if !ok || alias == target {
		return nil
	}
	if _, both := s[target]; both {
		return fmt.Errorf("--warm names both %s and %s, which is the same template", alias, target)
	}
	delete(s, alias)
	s[target] = n
	return nil
}

// String is the spec as --warm takes it, templates sorted.
func (s Spec) String() string {
	names := make([]string, 0, len(s))
	for t := range s {
		names = append(names, t)
	}
	slices.Sort(names)
	for i, t := range names {
		names[i] = t + "=" + strconv.Itoa(s[t])
	}
	return strings.Join(names, ",")
}
