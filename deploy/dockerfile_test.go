package deploy_test

import (
	"debug/elf"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// instruction is one line of a Dockerfile, continuation lines joined.
type instruction struct{ cmd, args string }

func dockerfile(t *testing.T) []instruction {
	t.Helper()
	data, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	for line := range strings.Lines(string(data)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if more, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(line)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{strings.ToUpper(cmd), strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// The image is built in two stages and runs the binary alone: the last
// stage copies it in and runs nothing (no shell needed), as a numeric
// non-root user, from an exec-form entrypoint; and the build command it
// uses makes a static binary, checked by building it here.
func TestDockerfile(t *testing.T) {
	var stages [][]instruction
	for _, in := range dockerfile(t) {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			t.Fatalf("%s before FROM", in.cmd)
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and a runtime stage", len(stages))
	}
	var buildCmd string
	for _, in := range stages[0] {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			buildCmd = in.args
		}
	}
	final := stages[1]
	var user, entrypoint string
	for _, in := range final {
		switch in.cmd {
		case "RUN", "SHELL":
			t.Errorf("the runtime stage runs %s %s: it must need no shell", in.cmd, in.args)
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entrypoint = in.args
		case "HEALTHCHECK":
			if !strings.Contains(in.args, `CMD ["`) {
				t.Errorf("HEALTHCHECK %s: want the exec form (there is no shell)", in.args)
			}
		}
	}
	if !strings.Contains(final[0].args, "distroless/static") || !strings.Contains(final[0].args, "nonroot") {
		t.Errorf("runtime base %s: want distroless static, nonroot", final[0].args)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("USER %q: want a numeric non-root user (runAsNonRoot checks numbers)", user)
	}
	var argv []string
	if err := json.Unmarshal([]byte(entrypoint), &argv); err != nil || len(argv) != 1 {
		t.Errorf("ENTRYPOINT %s: want the exec form naming the binary", entrypoint)
	}
	if !strings.Contains(buildCmd, "CGO_ENABLED=0") || !strings.Contains(buildCmd, "-trimpath") {
		t.Fatalf("the build stage's go build (%q) must be static and path-free", buildCmd)
	}

	// The same build, here: the binary must have no dynamic loader.
	bin := filepath.Join(t.TempDir(), "orbt")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, ".")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build as the Dockerfile does: %v\n%s", err, out)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Fatalf("the binary is dynamically linked (%s): it would not run on distroless/static", p.Type)
		}
	}
}
