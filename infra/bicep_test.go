package infra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// This file runs check/parse.mjs (tree-sitter Bicep grammar) over every
// .bicep file and gives the tests a small model of the syntax trees.

// node is one named node of a tree-sitter syntax tree as parse.mjs prints it.
type node struct {
	Type     string  `json:"t"`
	Field    string  `json:"f"`
	Text     *string `json:"x"` // absent for long nodes
	Line     int     `json:"l"`
	Children []*node `json:"c"`
}

type parsedFile struct {
	Path       string `json:"path"`
	Extensions []struct {
		Line int    `json:"line"`
		Name string `json:"name"`
		Text string `json:"text"`
	} `json:"extensions"`
	Errors []struct {
		Line   int    `json:"line"`
		Column int    `json:"column"`
		Type   string `json:"type"`
		Text   string `json:"text"`
	} `json:"errors"`
	Tree *node `json:"tree"`
}

type parseOutput struct {
	Versions map[string]string `json:"versions"`
	Files    []*parsedFile     `json:"files"`
}

// bicepFiles lists every .bicep file under infra (slash-separated, relative
// to infra), skipping the npm project and test data.
func bicepFiles() ([]string, error) {
	var files []string
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (p == "check" || p == "testdata" || strings.HasPrefix(d.Name(), ".")) && p != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".bicep") {
			files = append(files, filepath.ToSlash(p))
		}
		return nil
	})
	slices.Sort(files)
	return files, err
}

// parserMissing says why check/parse.mjs cannot run here, or "".
func parserMissing() string {
	if _, err := exec.LookPath("node"); err != nil {
		return "node is not installed: the Bicep parse checks need Node.js >= 18 and `npm ci` in infra/check"
	}
	if _, err := os.Stat(filepath.Join("check", "node_modules", "tree-sitter-bicep", "tree-sitter-bicep.wasm")); err != nil {
		return "the Bicep grammar is not installed: run `npm ci` in infra/check"
	}
	return ""
}

// requireParser skips a test when the parser cannot run, except under CI
// (CI set, as .ci/run and GitHub Actions do), where the checks must run.
func requireParser(t *testing.T) {
	t.Helper()
	if why := parserMissing(); why != "" {
		if os.Getenv("CI") != "" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

// parse runs check/parse.mjs over files.
func parse(files ...string) (*parseOutput, error) {
	cmd := exec.Command("node", append([]string{filepath.Join("check", "parse.mjs")}, files...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("node check/parse.mjs: %w\n%s", err, stderr.String())
	}
	var out parseOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return nil, fmt.Errorf("parse.mjs printed no JSON: %w", err)
	}
	if len(out.Files) != len(files) {
		return nil, fmt.Errorf("parse.mjs returned %d files for %d", len(out.Files), len(files))
	}
	return &out, nil
}

// parsedInfra parses every infra .bicep file once per test binary.
var parsedInfra = sync.OnceValues(func() (*parseOutput, error) {
	files, err := bicepFiles()
	if err != nil {
		return nil, err
	}
	return parse(files...)
})

// trees returns every infra .bicep file's parse, keyed by path.
func trees(t *testing.T) map[string]*parsedFile {
	t.Helper()
	requireParser(t)
	out, err := parsedInfra()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]*parsedFile{}
	for _, f := range out.Files {
		m[f.Path] = f
	}
	return m
}

// file returns one parsed infra file.
func file(t *testing.T, path string) *parsedFile {
	t.Helper()
	f := trees(t)[path]
	if f == nil {
		t.Fatalf("%s was not parsed (is it missing?)", path)
	}
	return f
}

func (n *node) text() string {
	if n == nil || n.Text == nil {
		return ""
	}
	return *n.Text
}

// named returns the direct children of the given type.
func (n *node) named(typ string) []*node {
	var out []*node
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Type == typ {
			out = append(out, c)
		}
	}
	return out
}

// walk visits n and every descendant, depth first.
func (n *node) walk(visit func(*node)) {
	if n == nil {
		return
	}
	visit(n)
	for _, c := range n.Children {
		c.walk(visit)
	}
}

// prop returns the value of the object property at the path of keys.
func (n *node) prop(keys ...string) *node {
	cur := n
	for _, k := range keys {
		if cur == nil || cur.Type != "object" {
			return nil
		}
		var next *node
		for _, p := range cur.named("object_property") {
			if len(p.Children) >= 2 && keyName(p.Children[0]) == k {
				next = p.Children[len(p.Children)-1]
			}
		}
		cur = next
	}
	return cur
}

// keys lists an object's property names.
func (n *node) keys() []string {
	var out []string
	for _, p := range n.named("object_property") {
		if len(p.Children) > 0 {
			out = append(out, keyName(p.Children[0]))
		}
	}
	return out
}

func keyName(k *node) string {
	if k.Type == "string" {
		if v := literal(k); v != "" {
			return v
		}
		return k.text() // an interpolated key, quotes included
	}
	return k.text()
}

// literal is the value of a string node without interpolation, or "" for
// anything else.
func literal(n *node) string {
	if n == nil || n.Type != "string" {
		return ""
	}
	var b strings.Builder
	for _, c := range n.Children {
		switch c.Type {
		case "string_content":
			b.WriteString(c.text())
		case "escape_sequence":
			b.WriteString(strings.TrimPrefix(c.text(), `\`))
		default:
			return ""
		}
	}
	return b.String()
}

// resource is one resource declaration.
type resource struct {
	Symbol string
	Type   string // without the API version
	Body   *node  // the object, also when guarded by if (…)
	Cond   *node  // the if condition, or nil
	Line   int
}

func resources(f *parsedFile) []resource {
	var out []resource
	f.Tree.walk(func(n *node) {
		if n.Type != "resource_declaration" || len(n.Children) < 3 {
			return
		}
		r := resource{Symbol: n.Children[0].text(), Line: n.Line}
		r.Type, _, _ = strings.Cut(literal(n.Children[1]), "@")
		switch body := n.Children[len(n.Children)-1]; body.Type {
		case "object":
			r.Body = body
		case "if_statement":
			r.Cond = body.Children[0]
			r.Body = body.Children[len(body.Children)-1]
		}
		out = append(out, r)
	})
	return out
}

func resourcesOfType(f *parsedFile, typ string) []resource {
	var out []resource
	for _, r := range resources(f) {
		if strings.EqualFold(r.Type, typ) {
			out = append(out, r)
		}
	}
	return out
}

// oneResource returns the only resource of typ in f.
func oneResource(t *testing.T, f *parsedFile, typ string) resource {
	t.Helper()
	rs := resourcesOfType(f, typ)
	if len(rs) != 1 {
		t.Fatalf("%s declares %d resources of type %s, want 1", f.Path, len(rs), typ)
	}
	return rs[0]
}

func resourceBySymbol(f *parsedFile, symbol string) (resource, bool) {
	for _, r := range resources(f) {
		if r.Symbol == symbol {
			return r, true
		}
	}
	return resource{}, false
}

// declared returns the value node of a top-level var, output or module (by
// kind: variable_declaration, output_declaration, module_declaration).
func declared(f *parsedFile, kind, name string) *node {
	for _, c := range f.Tree.Children {
		if c.Type == kind && len(c.Children) > 0 && c.Children[0].text() == name {
			return c.Children[len(c.Children)-1]
		}
	}
	return nil
}

// module returns the body of module symbol in f and the file it deploys.
func module(f *parsedFile, symbol string) (body *node, path string) {
	for _, c := range f.Tree.Children {
		if c.Type != "module_declaration" || len(c.Children) < 3 || c.Children[0].text() != symbol {
			continue
		}
		body = c.Children[len(c.Children)-1]
		if body.Type == "if_statement" {
			body = body.Children[len(body.Children)-1]
		}
		return body, literal(c.Children[1])
	}
	return nil, ""
}

func params(f *parsedFile) []string {
	var out []string
	for _, c := range f.Tree.Children {
		if c.Type == "parameter_declaration" && len(c.Children) > 0 {
			out = append(out, c.Children[0].text())
		}
	}
	return out
}
