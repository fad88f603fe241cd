// Package termsafe keeps bytes a guest controls from driving the host's
// terminal: an escape sequence in a command's output, a log line or an
// error message could otherwise move the cursor, rewrite what is on the
// screen, set the window title or make some terminals answer with input.
// Control characters other than tab and newline are shown as \xNN
// (C1 controls, U+0080 to U+009F, as \u00NN) unless the user asked for
// a real terminal (paddock exec -t).
package termsafe

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// Escape returns s safe to print on a terminal.
func Escape(s string) string {
	var b strings.Builder
	e := escaper{w: &b}
	e.Write([]byte(s))
	e.flush()
	return b.String()
}

// Writer returns f when it is not a terminal (a file or a pipe keeps the
// bytes as they are), else a writer that escapes what it writes.
func Writer(f *os.File) io.Writer {
	if !term.IsTerminal(int(f.Fd())) {
		return f
	}
	return &escaper{w: f}
}

// escaper escapes a byte stream. A 0xC2 at the end of one write (the
// first byte of a C1 control in UTF-8) waits for the next.
type escaper struct {
	mu      sync.Mutex
	w       io.Writer
	pending bool // guarded by mu: the last write ended in 0xC2
}

func (e *escaper) Write(p []byte) (int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]byte, 0, len(p)+16)
	if e.pending {
		// Finish the C1 control begun by the last write; the count
		// returned is of the caller's bytes.
		e.pending = false
		n, err := e.write(out, append([]byte{0xC2}, p...))
		return max(0, n-1), err
	}
	return e.write(out, p)
}

func (e *escaper) write(out, p []byte) (int, error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == 0xC2 && i+1 == len(p):
			e.pending = true
		case c == 0xC2 && p[i+1] >= 0x80 && p[i+1] <= 0x9F:
			out = fmt.Appendf(out, `\u00%02x`, p[i+1])
			i++
		case c == '\t' || c == '\n':
			out = append(out, c)
		case c < 0x20 || c == 0x7F:
			out = fmt.Appendf(out, `\x%02x`, c)
		default:
			out = append(out, c)
		}
	}
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes a 0xC2 still waiting (escaped: alone it is not text).
func (e *escaper) flush() {
	if e.pending {
		e.pending = false
		e.w.Write([]byte(`\xc2`))
	}
}
