package pccrd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on a received datagram. A real Probe has about 10 elements, a
// ProbeMatch about 20, both 4 namespace declarations and depth 6; the limits
// leave room for extensions while keeping the work per datagram small and
// the memory a fixed multiple of its size.
const (
	maxDepth             = 32
	maxElements          = 512
	maxNamespaceBindings = 128
	// maxEqualsSigns bounds the attributes. encoding/xml builds all of an
	// element's attributes before returning it, about 250 bytes each, so
	// they are limited up front: every attribute needs an '=', and counting
	// '=' in the raw bytes cannot be fooled by quoting. Real messages hold
	// about ten (attributes plus base64 padding).
	maxEqualsSigns = 256
)

// leafElement is an element without child elements, as handed to a
// leafVisitor. text and the scope are only valid during the call.
type leafElement struct {
	attrs []xml.Attr
	text  []byte
	scope *namespaceScope
}

// attrValue is an attribute as found on a leaf.
type attrValue struct {
	value   string
	present bool
}

// attr returns the unqualified attribute local. A repeated attribute is
// ambiguous and reported as malformed.
func (l *leafElement) attr(local string) (attrValue, error) {
	var found attrValue
	for _, a := range l.attrs {
		if a.Name.Space != "" || a.Name.Local != local {
			continue
		}
		if found.present {
			return attrValue{}, fmt.Errorf("%w: repeated attribute %s", ErrMalformed, local)
		}
		found = attrValue{value: a.Value, present: true}
	}
	return found, nil
}

// leafVisitor receives each leaf element with its path of namespace-resolved
// names from the root element down to the leaf.
type leafVisitor func(path []xml.Name, leaf *leafElement) error

// scanLeaves streams datagram through encoding/xml and calls visit for every
// element that has no child elements. Only leaves carry data in MS-PCCRD, so
// no tree is built: memory is the path (at most maxDepth names) plus one
// text buffer. DOCTYPE and other declarations are refused, which also rules
// out entity definitions; only the predefined entities and character
// references are expanded.
func scanLeaves(datagram []byte, visit leafVisitor) error {
	if len(datagram) > MaxDatagramSize {
		return fmt.Errorf("%w: %d bytes is more than a UDP datagram can hold", ErrMalformed, len(datagram))
	}
	if n := bytes.Count(datagram, []byte("=")); n > maxEqualsSigns {
		return fmt.Errorf("%w: %d '=' characters: more attributes than the limit of %d", ErrMalformed, n, maxEqualsSigns)
	}
	dec := xml.NewDecoder(bytes.NewReader(datagram))
	var (
		path       = make([]xml.Name, 0, maxDepth)
		scope      namespaceScope
		leaf       = leafElement{scope: &scope}
		isOpenLeaf bool // the innermost open element has no child yet
		elements   int
		sawRoot    bool
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %v", ErrMalformed, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if sawRoot && len(path) == 0 {
				return fmt.Errorf("%w: content after the root element", ErrMalformed)
			}
			sawRoot = true
			if elements++; elements > maxElements {
				return fmt.Errorf("%w: more than %d elements", ErrMalformed, maxElements)
			}
			if len(path) == maxDepth {
				return fmt.Errorf("%w: elements nested deeper than %d", ErrMalformed, maxDepth)
			}
			path = append(path, t.Name)
			if err := scope.push(t.Attr, len(path)); err != nil {
				return err
			}
			leaf.attrs, leaf.text, isOpenLeaf = t.Attr, leaf.text[:0], true
		case xml.EndElement:
			if isOpenLeaf {
				if err := visit(path, &leaf); err != nil {
					return err
				}
			}
			isOpenLeaf = false
			scope.pop(len(path))
			path = path[:len(path)-1]
		case xml.CharData:
			if len(path) == 0 {
				if len(bytes.Trim(t, xmlSpace)) != 0 {
					return fmt.Errorf("%w: text outside the root element", ErrMalformed)
				}
				continue
			}
			if isOpenLeaf {
				leaf.text = append(leaf.text, t...)
			}
		case xml.Directive:
			return fmt.Errorf("%w: DOCTYPE and other declarations are not allowed", ErrMalformed)
		case xml.Comment, xml.ProcInst:
			// Ignored; encoding/xml checks the encoding named by <?xml?>.
		}
	}
	if !sawRoot {
		return fmt.Errorf("%w: no root element", ErrMalformed)
	}
	return nil
}

// xmlSpace is the XML white space set (XML 1.0 production S).
const xmlSpace = " \t\r\n"

func isXMLSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }

// namespaceScope mirrors the namespace declarations in scope, which
// encoding/xml keeps private, so that QNames inside text (wsd:Types) resolve
// the way element names do.
type namespaceScope struct {
	bindings []namespaceBinding
}

type namespaceBinding struct {
	prefix, uri string
	depth       int
}

func (s *namespaceScope) push(attrs []xml.Attr, depth int) error {
	for _, a := range attrs {
		var prefix string
		switch {
		case a.Name.Space == "xmlns":
			prefix = a.Name.Local
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			prefix = ""
		default:
			continue
		}
		if len(s.bindings) == maxNamespaceBindings {
			return fmt.Errorf("%w: more than %d namespace declarations", ErrMalformed, maxNamespaceBindings)
		}
		s.bindings = append(s.bindings, namespaceBinding{prefix: prefix, uri: a.Value, depth: depth})
	}
	return nil
}

// pop drops the declarations made by the element at depth, which is closing.
func (s *namespaceScope) pop(depth int) {
	for len(s.bindings) > 0 && s.bindings[len(s.bindings)-1].depth >= depth {
		s.bindings = s.bindings[:len(s.bindings)-1]
	}
}

// resolve returns the namespace-qualified name of a QName written in text,
// such as "PeerDist:PeerDistData". ok is false for an undeclared prefix.
func (s *namespaceScope) resolve(qname string) (name xml.Name, ok bool) {
	prefix, local, found := strings.Cut(qname, ":")
	if !found {
		prefix, local = "", qname
	}
	for i := len(s.bindings) - 1; i >= 0; i-- {
		if s.bindings[i].prefix == prefix {
			return xml.Name{Space: s.bindings[i].uri, Local: local}, true
		}
	}
	if prefix == "" {
		// No default namespace declared: the name has no namespace.
		return xml.Name{Local: local}, true
	}
	return xml.Name{}, false
}
