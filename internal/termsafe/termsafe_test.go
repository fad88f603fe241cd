package termsafe

import (
	"bytes"
	"testing"
)

func TestEscape(t *testing.T) {
	for in, want := range map[string]string{
		"plain text\tand a tab\n":       "plain text\tand a tab\n",
		"\x1b]0;pwned\x07title":         `\x1b]0;pwned\x07title`,
		"\x1b[2J\x1b[Hclear":            `\x1b[2J\x1b[Hclear`,
		"over\rwrite":                   `over\x0dwrite`,
		"c1 csi \u009b31m red":          `c1 csi \u009b31m red`,
		"accents été ü, and \u00a0nbsp": "accents été ü, and \u00a0nbsp",
		"del\x7f":                       `del\x7f`,
	} {
		if got := Escape(in); got != want {
			t.Errorf("Escape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEscaperAcrossWrites(t *testing.T) {
	var b bytes.Buffer
	e := &escaper{w: &b}
	csi := []byte("\u009b")
	for _, p := range [][]byte{[]byte("a"), csi[:1], append(csi[1:], 'b'), []byte("é"[:1]), []byte("é"[1:])} {
		if n, err := e.Write(p); err != nil || n != len(p) {
			t.Fatalf("Write(%q) = %d, %v", p, n, err)
		}
	}
	if got, want := b.String(), `a\u009bbé`; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
