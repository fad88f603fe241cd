package label

import (
	"regexp"
	"strings"
	"testing"
)

// TestMatchesTheRegexps checks each function against the regular
// expression it replaced, on hand-picked and generated strings.
func TestMatchesTheRegexps(t *testing.T) {
	cases := []struct {
		name string
		fn   func(string) bool
		re   string
	}{
		{"Name", Name, `^[a-z0-9][a-z0-9-]{0,62}$`},
		{"Hostname", Hostname, `^[A-Za-z0-9][A-Za-z0-9-]{0,62}$`},
		{"UserName", UserName, `^[a-z_][a-z0-9_-]{0,31}$`},
		{"MachineID", MachineID, `^[0-9a-f]{32}$`},
	}
	inputs := []string{"", "a", "A", "0", "-", "_", "-a", "a-", "a_b", "a.b", "a b", "é", "Ab-9", "_user", "0123456789abcdef0123456789abcdef",
		"0123456789ABCDEF0123456789abcdef", "0123456789abcdef0123456789abcde", "dev-box", "x\n", "\x00"}
	for _, n := range []int{31, 32, 33, 62, 63, 64} {
		inputs = append(inputs, strings.Repeat("a", n), strings.Repeat("f", n), "_"+strings.Repeat("b", n-1))
	}
	const alphabet = "aZ09-_.f"
	for i := 0; i < 4096; i++ { // every string of up to 4 bytes over alphabet
		var b []byte
		for j := i; j > 0; j /= len(alphabet) + 1 {
			if k := j % (len(alphabet) + 1); k > 0 {
				b = append(b, alphabet[k-1])
			}
		}
		inputs = append(inputs, string(b))
	}
	for _, c := range cases {
		re := regexp.MustCompile(c.re)
		for _, in := range inputs {
			if got, want := c.fn(in), re.MatchString(in); got != want {
				t.Errorf("%s(%q) = %v, the regexp %s says %v", c.name, in, got, c.re, want)
			}
		}
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	id := strings.Repeat("a", 32)
	if n := testing.AllocsPerRun(100, func() { Name("dev-box"); Hostname("Dev-Box"); UserName("_agent"); MachineID(id) }); n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}
