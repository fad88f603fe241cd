package template

import (
	"path/filepath"
	"strings"
)

// ModuleName is the canonical name of a module file or name: base name
// without .ko, '-' as '_' (the kernel treats them alike).
func ModuleName(s string) string {
	s = filepath.Base(s)
	s = strings.TrimSuffix(s, ".ko")
	return strings.ReplaceAll(s, "-", "_")
}
