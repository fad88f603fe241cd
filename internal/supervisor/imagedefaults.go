package supervisor

import (
	"strings"
	"sync"

	"github.com/paddock-dev/paddock/internal/template"
)

// imageDefaults are the exec defaults of a sandbox made from an imported
// OCI image: the image's Env (under the sandbox's -e and the exec's own),
// WorkingDir (else the workspace) and User (else root). A recipe template
// has none: its execs default to the workspace and the agent user.
type imageDefaults struct {
	once sync.Once
	img  *template.ImageInfo // nil for a recipe template; set once
}

// get reads the template's image metadata on first use.
func (d *imageDefaults) get(s *sup) *template.ImageInfo {
	d.once.Do(func() {
		if t, err := template.Open(string(s.opts.Home), s.cfg.Template); err == nil {
			d.img = t.Image
		}
	})
	return d.img
}

// imageUser is the exec user for an image's User: its user part ("1000"
// of "1000:1000"; the group comes from the account files), or uid 0 when
// the image names none (uid, not "root": an image may have no
// /etc/passwd).
func imageUser(u string) string {
	name, _, _ := strings.Cut(u, ":")
	if name == "" {
		return "0"
	}
	return name
}
