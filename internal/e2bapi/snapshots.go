package e2bapi

import (
	"fmt"
	"net/http"

	"github.com/paddock-dev/paddock/internal/label"
	"github.com/paddock-dev/paddock/internal/sandbox"
)

// E2B's snapshots are paddock's checkpoints: the memory, devices and disk
// of a running sandbox; a create whose templateID names one of the key's
// snapshots forks it. A checkpoint belongs to the key that owned its
// sandbox; the CLI's checkpoints belong to no key.

// snapshotInfo is E2B's SnapshotInfo.
type snapshotInfo struct {
	SnapshotID string   `json:"snapshotID"`
	Names      []string `json:"names"`
}

// ownedSnapshot returns the key's checkpoint named id.
func (s *Server) ownedSnapshot(key, id string) (sandbox.CheckpointInfo, bool) {
	all, err := s.m.Checkpoints()
	if err != nil {
		return sandbox.CheckpointInfo{}, false
	}
	for _, c := range all {
		if c.Name == id && c.Config.Owner == key && c.State == sandbox.CheckpointReady {
			return c, true
		}
	}
	return sandbox.CheckpointInfo{}, false
}

func (s *Server) snapshot(w http.ResponseWriter, r *http.Request, key string) {
	var req struct {
		Name string `json:"name"`
	}
	if !readJSON(w, r, &req) {
		return
	}
	info, ok := s.owned(w, r, key)
	if !ok {
		return
	}
	name := req.Name
	if name == "" {
		name = "snap-" + newAccessToken()[:10]
	}
	if !label.Name(name) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("snapshot name %q: use lowercase letters, digits and '-' (at most 63)", name))
		return
	}
	if _, err := s.m.Checkpoint(r.Context(), info.Name, name); err != nil {
		writeError(w, createStatus(err), "snapshot: "+err.Error())
		return
	}
	writeJSON(w, http.StatusCreated, snapshotInfo{SnapshotID: name, Names: []string{name}})
}

func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request, key string) {
	all, err := s.m.Checkpoints()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	from := r.URL.Query().Get("sandboxID")
	out := []snapshotInfo{}
	for _, c := range all {
		if c.Config.Owner == key && c.State == sandbox.CheckpointReady && (from == "" || c.Sandbox == from) {
			out = append(out, snapshotInfo{SnapshotID: c.Name, Names: []string{c.Name}})
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteSnapshot serves DELETE /templates/{id}, which the SDKs use to
// delete a snapshot; paddock's templates are not deleted over the API.
func (s *Server) deleteSnapshot(w http.ResponseWriter, r *http.Request, key string) {
	id := r.PathValue("templateID")
	if _, ok := s.ownedSnapshot(key, id); !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("snapshot %q not found (templates are removed with paddock template rm)", id))
		return
	}
	if err := s.m.RemoveCheckpoint(id); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
