package sandbox

import "testing"

func TestClaimable(t *testing.T) {
	api := CreateOptions{Template: "tiny", NoWorkspace: true, User: "user", Env: []string{"A=1"}, Owner: "k", AccessToken: "t", Metadata: map[string]string{"a": "b"}}
	clone := CreateOptions{Template: "tiny", NoWorkspace: true, User: "user", Pool: "tiny"}
	for _, tc := range []struct {
		name string
		edit func(*CreateOptions)
		want bool
	}{
		{"an API create", func(*CreateOptions) {}, true},
		{"a workspace", func(o *CreateOptions) { o.NoWorkspace = false }, false},
		{"a fork", func(o *CreateOptions) { o.From = "snap-1" }, false},
		{"a name", func(o *CreateOptions) { o.Name = "mine" }, false},
		{"cpus", func(o *CreateOptions) { o.CPUs = 1 }, false},
		{"memory", func(o *CreateOptions) { o.Memory = "1G" }, false},
		{"an accelerator", func(o *CreateOptions) { o.Accel = "tcg" }, false},
		{"a cold boot", func(o *CreateOptions) { o.Cold = true }, false},
		{"private memory", func(o *CreateOptions) { o.NoShareMemory = true }, false},
		{"a pool member itself", func(o *CreateOptions) { o.Pool = "tiny" }, false},
		{"another template", func(o *CreateOptions) { o.Template = "debian" }, false},
		{"another user", func(o *CreateOptions) { o.User = "" }, false},
	} {
		o := api
		tc.edit(&o)
		if got := Claimable(o, clone); got != tc.want {
			t.Errorf("%s: Claimable = %v, want %v", tc.name, got, tc.want)
		}
	}
}
