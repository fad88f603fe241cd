package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	supervisorv1 "github.com/paddock-dev/paddock/api/supervisor/v1"
	"github.com/paddock-dev/paddock/internal/inject"
	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/store"
	"github.com/paddock-dev/paddock/internal/usernet"
)

// netLogMax is where the network decision log rotates.
const netLogMax = 16 << 20

// sandboxNet is the sandbox's user-space network and its policy file.
//
// Invariant: the policy in force (net.Policy()) and policy.yaml agree
// after every change; mu serialises changes so neither can be lost.
type sandboxNet struct {
	net        *usernet.Network
	proxy      *inject.Proxy // the secret injector behind net
	policyFile string

	mu sync.Mutex // serialises policy changes

	logMu sync.Mutex // serialises log lines
	log   *rotatingFile
}

// loadPolicy reads the sandbox's policy file. A missing file is an error:
// the network fails closed rather than fall back to a preset.
func loadPolicy(path string) (netpolicy.Policy, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return netpolicy.Policy{}, fmt.Errorf("network policy %s is missing: the sandbox has no network until it exists (paddock policy set, or paddock rm and create again)", path)
	}
	if err != nil {
		return netpolicy.Policy{}, err
	}
	p, err := netpolicy.Parse(b)
	if err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// startNetwork builds the sandbox's network and listens on net.sock for
// QEMU, which connects when it starts.
func (s *sup) startNetwork() error {
	if s.net != nil {
		return nil
	}
	pol, err := loadPolicy(s.layout.Policy())
	if err != nil {
		return err
	}
	m, err := netpolicy.Compile(pol)
	if err != nil {
		return fmt.Errorf("network policy: %w", err)
	}
	lf, err := openRotating(s.layout.NetLog(), netLogMax)
	if err != nil {
		return err
	}
	sn := &sandboxNet{policyFile: s.layout.Policy(), log: lf}
	ca, err := inject.LoadCA(s.opts.Home)
	if err != nil {
		lf.Close()
		return fmt.Errorf("the certificate authority for secret injection: %w", err)
	}
	// The injector serves the hosts of bound secrets; it reads the bound
	// secrets again at most once a second, so with none it intercepts
	// nothing and a secret bound or set later counts.
	s.ca = ca
	proxy := inject.New(inject.Config{CA: ca, Secrets: s.secrets, Record: sn.record, Log: s.log})
	n, err := usernet.New(usernet.Config{Policy: m, Record: sn.record, Log: s.log, Intercept: proxy})
	if err != nil {
		lf.Close()
		return err
	}
	sn.net, sn.proxy = n, proxy
	l, err := store.ListenUnix(s.layout.NetSocket(), qemuUID(s.vmKey()))
	if err != nil {
		n.Close()
		lf.Close()
		return fmt.Errorf("listen for qemu's network: %w", err)
	}
	go func() {
		if err := n.Serve(l); err != nil {
			s.log.Warn("network listener", "err", err)
		}
	}()
	s.net = sn
	s.log.Info("network", "preset", pol.Preset, "allow", len(pol.Allow), "deny", len(pol.Deny))
	return nil
}

func (sn *sandboxNet) record(r netpolicy.Record) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	sn.logMu.Lock()
	defer sn.logMu.Unlock()
	sn.log.Write(append(b, '\n'))
}

// setPolicyLocked compiles p, saves it and puts it in force.
func (sn *sandboxNet) setPolicyLocked(p netpolicy.Policy) (*netpolicy.Matcher, error) {
	m, err := netpolicy.Compile(p)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if err := store.WriteFileAtomic(sn.policyFile, p.Marshal(), 0o600); err != nil {
		return nil, status.Errorf(codes.Internal, "save policy: %v", err)
	}
	sn.net.SetPolicy(m)
	return m, nil
}

// guestNetwork is the guest's interface configuration.
func guestNetwork() *agentv1.Network {
	g := usernet.Guest()
	return &agentv1.Network{Interface: g.Interface, Address: g.Address, Gateway: g.Gateway, Nameservers: g.Nameservers, Mtu: g.MTU}
}

// holdNetSocket listens on path and holds every connection without
// reading it: the network of a template VM, which never sends a frame
// (its interface is not configured until a clone's Configure).
func holdNetSocket(path string, qemuUID uint32) (stop func(), err error) {
	l, err := store.ListenUnix(path, qemuUID)
	if err != nil {
		return nil, fmt.Errorf("template vm network socket: %w", err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	return func() {
		l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	}, nil
}

func (a *api) GetPolicy(ctx context.Context, _ *supervisorv1.GetPolicyRequest) (*supervisorv1.GetPolicyResponse, error) {
	return &supervisorv1.GetPolicyResponse{Yaml: string(a.s.net.net.Policy().Policy.Marshal())}, nil
}

func (a *api) SetPolicy(ctx context.Context, req *supervisorv1.SetPolicyRequest) (*supervisorv1.SetPolicyResponse, error) {
	p, err := netpolicy.Parse([]byte(req.Yaml))
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	sn := a.s.net
	sn.mu.Lock()
	defer sn.mu.Unlock()
	if _, err := sn.setPolicyLocked(p); err != nil {
		return nil, err
	}
	a.s.log.Info("network policy replaced", "preset", p.Preset)
	return &supervisorv1.SetPolicyResponse{}, nil
}

func (a *api) AddPolicyRule(ctx context.Context, req *supervisorv1.AddPolicyRuleRequest) (*supervisorv1.GetPolicyResponse, error) {
	sn := a.s.net
	sn.mu.Lock()
	defer sn.mu.Unlock()
	p := clonePolicy(sn.net.Policy().Policy)
	if err := p.AddRule(req.Allow, req.Rule); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	m, err := sn.setPolicyLocked(p)
	if err != nil {
		return nil, err
	}
	a.s.log.Info("network policy rule added", "allow", req.Allow, "rule", req.Rule)
	return &supervisorv1.GetPolicyResponse{Yaml: string(m.Policy.Marshal())}, nil
}

// clonePolicy copies p so edits do not touch the compiled one in force.
func clonePolicy(p netpolicy.Policy) netpolicy.Policy {
	q := p
	q.Allow = append([]string(nil), p.Allow...)
	q.Deny = append([]string(nil), p.Deny...)
	if p.AddHosts != nil {
		q.AddHosts = make(map[string]string, len(p.AddHosts))
		for k, v := range p.AddHosts {
			q.AddHosts[k] = v
		}
	}
	return q
}
