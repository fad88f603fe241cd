package recipe

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// NpmPackage is one entry of a recipe's npm list: a package at an exact
// version, and the integrity of its tarball as the registry publishes it
// (the version's dist.integrity, "sha512-" and the base64 of its SHA-512).
// The build refuses a tarball that does not match.
type NpmPackage struct {
	Package   string `yaml:"package" json:"package"`
	Version   string `yaml:"version" json:"version"`
	Integrity string `yaml:"integrity" json:"integrity"`
}

// String is the package as npm names it: name@version.
func (p NpmPackage) String() string { return p.Package + "@" + p.Version }

// UnmarshalYAML reads a mapping with the fields package, version and
// integrity. A plain string ("name" or "name@1.2.3") is read too, so that
// validation can say what it lacks rather than fail on its type.
func (p *NpmPackage) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s := n.Value
		if i := strings.LastIndex(s, "@"); i > 0 {
			p.Package, p.Version = s[:i], s[i+1:]
		} else {
			p.Package = s
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: an npm entry is a mapping with package, version and integrity", n.Line)
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		var dst *string
		switch k.Value {
		case "package":
			dst = &p.Package
		case "version":
			dst = &p.Version
		case "integrity":
			dst = &p.Integrity
		default:
			return fmt.Errorf("line %d: field %s not found in an npm entry (package, version, integrity)", k.Line, k.Value)
		}
		if v.Kind != yaml.ScalarNode {
			return fmt.Errorf("line %d: npm %s: want a string", v.Line, k.Value)
		}
		*dst = v.Value
	}
	return nil
}

var (
	// npmNameRE is an npm package name, scoped or not.
	npmNameRE = regexp.MustCompile(`^(@[a-z0-9][a-z0-9._~-]*/)?[a-z0-9][a-z0-9._~-]*$`)
	// exactVersionRE is a semantic version without ranges or tags.
	exactVersionRE = regexp.MustCompile(`^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)
)

// validate reports what is wrong with entry i of npm, each problem with
// the command that looks the right value up.
func (p NpmPackage) validate(i int) []error {
	var errs []error
	bad := func(format string, a ...any) {
		errs = append(errs, fmt.Errorf("npm[%d] %q: %s", i, p.Package, fmt.Sprintf(format, a...)))
	}
	if !npmNameRE.MatchString(p.Package) {
		bad("package is not an npm package name such as name or @scope/name")
		return errs
	}
	switch {
	case p.Version == "":
		bad("version is missing: give an exact version such as 1.2.3 (npm view %s version)", p.Package)
	case !exactVersionRE.MatchString(p.Version):
		bad("version %q is not an exact version such as 1.2.3: ranges and tags are refused (npm view %s version)", p.Version, p.Package)
	}
	want := fmt.Sprintf("npm view %s@%s dist.integrity", p.Package, p.Version)
	if p.Integrity == "" {
		bad("integrity is missing: give the registry's sha512-... of the tarball (%s)", want)
	} else if _, err := ParseIntegrity(p.Integrity); err != nil {
		bad("integrity: %v (%s)", err, want)
	}
	return errs
}

// ParseIntegrity returns the SHA-512 digest of a Subresource Integrity
// string "sha512-BASE64", the form npm's dist.integrity takes. Other
// algorithms (npm's old sha1 shasum) are refused.
func ParseIntegrity(s string) ([]byte, error) {
	b64, ok := strings.CutPrefix(s, "sha512-")
	if !ok {
		return nil, fmt.Errorf("%q is not a sha512-... integrity", s)
	}
	sum, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(sum) != 64 {
		return nil, fmt.Errorf("%q is not a sha512-... integrity: want 64 bytes in base64", s)
	}
	return sum, nil
}
