package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// browser is a headless Chromium (Debian's chromium, installed by make
// test's test-deps) driven over the DevTools protocol, with a folder for
// its screenshots: $PADDOCK_TEST_ARTIFACTS, else a new one under the
// system's temporary folder, kept after the test.
type browser struct {
	t         testing.TB
	ctx       context.Context
	artifacts string
	shots     *[]string
	dialogs   *atomic.Int32 // JavaScript dialogs (alert, confirm) the pages opened
}

func newBrowser(t testing.TB) *browser {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("chromium not found: make test installs it (apt-get install chromium)")
	}
	dir := os.Getenv("PADDOCK_TEST_ARTIFACTS")
	if dir == "" {
		dir, err = os.MkdirTemp("", "paddock-dashboard-")
	} else {
		dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
		err = os.MkdirAll(dir, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1400, 900),
		chromedp.Flag("user-data-dir", filepath.Join(dir, "profile")))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &browser{t: t, artifacts: dir, shots: new([]string), dialogs: new(atomic.Int32)}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithListener(func(ev any) {
		if _, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			b.dialogs.Add(1)
			go chromedp.Do(b.ctx, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
				_, err := cdp.Call(ctx, t, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{})
				return err
			}))
		}
	}))
	b.ctx = ctx
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		os.RemoveAll(filepath.Join(dir, "profile"))
		t.Logf("screenshots in %s: %s", dir, strings.Join(*b.shots, ", "))
	})
	return b
}

// with returns a copy of b that reports to t (for subtests).
func (b *browser) with(t testing.TB) *browser {
	c := *b
	c.t = t
	return &c
}

// run runs actions, failing the test after timeout.
func (b *browser) run(what string, timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.screenshot("failed-" + strings.ReplaceAll(what, " ", "-"))
		b.t.Fatalf("browser: %s: %v", what, err)
	}
}

// evalJS evaluates js in b's page and returns its value.
func evalJS[T any](b *browser, js string, opts ...chromedp.EvaluateOption) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js, opts...))
	if err != nil {
		b.screenshot("failed-evaluate")
		b.t.Fatalf("browser: evaluate %s: %v", js, err)
	}
	return v
}

// waitJS waits until js is true.
func (b *browser) waitJS(what string, timeout time.Duration, js string) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.screenshot("timeout-" + strings.ReplaceAll(what, " ", "-"))
			b.t.Fatalf("browser: timed out after %s waiting for %s (%v)", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// screenshot saves the page as NAME.png in the artefacts folder.
func (b *browser) screenshot(name string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p := filepath.Join(b.artifacts, fmt.Sprintf("%02d-%s.png", len(*b.shots)+1, name))
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	*b.shots = append(*b.shots, filepath.Base(p))
	return p
}

// typeKeys types s as a keyboard does: each key's keyDown carries its
// text, so that a page that handles the keyDown (xterm.js does, and then
// prevents the default) sees the key once. chromedp.KeyEvent sends the
// text in a separate char event, which such a page would see twice.
func typeKeys(s string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, r := range s {
			events := kb.Encode(r)
			var text, unmodified string
			for _, k := range events {
				if k.Type == kb.KeyChar {
					text, unmodified = k.Text, k.UnmodifiedText
				}
			}
			for _, k := range events {
				if k.Type == kb.KeyChar {
					continue
				}
				if k.Type == kb.KeyDown {
					k.Text, k.UnmodifiedText = text, unmodified
				}
				if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, *k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
