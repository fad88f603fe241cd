package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/paddock-dev/paddock/internal/sandbox"
)

// statsInterval is the time between two samples of paddock stats (and the
// window of --no-stream's one sample).
const statsInterval = time.Second

func statsCmd() *cobra.Command {
	var asJSON, noStream bool
	cmd := &cobra.Command{
		Use:   "stats [NAME...]",
		Short: "Show running sandboxes' host CPU, memory, disk and network use, live",
		Long: "Show running sandboxes' use of the host, refreshed every second until interrupted:\n" +
			"CPU (100% is one core; the limit is --cpus cores), memory (the host cgroup's working set\n" +
			"against its limit), disk (the sandbox's overlay), network (bytes of closed connections)\n" +
			"and host tasks. --no-stream prints one sample; --json prints one JSON object per\n" +
			"sandbox and sample, one a line.",
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := manager()
			if err != nil {
				return err
			}
			s := m.NewSampler()
			if _, err := s.Sample(args); err != nil {
				return err
			}
			tty := !asJSON && !noStream && term.IsTerminal(int(os.Stdout.Fd()))
			for {
				if err := sleepCtx(cmd.Context(), statsInterval); err != nil {
					return nil
				}
				list, err := s.Sample(args)
				if err != nil {
					return err
				}
				if err := printStats(list, asJSON, tty); err != nil {
					return err
				}
				if noStream {
					return nil
				}
			}
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON lines")
	cmd.Flags().BoolVar(&noStream, "no-stream", false, "print one sample and exit")
	return cmd
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func printStats(list []sandbox.Stat, asJSON, tty bool) error {
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		for _, st := range list {
			if err := enc.Encode(st); err != nil {
				return err
			}
		}
		return nil
	}
	var b bytes.Buffer
	if tty {
		b.WriteString("\033[H\033[J") // home and clear, as docker stats does
	}
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tCPU %\tCPU LIMIT\tMEM USAGE / LIMIT\tMEM %\tDISK\tNET SENT / RECEIVED\tPIDS")
	for _, st := range list {
		limit, cpus, memPct := "unlimited", "-", "-"
		if st.MemoryLimitBytes > 0 {
			limit = humanBytes(st.MemoryLimitBytes)
			memPct = fmt.Sprintf("%.1f%%", st.MemoryPercent)
		}
		if st.CPULimit > 0 {
			cpus = fmt.Sprintf("%g", st.CPULimit)
		}
		fmt.Fprintf(tw, "%s\t%.1f%%\t%s\t%s / %s\t%s\t%s\t%s / %s\t%d\n", st.Name, st.CPUPercent, cpus,
			humanBytes(int64(st.MemoryBytes)), limit, memPct, humanBytes(st.DiskBytes),
			humanBytes(st.NetSentBytes), humanBytes(st.NetReceivedBytes), st.Pids)
	}
	tw.Flush()
	_, err := os.Stdout.Write(b.Bytes())
	return err
}

// noteUnlimited prints one line on stderr when sandbox name runs without a
// host cgroup (no usable cgroups, e.g. a plain user without delegation, or
// PADDOCK_CGROUP=off), saying why.
func noteUnlimited(m *sandbox.Manager, name string) {
	info, err := m.Inspect(name)
	if err != nil || info.Cgroup == nil || info.Cgroup.Unlimited == "" {
		return
	}
	fmt.Fprintf(os.Stderr, "paddock: notice: %s runs without host CPU, memory and pids limits (no cgroup: %s)\n", name, info.Cgroup.Unlimited)
}
