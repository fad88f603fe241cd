package e2bapi

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestTransferError(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
		msg  string
	}{
		{status.Error(codes.NotFound, "open /x: no such file or directory"), 404, "/x: no such file"},
		{status.Error(codes.PermissionDenied, "open /x: permission denied"), 403, "/x: permission denied"},
		{status.Error(codes.ResourceExhausted, "write /x: no space left on device"), 507, "/x: no space left on the sandbox's disk"},
		{status.Error(codes.FailedPrecondition, "read /x: is a directory"), 400, "/x is a directory"},
		{status.Error(codes.FailedPrecondition, "open /x/y: not a directory"), 400, "/x: open /x/y: not a directory"},
		{status.Error(codes.InvalidArgument, `user "bob": no such user`), 400, `/x: user "bob": no such user`},
		{status.Error(codes.Unavailable, "the guest hung up"), 502, "/x: the guest hung up"},
		{errors.New("plain"), 502, "/x: plain"},
	} {
		code, msg := transferError("/x", c.err)
		if code != c.code || msg != c.msg {
			t.Errorf("%v: %d %q, want %d %q", c.err, code, msg, c.code, c.msg)
		}
	}
}

func TestEnvdUser(t *testing.T) {
	basic := func(u string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":")) }
	for _, c := range []struct{ query, auth, want string }{
		{"", "", ""},
		{"root", "", "root"},
		{"user", "", ""},                  // E2B's default: the sandbox's user
		{"", basic("root"), "root"},       // the SDK's basic auth
		{"", basic("user"), ""},           //
		{"alice", basic("root"), "alice"}, // the parameter wins
	} {
		r := httptest.NewRequest(http.MethodGet, "/files?path=x&username="+c.query, strings.NewReader(""))
		if c.auth != "" {
			r.Header.Set("Authorization", c.auth)
		}
		if got := envdUser(r); got != c.want {
			t.Errorf("username=%q auth=%q: %q, want %q", c.query, c.auth, got, c.want)
		}
	}
}
