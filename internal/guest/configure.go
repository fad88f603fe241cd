package guest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/label"
)

// Configure applies the sandbox's identity, network and trust. Every step is
// idempotent: the host calls it after each boot and each restore. All
// invalid fields are reported together, before anything changes.
func (a *Agent) Configure(_ context.Context, req *agentv1.ConfigureRequest) (*agentv1.ConfigureResponse, error) {
	if err := validateConfigure(req); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	start := time.Now()
	var (
		mu    sync.Mutex // guards errs and steps
		errs  []error
		steps []*agentv1.ConfigureStep
		wg    sync.WaitGroup
	)
	step := func(name string, err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
		steps = append(steps, &agentv1.ConfigureStep{Name: name, DoneUs: uint32(time.Since(start).Microseconds())})
	}
	// Two independent chains run at once: after a restore every guest code
	// path is new to TCG's translator, and with two vCPUs they translate
	// side by side.
	wg.Add(2)
	go func() {
		defer wg.Done()
		if t := req.GetTimeUnixNano(); t != 0 {
			step("clock", a.System.SetClock(time.Unix(0, t)))
		}
		step("entropy", a.System.AddEntropy(req.GetEntropy()))
		if u := req.GetUser(); u != nil {
			step("user", a.ensureUser(u))
		}
		if id := req.GetMachineId(); id != "" {
			step("machine-id", a.writeIdentity("/etc/machine-id", []byte(id+"\n"), 0o444))
		}
		if name := req.GetHostname(); name != "" {
			step("hostname", a.configureHostname(name))
		}
		if n := req.GetNetwork(); n != nil {
			step("network", a.applyNetwork(n))
		}
		if a.ownsRootDisk() {
			step("grow-root", a.growRoot()) // growfs.go
		}
	}()
	go func() {
		defer wg.Done()
		// /etc/hosts is this chain's, to even them out.
		if name := req.GetHostname(); name != "" {
			step("hosts", a.configureHosts(name))
		}
		if cas := req.GetCaCerts(); len(cas) > 0 {
			step("trust", a.installTrust(cas)) // trust.go
		}
	}()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, status.Errorf(codes.Internal, "configure: %v", err)
	}
	// The host logs the steps: a console line costs a restored guest ~4%
	// more translated code (slog, fmt, the tty and serial drivers) and time
	// on the path of every create.
	a.Log.Debug("configured", "hostname", req.GetHostname(), "duration", time.Since(start))
	return &agentv1.ConfigureResponse{Version: a.Version, Steps: steps}, nil
}

// validateConfigure gathers every problem of a request.
func validateConfigure(req *agentv1.ConfigureRequest) error {
	var errs []error
	if h := req.GetHostname(); h != "" && !label.Hostname(h) {
		errs = append(errs, fmt.Errorf("hostname %q: use 1-63 letters, digits and dashes", h))
	}
	if id := req.GetMachineId(); id != "" && !label.MachineID(id) {
		errs = append(errs, fmt.Errorf("machine id %q: want 32 lowercase hex digits", id))
	}
	if u := req.GetUser(); u != nil {
		if !label.UserName(u.GetName()) {
			errs = append(errs, fmt.Errorf("user name %q: want a lowercase POSIX name", u.GetName()))
		}
		if h := u.GetHome(); h != "" && !filepath.IsAbs(h) {
			errs = append(errs, fmt.Errorf("user home %q: want an absolute path", h))
		}
	}
	if n := req.GetNetwork(); n != nil {
		errs = append(errs, validateNetwork(n))
	}
	if _, err := parseCAs(req.GetCaCerts()); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (a *Agent) path(p string) string { return filepath.Join(a.Root, p) }

// identityDir holds the sandbox's own /etc/machine-id, /etc/hostname and
// /etc/hosts, on /run's tmpfs.
const identityDir = "/run/paddock/etc"

// writeIdentity gives the sandbox its own copy of file, one of the /etc
// files that say which machine this is. As Docker does for a container's
// /etc/hosts, the copy lives in identityDir and is bind-mounted over the
// root filesystem's file (an empty one is made if there is none), so:
//   - writing them costs a clone nothing on its root filesystem. After a
//     restore every guest code path is new to TCG's translator, and ext4
//     writes bring in ext4, the journal, writeback and virtio-blk: these
//     three files cost an idle clone ~1,100 translated blocks at once (3%
//     of its code cache) and more when the journal commits;
//   - the identity stays out of `paddock template save`.
//
// Edits to these files inside a sandbox last until it stops or is reset. A
// file that is a symbolic link is the image's to manage: it is written
// through.
func (a *Agent) writeIdentity(file string, data []byte, perm os.FileMode) error {
	dst := a.path(file)
	fi, err := os.Lstat(dst)
	switch {
	case err == nil && fi.Mode()&os.ModeSymlink != 0:
		return writeSmallFile(dst, data, perm)
	case os.IsNotExist(err):
		if err := os.WriteFile(dst, nil, perm); err != nil {
			return fmt.Errorf("write %s: %w", dst, err)
		}
	case err != nil:
		return fmt.Errorf("write %s: %w", dst, err)
	}
	src := a.path(filepath.Join(identityDir, filepath.Base(file)))
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		return fmt.Errorf("write %s: %w", file, err)
	}
	if err := writeSmallFile(src, data, perm); err != nil {
		return err
	}
	if bound, err := isMountPoint(dst); err == nil && bound {
		return nil
	}
	return a.System.BindFile(src, dst)
}

// configureHostname sets the kernel hostname and /etc/hostname.
func (a *Agent) configureHostname(name string) error {
	if err := a.System.SetHostname(name); err != nil {
		return err
	}
	return a.writeIdentity("/etc/hostname", []byte(name+"\n"), 0o644)
}

// configureHosts points the 127.0.1.1 line of /etc/hosts at name, keeping
// the rest of the file as the sandbox sees it.
func (a *Agent) configureHosts(name string) error {
	hosts := a.path("/etc/hosts")
	b, err := os.ReadFile(hosts)
	if err != nil && !os.IsNotExist(err) {
		return fmt.Errorf("read %s: %w", hosts, err)
	}
	return a.writeIdentity("/etc/hosts", EnsureHostsName(b, name), 0o644)
}

// EnsureHostsName returns /etc/hosts content whose 127.0.1.1 line names
// name (replacing any other 127.0.1.1 line) and that has a localhost line.
func EnsureHostsName(b []byte, name string) []byte {
	var out []string
	localhost := false
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l == "" {
			continue
		}
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "127.0.1.1" {
			continue
		}
		if len(f) > 1 && f[0] == "127.0.0.1" && slices.Contains(f[1:], "localhost") {
			localhost = true
		}
		if !strings.HasSuffix(l, "\n") {
			l += "\n"
		}
		out = append(out, l)
	}
	if !localhost {
		out = append([]string{"127.0.0.1\tlocalhost\n"}, out...)
	}
	out = append(out, "127.0.1.1\t"+name+"\n")
	return []byte(strings.Join(out, ""))
}

// ensureUser creates or updates the default user unless this agent
// already did with the same settings: the template VM does it for the
// usual user before its save, and a clone's files are the template's.
func (a *Agent) ensureUser(u *agentv1.User) error {
	return applyChanged(a, &a.user, u, func() error {
		if err := a.Users.Ensure(u.GetName(), u.GetUid(), u.GetGid(), u.GetHome()); err != nil {
			return err
		}
		a.mu.Lock()
		a.defaultUser = u.GetName()
		a.mu.Unlock()
		return nil
	})
}

// applyNetwork configures the interface unless it already is: its settings
// are the same in every sandbox, so the template VM applies them before it
// is saved and a clone finds them done.
func (a *Agent) applyNetwork(n *agentv1.Network) error {
	return applyChanged(a, &a.network, n, func() error { return a.configureNetwork(n) })
}

// applyChanged runs apply unless want equals *last, the settings applied
// last, and records want once apply has succeeded. a.mu guards *last.
func applyChanged[M proto.Message](a *Agent, last *M, want M, apply func() error) error {
	a.mu.Lock()
	same := proto.Equal(*last, want)
	a.mu.Unlock()
	if same {
		return nil
	}
	if err := apply(); err != nil {
		return err
	}
	a.mu.Lock()
	*last = want
	a.mu.Unlock()
	return nil
}

// warmUp runs a trivial command the way Exec runs one (default user, in
// cwd, through the reaper), so that the first real exec after a restore
// finds those code paths already translated (see RunInit). The command is
// true, not a shell: what every command shares is fork, exec, the dynamic
// loader and reaping, and a shell's own start-up would add translated code
// that only shell commands use. Errors are ignored; a root filesystem
// without true skips it.
func (a *Agent) warmUp(cwd string) {
	path := ""
	for _, p := range []string{"/usr/bin/true", "/bin/true"} {
		if _, err := os.Stat(a.path(p)); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		return
	}
	id, err := a.execIdentity("")
	if err != nil {
		return
	}
	req := &agentv1.ExecRequest{Argv: []string{path}}
	p, err := a.startProcess(req, id, path, BuildEnv(id, false, nil), cwd)
	if err != nil {
		return
	}
	defer p.closeAll()
	select {
	case <-p.exit:
	case <-time.After(5 * time.Second):
	}
}
