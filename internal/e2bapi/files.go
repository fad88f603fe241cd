package e2bapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

// envd's /files: download and upload of whole files, as E2B's SDKs call it
// (files.read, files.write). Each is the guest agent's ReadFile or
// WriteFile (sandbox.Client), which open the file with the caller's
// user's permissions (a relative path is the user's home's); the bytes
// stream through, a chunk at a time, without being held whole.

// envdUser is the user of a /files request: its username parameter, else
// the basic auth's user, with E2B's default "user" as the sandbox's
// default user.
func envdUser(r *http.Request) string {
	u := r.URL.Query().Get("username")
	if u == "" {
		return execUser(r.Header)
	}
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

// transferError is the HTTP status and message for a failed ReadFile or
// WriteFile of p, from the agent's status code.
func transferError(p string, err error) (int, string) {
	st, _ := status.FromError(err)
	msg := st.Message()
	switch st.Code() {
	case codes.NotFound:
		return http.StatusNotFound, fmt.Sprintf("%s: no such file", p)
	case codes.PermissionDenied:
		return http.StatusForbidden, fmt.Sprintf("%s: permission denied", p)
	case codes.ResourceExhausted:
		return http.StatusInsufficientStorage, fmt.Sprintf("%s: no space left on the sandbox's disk", p)
	case codes.FailedPrecondition:
		if strings.Contains(msg, "is a directory") {
			return http.StatusBadRequest, fmt.Sprintf("%s is a directory", p)
		}
		return http.StatusBadRequest, fmt.Sprintf("%s: %s", p, msg)
	case codes.InvalidArgument:
		return http.StatusBadRequest, fmt.Sprintf("%s: %s", p, msg)
	}
	return http.StatusBadGateway, fmt.Sprintf("%s: %s", p, msg)
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
	c, err := s.m.Dial(info.Name)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	defer c.Close()
	f, err := c.ReadFile(r.Context(), p, envdUser(r))
	if err != nil {
		code, msg := transferError(p, err)
		writeError(w, code, msg)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.WriteHeader(http.StatusOK)
	if _, err := f.WriteTo(w); err != nil && r.Context().Err() == nil {
		// The status is sent: a read that fails midway can only cut the
		// response short, so the client sees it fail.
		s.log.Warn("download cut short", "sandbox", info.Name, "path", p, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// entryInfo is envd's answer for a written file.
type entryInfo struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Path string `json:"path"`
}

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
	c, err := s.m.Dial(info.Name)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	defer c.Close()
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
		written, err := c.WriteFile(r.Context(), target, envdUser(r), 0, part)
		if errors.Is(err, sandbox.ErrInput) {
			writeError(w, http.StatusBadRequest, "upload: "+err.Error())
			return
		}
		if err != nil {
			code, msg := transferError(target, err)
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
