package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// keySize is the length of the sealing key: AES-256.
const keySize = 32

// errNoKey is returned, wrapped, when the key file is missing.
var errNoKey = errors.New("the key file is missing")

// readKey reads the key file at path.
func readKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", path, errNoKey)
	}
	if err != nil {
		return nil, err
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("key file %s is damaged (%d bytes, want %d)", path, len(key), keySize)
	}
	return key, nil
}

// ensureKey returns the key at path, making it first if there is none.
// It is made under a temporary name and linked into place, which fails if
// a key appeared meanwhile: an existing key is never replaced. Callers
// hold the store's lock, so that does not happen among paddock processes.
func ensureKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, errNoKey) {
		return key, err
	}
	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".key.tmp*")
	if err != nil {
		return nil, err
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(key)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path)
	}
	if errors.Is(err, fs.ErrExist) {
		return readKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("make key file %s: %w", path, err)
	}
	return key, syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// seal encrypts value with AES-256-GCM under key, with a random nonce and
// the secret's name as additional data (so a sealed value moved to another
// secret does not open). The result is base64(nonce || ciphertext).
func seal(key []byte, name, value string) (string, error) {
	aead, err := gcm(key)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(value)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	out := aead.Seal(nonce, nonce, []byte(value), aad(name))
	return base64.StdEncoding.EncodeToString(out), nil
}

// unseal reverses seal.
func unseal(key []byte, name, sealed string) (string, error) {
	aead, err := gcm(key)
	if err != nil {
		return "", err
	}
	b, err := base64.StdEncoding.DecodeString(sealed)
	if err != nil || len(b) < aead.NonceSize()+aead.Overhead() {
		return "", errors.New("its sealed value is damaged")
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, b[:n], b[n:], aad(name))
	if err != nil {
		return "", errors.New("its value does not open with the key file: the key was replaced, or the value was damaged")
	}
	return string(plain), nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func aad(name string) []byte { return []byte("paddock-secret/v1/" + name) }
