package netpolicy

// BalancedHosts is what the balanced preset allows (ports 80 and 443 unless
// a rule says otherwise): package registries, git hosts, container
// registries and AI APIs. docs/NETWORK.md lists them; keep the two in step.
var BalancedHosts = []string{
	// Python
	"pypi.org", "files.pythonhosted.org",
	// JavaScript
	"registry.npmjs.org", "registry.yarnpkg.com", "repo.yarnpkg.com",
	// Go
	"proxy.golang.org", "sum.golang.org", "index.golang.org", "golang.org", "go.dev", "dl.google.com",
	// Rust
	"crates.io", "index.crates.io", "static.crates.io", "static.rust-lang.org", "sh.rustup.rs",
	// Ruby, Java, PHP, .NET
	"rubygems.org", "index.rubygems.org", "repo.maven.apache.org", "repo1.maven.org",
	"plugins.gradle.org", "services.gradle.org", "repo.packagist.org", "api.nuget.org",
	// OS packages
	"deb.debian.org", "security.debian.org", "archive.ubuntu.com", "security.ubuntu.com",
	"dl-cdn.alpinelinux.org",
	// Git hosts (HTTPS, and SSH on port 22)
	"github.com", "github.com:22", "*.github.com", "*.githubusercontent.com",
	"codeload.github.com", "gitlab.com", "gitlab.com:22", "bitbucket.org", "bitbucket.org:22",
	// Container registries
	"registry-1.docker.io", "auth.docker.io", "production.cloudflare.docker.com", "ghcr.io", "quay.io",
	// AI APIs
	"api.anthropic.com", "api.openai.com", "generativelanguage.googleapis.com",
	"api.mistral.ai", "openrouter.ai",
}
