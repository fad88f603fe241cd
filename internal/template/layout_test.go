package template

import "testing"

func TestLayout(t *testing.T) {
	h := homeLayout{home: "/ph"}
	l := h.template("tiny")
	for got, want := range map[string]string{
		l.Dir:                             "/ph/templates/tiny",
		l.Meta():                          "/ph/templates/tiny/template.json",
		l.Recipe():                        "/ph/templates/tiny/recipe.yaml",
		l.Kernel():                        "/ph/templates/tiny/vmlinux",
		l.Modules():                       "/ph/templates/tiny/modules",
		l.Rootfs():                        "/ph/templates/tiny/root.ext4",
		h.lock("tiny"):                    "/ph/templates/.tiny.lock",
		h.deb("busybox-static", "1:1.35"): "/ph/cache/debs/busybox-static_1%3a1.35.deb",
		h.kernel("linux-image-x", "6.1-2").vmlinux(): "/ph/cache/kernels/linux-image-x_6.1-2/vmlinux",
		h.kernel("k", "1").modules("6.1.0"):          "/ph/cache/kernels/k_1/lib/modules/6.1.0",
		h.debootstrapTarball("abc"):                  "/ph/cache/debootstrap/abc.tgz",
		initramfsPath("/c", "k"):                     "/c/initramfs/k.cpio",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
}
