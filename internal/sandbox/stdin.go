package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

// ErrInput marks SendStdin's errors that come from reading its input.
var ErrInput = errors.New("read the input")

// stdinChunk is how much SendStdin sends at a time.
const stdinChunk = 32 << 10

// SendStdin streams r to the stdin of the running exec id and closes that
// stdin at r's end. It returns early, without an error, when the command
// stops taking input (its exit says why); a failure to read r is wrapped
// in ErrInput.
func (c *Client) SendStdin(ctx context.Context, id string, r io.Reader) error {
	ws, err := c.Agent.WriteStdin(ctx)
	if err != nil {
		return err
	}
	buf := make([]byte, stdinChunk)
	for {
		n, rerr := r.Read(buf)
		chunk := &agentv1.StdinChunk{Id: id, Data: append([]byte(nil), buf[:n]...), Close: rerr != nil}
		if err := ws.Send(chunk); err != nil {
			return nil
		}
		if rerr != nil {
			ws.CloseAndRecv()
			if errors.Is(rerr, io.EOF) {
				return nil
			}
			return fmt.Errorf("%w: %w", ErrInput, rerr)
		}
	}
}
