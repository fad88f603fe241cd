package bench

import (
	"testing"
	"time"
)

func TestStatMedianAndBounds(t *testing.T) {
	ms := time.Millisecond
	s := stat([]time.Duration{5 * ms, 1 * ms, 3 * ms, 9 * ms})
	if s.N != 4 || s.Min != 1 || s.Max != 9 || s.Median != 4 {
		t.Fatalf("stat = %+v", s)
	}
	if s := stat([]time.Duration{2 * ms, 7 * ms, 3 * ms}); s.Median != 3 {
		t.Fatalf("odd median = %v", s.Median)
	}
	if s := stat(nil); s.N != 0 || s.Median != 0 {
		t.Fatalf("empty stat = %+v", s)
	}
}
