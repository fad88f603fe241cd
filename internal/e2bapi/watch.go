package e2bapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"connectrpc.com/connect"

	agentv1 "github.com/paddock-dev/paddock/api/agent/v1"
	fspb "github.com/paddock-dev/paddock/api/envd/filesystem"
	"github.com/paddock-dev/paddock/internal/guest"
)

// A folder watch is the agent's file tool (`paddock-files watch`, inotify
// in the guest) run as the caller's user for as long as the watch lasts:
// WatchDir streams its events; a polling watcher (CreateWatcher) keeps
// them, at most maxWatchEvents, until GetWatcherEvents takes them.

// maxWatchEvents bounds the events a polling watcher keeps; the oldest go.
// maxWatchers bounds a sandbox's polling watchers.
const (
	maxWatchEvents = 10_000
	maxWatchers    = 64
)

var eventTypes = map[string]fspb.EventType{
	"create": fspb.EventType_EVENT_TYPE_CREATE, "write": fspb.EventType_EVENT_TYPE_WRITE,
	"remove": fspb.EventType_EVENT_TYPE_REMOVE, "rename": fspb.EventType_EVENT_TYPE_RENAME,
	"chmod": fspb.EventType_EVENT_TYPE_CHMOD,
}

// watch runs the watch of path in sandbox name as user. started is called
// once the guest's watches are in place, on for each event; it returns
// when the folder goes (nil), the tool fails, or ctx ends.
func (s *Server) watch(ctx context.Context, name, user, path string, recursive bool, started func() error, on func(*fspb.FilesystemEvent) error) error {
	mode := "flat"
	if recursive {
		mode = "recursive"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	c, stream, err := s.fileCommand(ctx, name, user, guest.FilesVerb, "watch", path, mode)
	if err != nil {
		return connect.NewError(connect.CodeUnavailable, err)
	}
	defer c.Close()
	var pending []byte
	var stderr strings.Builder
	for {
		ev, err := stream.Recv()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return connect.NewError(connect.CodeUnavailable, fmt.Errorf("watch %s: %w", path, err))
		}
		switch e := ev.Event.(type) {
		case *agentv1.ExecEvent_Stderr:
			if stderr.Len() < stderrCap {
				stderr.Write(e.Stderr)
			}
		case *agentv1.ExecEvent_Exited:
			if code := e.Exited.GetExitCode(); code != 0 {
				return fileToolError(code, e.Exited.GetError()+strings.TrimSpace(stderr.String()))
			}
			return nil
		case *agentv1.ExecEvent_Stdout:
			pending = append(pending, e.Stdout...)
			for {
				i := strings.IndexByte(string(pending), '\n')
				if i < 0 {
					break
				}
				var we guest.WatchEvent
				err := json.Unmarshal(pending[:i], &we)
				pending = pending[i+1:]
				switch {
				case err != nil:
					return connect.NewError(connect.CodeInternal, errors.New("the guest's file tool printed something else: "+err.Error()))
				case we.Type == "start":
					err = started()
				default:
					err = on(&fspb.FilesystemEvent{Name: we.Name, Type: eventTypes[we.Type]})
				}
				if err != nil {
					return err
				}
			}
		}
	}
}

// WatchDir streams a folder's changes, with keepalives at the interval
// the client asks for.
func (f *filesystemService) WatchDir(ctx context.Context, req *connect.Request[fspb.WatchDirRequest], stream *connect.ServerStream[fspb.WatchDirResponse]) error {
	info, err := f.s.sandboxFor(req.Header())
	if err != nil {
		return err
	}
	var mu sync.Mutex // one sender at a time: events and keepalives
	send := func(r *fspb.WatchDirResponse) error {
		mu.Lock()
		defer mu.Unlock()
		return stream.Send(r)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if every := keepalive(req.Header()); every > 0 {
		go func() {
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					if send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Keepalive{Keepalive: &fspb.WatchDirResponse_KeepAlive{}}}) != nil {
						cancel()
					}
				}
			}
		}()
	}
	return f.s.watch(ctx, info.Name, execUser(req.Header()), req.Msg.GetPath(), req.Msg.GetRecursive(),
		func() error {
			return send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Start{Start: &fspb.WatchDirResponse_StartEvent{}}})
		},
		func(e *fspb.FilesystemEvent) error {
			return send(&fspb.WatchDirResponse{Event: &fspb.WatchDirResponse_Filesystem{Filesystem: e}})
		})
}

// watcher is a polling watch: its events wait for GetWatcherEvents.
type watcher struct {
	sandbox string
	cancel  context.CancelFunc

	mu     sync.Mutex
	events []*fspb.FilesystemEvent // guarded by mu
	err    error                   // guarded by mu: why the watch ended, once it has
}

// watchers is every polling watch, by id. Safe for concurrent use.
type watchers struct {
	mu sync.Mutex
	by map[string]*watcher
}

func (ws *watchers) get(sandbox, id string) (*watcher, error) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	w, ok := ws.by[id]
	if !ok || w.sandbox != sandbox {
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("watcher %q not found", id))
	}
	return w, nil
}

func (ws *watchers) count(sandbox string) int {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	n := 0
	for _, w := range ws.by {
		if w.sandbox == sandbox {
			n++
		}
	}
	return n
}

func (f *filesystemService) CreateWatcher(ctx context.Context, req *connect.Request[fspb.CreateWatcherRequest]) (*connect.Response[fspb.CreateWatcherResponse], error) {
	info, err := f.s.sandboxFor(req.Header())
	if err != nil {
		return nil, err
	}
	if n := f.s.watchers.count(info.Name); n >= maxWatchers {
		return nil, connect.NewError(connect.CodeResourceExhausted, fmt.Errorf("sandbox %s has %d watchers: remove one first", info.Name, n))
	}
	// The watch outlives this request; it ends with RemoveWatcher or its
	// sandbox.
	wctx, cancel := context.WithCancel(context.Background())
	w := &watcher{sandbox: info.Name, cancel: cancel}
	ready := make(chan error, 1)
	go func() {
		err := f.s.watch(wctx, info.Name, execUser(req.Header()), req.Msg.GetPath(), req.Msg.GetRecursive(),
			func() error { ready <- nil; return nil },
			func(e *fspb.FilesystemEvent) error {
				w.mu.Lock()
				defer w.mu.Unlock()
				if len(w.events) >= maxWatchEvents {
					w.events = w.events[1:]
				}
				w.events = append(w.events, e)
				return nil
			})
		if err == nil {
			err = connect.NewError(connect.CodeNotFound, fmt.Errorf("watch %s ended: the folder is gone", req.Msg.GetPath()))
		}
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
		select {
		case ready <- err:
		default:
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			cancel()
			return nil, err
		}
	case <-ctx.Done():
		cancel()
		return nil, ctx.Err()
	}
	id := "watch-" + newAccessToken()[:16]
	f.s.watchers.mu.Lock()
	if f.s.watchers.by == nil {
		f.s.watchers.by = map[string]*watcher{}
	}
	f.s.watchers.by[id] = w
	f.s.watchers.mu.Unlock()
	return connect.NewResponse(&fspb.CreateWatcherResponse{WatcherId: id}), nil
}

func (f *filesystemService) GetWatcherEvents(ctx context.Context, req *connect.Request[fspb.GetWatcherEventsRequest]) (*connect.Response[fspb.GetWatcherEventsResponse], error) {
	info, err := f.s.sandboxFor(req.Header())
	if err != nil {
		return nil, err
	}
	w, err := f.s.watchers.get(info.Name, req.Msg.GetWatcherId())
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	events := w.events
	w.events = nil
	if len(events) == 0 && w.err != nil {
		return nil, w.err
	}
	return connect.NewResponse(&fspb.GetWatcherEventsResponse{Events: events}), nil
}

func (f *filesystemService) RemoveWatcher(ctx context.Context, req *connect.Request[fspb.RemoveWatcherRequest]) (*connect.Response[fspb.RemoveWatcherResponse], error) {
	info, err := f.s.sandboxFor(req.Header())
	if err != nil {
		return nil, err
	}
	w, err := f.s.watchers.get(info.Name, req.Msg.GetWatcherId())
	if err != nil {
		return nil, err
	}
	w.cancel()
	f.s.watchers.mu.Lock()
	delete(f.s.watchers.by, req.Msg.GetWatcherId())
	f.s.watchers.mu.Unlock()
	return connect.NewResponse(&fspb.RemoveWatcherResponse{}), nil
}
