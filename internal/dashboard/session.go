package dashboard

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/paddock-dev/paddock/internal/apikey"
	"github.com/paddock-dev/paddock/internal/store"
)

// cookieName holds a session's token: random, never the key. The server
// keeps only the token's SHA-256.
const cookieName = "paddock_session"

// sessionTTL is how long a login lasts.
const sessionTTL = 12 * time.Hour

// session is one login: the key's name and its stored hash at login, so
// that removing (or remaking) the key ends the session at once.
type session struct {
	Key     string    `json:"key"`
	KeyHash string    `json:"key_hash"`
	Expires time.Time `json:"expires"`
}

// maxSessionsPerKey bounds a key's live sessions: a new login past it
// ends the key's oldest.
const maxSessionsPerKey = 32

// sessions are the logins of the home's serve. With a file they outlive
// a restart of serve: the file (0600) holds what m does, the tokens'
// SHA-256 and never a token, so it cannot be used to log in.
type sessions struct {
	mu   sync.Mutex
	m    map[string]session // guarded by mu: by the token's SHA-256
	file string             // "" to keep them in memory only
	log  *slog.Logger
}

// load reads the sessions of ss.file that have not expired.
func (ss *sessions) load() {
	ss.m = map[string]session{}
	if ss.file == "" {
		return
	}
	var saved map[string]session
	if err := store.ReadJSON(ss.file, &saved); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			ss.log.Warn("dashboard sessions not read: everyone logs in again", "file", ss.file, "err", err)
		}
		return
	}
	now := time.Now()
	for h, s := range saved {
		if now.Before(s.Expires) {
			ss.m[h] = s
		}
	}
}

// save writes the sessions to ss.file; ss.mu is held.
func (ss *sessions) save() {
	if ss.file == "" {
		return
	}
	if err := store.WriteJSON(ss.file, ss.m); err != nil {
		ss.log.Warn("dashboard sessions not saved: a restart of serve ends them", "file", ss.file, "err", err)
	}
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// add starts a session for s and returns its token.
func (ss *sessions) add(s session) string {
	b := make([]byte, 32)
	rand.Read(b)
	token := hex.EncodeToString(b)
	ss.mu.Lock()
	defer ss.mu.Unlock()
	now := time.Now()
	n, oldest := 0, ""
	for h, old := range ss.m {
		switch {
		case now.After(old.Expires):
			delete(ss.m, h)
		case old.Key == s.Key:
			if n++; oldest == "" || old.Expires.Before(ss.m[oldest].Expires) {
				oldest = h
			}
		}
	}
	if n >= maxSessionsPerKey {
		delete(ss.m, oldest)
	}
	ss.m[tokenHash(token)] = s
	ss.save()
	return token
}

func (ss *sessions) get(token string) (session, bool) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s, ok := ss.m[tokenHash(token)]
	if ok && time.Now().After(s.Expires) {
		delete(ss.m, tokenHash(token))
		ss.save()
		return session{}, false
	}
	return s, ok
}

func (ss *sessions) remove(token string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if _, ok := ss.m[tokenHash(token)]; ok {
		delete(ss.m, tokenHash(token))
		ss.save()
	}
}

// keyHash is the stored hash of the key named name, or "" when there is
// no such key.
func keyHash(keys *apikey.Store, name string) string {
	all, err := keys.List()
	if err != nil {
		return ""
	}
	if i := slices.IndexFunc(all, func(k apikey.Key) bool { return k.Name == name }); i >= 0 {
		return all[i].Hash
	}
	return ""
}

// authenticated serves h to a request with a live session whose key still
// exists, within the key's rate, and from the dashboard's own origin when
// it changes anything; else the login page.
func (d *Dashboard) authenticated(h func(http.ResponseWriter, *http.Request, caller)) http.Handler {
	return sameOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(cookieName)
		if err != nil {
			d.loginForm(w, http.StatusUnauthorized, "")
			return
		}
		s, ok := d.sessions.get(c.Value)
		if !ok || s.KeyHash == "" || keyHash(d.cfg.Keys, s.Key) != s.KeyHash {
			d.sessions.remove(c.Value)
			d.loginForm(w, http.StatusUnauthorized, "Your session ended: log in again.")
			return
		}
		if d.cfg.Allow != nil && !d.cfg.Allow(s.Key) {
			http.Error(w, "too many requests for key "+s.Key+": slow down", http.StatusTooManyRequests)
			return
		}
		h(w, r, d.callerOf(s.Key))
	}))
}

// sameOrigin refuses a request that may change something (any method but
// GET and HEAD, and every WebSocket) unless its Origin, or without one its
// Referer, is the dashboard's own scheme and host: the cookie's
// SameSite=Strict keeps it from other sites' requests, this from the rest.
func sameOrigin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		safe := (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Upgrade") == ""
		if !safe && !fromOwnOrigin(r) {
			http.Error(w, "refused: the request does not come from this dashboard's origin", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// fromOwnOrigin reports whether r's Origin (or Referer) is scheme://Host
// of r itself.
func fromOwnOrigin(r *http.Request) bool {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		ref, err := url.Parse(r.Header.Get("Referer"))
		if err != nil || ref.Host == "" {
			return false
		}
		origin = ref.Scheme + "://" + ref.Host
	}
	return origin == scheme+"://"+r.Host
}

func (d *Dashboard) loginPage(w http.ResponseWriter, r *http.Request) {
	d.loginForm(w, http.StatusOK, "")
}

// login checks the key of the login form and starts a session.
func (d *Dashboard) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	key := r.PostFormValue("key")
	name, ok := d.cfg.Keys.Verify(key)
	if key == "" || !ok {
		d.log.Warn("dashboard login refused", "remote", r.RemoteAddr)
		d.loginForm(w, http.StatusUnauthorized, "That is not a key of this server. Make one with: paddock apikey create NAME")
		return
	}
	token := d.sessions.add(session{Key: name, KeyHash: keyHash(d.cfg.Keys, name), Expires: time.Now().Add(sessionTTL)})
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: token, Path: "/ui/", MaxAge: int(sessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	d.log.Info("dashboard login", "key", name, "remote", r.RemoteAddr)
	http.Redirect(w, r, "/ui/", http.StatusSeeOther)
}

func (d *Dashboard) logout(w http.ResponseWriter, r *http.Request, _ caller) {
	if c, err := r.Cookie(cookieName); err == nil {
		d.sessions.remove(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/ui/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/ui/login", http.StatusSeeOther)
}

var loginTemplate = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>paddock: log in</title>
<style>
body{font:15px system-ui,sans-serif;background:#f4f5f7;color:#1d2330;display:grid;place-items:center;min-height:100vh;margin:0}
form{background:#fff;padding:2rem 2.2rem;border-radius:10px;box-shadow:0 2px 12px #0002;width:24rem}
h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin-bottom:.4rem;color:#4a5263}
input{width:100%;box-sizing:border-box;font:14px ui-monospace,monospace;padding:.55rem;border:1px solid #c5cad3;border-radius:6px}
button{margin-top:1rem;width:100%;padding:.6rem;border:0;border-radius:6px;background:#2a5bd7;color:#fff;font-size:15px;cursor:pointer}
.err{color:#b42318;margin:.8rem 0 0}.hint{color:#6b7280;font-size:13px;margin-top:1rem}
</style></head><body>
<form method="post" action="/ui/login" id="login">
<h1>paddock</h1>
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" autofocus required placeholder="e2b_…">
<button type="submit">Log in</button>
{{if .}}<p class="err" id="login-error">{{.}}</p>{{end}}
<p class="hint">A key of this server: <code>paddock apikey create NAME</code>.</p>
</form></body></html>
`))

// loginForm answers the login page, with msg when there is one.
func (d *Dashboard) loginForm(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	loginTemplate.Execute(w, msg)
}
