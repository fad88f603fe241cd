package secret

import "slices"

// Service is a built-in definition: a secret named after it and set
// without hosts of its own gets its targets and variable.
type Service struct {
	Name    string
	Env     string
	Targets []Target
}

// services are the built-in definitions, by name.
var services = []Service{
	{
		Name:    "anthropic",
		Env:     "ANTHROPIC_API_KEY",
		Targets: []Target{{Hosts: []string{"api.anthropic.com"}, Header: "x-api-key"}},
	},
	{
		Name:    "openai",
		Env:     "OPENAI_API_KEY",
		Targets: []Target{{Hosts: []string{"api.openai.com"}, Header: "Authorization", Format: "Bearer %s"}},
	},
	{
		Name:    "google",
		Env:     "GEMINI_API_KEY",
		Targets: []Target{{Hosts: []string{"generativelanguage.googleapis.com"}, Header: "x-goog-api-key"}},
	},
	{
		// gh and the REST API take a bearer token; git over HTTPS takes
		// basic auth with the token as password (x-access-token is the
		// user GitHub documents for app and fine-grained tokens, and any
		// user works for classic ones).
		Name: "github",
		Env:  "GH_TOKEN",
		Targets: []Target{
			{Hosts: []string{"api.github.com"}, Header: "Authorization", Format: "Bearer %s"},
			{Hosts: []string{"github.com"}, Header: "Authorization", BasicUser: "x-access-token"},
		},
	},
}

// Services returns the built-in service definitions.
func Services() []Service {
	out := make([]Service, len(services))
	for i, s := range services {
		out[i] = s.clone()
	}
	return out
}

// LookupService returns the built-in service name.
func LookupService(name string) (Service, bool) {
	i := slices.IndexFunc(services, func(s Service) bool { return s.Name == name })
	if i < 0 {
		return Service{}, false
	}
	return services[i].clone(), true
}

func (s Service) clone() Service {
	s.Targets = cloneTargets(s.Targets)
	return s
}

func cloneTargets(ts []Target) []Target {
	out := make([]Target, len(ts))
	for i, t := range ts {
		t.Hosts = slices.Clone(t.Hosts)
		out[i] = t
	}
	return out
}
