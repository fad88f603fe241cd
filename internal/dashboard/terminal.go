package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/coder/websocket"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// The terminal's WebSocket carries, from the browser, binary messages of
// keyboard input and text messages of control ({"type":"resize","cols":
// C,"rows":R}); to the browser, binary messages of the PTY's output and,
// at the end, a text message {"type":"exit","code":N,"error":"..."}.
// The shell is the guest user's login shell: bash where there is one.
var shellArgv = []string{"/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash -l; fi; exec sh -l"}

// control is a text message of the terminal's WebSocket.
type control struct {
	Type  string `json:"type"`
	Cols  uint32 `json:"cols,omitempty"`
	Rows  uint32 `json:"rows,omitempty"`
	Code  int    `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
}

// terminal runs a shell on a PTY in a running sandbox and connects it to
// a WebSocket (from the dashboard's own origin only: sameOrigin refuses
// others before this, and websocket.Accept checks again).
func (d *Dashboard) terminal(w http.ResponseWriter, r *http.Request, c caller) {
	info, ok := d.visible(w, r, c)
	if !ok {
		return
	}
	if info.State != sandbox.StateRunning {
		writeError(w, http.StatusConflict, "sandbox "+info.Name+" is "+info.Summary()+": a terminal needs it running")
		return
	}
	client, err := d.m.Dial(info.Name)
	if err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	defer client.Close()
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return // Accept answered
	}
	defer conn.CloseNow()
	conn.SetReadLimit(1 << 20)
	ctx, cancel := d.streamContext(r)
	defer cancel()

	req := &agentv1.ExecRequest{
		Id: sandbox.NewExecID(), Argv: shellArgv, Tty: true, Env: []string{"TERM=xterm-256color"},
		Cols: sizeParam(r, "cols", 80), Rows: sizeParam(r, "rows", 24),
	}
	in, inW := io.Pipe()
	defer inW.Close()
	started := func() { go d.fromBrowser(ctx, cancel, conn, client, req.Id, inW) }
	exit, err := client.Run(ctx, req, sandbox.Streams{Stdin: in, Stdout: wsWriter{ctx, conn}, Stderr: wsWriter{ctx, conn}}, started)
	end := control{Type: "exit", Code: exit.Code, Error: exit.Error}
	if err != nil {
		if ctx.Err() != nil {
			return // the browser went away
		}
		end.Error = err.Error()
	}
	d.log.Info("dashboard terminal ended", "key", c.Key, "sandbox", info.Name, "code", exit.Code)
	b, _ := json.Marshal(end)
	conn.Write(ctx, websocket.MessageText, b)
	conn.Close(websocket.StatusNormalClosure, "the shell ended")
}

// fromBrowser passes the browser's keystrokes to the shell's input and
// its resizes to the PTY, until the WebSocket closes.
func (d *Dashboard) fromBrowser(ctx context.Context, cancel context.CancelFunc, conn *websocket.Conn, client *sandbox.Client, id string, in *io.PipeWriter) {
	defer cancel()
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			in.CloseWithError(errors.New("the browser closed the terminal"))
			return
		}
		if typ == websocket.MessageBinary {
			if _, err := in.Write(b); err != nil {
				return
			}
			continue
		}
		var m control
		if json.Unmarshal(b, &m) == nil && m.Type == "resize" && m.Cols > 0 && m.Rows > 0 && m.Cols <= 1000 && m.Rows <= 1000 {
			client.Agent.Resize(ctx, &agentv1.ResizeRequest{Id: id, Cols: m.Cols, Rows: m.Rows})
		}
	}
}

// wsWriter sends each write as one binary message.
type wsWriter struct {
	ctx  context.Context
	conn *websocket.Conn
}

func (w wsWriter) Write(p []byte) (int, error) {
	if err := w.conn.Write(w.ctx, websocket.MessageBinary, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// sizeParam is the terminal size the URL asks for, within 1..1000.
func sizeParam(r *http.Request, name string, def uint32) uint32 {
	n, err := strconv.Atoi(r.URL.Query().Get(name))
	if err != nil || n < 1 || n > 1000 {
		return def
	}
	return uint32(n)
}
