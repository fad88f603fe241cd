package supervisor

import (
	"testing"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
)

func TestFormatSteps(t *testing.T) {
	steps := []*agentv1.ConfigureStep{{Name: "clock", DoneUs: 5012}, {Name: "mount /w", DoneUs: 83456}}
	if got, want := formatSteps(steps), "clock=5ms mount /w=83.5ms"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := formatSteps(nil); got != "" {
		t.Errorf("no steps: got %q", got)
	}
}
