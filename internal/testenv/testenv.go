// Package testenv checks that the programs a test drives (node, Chromium,
// a Python with paho-mqtt, mosquitto's clients) are installed: a test that
// lacks one is skipped with how to install it, or fails when CI is set, so
// CI never passes by skipping.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Need skips t (fails it when CI is set) unless ok; what says what is
// missing and how to install it.
func Need(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("required when CI is set: %s", what)
	}
	t.Skipf("missing: %s", what)
}

// Command returns the path of the first of names found in PATH (or given
// as a path), or Need-fails with install.
func Command(t testing.TB, install string, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	Need(t, false, names[0]+" ("+install+")")
	return ""
}

// Root returns the repository's root: the first directory above the
// test's working directory that holds go.mod.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test")
		}
		dir = parent
	}
}

// NodeModule returns the path of an npm package the root's lockfile
// installs (npm ci), or Need-fails.
func NodeModule(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Root(t), "node_modules", name)
	_, err := os.Stat(p)
	Need(t, err == nil, "node_modules/"+name+" (run npm ci at the repository root)")
	return p
}
