package template

import "testing"

func TestOpenErrors(t *testing.T) {
	home := t.TempDir()
	if _, err := Open(home, "x"); err == nil || err.Error() != `unknown template "x" (known: claude, codex, debian, gemini, tiny)` {
		t.Errorf("unknown: %v", err)
	}
	if _, err := Open(home, "tiny"); err == nil || err.Error() != `template "tiny" is not built: run "paddock template build tiny"` {
		t.Errorf("not built: %v", err)
	}
}
