package qemu

import "time"

func rdtsc() uint64

// HostTSCkHz measures the host's time stamp counter against the monotonic
// clock over window. Under TCG a guest's TSC ticks at the host's rate, so
// this is the tsc_early_khz a TCG guest needs for its clock to keep time.
// The result is rounded to whole MHz, so that measurements agree.
func HostTSCkHz(window time.Duration) int64 {
	t0, c0 := time.Now(), rdtsc()
	time.Sleep(window)
	c1, t1 := rdtsc(), time.Now()
	khz := float64(c1-c0) / float64(t1.Sub(t0).Microseconds()) * 1000
	return int64(khz/1000+0.5) * 1000
}
