package guest

import "sort"

// outputLimit is how many bytes of a process's output the agent keeps that
// no stream has sent: past it, while nobody listens, the oldest are dropped;
// while a stream listens, the process's output is no longer read until the
// stream catches up.
const outputLimit = 1 << 20

// outputBuffer is a process's output as a run of bytes numbered from 0 at
// the process's start, of which it holds [base, end): what some stream may
// still need. Not safe for concurrent use (the owning process's mutex
// guards it).
//
// Invariants: chunks are contiguous and in order, the first starts at
// base, the last ends at end; no chunk is empty.
type outputBuffer struct {
	chunks []bufferedOutput
	base   int64
	end    int64
}

// bufferedOutput is a run of bytes from one of stdout or stderr.
type bufferedOutput struct {
	off    int64
	data   []byte
	stderr bool
}

// size is the number of bytes held.
func (b *outputBuffer) size() int64 { return b.end - b.base }

// append adds output, merging it into the last chunk when that is from the
// same stream and stays within outputChunk.
func (b *outputBuffer) append(data []byte, stderr bool) {
	if len(data) == 0 {
		return
	}
	if n := len(b.chunks); n > 0 {
		last := &b.chunks[n-1]
		if last.stderr == stderr && len(last.data)+len(data) <= outputChunk {
			last.data = append(last.data, data...)
			b.end += int64(len(data))
			return
		}
	}
	c := make([]byte, len(data), max(len(data), 4<<10))
	copy(c, data)
	b.chunks = append(b.chunks, bufferedOutput{off: b.end, data: c, stderr: stderr})
	b.end += int64(len(data))
}

// trim lets go of the bytes before off.
func (b *outputBuffer) trim(off int64) {
	if off <= b.base {
		return
	}
	if off > b.end {
		off = b.end
	}
	i := 0
	for i < len(b.chunks) && b.chunks[i].off+int64(len(b.chunks[i].data)) <= off {
		i++
	}
	b.chunks = append(b.chunks[:0:0], b.chunks[i:]...)
	if len(b.chunks) > 0 && b.chunks[0].off < off {
		c := &b.chunks[0]
		c.data = c.data[off-c.off:]
		c.off = off
	}
	b.base = off
}

// dropOldest trims the buffer to limit bytes and returns how many it
// dropped.
func (b *outputBuffer) dropOldest(limit int64) int64 {
	over := b.size() - limit
	if over <= 0 {
		return 0
	}
	b.trim(b.base + over)
	return over
}

// read returns up to max bytes from off (base <= off < end), all from one
// stream, and the offset after them. The bytes are shared with the buffer,
// which never changes a byte once appended, so they may be used after the
// lock is released.
func (b *outputBuffer) read(off int64, max int) (data []byte, stderr bool, next int64) {
	if off < b.base || off >= b.end {
		return nil, false, off
	}
	i := sort.Search(len(b.chunks), func(i int) bool { return b.chunks[i].off+int64(len(b.chunks[i].data)) > off })
	c := b.chunks[i]
	data = c.data[off-c.off:]
	if len(data) > max {
		data = data[:max]
	}
	return data, c.stderr, off + int64(len(data))
}
