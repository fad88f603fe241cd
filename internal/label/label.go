// Package label checks short identifiers (sandbox, template, user and host
// names, machine ids) byte by byte.
//
// These were regular expressions. A counted repetition such as
// [a-z0-9-]{0,62} compiles into one program step per count when its package
// loads: ~50 KB of heap in every process that links it, each sandbox's
// supervisor included, and a trip through the regexp engine in the guest
// agent on every sandbox start. These checks allocate nothing.
package label

// Name reports whether s is a sandbox or template name: 1-63 characters of
// a-z, 0-9 and '-', starting with a letter or digit.
func Name(s string) bool { return check(s, 63, lowerOrDigit, nameByte) }

// Hostname reports whether s is one DNS label: 1-63 letters, digits and
// dashes, starting with a letter or digit.
func Hostname(s string) bool { return check(s, 63, letterOrDigit, hostByte) }

// UserName reports whether s is a portable user or group name: 1-32
// characters of a-z, 0-9, '_' and '-', starting with a letter or '_'.
func UserName(s string) bool { return check(s, 32, userFirst, userByte) }

// MachineID reports whether s is a machine id: 32 lowercase hex digits.
func MachineID(s string) bool { return len(s) == 32 && check(s, 32, hexByte, hexByte) }

// check reports whether s has 1 to max bytes, the first passing first and
// every other passing rest.
func check(s string, max int, first, rest func(byte) bool) bool {
	if len(s) == 0 || len(s) > max || !first(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !rest(s[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) bool         { return 'a' <= c && c <= 'z' }
func digit(c byte) bool         { return '0' <= c && c <= '9' }
func lowerOrDigit(c byte) bool  { return lower(c) || digit(c) }
func nameByte(c byte) bool      { return lowerOrDigit(c) || c == '-' }
func letterOrDigit(c byte) bool { return lowerOrDigit(c) || 'A' <= c && c <= 'Z' }
func hostByte(c byte) bool      { return letterOrDigit(c) || c == '-' }
func userFirst(c byte) bool     { return lower(c) || c == '_' }
func userByte(c byte) bool      { return lowerOrDigit(c) || c == '_' || c == '-' }
func hexByte(c byte) bool       { return digit(c) || 'a' <= c && c <= 'f' }
