package cgroup

import "testing"

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		cpus  int
		ram   int64
		quota int64
		mem   int64
	}{
		{1, 256 << 20, 100_000, 256<<20 + MemoryOverhead},
		{2, 1 << 30, 200_000, 1<<30 + MemoryOverhead},
		{0, 512 << 20, 100_000, 512<<20 + MemoryOverhead}, // below one: one
	} {
		l := For(tc.cpus, tc.ram)
		if l.CPUQuotaUs != tc.quota || l.CPUPeriodUs != Period || l.MemoryBytes != tc.mem || l.Pids != PidsMax {
			t.Errorf("For(%d, %d) = %+v", tc.cpus, tc.ram, l)
		}
		if want := float64(tc.quota) / Period; l.CPUs() != want {
			t.Errorf("CPUs() = %g, want %g", l.CPUs(), want)
		}
	}
}

func TestBase(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "/",
		"/":                         "/",
		"/process_api/abc":          "/process_api/abc",
		"/paddock/web":              "/", // rm run by a sandbox's deadline
		"/user.slice/paddock/web":   "/user.slice",
		"/a/paddockish/b":           "/a/paddockish/b",
		"process_api/abc/paddock/x": "/process_api/abc",
	} {
		if got := base(in); got != want {
			t.Errorf("base(%q) = %q, want %q", in, got, want)
		}
	}
	if got := groupPath("/process_api/abc", "web"); got != "/process_api/abc/paddock/web" {
		t.Errorf("groupPath = %q", got)
	}
}

func TestRecordDir(t *testing.T) {
	v1 := Record{Driver: DriverV1, Paths: map[string]string{"memory": "/x/paddock/a", "cpu": "/paddock/a"}}
	if got := v1.Dir("memory"); got != "/sys/fs/cgroup/memory/x/paddock/a" {
		t.Errorf("v1 memory dir %q", got)
	}
	if got := v1.Dir("pids"); got != "" {
		t.Errorf("v1 pids dir %q, want none", got)
	}
	v2 := Record{Driver: DriverV2, Paths: map[string]string{"unified": "/paddock/a"}}
	if got := v2.Dir("memory"); got != "/sys/fs/cgroup/paddock/a" {
		t.Errorf("v2 dir %q", got)
	}
}
