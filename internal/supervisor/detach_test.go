package supervisor

import (
	"bytes"
	"testing"

	"github.com/paddock-dev/paddock/internal/guest"
)

func TestDetachedLineIsTheAgents(t *testing.T) {
	if detachedLine != guest.DetachedLine {
		t.Fatalf("supervisor waits for %q, the agent writes %q", detachedLine, guest.DetachedLine)
	}
}

// TestConsoleWatch: the expected line is seen across writes, the output
// passes through unchanged, and another token does not count.
func TestConsoleWatch(t *testing.T) {
	var out bytes.Buffer
	c := newConsoleWatch(&out)
	seen := c.expect("paddock-agent: detached abc")
	for _, s := range []string{"boot...\npaddock-agent: deta", "ched abX\n", "paddock-agent: detached a", "bc\nmore\n"} {
		select {
		case <-seen:
			t.Fatalf("seen before %q", s)
		default:
		}
		c.Write([]byte(s))
	}
	select {
	case <-seen:
	default:
		t.Fatal("the line went by unseen")
	}
	if want := "boot...\npaddock-agent: detached abX\npaddock-agent: detached abc\nmore\n"; out.String() != want {
		t.Fatalf("output %q, want %q", out.String(), want)
	}
}
