// Package wsync keeps a copy of a host folder on the guest's own disk in
// step with the host folder, both ways, over one Sync stream of the agent
// link. The supervisor runs the host side, the guest agent the guest side;
// both run a Session over a Tree (the folder, every path resolved beneath
// it without following symlinks) and a watcher (inotify on every folder).
//
// The protocol. The host sends START; the guest answers with a manifest of
// its copy. The host compares each path's three versions, its own, the
// guest's and the base (what the two sides last agreed on, kept in the
// sandbox's folder): a path changed on one side only is sent from that side
// (PUT, or a PULL asking the guest for it); a file changed on both keeps the
// host's version and the guest's is written beside it as
// NAME.paddock-conflict. From then on each side sends what its watcher
// reports, once a path has been quiet for a moment. A PUT from the guest
// names the version it changed (its base); the host applies it only when
// the host's file and base are still that version, otherwise it is a
// conflict, resolved as above. A PUT from the host always wins in the
// guest, unless the guest holds a change of that path it has not sent: then
// it sends that change first (which the host will find in conflict) and
// drops the host's, which the host sends again.
//
// Both sides write a file under a temporary name (.paddock-sync-*) and
// rename it into place, with the sender's permission bits (never set-id)
// and modification time, so a reader never sees a torn file and the two
// sides' entries compare equal once synced. Only regular files, folders and
// symlinks are synced; device nodes, FIFOs and sockets are not. On the host
// every call runs as the folder's owner (fsuid), so what the guest sends is
// owned by the owner and the guest gets no file the owner could not read.
//
// Flow control: a side sends at most window messages that the other has
// not credited; the reader credits what it has handled. FLUSH, answered by
// FLUSHED, is the barrier: when FLUSHED arrives, every change either side
// had seen before the FLUSH has been applied on the other.
package wsync
