// Package apikey keeps the API keys of paddock serve: each key is shown once
// when made and stored only as its SHA-256, in PADDOCK_HOME (0600).
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/label"
	"github.com/paddock-dev/paddock/internal/store"
)

// Prefix starts every key: the E2B SDKs accept keys of the form
// "e2b_" + hex, so paddock's keys take that form.
const Prefix = "e2b_"

// keyBytes is a key's random part, in bytes (40 hex digits).
const keyBytes = 20

// Key is one stored key: never the key itself.
type Key struct {
	Name    string    `json:"name"`
	Hash    string    `json:"sha256"` // hex
	Created time.Time `json:"created"`
}

// Store is the keys file of one PADDOCK_HOME. Its methods are safe for
// concurrent use by one process; the file is rewritten atomically.
type Store struct {
	path string
	mu   sync.Mutex // guards reads and rewrites of path
}

// Open returns the key store of home.
func Open(home store.Home) *Store {
	return &Store{path: home.APIKeys()}
}

func (s *Store) readLocked() ([]Key, error) {
	var keys []Key
	err := store.ReadJSON(s.path, &keys)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return keys, err
}

// Create makes a key named name and returns it: the only time it is seen.
func (s *Store) Create(name string) (string, error) {
	if !label.Name(name) {
		return "", fmt.Errorf("invalid key name %q: use lowercase letters, digits and '-', starting with a letter or digit (at most 63)", name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := s.readLocked()
	if err != nil {
		return "", err
	}
	if slices.ContainsFunc(keys, func(k Key) bool { return k.Name == name }) {
		return "", fmt.Errorf("a key named %q exists: remove it first (paddock apikey rm %s)", name, name)
	}
	b := make([]byte, keyBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	key := Prefix + hex.EncodeToString(b)
	keys = append(keys, Key{Name: name, Hash: hash(key), Created: time.Now().UTC().Round(time.Second)})
	return key, store.WriteJSON(s.path, keys)
}

// List returns the stored keys, without their values.
func (s *Store) List() ([]Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.readLocked()
}

// Remove deletes the key named name.
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := s.readLocked()
	if err != nil {
		return err
	}
	i := slices.IndexFunc(keys, func(k Key) bool { return k.Name == name })
	if i < 0 {
		return fmt.Errorf("no API key named %q (see paddock apikey ls)", name)
	}
	return store.WriteJSON(s.path, slices.Delete(keys, i, i+1))
}

// Verify returns the name of the key key, or false. Every stored hash is
// compared in constant time.
func (s *Store) Verify(key string) (string, bool) {
	keys, err := s.List()
	if err != nil {
		return "", false
	}
	h := []byte(hash(key))
	name, ok := "", false
	for _, k := range keys {
		if subtle.ConstantTimeCompare(h, []byte(k.Hash)) == 1 {
			name, ok = k.Name, true
		}
	}
	return name, ok
}

func hash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}
