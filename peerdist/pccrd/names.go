package pccrd

// XML namespaces of MS-PCCRD messages (MS-PCCRD §2.2.1). Prefixes in a
// received message are free; these URIs are what the decoder compares.
const (
	NamespaceSOAP       = "http://www.w3.org/2003/05/soap-envelope"
	NamespaceAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	NamespaceDiscovery  = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
	NamespacePeerDist   = "http://schemas.microsoft.com/p2p/2007/09/PeerDistributionDiscovery"
)

// WS-Addressing header values of the two messages.
const (
	ActionProbe        = "http://schemas.xmlsoap.org/ws/2005/04/discovery/Probe"
	ActionProbeMatches = "http://schemas.xmlsoap.org/ws/2005/04/discovery/ProbeMatches"
	// ToDiscovery is the wsa:To of a multicast Probe.
	ToDiscovery = "urn:schemas-xmlsoap-org:ws:2005:04:discovery"
	// ToAnonymous is the wsa:To of a unicast ProbeMatches reply.
	ToAnonymous = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
)

// Scope matching rules (wsd:Scopes/@MatchBy) of the two probe versions.
const (
	MatchByStrcmp0    = "http://schemas.xmlsoap.org/ws/2005/04/discovery/strcmp0"
	MatchByPeerDistV2 = "http://schemas.microsoft.com/p2p/2010/05/PeerDistV2MatchingRule"
)

// MaxDatagramSize is the largest UDP payload over IPv4 (65 535 − 8 − 20).
// Larger input cannot be a datagram; Marshal refuses to produce more.
const MaxDatagramSize = 65507

// Local names of the PeerDist elements.
const (
	localPeerDistData   = "PeerDistData"
	localPeerDistDataV2 = "PeerDistDataV2"
	localBlockCount     = "BlockCount"
	localSegmentAges    = "SegmentAges"
)
