package pccrd

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// checkText accepts a free-text value (a MessageID, an endpoint address)
// that survives a trip through XML unchanged: not empty, valid UTF-8, only
// characters XML allows, no leading or trailing white space (decoders trim
// it). The decoder applies the same check, so everything it returns can be
// marshalled again.
func checkText(what, s string) error {
	if s == "" {
		return fmt.Errorf("empty %s", what)
	}
	if trimXML(s) != s {
		return fmt.Errorf("%s %q has leading or trailing white space", what, s)
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return fmt.Errorf("%s is not valid UTF-8", what)
			}
		}
		if !isXMLChar(r) {
			return fmt.Errorf("%s contains %U, which XML cannot carry", what, r)
		}
	}
	return nil
}

// isXMLChar is XML 1.0 production Char.
func isXMLChar(r rune) bool {
	return r == '\t' || r == '\n' || r == '\r' ||
		r >= 0x20 && r <= 0xD7FF ||
		r >= 0xE000 && r <= 0xFFFD ||
		r >= 0x10000 && r <= 0x10FFFF
}

// appendEscaped appends s as XML character data. Byte-wise is safe: the
// escaped characters are ASCII, which never occurs inside a multi-byte UTF-8
// sequence. A carriage return is written as a reference because a parser
// turns a literal one into a line feed.
func appendEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '&':
			dst = append(dst, "&amp;"...)
		case '<':
			dst = append(dst, "&lt;"...)
		case '>':
			dst = append(dst, "&gt;"...)
		case '"':
			dst = append(dst, "&quot;"...)
		case '\'':
			dst = append(dst, "&apos;"...)
		case '\r':
			dst = append(dst, "&#xD;"...)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// envelopeOpen is the prolog and root element start of every message we
// send. iPXE finds elements by these exact prefixes (docs/protocols.md §10).
const envelopeOpen = `<?xml version="1.0" encoding="utf-8"?>` + "\n" +
	`<soap:Envelope xmlns:soap="` + NamespaceSOAP +
	`" xmlns:wsa="` + NamespaceAddressing +
	`" xmlns:wsd="` + NamespaceDiscovery +
	`" xmlns:PeerDist="` + NamespacePeerDist + `">` + "\n"

// appendUint appends a decimal number.
func appendUint(dst []byte, n uint64) []byte { return strconv.AppendUint(dst, n, 10) }
