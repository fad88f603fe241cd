package template

import (
	"fmt"
	"io"
	"log/slog"
	"time"
)

// steps runs the named steps of one build, printing each as it starts and
// its duration when done:
//
//	[tiny] fetching kernel linux-image-6.1.0-56-amd64 ... 3.2s
type steps struct {
	name string
	out  io.Writer
	log  *slog.Logger
}

func (s *steps) run(what string, fn func() error) error {
	fmt.Fprintf(s.out, "[%s] %s ... ", s.name, what)
	start := time.Now()
	err := fn()
	d := time.Since(start).Round(100 * time.Millisecond)
	if err != nil {
		fmt.Fprintf(s.out, "failed after %s\n", d)
		s.log.Debug("template step failed", "template", s.name, "step", what, "duration", d, "err", err)
		return err
	}
	fmt.Fprintf(s.out, "%.1fs\n", d.Seconds())
	s.log.Debug("template step done", "template", s.name, "step", what, "duration", d)
	return nil
}

// note prints a line that is not a timed step.
func (s *steps) note(format string, a ...any) {
	fmt.Fprintf(s.out, "[%s] %s\n", s.name, fmt.Sprintf(format, a...))
}
