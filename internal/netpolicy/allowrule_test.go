package netpolicy

import "testing"

func TestAllowRuleFor(t *testing.T) {
	for _, tc := range []struct {
		r    Record
		want string
	}{
		{Record{Event: "dns", Name: "denied.test"}, "denied.test"},
		{Record{Event: "dns", Name: "Denied.Test."}, "denied.test"},
		{Record{Event: "connect", Name: "api.example.com", Dest: "192.168.127.9:443", Port: 443}, "api.example.com"},
		{Record{Event: "connect", Name: "db.example.com", Dest: "192.168.127.9:5432", Port: 5432}, "db.example.com:5432"},
		{Record{Event: "connect", Name: "git.example.com", Dest: "192.168.127.9:22"}, "git.example.com:22"},
		{Record{Event: "connect", Dest: "203.0.113.7:8080", Port: 8080}, "203.0.113.7/32:8080"},
		{Record{Event: "connect", Dest: "[2001:db8::1]:443", Port: 443}, "[2001:db8::1/128]:443"},
		{Record{Event: "connect", Dest: "203.0.113.7"}, "203.0.113.7/32"},
		{Record{Event: "connect", Name: "bad name!", Dest: "203.0.113.7:80"}, "203.0.113.7/32:80"},
		{Record{Event: "suppressed"}, ""},
	} {
		got := AllowRuleFor(tc.r)
		if got != tc.want {
			t.Errorf("AllowRuleFor(%+v) = %q, want %q", tc.r, got, tc.want)
			continue
		}
		if got != "" {
			if _, err := ParseRule(got); err != nil {
				t.Errorf("AllowRuleFor(%+v) = %q, which does not parse: %v", tc.r, got, err)
			}
		}
	}
}
