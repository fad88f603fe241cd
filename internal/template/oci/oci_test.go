package oci

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

func TestUnreachable(t *testing.T) {
	refused := &url.Error{Op: "Get", URL: "https://registry.test/v2/", Err: &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"connection refused", fmt.Errorf("pull x: %w", refused), true},
		{"no DNS answer", fmt.Errorf("pull x: %w", &net.DNSError{Err: "no such host", Name: "registry.test", IsNotFound: true}), true},
		{"the registry answered 404", fmt.Errorf("registry x: %w", &transport.Error{StatusCode: 404}), false},
		{"a local file", fmt.Errorf("docker archive: %w", os.ErrNotExist), false},
	}
	for _, c := range cases {
		if got := unreachable(c.err); got != c.want {
			t.Errorf("%s: unreachable = %v, want %v", c.name, got, c.want)
		}
	}
}
