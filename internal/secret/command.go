package secret

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// CommandTimeout is how long a value's command may run.
const CommandTimeout = 30 * time.Second

// maxStderr is how much of a command's stderr is kept for its error.
const maxStderr = 4 << 10

// cached is a command's value and what it was got for.
type cached struct {
	value       string
	placeholder string    // the definition's, with updated: a set again
	updated     time.Time // or a remove and set makes a new entry
	at          time.Time
}

// commandValue returns the value of d, a FromCommand definition: from the
// cache while it is fresh, else by running the command. One command per
// secret runs at a time; callers that waited for it use its value.
func (s *Store) commandValue(ctx context.Context, d Definition) (string, error) {
	sem := s.flight(d.Name)
	select {
	case sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-sem }()

	if v, ok := s.fromCache(d); ok {
		return v, nil
	}
	v, err := runCommand(ctx, d.Source.Command, s.timeout)
	if err != nil {
		return "", err
	}
	if d.Source.Cache > 0 {
		s.mu.Lock()
		s.cache[d.Name] = cached{value: v, placeholder: d.Placeholder, updated: d.Updated, at: s.now()}
		s.mu.Unlock()
	}
	return v, nil
}

// flight returns the semaphore that serialises name's command.
func (s *Store) flight(name string) chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	sem, ok := s.inflight[name]
	if !ok {
		sem = make(chan struct{}, 1)
		s.inflight[name] = sem
	}
	return sem
}

func (s *Store) fromCache(d Definition) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[d.Name]
	if !ok || c.placeholder != d.Placeholder || !c.updated.Equal(d.Updated) || s.now().Sub(c.at) >= time.Duration(d.Source.Cache) {
		return "", false
	}
	return c.value, true
}

// forget drops name's cached value.
func (s *Store) forget(name string) {
	s.mu.Lock()
	delete(s.cache, name)
	s.mu.Unlock()
}

// runCommand runs command with sh -c, stdin empty, in a process group of
// its own that is killed whole when it overruns timeout or ctx ends. Its
// stdout, less one trailing newline, is the value; its errors carry the
// first line of its stderr, never its stdout.
func runCommand(parent context.Context, command string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	var stdout, stderr capped
	stdout.max, stderr.max = MaxValue+2, maxStderr
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second // a child left holding stdout does not hold us
	err := cmd.Run()
	what := fmt.Sprintf("command %q", command)
	switch {
	case parent.Err() != nil:
		return "", fmt.Errorf("%s: %w", what, parent.Err())
	case ctx.Err() != nil:
		return "", fmt.Errorf("%s did not finish within %v", what, timeout)
	case err != nil:
		if line := firstLine(stderr.String()); line != "" {
			return "", fmt.Errorf("%s failed (%v): %s", what, err, line)
		}
		return "", fmt.Errorf("%s failed (%v) and wrote nothing to stderr", what, err)
	case stdout.over:
		return "", fmt.Errorf("%s printed more than %d bytes: not a secret value", what, MaxValue)
	}
	v := strings.TrimSuffix(stdout.String(), "\n")
	v = strings.TrimSuffix(v, "\r")
	if err := checkValue(v); err != nil {
		return "", fmt.Errorf("%s printed an unusable value: %w", what, err)
	}
	return v, nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSpace(s)
}

// capped keeps the first max bytes written to it and notes whether more
// came; it never fails a write, so the command is not killed by a pipe.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.buf.Write(p[:max(room, 0)])
		c.over = true
	} else {
		c.buf.Write(p)
	}
	return len(p), nil
}

func (c *capped) String() string { return c.buf.String() }
