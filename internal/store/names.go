package store

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"github.com/paddock-dev/paddock/internal/label"
)

// ValidateName checks a sandbox or template name.
func ValidateName(name string) error {
	if !label.Name(name) {
		return fmt.Errorf("invalid name %q: use 1-63 characters of a-z, 0-9 and '-', starting with a letter or digit", name)
	}
	return nil
}

var (
	adjectives = []string{"amber", "brisk", "calm", "dapper", "eager", "fuzzy", "gentle", "hazel", "icy", "jolly", "keen", "lucid", "mellow", "nimble", "olive", "plucky", "quiet", "rustic", "sunny", "tidy", "upbeat", "vivid", "witty", "zesty"}
	nouns      = []string{"badger", "colt", "dingo", "egret", "ferret", "gecko", "heron", "ibex", "jackal", "koala", "lemur", "marten", "newt", "otter", "pony", "quail", "raven", "stoat", "tapir", "urchin", "vole", "walrus", "yak", "zebra"}
)

func pick(words []string) string {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(len(words))))
	if err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return words[n.Int64()]
}

// GenerateName returns a readable name such as "plucky-otter-42".
func GenerateName() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(100))
	return pick(adjectives) + "-" + pick(nouns) + "-" + strconv.FormatInt(n.Int64(), 10)
}

// ParseSize parses a memory or disk size: a number of bytes, or a number
// with a K, M, G or T suffix (powers of 1024, an optional trailing "i"/"iB"/"B").
func ParseSize(s string) (int64, error) {
	orig := s
	s = strings.TrimSpace(strings.ToUpper(s))
	s = strings.TrimSuffix(s, "B")
	s = strings.TrimSuffix(s, "I")
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'K':
			mult = 1 << 10
		case 'M':
			mult = 1 << 20
		case 'G':
			mult = 1 << 30
		case 'T':
			mult = 1 << 40
		}
		if mult != 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q: use a positive number with an optional suffix, such as 512M or 2G", orig)
	}
	if n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q: too large", orig)
	}
	return n * mult, nil
}

// FormatSize prints bytes with a binary suffix: 2G, 512M, 1536K.
func FormatSize(n int64) string {
	for _, u := range []struct {
		s string
		v int64
	}{{"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n >= u.v && n%u.v == 0 {
			return strconv.FormatInt(n/u.v, 10) + u.s
		}
	}
	if n >= 1<<20 {
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + "M"
	}
	return strconv.FormatInt(n, 10)
}
