// Package usernet is a sandbox's user-space network: a gVisor netstack
// behind gvisor-tap-vsock's virtual switch, attached to QEMU's
// "-netdev stream" socket, with the sandbox resolver and policy-enforcing
// TCP and UDP forwarders in place of gvisor-tap-vsock's own services.
//
// Nothing here needs root or touches the host's network configuration:
// every guest connection ends in this process, which decides it with
// package netpolicy and, when allowed, dials the destination itself with an
// ordinary socket. The stock gvisor-tap-vsock forwarders (which dial any
// address), its DHCP and DNS servers and its HTTP services are not used.
package usernet
