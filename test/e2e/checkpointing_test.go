package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// A checkpoint in progress is its own state: inspect says checkpointing,
// and pause, resume and exec meanwhile are refused, saying why. The guest
// holds 1 GB of data in memory so that the save lasts long enough to ask.
func TestCheckpointingIsItsOwnState(t *testing.T) {
	e := newEnv(t, "tiny")
	e.create("ckb", "--memory", "1536M")
	e.ok("exec", "-u", "root", "ckb", "--", "sh", "-c",
		"mkdir -p /mnt/big && mount -t tmpfs -o size=1100m tmpfs /mnt/big && head -c 1048576 /dev/urandom > /mnt/big/a && "+
			"for i in $(seq 1000); do cat /mnt/big/a; done > /mnt/big/data && rm /mnt/big/a")

	ck := exec.Command(e.bin, "checkpoint", "ckb", "ckbck")
	ck.Env = append(os.Environ(), "PADDOCK_HOME="+e.home)
	var ckOut bytes.Buffer
	ck.Stdout, ck.Stderr = &ckOut, &ckOut
	start := time.Now()
	if err := ck.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ck.Wait() }()
	ended := func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
			return false
		}
	}
	for {
		out, _, _ := e.run("inspect", "ckb")
		if strings.Contains(out, `"checkpointing"`) {
			break
		}
		if ended() {
			t.Fatalf("the checkpoint ended after %s before inspect said checkpointing (give its guest more data): %s", time.Since(start), out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, args := range [][]string{{"pause", "ckb"}, {"resume", "ckb"}, {"exec", "ckb", "--", "true"}} {
		_, errs, code := e.run(args...)
		if code == 0 || !strings.Contains(errs, `sandbox "ckb" is being checkpointed`) {
			if ended() {
				t.Fatalf("the checkpoint ended after %s, before %v was asked (give its guest more data): exit %d, %s", time.Since(start), args, code, errs)
			}
			t.Errorf("%v during a checkpoint: exit %d, %q", args, code, errs)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("checkpoint: %v: %s", err, ckOut.String())
	}
	t.Logf("the checkpoint took %s", time.Since(start).Round(time.Millisecond))
	if out, _, _ := e.run("inspect", "ckb"); !strings.Contains(out, `"running"`) {
		t.Errorf("after the checkpoint: %s", out)
	}
	if out := e.ok("exec", "ckb", "--", "echo", "after"); out != "after\n" {
		t.Errorf("exec after the checkpoint: %q", out)
	}
}
