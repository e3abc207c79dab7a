package pccrtp

import "strings"

// eachParam calls fn for every "name=value" element of a PeerDist header
// value. Elements are separated by commas; spaces and tabs around elements,
// names and values are tolerated (Windows writes ", " between elements),
// and empty elements are skipped, as in any HTTP list. An element without
// "=" has an empty value. fn decides what the names mean.
func eachParam(s string, fn func(name, value string) error) error {
	for elem := range strings.SplitSeq(s, ",") {
		elem = trimOWS(elem)
		if elem == "" {
			continue
		}
		name, value, _ := strings.Cut(elem, "=")
		name, value = trimOWS(name), trimOWS(value)
		if name == "" {
			return malformed("element %q has no name", elem)
		}
		if err := fn(name, value); err != nil {
			return err
		}
	}
	return nil
}

// trimOWS removes HTTP optional whitespace (spaces and tabs).
func trimOWS(s string) string { return strings.Trim(s, " \t") }

// seenSet records which known parameter names appeared, to reject
// duplicates: two different values for one key have no defined meaning.
type seenSet uint8

func (s *seenSet) add(bit seenSet, name string) error {
	if *s&bit != 0 {
		return malformed("parameter %s given twice", name)
	}
	*s |= bit
	return nil
}

// parseFlag parses a boolean parameter. Windows only ever sends "true";
// "false" is accepted as its obvious opposite, anything else is an error.
func parseFlag(name, value string) (bool, error) {
	switch {
	case strings.EqualFold(value, "true"):
		return true, nil
	case strings.EqualFold(value, "false"):
		return false, nil
	}
	return false, malformed("%s=%q is not true or false", name, value)
}
