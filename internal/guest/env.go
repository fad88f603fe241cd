package guest

import "strings"

// DefaultPath is the PATH of every exec unless the request sets one.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BuildEnv returns the environment of an exec: the user's defaults, TERM on
// a terminal, then the request's K=V entries on top (a later entry replaces
// an earlier one with the same key; an entry without = is ignored).
func BuildEnv(id Identity, tty bool, extra []string) []string {
	env := []string{
		"PATH=" + DefaultPath,
		"HOME=" + id.Home,
		"USER=" + id.Name,
		"LOGNAME=" + id.Name,
		"SHELL=" + id.Shell,
	}
	if tty {
		env = append(env, "TERM=xterm-256color")
	}
	index := map[string]int{}
	for i, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	for _, kv := range extra {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			continue
		}
		if i, ok := index[k]; ok {
			env[i] = kv
			continue
		}
		index[k] = len(env)
		env = append(env, kv)
	}
	return env
}

// envValue returns the value of key in env.
func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}
