package supervisor

import (
	"encoding/json"
	"sync"

	"github.com/paddock-dev/paddock/internal/store"
)

// auditMax is where the exec audit log rotates.
const auditMax = 8 << 20

// auditLog appends one JSON line per finished exec.
type auditLog struct {
	mu sync.Mutex // serialises lines
	f  *rotatingFile
}

func openAudit(path string) (*auditLog, error) {
	f, err := openRotating(path, auditMax)
	if err != nil {
		return nil, err
	}
	return &auditLog{f: f}, nil
}

func (a *auditLog) record(r store.ExecRecord) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.f.Write(append(b, '\n'))
}
