// Package pack builds the deploy package of the function app: a zip with
// host.json at its root, every function folder's function.json, and the
// custom handler's executable compiled for the platform Azure runs it on
// (linux/amd64, CGO_ENABLED=0, -trimpath) with mode 0755 recorded in the
// zip entry's Unix attributes, so the bit survives a build on Windows or
// macOS (case C16).
//
// The package is an allow-list: only what the Functions host reads goes in.
// .funcignore is still honoured: a file it excludes is never packaged, and
// an allow-listed file that it excludes is an error rather than a function
// silently missing in Azure.
//
// It does not deploy (infra/deploy.sh and azd do), and it does not check
// what the functions mean: internal/funcs.LoadApp validates host.json and
// the function.json files before anything is written.
package pack
