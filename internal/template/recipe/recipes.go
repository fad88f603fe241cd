package recipe

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	"github.com/paddock-dev/paddock/internal/label"
	"github.com/paddock-dev/paddock/templates"
)

// BuilderVersion is part of every recipe hash: bump it when a change to the
// builder changes what it produces, so built templates are rebuilt.
const BuilderVersion = 1

// Names lists the known recipes, sorted.
func Names() []string {
	entries, _ := fs.ReadDir(templates.FS, ".")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// Load parses the embedded recipe called name.
func Load(name string) (*Recipe, error) {
	if !label.Name(name) {
		return nil, unknownError(name)
	}
	data, err := fs.ReadFile(templates.FS, name+".yaml")
	if err != nil {
		return nil, unknownError(name)
	}
	r, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("recipe templates/%s.yaml: %w", name, err)
	}
	if r.Name != name {
		return nil, fmt.Errorf("recipe templates/%s.yaml: name %q must be %q", name, r.Name, name)
	}
	return r, nil
}

func unknownError(name string) error {
	return fmt.Errorf("unknown template %q (known: %s)", name, strings.Join(Names(), ", "))
}

// Hash identifies what a build of r produces: the defaulted recipe in a
// canonical form (so comments, order and spelled-out defaults do not count)
// plus BuilderVersion.
func (r *Recipe) Hash() string {
	canon, err := json.Marshal(struct {
		Builder int     `json:"builder"`
		Recipe  *Recipe `json:"recipe"`
	}{BuilderVersion, r})
	if err != nil {
		panic(err) // plain structs always marshal
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:])
}
