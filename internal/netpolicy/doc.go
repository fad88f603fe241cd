// Package netpolicy decides whether a sandbox may open a connection. It is
// pure: a Query (protocol, destination address, port, and the name seen in
// DNS, TLS SNI or the HTTP Host header) goes in, a Decision (verdict and the
// rule that made it) comes out. The enforcing forwarders live in package
// usernet; this package only decides.
//
// A Policy is what users write (YAML, flags, the policy verbs); Compile turns
// it into a Matcher whose Decide is cheap enough for every connection.
package netpolicy
