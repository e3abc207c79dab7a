package pccrr

// NegoReq is MSG_NEGO_REQ: the range of versions the sender speaks.
// Windows never sends it but answers it; a hosted cache may send it
// (protocols.md §9 row 16), so both directions are supported.
type NegoReq struct {
	Crypto                 CryptoAlgo
	MinVersion, MaxVersion ProtVer
}

// NegoResp is MSG_NEGO_RESP, the answer to MSG_NEGO_REQ and to any request
// in a major version the server does not speak.
type NegoResp struct {
	Crypto                 CryptoAlgo
	MinVersion, MaxVersion ProtVer
}

// NewNegoReq is the MSG_NEGO_REQ we send: our range, AES_128 preferred.
func NewNegoReq() *NegoReq {
	return &NegoReq{Crypto: CryptoAES128, MinVersion: ProtVer{Major: MinMajor}, MaxVersion: ProtVer{Major: MaxMajor}}
}

// NewNegoResp is the MSG_NEGO_RESP we send, for a MSG_NEGO_REQ or a
// *VersionError: min 1.0, max 2.0.
func NewNegoResp() *NegoResp {
	return &NegoResp{MinVersion: ProtVer{Major: MinMajor}, MaxVersion: ProtVer{Major: MaxMajor}}
}

func (m *NegoReq) Type() MsgType                       { return MsgNegoReq }
func (m *NegoReq) msgSize() int                        { return HeaderSize + 8 }
func (m *NegoReq) validate() error                     { return checkCrypto(m.Crypto) }
func (m *NegoReq) AppendTo(dst []byte) ([]byte, error) { return appendMessage(dst, m) }
func (m *NegoReq) Marshal() ([]byte, error)            { return marshal(m) }
func (m *NegoReq) appendBody(dst []byte) []byte {
	return appendU32(appendU32(dst, m.MinVersion.wire()), m.MaxVersion.wire())
}

func (m *NegoResp) Type() MsgType                       { return MsgNegoResp }
func (m *NegoResp) msgSize() int                        { return HeaderSize + 8 }
func (m *NegoResp) validate() error                     { return checkCrypto(m.Crypto) }
func (m *NegoResp) AppendTo(dst []byte) ([]byte, error) { return appendMessage(dst, m) }
func (m *NegoResp) Marshal() ([]byte, error)            { return marshal(m) }
func (m *NegoResp) appendBody(dst []byte) []byte {
	return appendU32(appendU32(dst, m.MinVersion.wire()), m.MaxVersion.wire())
}

func parseNego(r *reader) (lo, hi ProtVer) {
	lo = protVer(r.u32("MinSupportedProtocolVersion"))
	hi = protVer(r.u32("MaxSupportedProtocolVersion"))
	return lo, hi
}
