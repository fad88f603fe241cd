//go:build agents

package e2e

import "testing"

// The agent presets whose templates make test does not build (each is
// debian plus the agent's CLI from npm, minutes on a cold cache). make
// test-agents builds them and runs this test with -tags agents; a missing
// template fails it.
func TestRunAgentVersionsCodexGemini(t *testing.T) { runAgentVersions(t, "codex", "gemini") }
