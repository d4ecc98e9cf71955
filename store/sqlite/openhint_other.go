//go:build !linux

package sqlite

// openHint has nothing to add where statfs is not Linux's.
func openHint(string) string { return "" }
