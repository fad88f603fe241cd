package oci

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/paddock-dev/paddock/internal/template"
)

// openImage resolves a source to an image for linux/amd64 and reads its
// config.
func openImage(ctx context.Context, source string) (v1.Image, template.ImageInfo, error) {
	info := template.ImageInfo{Source: source}
	var img v1.Image
	var err error
	switch {
	case strings.HasPrefix(source, "docker-archive:"):
		p := strings.TrimPrefix(source, "docker-archive:")
		if _, serr := os.Stat(p); serr != nil {
			return nil, info, fmt.Errorf("docker archive %s: %w", p, serr)
		}
		img, err = tarball.ImageFromPath(p, nil)
		if err != nil {
			return nil, info, fmt.Errorf("docker archive %s is not a readable image tarball (docker save output): %w", p, err)
		}
	case strings.HasPrefix(source, "oci:"):
		img, err = ociLayoutImage(strings.TrimPrefix(source, "oci:"))
		if err != nil {
			return nil, info, err
		}
	case strings.Contains(source, ":") && !strings.Contains(source, "/") && !strings.Contains(source, "."):
		return nil, info, fmt.Errorf("unknown image source %q: use docker-archive:PATH, oci:DIR or a registry reference such as registry.example.com/team/app:1", source)
	default:
		ref, perr := name.ParseReference(source)
		if perr != nil {
			return nil, info, fmt.Errorf("image reference %q: %w", source, perr)
		}
		img, err = remote.Image(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain),
			remote.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))
		if err != nil {
			return nil, info, registryError(ref, err)
		}
		if d, derr := img.Digest(); derr == nil {
			info.Manifest = d.String()
		}
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return nil, info, fmt.Errorf("image config: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, info, fmt.Errorf("image config: %w", err)
	}
	if cf.OS != "" && cf.OS != "linux" || cf.Architecture != "" && cf.Architecture != "amd64" {
		return nil, info, fmt.Errorf("the image is for %s/%s; paddock runs linux/amd64 images", cf.OS, cf.Architecture)
	}
	if _, err := img.Layers(); err != nil {
		return nil, info, fmt.Errorf("image layers: %w", err)
	}
	info.Digest = cfgName.String()
	info.Env = cf.Config.Env
	info.WorkingDir = cf.Config.WorkingDir
	info.User = cf.Config.User
	info.Entrypoint = cf.Config.Entrypoint
	info.Cmd = cf.Config.Cmd
	return img, info, nil
}

// ociLayoutImage picks the image of an OCI layout: the only one, else the
// linux/amd64 one.
func ociLayoutImage(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w (want a directory with oci-layout and index.json)", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: index.json: %w", dir, err)
	}
	var picks []v1.Descriptor
	for _, d := range im.Manifests {
		if !d.MediaType.IsImage() && !d.MediaType.IsIndex() {
			continue
		}
		if len(im.Manifests) == 1 || d.Platform == nil || (d.Platform.OS == "linux" && d.Platform.Architecture == "amd64") {
			picks = append(picks, d)
		}
	}
	if len(picks) != 1 {
		return nil, fmt.Errorf("oci layout %s holds %d candidate images: want exactly one (or one for linux/amd64)", dir, len(picks))
	}
	if picks[0].MediaType.IsIndex() {
		child, err := idx.ImageIndex(picks[0].Digest)
		if err != nil {
			return nil, fmt.Errorf("oci layout %s: %w", dir, err)
		}
		return platformImage(child, dir)
	}
	img, err := idx.Image(picks[0].Digest)
	if err != nil {
		return nil, fmt.Errorf("oci layout %s: %w", dir, err)
	}
	return img, nil
}

func platformImage(idx v1.ImageIndex, dir string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, d := range im.Manifests {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == "amd64" {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("oci layout %s: no linux/amd64 image in its index", dir)
}

// registryError says what a registry's refusal means.
func registryError(ref name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode:
				return fmt.Errorf("%s: not found in registry %s (%s): check the repository and tag", ref, ref.Context().RegistryStr(), d.Message)
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("registry %s refused %s (%s): log in with \"docker login %s\" (paddock reads ~/.docker/config.json)", ref.Context().RegistryStr(), ref, d.Code, ref.Context().RegistryStr())
			}
		}
		switch te.StatusCode {
		case 401, 403:
			return fmt.Errorf("registry %s refused %s (HTTP %d): log in with \"docker login %s\" (paddock reads ~/.docker/config.json)", ref.Context().RegistryStr(), ref, te.StatusCode, ref.Context().RegistryStr())
		case 404:
			return fmt.Errorf("%s: not found in registry %s: check the repository and tag", ref, ref.Context().RegistryStr())
		}
		return fmt.Errorf("registry %s: %s: %w", ref.Context().RegistryStr(), ref, err)
	}
	return fmt.Errorf("pull %s from %s: %w", ref, ref.Context().RegistryStr(), err)
}

// unreachable reports whether err says a registry could not be reached at
// all (refused, no route, no DNS answer, timed out), as opposed to an
// answer from it such as "not found" or "unauthorized".
func unreachable(err error) bool {
	var te *transport.Error
	if errors.As(err, &te) {
		return false
	}
	var ne net.Error
	return errors.As(err, &ne)
}

// ctxReader reads r until ctx ends (an interrupted import stops).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
