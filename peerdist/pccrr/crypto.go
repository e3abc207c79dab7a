package pccrr

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
)

// ErrVerify means no key reading produced a block that passed the caller's
// check (normally its hash from the content information).
var ErrVerify = errors.New("pccrr: decrypted block failed verification")

// Block encryption (protocols.md §3.6, §9 row 10). The key material is the
// segment's Kp (32 bytes for SHA-256 content); the specs never say how it
// becomes a 16- or 24-byte key. iPXE, which interoperates with Windows,
// takes the first KeyLen bytes, and so do we; the MS test suite hands all
// 32 bytes to .NET, which silently means AES-256 whatever the header says.
// DecryptBlock therefore falls back to AES-256 with Kp[0:32]. A sender
// should use CryptoAES256 with Kp[0:32]: both readings agree on that.

// EncryptBlock encrypts a block with AES-CBC under key kp[:algo.KeyLen()]
// and the 16-byte iv (which the caller draws from crypto/rand), padding with
// PKCS#7 as .NET does: 65 536 plaintext bytes become 65 552. CryptoNone
// returns plaintext itself.
func EncryptBlock(kp []byte, algo CryptoAlgo, iv, plaintext []byte) ([]byte, error) {
	if algo == CryptoNone {
		return plaintext, nil
	}
	c, err := blockCipher(kp, algo)
	if err != nil {
		return nil, fmt.Errorf("pccrr: encrypt: %w", err)
	}
	if len(iv) != aes.BlockSize {
		return nil, fmt.Errorf("pccrr: encrypt: IV of %d bytes, want 16", len(iv))
	}
	pad := aes.BlockSize - len(plaintext)%aes.BlockSize
	out := make([]byte, len(plaintext)+pad)
	copy(out, plaintext)
	for i := len(plaintext); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(c, iv).CryptBlocks(out, out)
	return out, nil
}

// DecryptBlock decrypts a received block and returns exactly plainLen bytes
// (the block or segment size from the content information). Trailing bytes
// are ignored, as iPXE does, so the padding need not be valid; the
// ciphertext must be a multiple of 16 bytes and at least plainLen, the IV 16
// bytes. It tries key kp[:algo.KeyLen()] first; if verify rejects the result
// and algo is not AES_256, it tries AES-256 with kp[:32]. With a nil verify
// the first result is returned. CryptoNone returns ciphertext[:plainLen]
// (aliasing it) after the same check. Errors about the block's shape wrap
// ErrMalformed; ErrVerify means every key failed.
func DecryptBlock(kp []byte, algo CryptoAlgo, iv, ciphertext []byte, plainLen int, verify func(plain []byte) bool) ([]byte, error) {
	if plainLen < 0 || plainLen > len(ciphertext) {
		return nil, malformed("pccrr: decrypt: block of %d bytes, want at least %d", len(ciphertext), plainLen)
	}
	if algo == CryptoNone {
		plain := ciphertext[:plainLen]
		if verify != nil && !verify(plain) {
			return nil, ErrVerify
		}
		return plain, nil
	}
	if !algo.Valid() {
		return nil, fmt.Errorf("pccrr: decrypt: unknown %v", algo)
	}
	if len(ciphertext)%aes.BlockSize != 0 {
		return nil, malformed("pccrr: decrypt: %d bytes is not a multiple of 16", len(ciphertext))
	}
	if len(iv) != aes.BlockSize {
		return nil, malformed("pccrr: decrypt: IV of %d bytes, want 16", len(iv))
	}
	tries := []CryptoAlgo{algo, CryptoAES256}
	if algo == CryptoAES256 || verify == nil || len(kp) < CryptoAES256.KeyLen() {
		tries = tries[:1]
	}
	out := make([]byte, len(ciphertext))
	for _, a := range tries {
		c, err := blockCipher(kp, a)
		if err != nil {
			return nil, fmt.Errorf("pccrr: decrypt: %w", err)
		}
		cipher.NewCBCDecrypter(c, iv).CryptBlocks(out, ciphertext)
		if plain := out[:plainLen]; verify == nil || verify(plain) {
			return plain, nil
		}
	}
	return nil, ErrVerify
}

func blockCipher(kp []byte, algo CryptoAlgo) (cipher.Block, error) {
	n := algo.KeyLen()
	if n == 0 {
		return nil, fmt.Errorf("no key for %v", algo)
	}
	if len(kp) < n {
		return nil, fmt.Errorf("%v needs %d key bytes, Kp has %d", algo, n, len(kp))
	}
	return aes.NewCipher(kp[:n])
}
