package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/paddock-dev/paddock/internal/e2bapi"
	"github.com/paddock-dev/paddock/internal/sandbox"
	"github.com/paddock-dev/paddock/internal/template"
	"github.com/paddock-dev/paddock/internal/warmpool"
)

// serveOptions are serve's flags.
type serveOptions struct {
	listen, certFile, keyFile, base, warm, wsRoot string
	insecure                                      bool
	admins                                        []string
	limits                                        e2bapi.Limits
	trust                                         trustFlags
}

func serveCmd() *cobra.Command {
	var o serveOptions
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API (E2B's control-plane API) for SDKs and CI",
		Long: `Serve answers E2B's sandbox API on --listen, so programs that use the E2B SDKs
drive paddock with E2B_API_URL=http://ADDRESS and a key from paddock apikey create.
Every request needs a key (X-API-Key); a key sees only the sandboxes it made.
API sandboxes have no workspace (unless --allow-workspace-root DIR lets a create ask
for a folder under DIR with metadata paddock.workspace=PATH) and live until their timeout (E2B's, default 15 s,
which the SDKs set to 5 min). What is served and what is not: docs/API.md.

--warm tiny=2,debian=1 keeps that many restored, idle sandboxes per template
(paddock ls marks them "warm pool"); an API create claims one and a
replacement boots in the background. They stay when serve stops, and the
next serve adopts or removes them; paddock rm removes them like any other.

The web dashboard is at /ui/ (log in with a key): a key sees the sandboxes it
made; a key named by --dashboard-admin sees every sandbox of PADDOCK_HOME, those
made with the CLI too.

Every sandbox serve creates trusts the CAs of the user's config file
(~/.config/paddock/config.yaml: ca, trust_host_ca) and of --ca and --trust-host-ca,
as paddock create's do.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:3000", "address to listen on")
	f.StringVar(&o.certFile, "tls-cert", "", "serve HTTPS with this certificate (PEM)")
	f.StringVar(&o.keyFile, "tls-key", "", "the certificate's private key (PEM)")
	f.BoolVar(&o.insecure, "insecure-listen", false, "allow plain HTTP on an address beyond loopback")
	f.StringVar(&o.base, "base-template", "debian", "the template served under E2B's default name, base")
	f.StringVar(&o.warm, "warm", "", "keep idle sandboxes to claim, per template: TEMPLATE=N[,TEMPLATE=N] (base: --base-template)")
	f.StringVar(&o.wsRoot, "allow-workspace-root", "", "let a create share a host folder under DIR as its workspace (metadata paddock.workspace=PATH)")
	f.StringArrayVar(&o.admins, "dashboard-admin", nil, "a key NAME that sees and acts on every sandbox in the dashboard, the CLI's too (repeatable)")
	f.IntVar(&o.limits.Sandboxes, "max-sandboxes", 20, "sandboxes one key may have at once (0: no cap)")
	f.Float64Var(&o.limits.Rate, "rate", 50, "requests a second one key may make, on average (0: no cap)")
	f.IntVar(&o.limits.Burst, "burst", 100, "requests one key may make at once above --rate")
	o.trust.add(f)
	return cmd
}

// runServe serves the API until interrupted; warm-pool boots under way
// are undone on the way out.
func runServe(parent context.Context, o serveOptions) error {
	if (o.certFile == "") != (o.keyFile == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if err := checkListen(o.listen, o.certFile != "", o.insecure); err != nil {
		return err
	}
	m, err := o.trust.manager()
	if err != nil {
		return err
	}
	spec, err := warmSpec(string(m.Home), o.warm, o.base)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	api, err := newAPI(m, o, log)
	if err != nil {
		return err
	}
	srv := &http.Server{Addr: o.listen, Handler: api, ReadHeaderTimeout: 10 * time.Second}
	srv.RegisterOnShutdown(api.CloseDashboard)
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	l, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	// Without --warm this removes the idle clones an earlier serve left.
	wait := api.StartPool(ctx, spec, log)
	defer func() { stop(); wait() }() // a boot under way is undone
	log.Info("serving the E2B API", "addr", l.Addr().String(), "tls", o.certFile != "", "warm", spec.String())
	if o.certFile != "" {
		err = srv.ServeTLS(l, o.certFile, o.keyFile)
	} else {
		err = srv.Serve(l)
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// newAPI is the API server over m with serve's options.
func newAPI(m *sandbox.Manager, o serveOptions, log *slog.Logger) (*e2bapi.Server, error) {
	keys, err := keyStore()
	if err != nil {
		return nil, err
	}
	api := e2bapi.New(m, keys, log)
	api.DefaultTemplate, api.Limits, api.DashboardAdmins = o.base, o.limits, o.admins
	if api.WorkspaceRoot, err = workspaceRoot(o.wsRoot); err != nil {
		return nil, err
	}
	return api, nil
}

// warmSpec parses --warm, maps E2B's base onto the base template and
// checks that each template is built.
func warmSpec(home, warm, base string) (warmpool.Spec, error) {
	spec, err := warmpool.ParseSpec(warm)
	if err == nil {
		err = spec.Alias("base", base)
	}
	if err != nil {
		return nil, err
	}
	var errs []error
	for t := range spec {
		if _, err := template.Open(home, t); err != nil {
			errs = append(errs, fmt.Errorf("--warm %s: %w", t, err))
		}
	}
	return spec, errors.Join(errs...)
}

// workspaceRoot is --allow-workspace-root as an absolute folder ("" for
// none).
func workspaceRoot(dir string) (string, error) {
	if dir == "" {
		return "", nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return "", fmt.Errorf("--allow-workspace-root %s: not a folder", dir)
	}
	return abs, nil
}

// checkListen refuses plain HTTP beyond loopback unless asked for: API keys
// would cross the network in clear.
func checkListen(listen string, tls, insecure bool) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", listen, err)
	}
	ip := net.ParseIP(host)
	loopback := host == "localhost" || (ip != nil && ip.IsLoopback())
	if !loopback && !tls && !insecure {
		return fmt.Errorf("--listen %s is beyond loopback: serve TLS (--tls-cert, --tls-key) or pass --insecure-listen", listen)
	}
	return nil
}
