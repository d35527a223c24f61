package loadtest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Memory is a process's resident set size from /proc/<pid>/status.
type Memory struct {
	RSS     int64 // VmRSS, bytes: now
	PeakRSS int64 // VmHWM, bytes: the high-water mark over the process's life
}

// ReadMemory reads VmRSS and VmHWM of process pid.
func ReadMemory(pid int) (Memory, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	return parseStatus(f)
}

// parseStatus reads the VmRSS and VmHWM lines ("VmHWM:     8123 kB") of a
// /proc/<pid>/status document.
func parseStatus(r io.Reader) (Memory, error) {
	var m Memory
	var found int
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "VmHWM") {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("loadtest: /proc status line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil || kb < 0 {
			return Memory{}, fmt.Errorf("loadtest: /proc status line %q", sc.Text())
		}
		if name == "VmRSS" {
			m.RSS = kb << 10
		} else {
			m.PeakRSS = kb << 10
		}
		found++
	}
	if err := sc.Err(); err != nil {
		return Memory{}, err
	}
	if found != 2 {
		return Memory{}, errors.New("loadtest: no VmRSS/VmHWM in /proc status")
	}
	return m, nil
}

// FindChild returns the PID of the one running child of process parent
// whose executable's base name is name (e.g. the handler the in-process
// stand-in host launched), scanning /proc.
func FindChild(parent int, name string) (int, error) {
	return findChild("/proc", parent, name)
}

func findChild(proc string, parent int, name string) (int, error) {
	entries, err := os.ReadDir(proc)
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(proc, e.Name(), "status"))
		if err != nil || statusField(string(b), "PPid") != strconv.Itoa(parent) {
			continue
		}
		exe, err := os.Readlink(filepath.Join(proc, e.Name(), "exe"))
		if err != nil {
			continue
		}
		if filepath.Base(strings.TrimSuffix(exe, " (deleted)")) == name {
			found = append(found, pid)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("loadtest: no child process %q of %d", name, parent)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("loadtest: %d child processes %q of %d", len(found), name, parent)
}

// statusField returns the value of a "Name:\tvalue" line of a
// /proc/<pid>/status document.
func statusField(doc, name string) string {
	for line := range strings.SplitSeq(doc, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == name {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Launch is what is needed to start a process as another one was started:
// its executable, working directory and environment, read from /proc.
type Launch struct {
	Exe string
	Dir string
	Env []string
}

// ReadLaunch reads process pid's executable, working directory and
// environment. The environment may hold secrets' references (never secret
// values in the offline stack): it is used, never printed.
func ReadLaunch(pid int) (Launch, error) {
	base := filepath.Join("/proc", strconv.Itoa(pid))
	exe, err := os.Readlink(filepath.Join(base, "exe"))
	if err != nil {
		return Launch{}, err
	}
	dir, err := os.Readlink(filepath.Join(base, "cwd"))
	if err != nil {
		return Launch{}, err
	}
	b, err := os.ReadFile(filepath.Join(base, "environ"))
	if err != nil {
		return Launch{}, err
	}
	var env []string
	for kv := range strings.SplitSeq(string(b), "\x00") {
		if kv != "" {
			env = append(env, kv)
		}
	}
	return Launch{Exe: exe, Dir: dir, Env: env}, nil
}
