package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"sync"
)

// bundle is web/dashboard as make build bundles it (app.js, app.css),
// beside a README that is always there so that go:embed finds a file in
// a fresh clone.
//
//go:embed assets
var bundle embed.FS

// asset is one bundled file, served gzipped to browsers that take it.
type asset struct {
	body, gz []byte
	etag     string
	ctype    string
}

var (
	assetsOnce sync.Once
	assets     map[string]asset
)

// loadAssets reads and compresses the bundle once.
func loadAssets() map[string]asset {
	assetsOnce.Do(func() {
		assets = map[string]asset{}
		entries, _ := fs.ReadDir(bundle, "assets")
		for _, e := range entries {
			if e.IsDir() || !(strings.HasSuffix(e.Name(), ".js") || strings.HasSuffix(e.Name(), ".css")) {
				continue
			}
			b, err := bundle.ReadFile("assets/" + e.Name())
			if err != nil {
				continue
			}
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
			zw.Write(b)
			zw.Close()
			sum := sha256.Sum256(b)
			assets[e.Name()] = asset{body: b, gz: gz.Bytes(), etag: `"` + hex.EncodeToString(sum[:8]) + `"`, ctype: mime.TypeByExtension(path.Ext(e.Name()))}
		}
	})
	return assets
}

// built reports whether make build put the bundle in.
func built() bool {
	_, ok := loadAssets()["app.js"]
	return ok
}

func (d *Dashboard) asset(w http.ResponseWriter, r *http.Request, _ caller) {
	a, ok := loadAssets()[r.PathValue("file")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", a.ctype)
	h.Set("ETag", a.etag)
	h.Set("Cache-Control", "no-cache")
	h.Set("Vary", "Accept-Encoding")
	if r.Header.Get("If-None-Match") == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		h.Set("Content-Encoding", "gzip")
		w.Write(a.gz)
		return
	}
	w.Write(a.body)
}

// shell is the page the bundle draws into: the list at /ui/, a sandbox at
// /ui/s/NAME.
const shell = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>paddock</title><link rel="stylesheet" href="/ui/assets/app.css"></head>
<body><div id="app"></div><script src="/ui/assets/app.js"></script></body></html>
`

const notBuilt = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paddock: dashboard not built</title></head>
<body><h1>dashboard not built: run make build</h1>
<p>This paddock was built without the dashboard's bundle (web/dashboard). <code>make build</code> bundles it and builds it in.</p></body></html>
`

func (d *Dashboard) page(w http.ResponseWriter, r *http.Request, _ caller) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if !built() {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte(notBuilt))
		return
	}
	w.Write([]byte(shell))
}
