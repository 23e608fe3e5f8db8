package loadtest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The stack's CPU is read from /proc, before and after the measured part of
// a run, for every process of the stack on this machine: Orbt's own (any
// `orbt` process but the load generator), Postgres (the postmaster and its
// backends) and Redis. A backend that exits during the run is not lost: its
// time moves into the postmaster's reaped-children counters, which are
// summed too. The generator is left out, so the figure is what the service
// costs, whatever drove it.

// userHZ is the unit of /proc's CPU times: fixed at 100 by Linux's ABI,
// whatever the kernel's internal tick.
const userHZ = 100

// stackPart names the part of the stack a process belongs to.
func stackPart(comm string) string {
	switch {
	case strings.HasPrefix(comm, "orbt"): // orbt, or another build's name for it
		return "go"
	}
	switch comm {
	case "postgres", "postmaster":
		return "postgres"
	case "redis-server":
		return "redis"
	}
	return ""
}

// StackCPU is the CPU time the stack spent, by part.
type StackCPU struct {
	Go       time.Duration `json:"goNs"`
	Postgres time.Duration `json:"postgresNs"`
	Redis    time.Duration `json:"redisNs"`
	// ByRole splits Go by Orbt command (api, worker, dev).
	ByRole map[string]time.Duration `json:"byRole,omitempty"`
}

// Total is the stack's CPU time.
func (s StackCPU) Total() time.Duration { return s.Go + s.Postgres + s.Redis }

// PerItem is the stack's CPU time per item, in milliseconds, by part.
func (s StackCPU) PerItem(n int) (total, goMS, pgMS, redisMS float64) {
	if n == 0 {
		return 0, 0, 0, 0
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) / float64(n) }
	return ms(s.Total()), ms(s.Go), ms(s.Postgres), ms(s.Redis)
}

// stackProcess is one process of the stack as /proc showed it.
type stackProcess struct {
	part, role string
	cpu        time.Duration // own and reaped children's, user and system
	rssBytes   int64
}

// stackSnapshot maps pid to what /proc shows of it.
type stackSnapshot map[int]stackProcess

// readStack reads every process of the stack but this one.
func readStack() stackSnapshot {
	snap := make(stackSnapshot)
	self := os.Getpid()
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil || pid == self {
			continue
		}
		stat, err := os.ReadFile(dir + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		// pid (comm) state ppid …: comm may hold spaces and parentheses,
		// so the fields start after the last ')'.
		open, closing := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
		if open < 0 || closing < open {
			continue
		}
		part := stackPart(string(stat[open+1 : closing]))
		if part == "" {
			continue
		}
		fields := strings.Fields(string(stat[closing+1:]))
		if len(fields) < 22 {
			continue
		}
		// Fields 14–17 of stat (utime stime cutime cstime), counted from
		// the state field, which is the 3rd.
		var ticks int64
		for _, f := range fields[11:15] {
			n, _ := strconv.ParseInt(f, 10, 64)
			ticks += n
		}
		p := stackProcess{part: part, cpu: time.Duration(ticks) * time.Second / userHZ}
		rssPages, _ := strconv.ParseInt(fields[21], 10, 64)
		p.rssBytes = rssPages * int64(os.Getpagesize())
		if part == "go" {
			p.role = orbtRole(dir)
		}
		snap[pid] = p
	}
	return snap
}

// orbtRole is the Orbt command a process runs (api, worker, dev), from its
// command line.
func orbtRole(dir string) string {
	cmdline, _ := os.ReadFile(dir + "/cmdline")
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if len(args) < 2 {
		return "orbt"
	}
	return args[1]
}

// since is the CPU the stack spent between an earlier snapshot and this one.
func (after stackSnapshot) since(before stackSnapshot) StackCPU {
	s := StackCPU{ByRole: make(map[string]time.Duration)}
	for pid, p := range after {
		d := p.cpu - before[pid].cpu // a process started meanwhile counts whole
		if b, ok := before[pid]; ok && b.part != p.part {
			d = p.cpu // the pid was reused
		}
		switch p.part {
		case "go":
			s.Go += d
			s.ByRole[p.role] += d
		case "postgres":
			s.Postgres += d
		case "redis":
			s.Redis += d
		}
	}
	return s
}

// rssByRole is the resident memory of Orbt's processes, by command.
func (s stackSnapshot) rssByRole() map[string]int64 {
	rss := make(map[string]int64)
	for _, p := range s {
		if p.part == "go" {
			rss[p.role] += p.rssBytes
		}
	}
	return rss
}

// formatRSS writes resident memory by role as "api 61 MB, worker 48 MB".
func formatRSS(rss map[string]int64) string {
	var parts []string
	for _, role := range []string{"api", "worker", "dev"} {
		if n, ok := rss[role]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f MB", role, float64(n)/(1<<20)))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}
