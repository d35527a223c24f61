// Package testutil holds the few helpers many packages' tests share. It is
// imported only by _test.go files.
package testutil
