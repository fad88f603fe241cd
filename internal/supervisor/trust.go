package supervisor

// guestCAs are the certificate authorities the guest trusts besides its
// root filesystem's (ConfigureRequest.ca_certs): the install's own, which
// signs what the forwarder shows for the hosts it intercepts, then the
// sandbox's (create --ca, --trust-host-ca). Sent at every Configure; the
// agent adds what the guest lacks.
//
// The template VM's Configure (state.go) sends none: a template is shared
// by every PADDOCK_HOME that links it (each with its own authority), and a
// sandbox's CAs are its own; every clone's Configure installs its set.
// s.ca is loaded when the network starts, before QEMU.
func (s *sup) guestCAs() []string {
	if s.ca == nil { // no network (the supervisor's unit tests)
		return s.cfg.CACerts
	}
	return append([]string{string(s.ca.CertPEM())}, s.cfg.CACerts...)
}
