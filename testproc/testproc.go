// Package testproc runs the servers a test needs of its own, as real
// processes on loopback: redis-server (plain, sentinel, cluster node),
// Postgres clusters made by initdb, and Orbt's own binary. A test can kill
// one as a crash would (SIGKILL), stop it with a signal, and start it again
// on the same port; the fault suite (chaos/) and the scale-out tests
// (scale/) are built on it.
package testproc

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort is a loopback port nothing listens on (a moment ago).
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Process is a server the test started. Its output goes to a log file
// kept across restarts; the test's failure shows the end of it, and the
// process is killed when the test ends.
type Process struct {
	Name string
	Addr string // where it listens, for servers that do

	newCmd  func() *exec.Cmd
	logPath string
	mu      sync.Mutex
	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error
}

// Command runs a program found on the PATH as Start does.
func Command(t testing.TB, name, bin string, args ...string) *Process {
	t.Helper()
	path, err := exec.LookPath(bin)
	if err != nil {
		t.Fatalf("%s is not installed (deploy/services.sh --with-test-tools installs what the tests need): %v", bin, err)
	}
	return Start(t, name, func() *exec.Cmd { return exec.Command(path, args...) })
}

// Start runs the command newCmd makes; Restart makes and runs another.
func Start(t testing.TB, name string, newCmd func() *exec.Cmd) *Process {
	t.Helper()
	p := &Process{Name: name, newCmd: newCmd, logPath: filepath.Join(t.TempDir(), name+".log")}
	if err := p.start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	t.Cleanup(func() {
		p.Kill()
		if t.Failed() {
			t.Logf("%s log (end):\n%s", name, Tail(string(p.Output()), 3000))
		}
	})
	return p
}

func (p *Process) start() error {
	out, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	cmd := p.newCmd()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	exited := make(chan struct{})
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()
	go func() {
		err := cmd.Wait()
		out.Close()
		p.mu.Lock()
		p.exitErr = err
		p.mu.Unlock()
		close(exited)
	}()
	return nil
}

// current is the command of the latest run and the channel closed when
// it exits.
func (p *Process) current() (*exec.Cmd, <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.exited
}

// result is how the latest run exited (nil: status 0), once it has.
func (p *Process) result() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitErr
}

// Running reports whether the process has not exited.
func (p *Process) Running() bool {
	_, exited := p.current()
	select {
	case <-exited:
		return false
	default:
		return true
	}
}

// Kill ends the process as a crash would (SIGKILL) and waits for it.
func (p *Process) Kill() { p.Stop(syscall.SIGKILL, time.Minute) }

// Stop sends sig and waits up to limit for the process to exit, then kills
// it; it returns how the process exited (nil: status 0).
func (p *Process) Stop(sig syscall.Signal, limit time.Duration) error {
	cmd, exited := p.current()
	select {
	case <-exited:
	default:
		cmd.Process.Signal(sig)
		select {
		case <-exited:
		case <-time.After(limit):
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("%s did not exit within %s of %s", p.Name, limit, sig)
		}
	}
	return p.result()
}

// Wait waits for the process to exit on its own.
func (p *Process) Wait() error {
	_, exited := p.current()
	<-exited
	return p.result()
}

// WaitExit waits up to limit for the process to exit on its own.
func (p *Process) WaitExit(limit time.Duration) error {
	_, exited := p.current()
	select {
	case <-exited:
		return nil
	case <-time.After(limit):
		return fmt.Errorf("%s still running %s later", p.Name, limit)
	}
}

// Restart starts the process again once it has exited.
func (p *Process) Restart(t testing.TB) {
	t.Helper()
	if p.Running() {
		t.Fatalf("%s: restart while running", p.Name)
	}
	if err := p.start(); err != nil {
		t.Fatalf("%s: restart: %v", p.Name, err)
	}
}

// Output is everything the process has written, over every run.
func (p *Process) Output() []byte {
	b, _ := os.ReadFile(p.logPath)
	return b
}

// Tail is the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// WaitFor polls check until it succeeds, failing the test after limit.
func WaitFor(t testing.TB, what string, limit time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %v", what, limit, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
