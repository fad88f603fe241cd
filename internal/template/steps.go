package template

import (
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Steps runs the named steps of one build, import or save, printing each
// as it starts and its duration when done:
//
//	[tiny] fetching kernel linux-image-6.1.0-56-amd64 ... 3.2s
type Steps struct {
	Name string // the template, in brackets on every line
	Out  io.Writer
	Log  *slog.Logger
}

// Run runs fn as the step what.
func (s *Steps) Run(what string, fn func() error) error {
	fmt.Fprintf(s.Out, "[%s] %s ... ", s.Name, what)
	start := time.Now()
	err := fn()
	d := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		fmt.Fprintf(s.Out, "failed after %s\n", d)
		s.Log.Debug("template step failed", "template", s.Name, "step", what, "duration", d, "err", err)
		return err
	}
	fmt.Fprintf(s.Out, "%.1fs\n", d.Seconds())
	s.Log.Debug("template step done", "template", s.Name, "step", what, "duration", d)
	return nil
}

// Note prints a line that is not a timed step.
func (s *Steps) Note(format string, a ...any) {
	fmt.Fprintf(s.Out, "[%s] %s\n", s.Name, fmt.Sprintf(format, a...))
}
