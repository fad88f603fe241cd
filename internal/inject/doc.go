// Package inject puts a sandbox's secrets into its requests on the host.
// For a host that a bound secret belongs to, the network forwarder hands
// the guest's TLS connection here instead of relaying it: it is answered
// with a certificate from this install's authority (CA), each HTTP request
// read (HTTP/1.1 or HTTP/2), the secret's placeholder replaced by its
// value or its header set, and the request sent on over a TLS connection
// of the host's own, verified as any client would. A placeholder bound
// for a host it does not belong to is refused before anything is sent.
package inject
