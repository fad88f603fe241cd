package sandbox

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/paddock-dev/paddock/internal/netpolicy"
	"github.com/paddock-dev/paddock/internal/store"
)

// LogKind names one of a sandbox's logs.
type LogKind string

const (
	ConsoleLog    LogKind = "console"    // the guest's serial console
	ExecLog       LogKind = "exec"       // one JSON line per finished command
	SupervisorLog LogKind = "supervisor" // the supervisor's and QEMU's own log
	NetLog        LogKind = "net"        // one JSON line per network decision
)

// LogFiles returns the files of sandbox name's log kind, oldest first: the
// rotated one, then the current one. Either may not exist yet.
func (m *Manager) LogFiles(name string, kind LogKind) ([]string, error) {
	l, err := m.existing(name)
	if err != nil {
		return nil, err
	}
	var p string
	switch kind {
	case ConsoleLog:
		p = l.ConsoleLog()
	case ExecLog:
		p = l.ExecLog()
	case SupervisorLog:
		p = l.SupervisorLog()
	case NetLog:
		p = l.NetLog()
	default:
		return nil, fmt.Errorf("invalid log kind %q: use console, exec, supervisor or net", kind)
	}
	return []string{p + ".1", p}, nil
}

// TailLog calls line for each line of files in order (files that do not
// exist are skipped). Without follow it returns at the end, the last
// line whether or not it ends in a newline; with follow it goes on with
// what is appended to the last file, from its start again after a
// rotation, until ctx ends. A line is whole, newline included, except
// an unfinished last one.
func TailLog(ctx context.Context, files []string, follow bool, line func([]byte)) error {
	for _, f := range files[:len(files)-1] {
		if _, err := readLines(f, 0, !follow, line); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	last := files[len(files)-1]
	off, err := readLines(last, 0, !follow, line)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	if !follow {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
		if st, err := os.Stat(last); err == nil && st.Size() < off {
			off = 0 // rotated
		}
		if n, err := readLines(last, off, false, line); err == nil {
			off = n
		}
	}
}

// readLines calls f for each complete line of path from offset off, and
// for an unfinished last line too if partial, and returns the offset
// after the last complete one.
func readLines(path string, off int64, partial bool, f func([]byte)) (int64, error) {
	file, err := os.Open(path)
	if err != nil {
		return off, err
	}
	defer file.Close()
	if _, err := file.Seek(off, io.SeekStart); err != nil {
		return off, err
	}
	r := bufio.NewReaderSize(file, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			if partial && len(line) > 0 {
				f(line)
			}
			return off, nil // an unfinished line waits for its end
		}
		off += int64(len(line))
		f(line)
	}
}

// NetRecords returns sandbox name's network decisions, oldest first.
func (m *Manager) NetRecords(name string) ([]netpolicy.Record, error) {
	var recs []netpolicy.Record
	err := m.eachRecord(name, NetLog, func(b []byte) {
		var r netpolicy.Record
		if json.Unmarshal(b, &r) == nil {
			recs = append(recs, r)
		}
	})
	return recs, err
}

func (m *Manager) eachRecord(name string, kind LogKind, f func([]byte)) error {
	files, err := m.LogFiles(name, kind)
	if err != nil {
		return err
	}
	return TailLog(context.Background(), files, false, f)
}

// Event is one entry of a sandbox's structured log: a command that ended
// or a network decision.
type Event struct {
	Time    time.Time
	Level   string // debug, info, warn or error
	Message string
	Fields  map[string]string
}

// Events returns sandbox name's commands and network decisions, oldest
// first: what a program that drives the sandbox reads as its log.
func (m *Manager) Events(name string) ([]Event, error) {
	var out []Event
	err := m.eachRecord(name, ExecLog, func(b []byte) {
		var r store.ExecRecord
		if json.Unmarshal(b, &r) == nil {
			out = append(out, execEvent(r))
		}
	})
	if err != nil {
		return nil, err
	}
	recs, err := m.NetRecords(name)
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		out = append(out, netEvent(r))
	}
	slices.SortStableFunc(out, func(a, b Event) int { return a.Time.Compare(b.Time) })
	return out, nil
}

func execEvent(r store.ExecRecord) Event {
	e := Event{Time: r.Time, Level: "info", Message: "exec " + strings.Join(r.Argv, " "), Fields: map[string]string{
		"kind": "exec", "user": r.User, "cwd": r.Cwd, "exit_code": strconv.Itoa(int(r.ExitCode)),
		"duration_ms": strconv.FormatInt(r.DurationMS, 10),
	}}
	if r.Error != "" {
		e.Level, e.Fields["error"] = "error", r.Error
	}
	return e
}

func netEvent(r netpolicy.Record) Event {
	target := r.Dest
	if r.Name != "" {
		target = r.Name + " " + r.Dest
	}
	e := Event{Time: r.Time, Level: "info", Message: strings.TrimSpace(fmt.Sprintf("%s %s %s: %s (%s)", r.Event, r.Proto, target, r.Verdict, r.Rule)), Fields: map[string]string{
		"kind": "net", "event": r.Event, "proto": r.Proto, "verdict": r.Verdict, "rule": r.Rule,
	}}
	for k, v := range map[string]string{"dest": r.Dest, "name": r.Name, "type": r.Type, "addr": r.Addr, "error": r.Error} {
		if v != "" {
			e.Fields[k] = v
		}
	}
	if r.Event == "close" {
		e.Fields["sent"], e.Fields["received"] = strconv.FormatInt(r.Sent, 10), strconv.FormatInt(r.Received, 10)
	}
	if r.Event == "request" {
		// A request the injector read: its secrets by name, never a value.
		e.Fields["method"], e.Fields["path"], e.Fields["status"] = r.Method, r.Path, strconv.Itoa(r.Status)
		if len(r.Secrets) > 0 {
			e.Fields["secrets"] = strings.Join(r.Secrets, ",")
		}
		e.Message = strings.TrimSpace(fmt.Sprintf("request %s %s %s%s -> %d: %s (%s)", r.Proto, r.Method, r.Name, r.Path, r.Status, r.Verdict, r.Rule))
	}
	switch {
	case r.Error != "":
		e.Level = "error"
	case r.Verdict == "deny":
		e.Level = "warn"
	}
	return e
}
