package secret

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/store"
)

// fileVersion is the format of the secrets file.
const fileVersion = 1

// file is the secrets file: the definitions, each with its sealed value.
type file struct {
	Version int      `json:"version"`
	Secrets []record `json:"secrets"`
}

// record is a stored secret. Sealed is empty for a command source.
type record struct {
	Definition
	Sealed string `json:"sealed,omitempty"`
}

// Store is the secret store of one PADDOCK_HOME.
//
// Changes (Set, Remove) take the store's file lock (store.LockFile) for
// their read-modify-write, so they are serialised across goroutines and
// processes; the file is replaced atomically, so reads (List, Get, Value)
// take no lock and see one version whole. Each call reads the files
// again: a change made by another process counts at once.
//
// Invariants: mu guards cache and inflight. A cache entry is used only for
// the definition it was got for (same placeholder and update time) and
// while younger than the definition's cache time. inflight[name] is a
// one-slot semaphore held while name's command runs.
type Store struct {
	home store.Home

	mu       sync.Mutex
	cache    map[string]cached
	inflight map[string]chan struct{}

	// For tests.
	now     func() time.Time
	timeout time.Duration
}

// Open returns the secret store of home. It touches no file: the folder
// and the key are made by the first Set that needs them.
func Open(home store.Home) *Store {
	return &Store{
		home:     home,
		cache:    map[string]cached{},
		inflight: map[string]chan struct{}{},
		now:      time.Now,
		timeout:  CommandTimeout,
	}
}

// Set stores spec: a new secret, or a new definition and value for an
// existing one, which keeps its placeholder. Bad input is refused with
// every problem joined, and changes nothing.
func (s *Store) Set(spec Spec) (Definition, error) {
	d, err := spec.definition()
	if err != nil {
		return Definition{}, fmt.Errorf("secret %q: %w", spec.Name, err)
	}
	var out Definition
	err = s.change(func(f *file) error {
		now := s.now().UTC()
		r := record{Definition: d}
		r.Created, r.Updated = now, now
		i := slices.IndexFunc(f.Secrets, func(r record) bool { return r.Name == d.Name })
		if i >= 0 {
			r.Placeholder, r.Created = f.Secrets[i].Placeholder, f.Secrets[i].Created
		} else {
			p, err := newPlaceholder(d.Name)
			if err != nil {
				return err
			}
			r.Placeholder = p
		}
		if d.Source.Kind != FromCommand {
			key, err := ensureKey(s.home.SecretsKey())
			if err != nil {
				return err
			}
			if r.Sealed, err = seal(key, d.Name, spec.Value); err != nil {
				return err
			}
		}
		if i >= 0 {
			f.Secrets[i] = r
		} else {
			f.Secrets = append(f.Secrets, r)
			slices.SortFunc(f.Secrets, func(a, b record) int { return strings.Compare(a.Name, b.Name) })
		}
		out = r.Definition
		return nil
	})
	if err != nil {
		return Definition{}, fmt.Errorf("secret %q: %w", spec.Name, err)
	}
	s.forget(d.Name)
	return out, nil
}

// Remove deletes secret name, its definition and its sealed value.
func (s *Store) Remove(name string) error {
	if _, err := s.record(name); err != nil {
		return err // checked first, so that a store that is not there is not made
	}
	err := s.change(func(f *file) error {
		i := slices.IndexFunc(f.Secrets, func(r record) bool { return r.Name == name })
		if i < 0 {
			return errNotFound(name)
		}
		f.Secrets = slices.Delete(f.Secrets, i, i+1)
		return nil
	})
	s.forget(name)
	return err
}

// RemoveSandbox deletes the secrets that belong to sandbox alone (made for
// it, such as the API's network rules), when it is removed. A store with
// none is not touched.
func (s *Store) RemoveSandbox(sandbox string) error {
	defs, err := s.List()
	if err != nil || !slices.ContainsFunc(defs, func(d Definition) bool { return d.Sandbox == sandbox }) {
		return err
	}
	return s.change(func(f *file) error {
		f.Secrets = slices.DeleteFunc(f.Secrets, func(r record) bool {
			if r.Sandbox == sandbox {
				s.forget(r.Name)
				return true
			}
			return false
		})
		return nil
	})
}

// List returns every secret's definition, by name; never a value.
func (s *Store) List() ([]Definition, error) {
	f, err := s.read()
	if err != nil {
		return nil, err
	}
	out := make([]Definition, len(f.Secrets))
	for i, r := range f.Secrets {
		out[i] = r.Definition
	}
	return out, nil
}

// Lookup returns, from one read of the store, the definitions of the
// names it has, in the order given, and the names it lacks.
func (s *Store) Lookup(names []string) (found []Definition, missing []string, err error) {
	if len(names) == 0 {
		return nil, nil, nil
	}
	f, err := s.read()
	if err != nil {
		return nil, nil, err
	}
	for _, n := range names {
		i := slices.IndexFunc(f.Secrets, func(r record) bool { return r.Name == n })
		if i < 0 {
			missing = append(missing, n)
			continue
		}
		found = append(found, f.Secrets[i].Definition)
	}
	return found, missing, nil
}

// Get returns the definition of secret name.
func (s *Store) Get(name string) (Definition, error) {
	r, err := s.record(name)
	return r.Definition, err
}

// Placeholder returns the guest's stand-in for secret name.
func (s *Store) Placeholder(name string) (string, error) {
	r, err := s.record(name)
	return r.Placeholder, err
}

// Value returns the value of secret name: its sealed value opened, or its
// command's output (cached for the definition's time). Errors never hold
// the value.
func (s *Store) Value(ctx context.Context, name string) (string, error) {
	r, err := s.record(name)
	if err != nil {
		return "", err
	}
	if r.Source.Kind == FromCommand {
		v, err := s.commandValue(ctx, r.Definition)
		if err != nil {
			return "", fmt.Errorf("secret %q: %w", name, err)
		}
		return v, nil
	}
	key, err := readKey(s.home.SecretsKey())
	if err != nil {
		return "", fmt.Errorf("secret %q: %w: set it again (paddock secret set %s ...)", name, err, name)
	}
	v, err := unseal(key, name, r.Sealed)
	if err != nil {
		return "", fmt.Errorf("secret %q: %w (key file %s): set it again (paddock secret set %s ...)", name, err, s.home.SecretsKey(), name)
	}
	return v, nil
}

func (s *Store) record(name string) (record, error) {
	f, err := s.read()
	if err != nil {
		return record{}, err
	}
	i := slices.IndexFunc(f.Secrets, func(r record) bool { return r.Name == name })
	if i < 0 {
		return record{}, errNotFound(name)
	}
	return f.Secrets[i], nil
}

// NotFound is the error for a secret the store does not have.
func NotFound(name string) error { return errNotFound(name) }

func errNotFound(name string) error {
	return fmt.Errorf("no secret named %q (see paddock secret ls)", name)
}

// read reads the secrets file; a missing one is an empty store.
func (s *Store) read() (*file, error) {
	var f file
	err := store.ReadJSON(s.home.Secrets(), &f)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &file{Version: fileVersion}, nil
	case err != nil:
		return nil, fmt.Errorf("read the secret store: %w", err)
	case f.Version != fileVersion:
		return nil, fmt.Errorf("the secret store %s has format %d; this paddock reads %d", s.home.Secrets(), f.Version, fileVersion)
	}
	return &f, nil
}

// change runs edit on the secrets file under the store's lock and writes
// the result atomically if edit succeeds; on an error nothing is written.
func (s *Store) change(edit func(*file) error) error {
	dir := s.home.SecretsDir()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	lock, err := store.LockFile(s.home.SecretsLock(), true)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	f, err := s.read()
	if err != nil {
		return err
	}
	if err := edit(f); err != nil {
		return err
	}
	return store.WriteJSON(s.home.Secrets(), f)
}

// newPlaceholder returns paddock-secret-NAME-RANDOM, RANDOM being 24
// random hex digits.
func newPlaceholder(name string) (string, error) {
	b := make([]byte, placeholderRandom/2)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return PlaceholderPrefix + name + "-" + hex.EncodeToString(b), nil
}

// Rebind is the bound list of secret names with the names of bind added
// (in order, each once) and those of unbind taken out, unbind first; a
// name to unbind that is not bound is an error.
func Rebind(bound, bind, unbind []string) ([]string, error) {
	out := slices.Clone(bound)
	for _, n := range unbind {
		i := slices.Index(out, n)
		if i < 0 {
			return nil, fmt.Errorf("secret %q is not bound to this sandbox", n)
		}
		out = slices.Delete(out, i, i+1)
	}
	for _, n := range bind {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}
