package usernet

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"

	"github.com/paddock-dev/paddock/internal/netpolicy"
)

var guestMAC = tcpip.LinkAddress([]byte{0x52, 0x54, 0, 0x12, 0x34, 0x56})

// startNetwork serves a Network on a unix socket, as the supervisor does
// for QEMU, and returns the socket's path.
func startNetwork(t *testing.T) string {
	t.Helper()
	m, err := netpolicy.Compile(netpolicy.Policy{Preset: netpolicy.DefaultPreset})
	if err != nil {
		t.Fatal(err)
	}
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n, err := New(Config{Policy: m, ResolvConf: resolv})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "net.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	go n.Serve(l)
	t.Cleanup(func() { l.Close(); n.Close() })
	return path
}

// arpRequest is a framed ARP request from the guest asking for target.
func arpRequest(target netip.Addr) []byte {
	frame := make([]byte, header.EthernetMinimumSize+header.ARPSize)
	header.Ethernet(frame).Encode(&header.EthernetFields{
		SrcAddr: guestMAC,
		DstAddr: header.EthernetBroadcastAddress,
		Type:    header.ARPProtocolNumber,
	})
	a := header.ARP(frame[header.EthernetMinimumSize:])
	a.SetIPv4OverEthernet()
	a.SetOp(header.ARPRequest)
	copy(a.HardwareAddressSender(), guestMAC)
	ip := GuestIP.As4()
	copy(a.ProtocolAddressSender(), ip[:])
	want := target.As4()
	copy(a.ProtocolAddressTarget(), want[:])
	return framed(frame)
}

func framed(frame []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(frame))), frame...)
}

// readFrame reads one framed Ethernet frame, or fails after d.
func readFrame(c net.Conn, d time.Duration) ([]byte, error) {
	c.SetReadDeadline(time.Now().Add(d))
	var size [4]byte
	if _, err := io.ReadFull(c, size[:]); err != nil {
		return nil, err
	}
	frame := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(c, frame)
	return frame, err
}

func dialVM(t *testing.T, path string) net.Conn {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// wantGatewayARPReply sends an ARP request for the gateway on c and
// checks the next frame is its answer.
func wantGatewayARPReply(t *testing.T, c net.Conn) {
	t.Helper()
	if _, err := c.Write(arpRequest(GatewayIP)); err != nil {
		t.Fatal(err)
	}
	frame, err := readFrame(c, 5*time.Second)
	if err != nil {
		t.Fatalf("no answer to an ARP request for the gateway: %v", err)
	}
	eth := header.Ethernet(frame)
	if eth.Type() != header.ARPProtocolNumber || eth.DestinationAddress() != guestMAC {
		t.Fatalf("answer: type %v to %v, want ARP to the guest", eth.Type(), eth.DestinationAddress())
	}
	a := header.ARP(frame[header.EthernetMinimumSize:])
	mac, _ := net.ParseMAC(gatewayMAC)
	if !a.IsValid() || a.Op() != header.ARPReply || tcpip.AddrFromSlice(a.ProtocolAddressSender()) != tcpip.AddrFrom4(GatewayIP.As4()) || tcpip.LinkAddress(a.HardwareAddressSender()) != tcpip.LinkAddress(mac) {
		t.Fatalf("answer is not the gateway's ARP reply: op %v sender %v at %v", a.Op(), a.ProtocolAddressSender(), a.HardwareAddressSender())
	}
}

func TestLinkAnswersARPForTheGatewayOnly(t *testing.T) {
	c := dialVM(t, startNetwork(t))
	wantGatewayARPReply(t, c)
	// The stack is promiscuous and would answer for any address; the
	// link lets only the gateway's answer through.
	for _, a := range []netip.Addr{GuestIP, netip.MustParseAddr("192.168.127.254")} {
		if _, err := c.Write(arpRequest(a)); err != nil {
			t.Fatal(err)
		}
	}
	wantGatewayARPReply(t, c) // the first frame back answers this request
}

func TestLinkNewConnectionReplacesTheOld(t *testing.T) {
	path := startNetwork(t)
	old := dialVM(t, path)
	wantGatewayARPReply(t, old)
	c := dialVM(t, path)
	wantGatewayARPReply(t, c)
	if _, err := readFrame(old, 5*time.Second); !errors.Is(err, io.EOF) {
		t.Fatalf("old connection: got %v, want it closed", err)
	}
}

func TestLinkSurvivesOversizedFrames(t *testing.T) {
	c := dialVM(t, startNetwork(t))
	big := make([]byte, maxFrame+4) // a full frame with a VLAN tag
	if _, err := c.Write(framed(big)); err != nil {
		t.Fatal(err)
	}
	wantGatewayARPReply(t, c) // the link still reads frames after it
}

func TestLinkClosesOnBadFrameLength(t *testing.T) {
	for _, size := range []uint32{0, maxLength + 1} {
		c := dialVM(t, startNetwork(t))
		if _, err := c.Write(binary.BigEndian.AppendUint32(nil, size)); err != nil {
			t.Fatal(err)
		}
		if _, err := readFrame(c, 5*time.Second); !errors.Is(err, io.EOF) {
			t.Errorf("frame of %d bytes: got %v, want the connection closed", size, err)
		}
	}
}
