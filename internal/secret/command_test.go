package secret

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func commandSpec(name, command string, cache time.Duration) Spec {
	return Spec{Name: name, Targets: custom([]string{"a.test"}, "X-K", "", ""), Source: Source{Kind: FromCommand, Command: command, Cache: Duration(cache)}}
}

func TestCommandCache(t *testing.T) {
	s, _ := newStore(t)
	clock := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s.now = func() time.Time { return clock }
	count := filepath.Join(t.TempDir(), "count")
	// Each run appends a line to count and prints the number of lines.
	cmd := fmt.Sprintf("echo >>%s; printf 'tok-%%s\\n' $(wc -l <%s)", count, count)
	mustSet(t, s, commandSpec("c", cmd, time.Minute))
	ctx := context.Background()
	value := func(want string) {
		t.Helper()
		if v, err := s.Value(ctx, "c"); err != nil || v != want {
			t.Fatalf("Value = %q, %v; want %q", v, err, want)
		}
	}
	value("tok-1") // one trailing newline is trimmed
	value("tok-1") // cached
	clock = clock.Add(59 * time.Second)
	value("tok-1")
	clock = clock.Add(time.Second)
	value("tok-2") // expired
	// Concurrent callers run the command once.
	clock = clock.Add(time.Hour)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if v, err := s.Value(ctx, "c"); err != nil || v != "tok-3" {
				t.Errorf("concurrent Value = %q, %v", v, err)
			}
		}()
	}
	wg.Wait()
	// Set again (even with the same command) drops the cached value.
	mustSet(t, s, commandSpec("c", cmd, time.Minute))
	value("tok-4")
	// No cache: every call runs it.
	mustSet(t, s, commandSpec("c", cmd, -1))
	value("tok-5")
	value("tok-6")
}

func TestCommandFailure(t *testing.T) {
	s, _ := newStore(t)
	s.timeout = 300 * time.Millisecond
	ctx := context.Background()
	for _, c := range []struct {
		command string
		want    []string
	}{
		{"echo the-secret-value; echo 'gh: not logged in' >&2; echo second line >&2; exit 3", []string{`command "echo the-secret-value`, "exit status 3", "gh: not logged in"}},
		{"echo the-secret-value; exit 1", []string{"exit status 1", "wrote nothing to stderr"}},
		{"true", []string{"printed an unusable value", "empty"}},
		{"printf 'the-secret-value\\n\\n'", []string{"line break"}},
		{"printf 'a\\nthe-secret-value'", []string{"line break"}},
		{"head -c 70000 /dev/zero | tr '\\0' x", []string{"more than"}},
		{"sleep 30", []string{"did not finish within 300ms"}},
		// A child that keeps stdout open is killed with its group.
		{"(sleep 30; echo late) & echo the-secret-value; sleep 30", []string{"did not finish"}},
		{"exec /nonexistent/cmd", []string{"exit status 127", "/nonexistent/cmd"}},
	} {
		mustSet(t, s, commandSpec("c", c.command, time.Minute))
		start := time.Now()
		v, err := s.Value(ctx, "c")
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("%q took %v", c.command, took)
		}
		if err == nil {
			t.Errorf("%q: value %q", c.command, v)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), fmt.Sprintf("%q", c.command), "COMMAND")
		for _, w := range c.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q lacks %q", c.command, err, w)
			}
		}
		if strings.Contains(msg, "the-secret-value") || strings.Contains(msg, "second line") || strings.Contains(msg, "xxxx") {
			t.Errorf("%q: error holds output: %q", c.command, err)
		}
	}
	// Failures are not cached: a fixed command works at once.
	mustSet(t, s, commandSpec("c", "echo ok", time.Minute))
	if v, err := s.Value(ctx, "c"); err != nil || v != "ok" {
		t.Errorf("after failures: %q, %v", v, err)
	}
	// A cancelled context stops the command.
	mustSet(t, s, commandSpec("c", "sleep 30", time.Minute))
	s.timeout = time.Minute
	cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := s.Value(cctx, "c"); err == nil || !strings.Contains(err.Error(), "context deadline exceeded") {
		t.Errorf("cancelled: %v", err)
	}
}

// The command's environment is the caller's; its stdin is empty.
func TestCommandEnvironment(t *testing.T) {
	s, _ := newStore(t)
	t.Setenv("PADDOCK_TEST_TOKEN", "from-env")
	mustSet(t, s, commandSpec("c", `read x; printf '%s%s' "$PADDOCK_TEST_TOKEN" "$x"`, time.Minute))
	if v, err := s.Value(context.Background(), "c"); err != nil || v != "from-env" {
		t.Errorf("Value = %q, %v", v, err)
	}
}
