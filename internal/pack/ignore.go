package pack

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strings"
)

// Ignore is a parsed .funcignore file. Core Tools reads it with gitignore
// rules; Ignore implements the subset a project file needs: comments, blank
// lines, "!" negation, a trailing "/" for directories only, a "/" inside the
// pattern anchoring it to the root, "*", "?", "[…]" within one path segment
// and "**" across segments. The zero value ignores nothing.
type Ignore struct {
	rules []ignoreRule
}

type ignoreRule struct {
	segments []string // the pattern split at "/"
	negate   bool
	dirOnly  bool
	anchored bool // matched from the root, not against any trailing segments
}

// ParseIgnore reads gitignore-style patterns, one per line. A malformed
// pattern (an unclosed "[") is an error naming its line.
func ParseIgnore(r io.Reader) (*Ignore, error) {
	ig := &Ignore{}
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		p := strings.TrimRight(sc.Text(), " \t\r")
		if p == "" || strings.HasPrefix(p, "#") {
			continue
		}
		var rule ignoreRule
		if strings.HasPrefix(p, "!") {
			rule.negate = true
			p = p[1:]
		}
		p = strings.TrimPrefix(p, `\`) // "\#" and "\!" escape a leading character
		if strings.HasSuffix(p, "/") {
			rule.dirOnly = true
			p = strings.TrimRight(p, "/")
		}
		if strings.Contains(p, "/") {
			rule.anchored = true
			p = strings.TrimPrefix(p, "/")
		}
		if p == "" {
			continue
		}
		rule.segments = strings.Split(p, "/")
		for _, s := range rule.segments {
			if s == "**" {
				continue
			}
			if _, err := path.Match(s, ""); err != nil {
				return nil, fmt.Errorf("pack: .funcignore line %d: %w", line, err)
			}
		}
		ig.rules = append(ig.rules, rule)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("pack: read .funcignore: %w", err)
	}
	return ig, nil
}

// Excludes reports whether the slash-separated path relative to the project
// root (isDir: it names a directory) is excluded. As in git, a file inside an
// excluded directory is excluded whatever later patterns say.
func (ig *Ignore) Excludes(name string, isDir bool) bool {
	if ig == nil || len(ig.rules) == 0 {
		return false
	}
	name = strings.Trim(path.Clean("/"+name), "/")
	if name == "" {
		return false
	}
	parts := strings.Split(name, "/")
	for i := 1; i < len(parts); i++ {
		if ig.excluded(parts[:i], true) {
			return true
		}
	}
	return ig.excluded(parts, isDir)
}

// excluded applies the rules to one path: the last matching rule decides.
func (ig *Ignore) excluded(parts []string, isDir bool) bool {
	out := false
	for _, r := range ig.rules {
		if r.dirOnly && !isDir {
			continue
		}
		if r.matches(parts) {
			out = !r.negate
		}
	}
	return out
}

func (r ignoreRule) matches(parts []string) bool {
	if r.anchored {
		return matchSegments(r.segments, parts)
	}
	// An unanchored pattern has one segment and matches the last one
	// (a name at any depth).
	return matchSegments(r.segments, parts[len(parts)-1:])
}

// matchSegments matches pattern segments against path segments, with "**"
// standing for any number of segments (zero included). It is a dynamic
// program over (pattern, path) positions, so no pattern makes it slow.
func matchSegments(pat, parts []string) bool {
	// ok[j] reports whether pat[i:] matches parts[j:], for the current i.
	ok := make([]bool, len(parts)+1)
	ok[len(parts)] = true
	for i := len(pat) - 1; i >= 0; i-- {
		next := ok
		ok = make([]bool, len(parts)+1)
		if pat[i] == "**" {
			// "**" matches parts[j:k] for any k >= j: true if any later
			// position matches the rest.
			reach := false
			for j := len(parts); j >= 0; j-- {
				reach = reach || next[j]
				ok[j] = reach
			}
			continue
		}
		for j := 0; j < len(parts); j++ {
			if next[j+1] {
				if m, _ := path.Match(pat[i], parts[j]); m {
					ok[j] = true
				}
			}
		}
	}
	return ok[0]
}
