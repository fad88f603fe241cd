package supervisor

import "github.com/paddock-dev/paddock/internal/inject"

// guestCAs are the certificate authorities the guest trusts besides its
// root filesystem's (ConfigureRequest.ca_certs): the install's own, which
// signs what the forwarder shows for the hosts it intercepts, then the
// sandbox's (create --ca, --trust-host-ca). Sent at every Configure; the
// agent adds what the guest lacks.
//
// The template VM's Configure (state.go) sends none: a template is shared
// by every PADDOCK_HOME that links it (each with its own authority), and a
// sandbox's CAs are its own; every clone's Configure installs its set.
func (s *sup) guestCAs() []string {
	var cas []string
	ca, err := inject.LoadCA(s.opts.Home)
	if err != nil {
		// Without it intercepted hosts fail verification in the guest;
		// everything else works, so the sandbox still starts.
		s.log.Warn("the install's certificate authority is unusable: the guest will not trust it", "err", err)
	} else {
		cas = append(cas, string(ca.CertPEM()))
	}
	return append(cas, s.cfg.CACerts...)
}
