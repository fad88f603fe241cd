// Package pkgdoc holds a repository-wide check: every Go package in the
// module has a package doc comment.
package pkgdoc
