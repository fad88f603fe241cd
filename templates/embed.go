// Package templates holds paddock's template recipes: one commented YAML
// file per template, embedded into the binary. default.yaml-style comments
// in debian.yaml document every field and its default.
package templates

import "embed"

// FS holds every recipe, named NAME.yaml.
//
//go:embed *.yaml
var FS embed.FS
