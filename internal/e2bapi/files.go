package e2bapi

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"

	"connectrpc.com/connect"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// envd's /files: download and upload of whole files, as E2B's SDKs call it
// (files.read, files.write). Each is a command in the guest run as the
// caller's user (cat, and sh for the upload), so the guest's permissions
// apply, relative paths are the user's home's, and the bytes stream
// through without being held whole. The guest needs sh and cat (every
// paddock template has them; an image without them cannot be used so).

// stderrCap bounds the error text kept from a file command.
const stderrCap = 4 << 10

// envdUser is the user of a /files request: its username parameter, with
// E2B's default "user" as the sandbox's default user.
func envdUser(r *http.Request) string {
	u := r.URL.Query().Get("username")
	if u == "user" {
		return ""
	}
	return u
}

// sandboxForHTTP is sandboxFor for the plain HTTP routes: it answers the
// error itself.
func (s *Server) sandboxForHTTP(w http.ResponseWriter, r *http.Request) (sandbox.Info, bool) {
	info, err := s.sandboxFor(r.Header)
	if err != nil {
		code := http.StatusInternalServerError
		switch connect.CodeOf(err) {
		case connect.CodeNotFound:
			code = http.StatusNotFound
		case connect.CodeInvalidArgument:
			code = http.StatusBadRequest
		case connect.CodeUnavailable:
			code = http.StatusBadGateway
		}
		writeError(w, code, errors.Unwrap(err).Error())
		return sandbox.Info{}, false
	}
	return info, true
}

// envs serves envd's GET /envs: the environment every command gets (the
// create's envVars), as a JSON object.
func (s *Server) envs(w http.ResponseWriter, r *http.Request) {
	info, ok := s.sandboxForHTTP(w, r)
	if !ok {
		return
	}
	out := map[string]string{}
	for _, e := range info.Env {
		if k, v, ok := strings.Cut(e, "="); ok {
			out[k] = v
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// fileError is the HTTP status and message for a failed file command,
// from what it wrote on stderr.
func fileError(p string, stderr string) (int, string) {
	msg := strings.TrimSpace(stderr)
	switch {
	case strings.Contains(msg, "No such file"):
		return http.StatusNotFound, fmt.Sprintf("%s: no such file", p)
	case strings.Contains(msg, "Is a directory"):
		return http.StatusBadRequest, fmt.Sprintf("%s is a directory", p)
	case strings.Contains(msg, "Permission denied"):
		return http.StatusForbidden, fmt.Sprintf("%s: permission denied", p)
	case strings.Contains(msg, "No space left"):
		return http.StatusInsufficientStorage, fmt.Sprintf("%s: no space left on the sandbox's disk", p)
	}
	return http.StatusInternalServerError, fmt.Sprintf("%s: %s", p, msg)
}

// fileCommand starts argv in sandbox id as user and returns its event
// stream, past the Started event; cancel ends it.
func (s *Server) fileCommand(ctx context.Context, id, user string, stdin bool, argv ...string) (*sandbox.Client, agentv1.Agent_ExecClient, string, error) {
	c, err := s.m.Dial(id)
	if err != nil {
		return nil, nil, "", err
	}
	execID := "api-files-" + newAccessToken()[:12]
	stream, err := c.Agent.Exec(ctx, &agentv1.ExecRequest{Id: execID, Argv: argv, User: user, Stdin: stdin})
	if err == nil {
		_, err = stream.Recv() // Started, or an error
	}
	if err != nil {
		c.Close()
		return nil, nil, "", err
	}
	return c, stream, execID, nil
}

// download serves GET /files: the file at path, streamed.
func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	info, ok := s.sandboxForHTTP(w, r)
	if !ok {
		return
	}
	p := r.URL.Query().Get("path")
	if p == "" {
		writeError(w, http.StatusBadRequest, "path is required")
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c, stream, _, err := s.fileCommand(ctx, info.Name, envdUser(r), false, "cat", "--", p)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	defer c.Close()
	var stderr strings.Builder
	started := false
	for {
		ev, err := stream.Recv()
		if err != nil {
			if !started {
				writeError(w, http.StatusBadGateway, "read "+p+": "+err.Error())
			}
			return
		}
		switch e := ev.Event.(type) {
		case *agentv1.ExecEvent_Stdout:
			if !started {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.WriteHeader(http.StatusOK)
				started = true
			}
			if _, err := w.Write(e.Stdout); err != nil {
				return // the client went away; cancel ends the command
			}
		case *agentv1.ExecEvent_Stderr:
			if stderr.Len() < stderrCap {
				stderr.Write(e.Stderr)
			}
		case *agentv1.ExecEvent_Exited:
			if e.Exited.GetExitCode() != 0 && !started {
				code, msg := fileErrorCode(p, stderr.String(), e.Exited)
				writeError(w, code, msg)
				return
			}
			if !started {
				w.Header().Set("Content-Type", "application/octet-stream")
				w.WriteHeader(http.StatusOK)
			}
			return
		}
	}
}

func fileErrorCode(p, stderr string, x *agentv1.Exited) (int, string) {
	if x.GetError() != "" {
		return http.StatusInternalServerError, fmt.Sprintf("%s: %s", p, x.GetError())
	}
	return fileError(p, stderr)
}

// entryInfo is envd's answer for a written file.
type entryInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Path string `json:"path"`
}

// writeScript writes stdin to $1, making its folder, and prints its
// absolute path.
const writeScript = `mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && readlink -f -- "$1"`

// upload serves POST /files: each multipart "file" part is written to the
// path parameter (one file) or to the part's file name, streamed.
func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	info, ok := s.sandboxForHTTP(w, r)
	if !ok {
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		writeError(w, http.StatusBadRequest, "want a multipart/form-data body with file parts")
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	var out []entryInfo
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			writeError(w, http.StatusBadRequest, "read the upload: "+err.Error())
			return
		}
		if part.FormName() != "file" {
			continue
		}
		target := r.URL.Query().Get("path")
		if target == "" {
			target = part.FileName()
		}
		if target == "" {
			writeError(w, http.StatusBadRequest, "no path for an uploaded file: give path or a file name")
			return
		}
		written, code, msg := s.writeFile(r.Context(), info.Name, envdUser(r), target, part)
		if code != 0 {
			writeError(w, code, msg)
			return
		}
		out = append(out, entryInfo{Name: path.Base(written), Type: "file", Path: written})
	}
	if len(out) == 0 {
		writeError(w, http.StatusBadRequest, "no file part in the upload")
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// writeFile streams data into target in the sandbox as user; it returns
// the file's absolute path, or an HTTP status and message.
func (s *Server) writeFile(ctx context.Context, id, user, target string, data io.Reader) (string, int, string) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, stream, execID, err := s.fileCommand(ctx, id, user, true, "sh", "-c", writeScript, "sh", target)
	if err != nil {
		return "", http.StatusBadGateway, err.Error()
	}
	defer c.Close()
	if err := c.SendStdin(ctx, execID, data); err != nil {
		if errors.Is(err, sandbox.ErrInput) {
			return "", http.StatusBadRequest, "upload: " + err.Error()
		}
		return "", http.StatusBadGateway, err.Error()
	}
	stdout, stderr, exited, err := collect(stream)
	if err != nil {
		return "", http.StatusBadGateway, "write " + target + ": " + err.Error()
	}
	if exited.GetExitCode() != 0 {
		code, msg := fileErrorCode(target, stderr, exited)
		return "", code, msg
	}
	return strings.TrimSpace(stdout), 0, ""
}

// collect reads a file command's events to its end: its whole stdout (a
// path or JSON lines: small), the first stderrCap bytes of its stderr, and
// how it exited.
func collect(stream agentv1.Agent_ExecClient) (stdout, stderr string, exited *agentv1.Exited, err error) {
	var out, errb strings.Builder
	for {
		ev, err := stream.Recv()
		if err != nil {
			return "", "", nil, err
		}
		switch e := ev.Event.(type) {
		case *agentv1.ExecEvent_Stdout:
			out.Write(e.Stdout)
		case *agentv1.ExecEvent_Stderr:
			if errb.Len() < stderrCap {
				errb.Write(e.Stderr)
			}
		case *agentv1.ExecEvent_Exited:
			return out.String(), errb.String(), e.Exited, nil
		}
	}
}
