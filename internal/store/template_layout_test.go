package store

import "testing"

func TestTemplateLayout(t *testing.T) {
	h := Home("/ph")
	l := h.Template("tiny")
	for got, want := range map[string]string{
		l.Dir:                             "/ph/templates/tiny",
		l.Meta():                          "/ph/templates/tiny/template.json",
		l.Recipe():                        "/ph/templates/tiny/recipe.yaml",
		l.Kernel():                        "/ph/templates/tiny/vmlinux",
		l.Modules():                       "/ph/templates/tiny/modules",
		l.Rootfs():                        "/ph/templates/tiny/root.ext4",
		h.TemplateLock("tiny"):            "/ph/templates/.tiny.lock",
		h.Deb("busybox-static", "1:1.35"): "/ph/cache/debs/busybox-static_1%3a1.35.deb",
		h.Kernel("linux-image-x", "6.1-2").Vmlinux(): "/ph/cache/kernels/linux-image-x_6.1-2/vmlinux",
		h.Kernel("k", "1").Modules("6.1.0"):          "/ph/cache/kernels/k_1/lib/modules/6.1.0",
		h.DebootstrapTarball("abc"):                  "/ph/cache/debootstrap/abc.tgz",
		InitramfsPath("/c", "k"):                     "/c/initramfs/k.cpio",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
