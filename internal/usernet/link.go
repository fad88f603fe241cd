package usernet

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// txQueue is how many frames for the guest may wait for the socket. A
// TCP sender never has more in flight than the guest's receive window
// (a few MiB, a hundred full frames); beyond the queue, frames drop and
// TCP sends them again.
const txQueue = 1024

// maxFrame is the largest Ethernet frame either side may send; larger
// ones from the guest (a VLAN tag, an interface with a larger MTU) are
// dropped. A length beyond maxLength cannot come from QEMU (its buffers
// are 68 KiB) and means the stream is broken.
const (
	maxFrame  = MTU + header.EthernetMinimumSize
	maxLength = 1 << 20
)

// qemuLink carries Ethernet frames between the stack and QEMU's
// "-netdev stream" socket, where each frame follows its length as a
// 4-byte big-endian number. The stack sees a gVisor channel endpoint
// (wrapped by the ethernet endpoint, which adds and strips the headers);
// the link moves frames between that endpoint and the VM's connection.
//
// One VM is attached at a time: a new connection (QEMU started again
// after a failed restore) replaces the old one.
type qemuLink struct {
	ch *channel.Endpoint
	ip tcpip.Address // the gateway's address, the only one it answers ARP for

	mu   sync.Mutex
	conn net.Conn // the VM's connection; nil while none is attached
}

func newQEMULink(mac string, ip tcpip.Address) (*qemuLink, error) {
	addr, err := net.ParseMAC(mac)
	if err != nil {
		return nil, err
	}
	ch := channel.New(txQueue, maxFrame, tcpip.LinkAddress(addr))
	// The guest computes its checksums itself (a stream netdev offers it
	// no offload), so the stack need not check them again.
	ch.LinkEPCapabilities = stack.CapabilityRXChecksumOffload
	return &qemuLink{ch: ch, ip: ip}, nil
}

// foreignARPReply reports whether pkt is an ARP reply about an address
// other than the gateway's. In promiscuous mode the stack answers ARP for
// every address, the guest's own included; the guest must learn only the
// gateway.
func (l *qemuLink) foreignARPReply(pkt *stack.PacketBuffer) bool {
	if pkt.NetworkProtocolNumber != header.ARPProtocolNumber {
		return false
	}
	h := header.ARP(pkt.NetworkHeader().Slice())
	return h.IsValid() && h.Op() == header.ARPReply && tcpip.AddrFromSlice(h.ProtocolAddressSender()) != l.ip
}

// attach makes c the VM's connection and reads frames from it until it
// fails or ctx ends. It closes c before returning.
func (l *qemuLink) attach(ctx context.Context, c net.Conn) error {
	l.mu.Lock()
	old := l.conn
	l.conn = c
	l.mu.Unlock()
	if old != nil {
		old.Close()
	}
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	defer func() {
		l.mu.Lock()
		if l.conn == c {
			l.conn = nil
		}
		l.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, 64<<10)
	var size [4]byte
	for {
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return err
		}
		n := int(binary.BigEndian.Uint32(size[:]))
		if n < header.EthernetMinimumSize || n > maxLength {
			return fmt.Errorf("qemu network socket: frame length %d (want %d to %d): the stream is broken", n, header.EthernetMinimumSize, maxLength)
		}
		if n > maxFrame {
			if _, err := r.Discard(n); err != nil {
				return err
			}
			continue
		}
		v := buffer.NewViewSize(n)
		if _, err := io.ReadFull(r, v.AsSlice()); err != nil {
			v.Release()
			return err
		}
		pkt := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(v)})
		l.ch.InjectInbound(0, pkt) // the ethernet endpoint reads the type
		pkt.DecRef()
	}
}

// transmit writes the stack's frames to the VM's connection until ctx
// ends. Frames with no VM attached are dropped, as on an unplugged cable.
func (l *qemuLink) transmit(ctx context.Context) {
	var size [4]byte
	for {
		pkt := l.ch.ReadContext(ctx)
		if pkt == nil {
			return
		}
		l.mu.Lock()
		c := l.conn
		l.mu.Unlock()
		if c != nil && !l.foreignARPReply(pkt) {
			frame := pkt.AsSlices()
			binary.BigEndian.PutUint32(size[:], uint32(pkt.Size()))
			bufs := net.Buffers(append([][]byte{size[:]}, frame...))
			if _, err := bufs.WriteTo(c); err != nil && !errors.Is(err, net.ErrClosed) {
				c.Close() // a half-written frame breaks the framing
			}
		}
		pkt.DecRef()
	}
}
